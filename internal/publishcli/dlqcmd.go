package publishcli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/clerkjobs/clerkjobs/dlq"
	"github.com/clerkjobs/clerkjobs/internal/redact"
	"github.com/clerkjobs/clerkjobs/internal/text"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// The dlq commands: this file holds what they share; dlq_list.go,
// dlq_show.go, dlq_replay.go and dlq_purge.go one command each.
//
// Everything a dead letter holds (ids, subjects, header values, the
// payload) comes from publishers, so the text output passes it through
// text.Terminal; --json prints it exactly, as JSON escapes it.

func (a *app) dlqCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "Inspect, replay and purge the dead-letter queue",
		Long: `Jobs that could not succeed are kept in the dead-letter stream, one message each:
the original job body (secrets of refresh jobs redacted) with headers that say why
it failed. These commands list them, show one, send them back to the jobs stream,
and delete them.

Filters (list, replay, purge) combine with AND; a filter given several values
(repeated, or comma-separated) matches any of them.

` + exitCodesHelp,
		Example: `  publish dlq list --since 2h
  publish dlq show 42
  publish dlq replay --class exhausted --since 2h --dry-run
  publish dlq replay --class exhausted --since 2h --rate 20
  publish dlq purge --class invalid --yes`,
	}
	cmd.AddCommand(a.dlqListCommand(), a.dlqShowCommand(), a.dlqReplayCommand(), a.dlqPurgeCommand())
	return cmd
}

// selection is how list, replay and purge choose dead letters.
type selection struct {
	ops, classes, codes, jobIDs []string
	since, until                string
	all                         bool
}

func (s *selection) define(fs *pflag.FlagSet, withAll bool) {
	fs.StringArrayVar(&s.ops, "op", nil, "job types: list, create, get, refresh, revoke, token, revoke-all, unknown (repeat the flag, or separate them with commas, spaces or lines)")
	fs.StringArrayVar(&s.classes, "class", nil, "error classes: invalid, permanent, exhausted, max_deliveries")
	fs.StringArrayVar(&s.codes, "code", nil, "Clerk error codes (e.g. rate_limit_exceeded)")
	fs.StringVar(&s.since, "since", "", "dead-lettered at or after: RFC 3339 time, local time or date (as dlq list shows them), or a duration ago (2h, 30m)")
	fs.StringVar(&s.until, "until", "", "dead-lettered before: RFC 3339 time, local time or date, or a duration ago")
	fs.StringArrayVar(&s.jobIDs, "job-id", nil, "job ids")
	if withAll {
		fs.BoolVar(&s.all, "all", false, "every dead letter (instead of sequences or filters)")
	}
}

func (s *selection) hasFilter() bool {
	return len(s.ops)+len(s.classes)+len(s.codes)+len(s.jobIDs) > 0 || s.since != "" || s.until != ""
}

