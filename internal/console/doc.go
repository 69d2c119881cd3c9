// Package console is the operators' web console of clerkjobs, served by
// `publish console`: the jobs waiting and in flight, throughput and
// outcomes, the workers, revoke_all jobs in progress, and the dead-letter
// queue with its replay and purge actions.
//
// # Reading without reading everything
//
// The dead-letter queue can hold hundreds of thousands of entries. The
// console never reads them per request: at start it reads the queue once
// through an ordered consumer that asks for headers only, keeps what the
// list shows and filters on in memory (about 150 bytes an entry), and then
// follows the stream live. Entries deleted by someone else (`publish dlq
// replay` in a shell, another console, age limits) are noticed by comparing
// the stream's message count with the index and asking JetStream for the
// deleted sequences. A stream deleted and created again (another creation
// time, or a last sequence below one indexed) empties the index, which
// then reads the new stream from its start. Counts by class and op,
// filtered counts and pages are answered from memory; only the entry page
// reads a message, by sequence.
//
// # Acting like the command line
//
// Replay and purge use the dlq library, with the same selection rules and
// the same guarantees as `publish dlq`: a plan (the exact sequences chosen,
// and for a replay a dry run of every one of them) is shown for
// confirmation, the confirmed plan runs in the background with a progress
// bar, and a run that stopped can be continued with what is left; replay
// ids are derived from the dead letters, so nothing is sent twice. A plan
// binds each sequence to the letter the page showed (its storage time and
// job id): before replaying or purging one, the console reads it again,
// and a sequence that now holds another letter is skipped and reported.
//
// # Safety
//
// Every state-changing request is a POST checked by
// net/http.CrossOriginProtection (browsers' Fetch Metadata and Origin
// headers: no token to leak or forget); pages carry a strict
// Content-Security-Policy (scripts and styles only from the console's own
// embedded files); without credentials the console only listens on a
// loopback address and only answers requests for a loopback host name, so
// neither the network nor a DNS-rebinding web page can reach it; with
// credentials, failed sign-ins lock their address out for a growing time
// (throttle.go). A request
// a browser makes for another site (Sec-Fetch-Site: cross-site) is refused
// unless it opens a page in sight (a top-level navigation: a link), and
// filters are bounded (1,000 values, a 64 KiB query), so no web page can
// make the console walk its index unseen. Dead-letter payloads are shown as the worker stored them, with
// secret fields redacted again; every text a dead letter gave (ids,
// subjects, codes, headers, reasons) goes through scrub in the view-model
// constructors (an action's reasons and error as the action keeps them),
// and header values that look like secrets are not shown.
package console