// filter builds the filter; args are dead-letter sequences.
func (s *selection) filter(now time.Time, args []string) (dlq.Filter, error) {
	var f dlq.Filter
	for _, l := range []struct {
		flag string
		vs   []string
	}{{"--op", s.ops}, {"--class", s.classes}, {"--code", s.codes}, {"--job-id", s.jobIDs}} {
		if len(l.vs) > 0 && len(splitList(l.vs)) == 0 {
			return f, usagef("%s is given with no value (an empty variable?): name at least one, or leave the flag out", l.flag)
		}
	}
	for _, v := range splitList(s.ops) {
		o, err := jobs.ParseOp(v)
		if v == string(jobs.OpUnknown) {
			o, err = jobs.OpUnknown, nil // no job type, but a letter's op may be unknown
		}
		if err != nil {
			return f, usagef("--op: %v", err)
		}
		f.Ops = append(f.Ops, o)
	}
	for _, v := range splitList(s.classes) {
		c := jobs.ErrorClass(strings.ReplaceAll(v, "-", "_"))
		if !slices.Contains(jobs.ErrorClasses(), c) {
			return f, usagef("--class %q: want one of invalid, permanent, exhausted, max_deliveries", v)
		}
		f.Classes = append(f.Classes, c)
	}
	f.ClerkCodes, f.JobIDs = splitList(s.codes), splitList(s.jobIDs)
	var err error
	if f.Since, err = parseWhen(now, s.since); err != nil {
		return f, usagef("--since: %v", err)
	}
	if f.Until, err = parseWhen(now, s.until); err != nil {
		return f, usagef("--until: %v", err)
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Until.After(f.Since) {
		// Nothing can match: the two swapped ("--since 1h --until 2h"),
		// which would read as a queue without such letters.
		return f, usagef("--until %s (%s) is not after --since %s (%s): no dead letter is stored at or after the one and before the other; swap them?",
			s.until, f.Until.Format(time.RFC3339), s.since, f.Since.Format(time.RFC3339))
	}
	for _, v := range args {
		n, err := parseSeq(v)
		if err != nil {
			return f, err
		}
		f.Seqs = append(f.Seqs, n)
	}
	return f, nil
}

// parseSeq reads a dead-letter sequence given on the command line.
func parseSeq(v string) (uint64, error) {
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || n == 0 {
		return 0, usagef("%q is not a dead-letter sequence (a positive number, as `publish dlq list` shows)", v)
	}
	return n, nil
}

// check rejects a replay or purge selection that selects nothing explicitly
// or mixes --all with others: "all" must be asked for. Sequences and
// filters together select the sequences whose letters match the filters,
// as in `dlq list`.
func (s *selection) check(f dlq.Filter) error {
	switch {
	case s.all && (s.hasFilter() || len(f.Seqs) > 0):
		return usagef("--all selects every dead letter: drop it, or the sequences and filters")
	case !s.all && !s.hasFilter() && len(f.Seqs) == 0:
		return usagef("say which dead letters: sequences, filters (--op, --class, --code, --since, --until, --job-id), or --all")
	}
	return nil
}

// stillMatches accepts a dead letter given by its sequence only while it
// matches the filters given with it. A sequence names a letter only within
// one dead-letter stream: one deleted and created again since the operator
// listed it numbers other letters from 1, and `replay 42 --job-id J` (J as
// listed) must not act on whatever letter 42 is now.
func stillMatches(f dlq.Filter) func(dlq.Entry) error {
	return func(e dlq.Entry) error {
		if !f.Match(e) {
			return errNoLongerMatches
		}
		return nil
	}
}

var errNoLongerMatches = errors.New("does not match the filters given with its sequence: not the dead letter listed under it (the dead-letter stream was created again since?), or a filter is mistyped; left as it is")

// parseWhen reads a time: RFC 3339, a date, or a duration before now. A
// time or date without a zone is in now's zone (the command's local zone), as `dlq list` and the console
// show the times of dead letters (the table's own form, "2006-01-02
// 15:04:05", is taken too): read as UTC, a purge --until the time of a
// letter as shown would reach hours past it east of Greenwich.
func parseWhen(now time.Time, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			d = -d
		}
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, now.Location()); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q: want an RFC 3339 time (2026-05-01T10:00:00Z), a local time as `dlq list` shows it (2026-05-01 10:00:00), a date (2026-05-01, local), or a duration ago (2h, 30m)", s)
}

// openQueue connects and opens the dead-letter queue.
func (a *app) openQueue(ctx context.Context) (*dlq.Queue, error) {
	topo, _, js, err := a.jetStream()
	if err != nil {
		return nil, err
	}
	q, err := dlq.Open(ctx, js, topo)
	if err != nil {
		return nil, streamErr(err, topo.DeadLetterStream)
	}
	return q, nil
}

// actionEnd gives the end of a replay or purge its exit status, the one
// mapping both use: interrupted (130), stopped by an error before anything
// was done (4) or after some of it (5), done with entries left aside (5),
// done (0). done counts the entries acted on ("replayed", "purged": verb),
// notAttempted those the action did not reach.
func actionEnd(ctx context.Context, err error, verb string, done, notAttempted int, leftAside bool) error {
	switch {
	case err != nil && ctx.Err() != nil:
		return exit(ExitInterrupted, fmt.Errorf("interrupted: %d %s, %d not attempted; run the same command again to continue", done, verb, notAttempted))
	case errors.Is(err, jobs.ErrJobIDReused):
		// A replay's id taken by another job: nothing is unavailable, and
		// running it again at once meets the same job.
		return exit(ExitJobIDReused, fmt.Errorf("%w; %d %s, %d not attempted", err, done, verb, notAttempted))
	case err != nil && done == 0:
		return exit(ExitUnavailable, fmt.Errorf("%w; run the same command again once that is fixed", err))
	case err != nil:
		return exit(ExitPartial, fmt.Errorf("%w; %d %s, %d not attempted: run the same command again once that is fixed, it continues with what is left", err, done, verb, notAttempted))
	case leftAside:
		return exit(ExitPartial, nil)
	}
	return nil
}

// entryJSON is a dead letter as --json prints it.
type entryJSON struct {
	Seq             uint64         `json:"seq"`
	Time            time.Time      `json:"time"`
	Subject         string         `json:"subject"`
	Op              jobs.Op        `json:"op"`
	OriginalSubject string         `json:"original_subject,omitempty"`
	JobStreamSeq    uint64         `json:"job_stream_seq,omitempty"`
	JobID           string         `json:"job_id,omitempty"`
	ParentJob       string         `json:"parent_job,omitempty"`
	Error           jobs.ErrorInfo `json:"error"`
	Attempts        int            `json:"attempts"`
	Deliveries      int            `json:"deliveries"`
	Replays         int            `json:"replays"`
	FirstFailure    time.Time      `json:"first_failure,omitzero"`
	LastFailure     time.Time      `json:"last_failure,omitzero"`
	Worker          string         `json:"worker,omitempty"`
	Redacted        []string       `json:"redacted,omitempty"`
	Replayable      bool           `json:"replayable"`
	NotReplayable   string         `json:"not_replayable,omitempty"`
	Size            int            `json:"size"`
	HeaderError     string         `json:"header_error,omitempty"`
	History         []jobs.Failure `json:"history,omitempty"`
	// dlq show only.
	Headers     map[string][]string `json:"headers,omitempty"`
	Payload     json.RawMessage     `json:"payload,omitempty"`
	PayloadText string              `json:"payload_text,omitempty"`
}

// toJSON is e as --json prints it; e must have been read with its payload,
// which says whether it can be replayed. The failure texts are cleared of
// secret shapes, as in the text output: a letter stored by an older worker,
// or written some other way, may quote a key or a token.
func toJSON(q *dlq.Queue, e dlq.Entry) entryJSON {
	d := shownTexts(e) // as the headers are printed
	hist := make([]jobs.Failure, len(d.History))
	for i, f := range d.History {
		f.Error, f.Code, f.TraceID = redact.All(f.Error), redact.All(f.Code), redact.All(f.TraceID)
		hist[i] = f
	}
	// The ids, subjects and names are header values and subjects as
	// stored: cleared of secret shapes like the texts (a job id is refused
	// when it looks like one, so a real id is shown as it is).
	redacted := make([]string, len(d.Redacted))
	for i, r := range d.Redacted {
		redacted[i] = redact.Text(r)
	}
	j := entryJSON{
		Seq: e.Seq, Time: e.Time, Subject: redact.All(e.Subject), Op: e.Op, OriginalSubject: redact.All(d.Subject),
		JobStreamSeq: d.StreamSeq, JobID: redact.Text(d.JobID), ParentJob: redact.Text(e.Header.Get(jobs.HeaderParentJob)), Error: d.Error.Redacted(), Attempts: d.Attempts,
		Deliveries: d.Deliveries, Replays: d.Replays, FirstFailure: d.FirstFailure,
		LastFailure: d.LastFailure, Worker: redact.Text(d.Worker), Redacted: redacted, Size: e.Size, History: hist,
	}
	if err := q.CheckReplay(e); err != nil {
		j.NotReplayable = err.Error()
	} else {
		j.Replayable = true
	}
	if e.HeaderErr != nil {
		j.HeaderError = redact.Text(e.HeaderErr.Error())
	}
	return j
}

// safePayload is a dead letter's payload with secret fields redacted, even
// if the worker missed some.
func safePayload(e dlq.Entry) []byte {
	op := e.Op
	if op == jobs.OpUnknown {
		op = jobs.OpRefresh // unknown: redact as strictly as the strictest op
	}
	out, redacted := jobs.Redact(op, e.Payload)
	if slices.Contains(redacted, "body") {
		return nil
	}
	return out
}

// dash is s cleared of secret shapes and escaped for a terminal, or "-"
// for nothing.
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return text.Terminal(redact.All(s))
}

func statusOrEmpty(n int) string {
	if n == 0 {
		return ""
	}
	return strconv.Itoa(n)
}

// kinds lists counts by kind ("op/class", escaped by the caller).
func kinds(m map[string]int) string {
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

func seqList(seqs []uint64) string {
	var parts []string
	for i, s := range seqs {
		if i == 50 {
			parts = append(parts, fmt.Sprintf("... (%d more)", len(seqs)-50))
			break
		}
		parts = append(parts, strconv.FormatUint(s, 10))
	}
	return strings.Join(parts, " ")
}

// letterText names a dead letter for a person: its sequence, job id, op,
// class, when it was stored and its error (redacted, shortened). A bare
// sequence has nothing to check the letter against (the stream may have
// been created again since it was listed, numbering other letters from 1):
// naming the letter acted on, with its time, lets the operator see that it
// is the one meant.
func (a *app) letterText(e dlq.Entry) string { return letterLine(e, a.env.Location) }

// letterLine is letterText with the letter's time shown in loc. Its texts
// are printed as their headers are (shownTexts), judged before they are
// cut: a secret cut in two is no longer seen.
func letterLine(e dlq.Entry, loc *time.Location) string {
	d := shownTexts(e)
	msg := dash(text.Truncate(d.Error.Message, 60))
	return text.Terminal(fmt.Sprintf("%d: job %s (%s, %s, stored %s): %s", e.Seq, dash(d.JobID), dash(string(e.Op)), dash(string(d.Error.Class)),
		e.Time.In(loc).Format("2006-01-02 15:04:05"), msg))
}

// bareSeqs says whether a selection is sequences alone, with no filter to
// guard them.
func (s *selection) bareSeqs(f dlq.Filter) bool { return len(f.Seqs) > 0 && !s.hasFilter() }
