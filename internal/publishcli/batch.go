package publishcli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs"
	"github.com/clerkjobs/clerkjobs/internal/redact"
	"github.com/clerkjobs/clerkjobs/internal/text"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// batchSummary is the last JSON line of a batch.
type batchSummary struct {
	Op         string `json:"op"`
	Jobs       int    `json:"jobs"`
	Accepted   int    `json:"accepted"`
	Duplicates int    `json:"duplicates"`
	// Reused: acknowledged as duplicates of other jobs under the same
	// ids, so not queued (exit status 6).
	Reused int `json:"reused,omitempty"`
	// NotQueued names the reused lines taken by other jobs, so that a
	// person or a script resuming the batch can resend exactly those (with
	// other job ids).
	NotQueued []lineRef `json:"not_queued,omitempty"`
	// Unverified names the reused lines whose ids were published before
	// and whose stored jobs this NATS user may not read to compare (a
	// tenant, under least privilege): resuming a batch, they are its own
	// jobs, queued; resent with other ids they would run twice.
	Unverified []lineRef `json:"unverified,omitempty"`
	BatchID    string    `json:"batch_id"`
	// Stopped: publishing stopped at StoppedLine; ResumeSkip is the --skip
	// that continues it.
	StoppedLine int    `json:"stopped_line,omitempty"`
	ResumeSkip  *int   `json:"resume_skip,omitempty"`
	Error       string `json:"error,omitempty"`
	// With --wait.
	Succeeded *int `json:"succeeded,omitempty"`
	Failed    *int `json:"failed,omitempty"`
	NoResult  *int `json:"no_result,omitempty"`
}

// publishBatch publishes items asynchronously, at most --window awaiting
// acknowledgement, and stops at the first failure. Every item ends with an
// ack, an error, or neither (not attempted).
func (a *app) publishBatch(ctx context.Context, c *clerkjobs.Client, js jetstream.JetStream, topo jobs.Topology, spec jobSpec, sf *submitFlags, rep *clerkjobs.Replies, items []*inputJob) error {
	bar := a.newProgress(int64(len(items)), "publishing")
	type flight struct {
		item *inputJob
		fut  jetstream.PubAckFuture
	}
	var queue []flight
	failed := false
	// settle records a future's outcome; without block it reports false
	// for one still waiting.
	settle := func(f flight, block bool) bool {
		select {
		case f.item.ack = <-f.fut.Ok():
		case f.item.err = <-f.fut.Err():
		default:
			if !block {
				return false
			}
			select {
			case f.item.ack = <-f.fut.Ok():
			case f.item.err = <-f.fut.Err():
			}
		}
		if err := topo.CheckQueued(f.item.ack, f.item.err); err != nil {
			f.item.ack, f.item.err = nil, err // answered, but not queued
		}
		failed = failed || f.item.err != nil
		bar.add(1)
		return true
	}
	for _, it := range items {
		for len(queue) > 0 && settle(queue[0], false) {
			queue = queue[1:]
		}
		if failed || ctx.Err() != nil {
			break
		}
		fut, err := js.PublishMsgAsync(it.msg)
		// The window is full: wait for the oldest job's acknowledgement.
		for errors.Is(err, jetstream.ErrTooManyStalledMsgs) && len(queue) > 0 {
			settle(queue[0], true)
			queue = queue[1:]
			fut, err = js.PublishMsgAsync(it.msg)
		}
		if err != nil {
			it.err = err
			failed = true
			break
		}
		queue = append(queue, flight{it, fut})
	}
	// Every job sent is settled before anything is reported, so that the
	// accepted count is exact. The async ack timeout bounds this wait.
	for _, f := range queue {
		settle(f, true)
	}
	bar.done()

	sum := batchSummary{Op: string(spec.op), Jobs: len(items), BatchID: sf.batchID}
	stopped := -1
	for i, it := range items {
		switch {
		case it.ack != nil && it.ack.Duplicate:
			// A duplicate is this job published before, or another job
			// under the same id: then this one was not queued.
			if it.reused = c.CheckDuplicate(ctx, it.msg, it.ack); it.reused != nil {
				sum.Reused++
				continue
			}
			sum.Accepted++
			sum.Duplicates++
		case it.ack != nil:
			sum.Accepted++
		case stopped < 0:
			stopped = i
		}
	}
	if !a.jsonOut || rep == nil {
		a.reportAccepted(spec, items)
	}
	sum.NotQueued, sum.Unverified = reusedLines(items, false), reusedLines(items, true)
	if stopped >= 0 {
		return a.batchStopped(ctx, topo, spec, sf, items, stopped, sum)
	}
	if rep == nil {
		if err := a.summary(sum, fmt.Sprintf("published %s: %d accepted (%d duplicates, already in the stream); batch id %s",
			plural(sum.Jobs, string(spec.op)+" job", string(spec.op)+" jobs"), sum.Accepted, sum.Duplicates, sum.BatchID)); err != nil {
			return err
		}
		if sum.Reused > 0 {
			// The jobs whose ids were taken by other jobs were not queued.
			return exit(ExitJobIDReused, errors.New(reusedText(items)))
		}
		return nil
	}
	return a.waitMany(ctx, c, topo, spec, sf, rep, items, sum)
}

// lineRef names a line of a batch and its job.
type lineRef struct {
	Line  int    `json:"line"`
	JobID string `json:"job_id"`
}

// notQueued says whether the duplicate err of a line means it was not
// queued: its id is another job's, or the stored job is gone without a
// record. Otherwise err is unverified: the stored job may be this one.
func notQueued(err error) bool {
	var de *jobs.DuplicateError
	return errors.Is(err, jobs.ErrJobIDReused) || errors.As(err, &de) && de.Gone
}

// reusedLines returns the reused lines of a batch, those not queued or
// those unverified.
func reusedLines(items []*inputJob, queued bool) []lineRef {
	var refs []lineRef
	for _, it := range items {
		if it.reused != nil && notQueued(it.reused) != queued {
			refs = append(refs, lineRef{Line: it.line, JobID: it.id()})
		}
	}
	return refs
}

// reusedText lists the reused lines for a person, each with its line
// number, job id and why; "" when there are none. Every way a batch ends
// says it: a line that was not queued and is not named is a job lost, and
// one that may be queued, resent under another id, a job run twice.
func reusedText(items []*inputJob) string {
	var out []string
	for _, group := range []struct {
		queued bool
		head   string
	}{
		{false, "%d jobs were not queued: their job ids are taken by other jobs (send these lines again with other job ids, or with another --batch-id):"},
		{true, "%d jobs' ids were published before, and this NATS user may not read the stored jobs to compare them: if this batch was sent before (resumed, or run twice), these are its own jobs, queued, and resending them with other ids would run them twice; if not, send them again with other job ids:"},
	} {
		lines, n := capped(items, func(it *inputJob) bool { return it.reused != nil && notQueued(it.reused) != group.queued },
			func(it *inputJob) string {
				return fmt.Sprintf("  line %d (job %s): %v", it.line, text.Terminal(it.id()), it.reused)
			}, "  ... and %d more")
		if n > 0 {
			out = append(out, fmt.Sprintf(group.head, n)+"\n"+strings.Join(lines, "\n"))
		}
	}
	return strings.Join(out, "\n")
}

// reportAccepted prints a line per accepted job in JSON, and the duplicates
// for a person.
func (a *app) reportAccepted(spec jobSpec, items []*inputJob) {
	if a.jsonOut {
		for _, it := range items {
			if it.queued() {
				_ = printJSON(a.env.Stdout, accepted{Line: it.line, JobID: it.id(), Op: string(spec.op), Subject: it.msg.Subject, Stream: it.ack.Stream, Seq: it.ack.Sequence, Duplicate: it.ack.Duplicate})
			}
		}
		return
	}
	dups, _ := capped(items, func(it *inputJob) bool { return it.queued() && it.ack.Duplicate },
		func(it *inputJob) string {
			return fmt.Sprintf("line %d: job %s is a duplicate: already in stream %s (seq %d), not queued again", it.line, it.id(), it.ack.Stream, it.ack.Sequence)
		}, "... and %d more duplicates")
	for _, l := range dups {
		fmt.Fprintln(a.env.Stderr, l)
	}
}

// batchStopped reports a batch that stopped at items[stopped]: how many
// jobs were accepted, and how to continue.
func (a *app) batchStopped(ctx context.Context, topo jobs.Topology, spec jobSpec, sf *submitFlags, items []*inputJob, stopped int, sum batchSummary) error {
	it := items[stopped]
	reason := "interrupted"
	code := ExitInterrupted
	// What refused the stopped line for want of room, "" for anything
	// else: the jobs stream at its cap, or JetStream's storage.
	full := ""
	wrongPrefix := false // a record stream took the jobs: --prefix is not the worker's
	if it.err != nil || ctx.Err() == nil {
		code = ExitPartial
		var err error
		var failed *inputJob
		if i := slices.IndexFunc(items[stopped:], func(x *inputJob) bool { return x.err != nil }); i >= 0 {
			failed = items[stopped+i]
			err = failed.err
		}
		var api *jetstream.APIError
		switch {
		case err == nil:
			reason = "stopped"
		case errors.Is(err, jobs.ErrStoredAsRecord):
			reason, wrongPrefix = err.Error(), true // a refusal in it is not the jobs stream's
		case errors.Is(err, nats.ErrMaxPayload), errors.As(err, &api) && api.ErrorCode == jetstream.JSErrCodeStreamMessageExceedsMaximum:
			// Not NATS out of reach: this line is refused every time, and
			// continuing from it as it is stops there again.
			// The headers count too: a body under the limit alone, said to
			// be over it, would read as a mistake.
			hdrs := 0
			for k, vs := range failed.msg.Header {
				for _, v := range vs {
					hdrs += len(k) + len(v) + 4 // "k: v\r\n"
				}
			}
			where := "this connection takes in one message"
			fix := jobs.OverMaxPayload(a.nc.MaxPayload(), len(failed.msg.Data)+hdrs)
			if api != nil {
				where = fmt.Sprintf("the jobs stream %s takes (%v)", topo.JobsStream, err)
				fix = "make it smaller"
			}
			reason = fmt.Sprintf("the job of line %d, a body of %d bytes and headers of about %d, is more than %s: it was not stored, and would be refused again as it is; before continuing, %s", failed.line, len(failed.msg.Data), hdrs, where, fix)
			if sum.Accepted == 0 {
				code = ExitUsage // as for a single job: nothing was published
			}
		case jobs.StreamFull(err):
			full = "The full stream"
			reason = fmt.Sprintf("the jobs stream %s is full, so the job of line %d was NOT stored (no stored job was dropped); continue later, once the workers have worked off the backlog, or raise the stream's cap, the worker's --jobs-max-bytes (WORKER_JOBS_MAX_BYTES)", topo.JobsStream, failed.line)
		case jobs.StorageFull(err):
			full = "JetStream's full storage"
			reason = fmt.Sprintf("JetStream's storage is full (the account's or the server's limit, or its disk), so the job of line %d was NOT stored; continue later, or free or raise JetStream's storage", failed.line)
		case errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, nats.ErrNoResponders):
			reason = fmt.Sprintf("no JetStream stream stores %s (the worker creates the jobs stream %s when it starts: `go run ./cmd/worker`)", it.msg.Subject, topo.JobsStream)
		case errors.Is(err, jetstream.ErrAsyncPublishTimeout):
			reason = fmt.Sprintf("JetStream did not acknowledge a job within %s (it may or may not be stored)", sf.ackTimeout)
		default:
			reason = err.Error()
		}
		if sum.Accepted == 0 && code != ExitUsage {
			code = ExitUnavailable
		}
	}
	// What was accepted, from the items themselves: every line before the
	// stopped one but the reused ones (acknowledged, not queued), and the
	// lines after it that JetStream acknowledged before the stop.
	var before []string // reused lines before the stop: --skip passes over them
	var unsure []string // unverified lines before the stop: below
	for _, x := range items[:stopped] {
		switch {
		case x.reused == nil:
		case notQueued(x.reused):
			before = append(before, fmt.Sprint(x.line))
		default:
			unsure = append(unsure, fmt.Sprint(x.line))
		}
	}
	laterLines, later := capped(items[stopped+1:], (*inputJob).queued, func(x *inputJob) string { return fmt.Sprint(x.line) }, "and %d more")
	skip := it.line - 1
	sum.StoppedLine, sum.ResumeSkip, sum.Error = it.line, &skip, reason
	resume := fmt.Sprintf("publish %s --file %s --skip %d --batch-id %s", strings.ReplaceAll(string(spec.op), "_", "-"), shellWord(sf.file), skip, sf.batchID)
	if sf.wait {
		resume += " --wait"
	}
	flags := sf.resume
	if wrongPrefix {
		// Continuing under the same prefix stores nothing to run again.
		flags = slices.Clone(flags)
		if i := slices.Index(flags, "--prefix"); i >= 0 && i+1 < len(flags) {
			flags = slices.Delete(flags, i, i+2)
		}
		flags = append(flags, "--prefix", "PREFIX")
	}
	if len(flags) > 0 {
		resume += " " + strings.Join(flags, " ")
	}
	if wrongPrefix {
		resume += fmt.Sprintf(" (PREFIX: the worker's --subject-prefix, not %s)", shellWord(topo.Subjects.Prefix))
	}
	if sf.file == "-" {
		resume += " (with the same input)"
	}
	msg := fmt.Sprintf("publishing stopped at line %d (job %s): %s.\n%d of %d jobs were accepted (confirmed by JetStream): ",
		it.line, text.Terminal(it.id()), reason, sum.Accepted, sum.Jobs)
	switch {
	case stopped == 0:
		msg += "none before it"
	case len(before)+len(unsure) == 0:
		msg += fmt.Sprintf("every job before line %d", it.line)
	case len(before)+len(unsure) == stopped:
		msg += fmt.Sprintf("none before line %d", it.line)
	case len(unsure) == 0:
		msg += fmt.Sprintf("every job before line %d but line %s (not queued, below)", it.line, strings.Join(before, ", "))
	default:
		msg += fmt.Sprintf("every job before line %d but line %s (below)", it.line, strings.Join(append(before, unsure...), ", "))
	}
	if later > 0 {
		msg += fmt.Sprintf(", and %d after it", later)
	}
	msg += fmt.Sprintf(".\nTo continue: %s\n(jobs accepted already are sent again with the same ids and dropped as duplicates if you continue within %s)", resume, topo.DedupWindow)
	if full != "" && later > 0 {
		// A full stream, or an account's storage (measured against each
		// message), still takes a smaller job: the lines after the stop
		// that it took are sent again by the command above, and queued
		// again, to run twice, once the window has passed, which waiting
		// for room ("continue later") may well take.
		msg += fmt.Sprintf(".\n%s took %d smaller jobs after line %d (line %s): continuing after %s queues them again, and they run twice; continue within it, or take those lines out of the input first",
			full, later, it.line, strings.Join(laterLines, ", "), topo.DedupWindow)
	}
	if len(before) > 0 {
		msg += fmt.Sprintf(".\nThat command skips line %s, which was not queued: send it again with another job id", strings.Join(before, ", "))
	}
	if sf.wait {
		msg += ".\nThe accepted jobs will run, but their results are not awaited"
	}
	if r := reusedText(items); r != "" {
		msg += ".\n" + r
	}
	if a.jsonOut {
		_ = printJSON(a.env.Stdout, map[string]any{"summary": sum})
	}
	return exit(code, errors.New(msg))
}

// waitMany collects the results of a batch published with --wait: the
// answers of the jobs it queued on its inbox, and the records of its
// duplicates (whose answers went to the inbox of their first publish) from
// the record streams, so that a batch of duplicates is confirmed, not
// waved through.
func (a *app) waitMany(ctx context.Context, c *clerkjobs.Client, topo jobs.Topology, spec jobSpec, sf *submitFlags, rep *clerkjobs.Replies, items []*inputJob, sum batchSummary) error {
	pending := map[string]*inputJob{}
	var dups []*inputJob
	for _, it := range items {
		switch {
		case !it.queued():
		case it.ack.Duplicate:
			dups = append(dups, it)
		default:
			pending[it.id()] = it
		}
	}
	bar := a.newProgress(int64(len(pending)+len(dups)), "waiting")
	var succeeded, failed int
	wctx, cancel := context.WithTimeout(ctx, sf.timeout)
	defer cancel()
	// printRec prints what a job's answer or record says.
	printRec := func(rec jobs.Result, note string) error {
		clearError(&rec)
		if a.jsonOut {
			return printJSON(a.env.Stdout, rec)
		}
		// The job id and the error's text come from the worker's answer,
		// which holds Clerk's (or a proxy's) words: secrets taken out,
		// control characters escaped.
		line := fmt.Sprintf("job %s: %s", rec.JobID, rec.Outcome)
		if e := rec.Error; e != nil {
			line += fmt.Sprintf(" (%s): %s", e.Class, redact.Text(e.Message))
		}
		fmt.Fprintln(a.env.Stdout, text.Terminal(line+note))
		if len(rec.Secret) > 0 {
			printResult(a.env.Stdout, &rec)
		}
		return nil
	}
	show := func(rec jobs.Result, note string) error {
		bar.add(1)
		if rec.Outcome == jobs.Succeeded {
			succeeded++
		} else {
			failed++
		}
		return printRec(rec, note)
	}
	// A job can be answered twice: two deliveries of it that ran at once
	// (a redelivery beside a slow first one) each answer, a failure first
	// perhaps, and the result wins over the dead letter, which is deleted.
	// Such an answer is this batch's, not a stranger's: it is read (the
	// same checks as the first) and settles the job as a success.
	answered := map[string]*inputJob{}
	outcome := map[string]jobs.Outcome{}
	again := 0 // second answers that changed nothing
	// A lock_user job whose user is NOT locked is told once, as soon as
	// its progress says so, as a single job's --wait does: the operator
	// of a takeover may lock the user in the dashboard meanwhile.
	toldNotLocked := map[string]bool{}
	onProgress := func(p jobs.Progress) {
		it := pending[p.JobID]
		if it == nil || toldNotLocked[p.JobID] {
			return
		}
		if line := notLockedLine(it.args, p); line != "" {
			toldNotLocked[p.JobID] = true
			bar.interrupt()
			fmt.Fprintln(a.env.Stderr, text.Terminal("progress: job "+p.JobID+": "+line))
		}
	}
	// A job recorded but never answered (the worker refused its inbox, or
	// stopped between the two; an answer lost in a reconnect) would hold
	// the batch for all of --timeout: whenever the inbox stays quiet, a few
	// of the jobs awaited are looked up (see lookAround).
	look := newLookAround(pending)
	byRecord := map[string]bool{} // settled by a record found while waiting
	for len(pending) > 0 {
		nctx, ncancel := context.WithTimeout(wctx, look.quiet)
		res, err := rep.Next(nctx, func(id string) (clerkjobs.Expect, bool) {
			it := cmp.Or(pending[id], answered[id])
			if it == nil {
				return clerkjobs.Expect{}, false
			}
			return clerkjobs.Expect{Op: spec.op, Seq: it.ack.Sequence}, true
		}, onProgress)
		ncancel()
		if err != nil && wctx.Err() == nil && nctx.Err() != nil {
			for _, res := range look.next(wctx, c, spec.op, pending) {
				answered[res.JobID], outcome[res.JobID], byRecord[res.JobID] = pending[res.JobID], res.Outcome, true
				delete(pending, res.JobID)
				if err := show(res.Reveal(), " (its answer had not come: its record)"); err != nil {
					return err
				}
			}
			continue
		}
		if err != nil {
			break
		}
		look.quiet = lookFirst
		if it := pending[res.JobID]; it != nil {
			delete(pending, res.JobID)
			answered[res.JobID], outcome[res.JobID] = it, res.Outcome
			if err := show(res.Reveal(), ""); err != nil { // this command is the requester
				return err
			}
			continue
		}
		if byRecord[res.JobID] && res.Outcome == outcome[res.JobID] {
			// The answer of a job its record settled, come after all.
			delete(byRecord, res.JobID)
			continue
		}
		if outcome[res.JobID] != jobs.Failed || res.Outcome != jobs.Succeeded {
			again++
			continue
		}
		outcome[res.JobID] = jobs.Succeeded
		failed, succeeded = failed-1, succeeded+1
		if err := printRec(res.Reveal(), " (a second answer: another delivery of the job stored its result, which wins over its dead letter)"); err != nil {
			return err
		}
	}
	// The second answer may come after the last one awaited, or never
	// (one is sent once): a job answered with a failure is looked up before
	// it is counted failed, and a result stored since wins over its dead
	// letter, as the worker has it.
	lost := 0 // token or refresh jobs that succeeded but whose secret never came
	failedOnce := map[string]*inputJob{}
	for id, o := range outcome {
		if o == jobs.Failed {
			failedOnce[id] = answered[id]
		}
	}
	for _, res := range lookUpRecords(ctx, c, failedOnce) {
		if res.Outcome != jobs.Succeeded {
			continue
		}
		failed, succeeded = failed-1, succeeded+1
		note := " (its result, stored by another delivery of the job, wins over its dead letter: its record)"
		if spec.op.Secret() {
			note = " (its result, stored by another delivery of the job, wins over its dead letter; that delivery's answer, the only copy of its secret, never came: its record)"
			lost++
		}
		if err := printRec(res.Reveal(), note); err != nil {
			return err
		}
	}
	if again > 0 {
		fmt.Fprintf(a.env.Stderr, "%s of jobs of this batch read and set aside: another delivery of a job answered too (its result wins over a dead letter)\n", plural(again, "second answer", "second answers"))
	}
	if n := rep.Ignored(); n > 0 {
		// Counted, never shown: such a message could hold anything.
		fmt.Fprintf(a.env.Stderr, "%s on the reply inbox ignored: not the answer of a job of this batch (another request's, or forged: only the worker should be allowed to publish under the inbox prefix)\n", plural(n, "message", "messages"))
	}
	if n := rep.Dropped(); n > 0 {
		fmt.Fprintf(a.env.Stderr, "%s dropped unread: the reply inbox was full (a flood, or answers not read for a long time); the records of the jobs still awaited are looked up instead\n", plural(n, "message", "messages"))
	}
	// An answer is sent once, so one can be lost (dropped by a full inbox,
	// or on a reconnect): a job is said to have no result only once its
	// record has been looked for too.
	for _, res := range lookUpRecords(ctx, c, pending) {
		note := " (its answer never came: its record)"
		if spec.op.Secret() && res.Outcome == jobs.Succeeded {
			note = " (its answer, the only copy of its secret, never came: its record)"
			lost++
		}
		if err := show(res.Reveal(), note); err != nil {
			return err
		}
	}
	noRes := len(pending)
	missing := slices.Collect(maps.Keys(pending))
	elsewhere := 0 // secrets that went to an earlier request of the same job
	showDup := func(res *clerkjobs.Result) error {
		note := " (a duplicate: its record)"
		if spec.op.Secret() {
			note = " (a duplicate: its answer went to the first publish)"
			if res.Outcome == jobs.Succeeded {
				elsewhere++
			}
		}
		return show(res.Reveal(), note)
	}
	unseen := map[string]*inputJob{} // duplicates whose record was not found in time
	for _, it := range dups {
		res, err := record(wctx, c, it, true)
		if err != nil {
			unseen[it.id()] = it
			continue
		}
		if err := showDup(res); err != nil {
			return err
		}
	}
	// The wait for the new jobs' answers may have used all of --timeout:
	// the duplicates' records, stored long ago perhaps, are looked up
	// still, as the new jobs' are.
	for _, res := range lookUpRecords(ctx, c, unseen) {
		if err := showDup(res); err != nil {
			return err
		}
	}
	noRes += len(unseen)
	missing = slices.AppendSeq(missing, maps.Keys(unseen))
	bar.done()
	sum.Succeeded, sum.Failed, sum.NoResult = &succeeded, &failed, &noRes
	dupText := ""
	if sum.Duplicates > 0 {
		dupText = fmt.Sprintf(" (%s, awaited through their records)", plural(sum.Duplicates, "duplicate", "duplicates"))
	}
	if err := a.summary(sum, fmt.Sprintf("%s: %d accepted%s, %d succeeded, %d failed, %d without a result; batch id %s",
		plural(sum.Jobs, string(spec.op)+" job", string(spec.op)+" jobs"), sum.Accepted, dupText, succeeded, failed, noRes, sum.BatchID)); err != nil {
		return err
	}
	// Every problem is said, whichever decides the exit status: a reused
	// line (exit 6) wins, as that job will never run unless sent again;
	// then a failure (1), then no result (3, or 130 when interrupted).
	var msgs []string
	code := 0
	if r := reusedText(items); r != "" {
		msgs, code = append(msgs, r), ExitJobIDReused
	}
	if elsewhere > 0 {
		// As for one job (requestOne): no secret here is not a success.
		msgs = append(msgs, fmt.Sprintf("%s had been requested before under the same job ids: their secrets went to those requests and are shown nowhere else; request new ones with other job ids",
			plural(elsewhere, string(spec.op)+" job", string(spec.op)+" jobs")))
		code = ExitJobIDReused
	}
	if failed > 0 {
		msgs = append(msgs, fmt.Sprintf("%d of the jobs failed: they are in the dead-letter queue (publish dlq list --op %s)", failed, spec.op))
		code = cmp.Or(code, ExitJobFailed)
	}
	if lost > 0 {
		// As for one job: no secret here is not a success.
		msgs = append(msgs, fmt.Sprintf("%s succeeded, but their answers, the only copies of their secrets, never came; request new ones with other job ids",
			plural(lost, string(spec.op)+" job", string(spec.op)+" jobs")))
		code = cmp.Or(code, ExitTimeout)
	}
	if noRes > 0 {
		if len(missing) > 10 {
			missing = append(missing[:10], "...")
		}
		why := fmt.Sprintf("within %s", sf.timeout)
		nc := ExitTimeout
		if ctx.Err() != nil {
			why, nc = "before the interrupt", ExitInterrupted
		}
		msgs = append(msgs, fmt.Sprintf("%d jobs had no result %s (%s); they were accepted and may still run: successes are stored on %s, failures in the dead-letter queue (publish dlq list --op %s)",
			noRes, why, text.Terminal(strings.Join(missing, ", ")), topo.Subjects.ResultsOf(spec.op)[0], spec.op))
		code = cmp.Or(code, nc)
	}
	if code == 0 {
		return nil
	}
	return exit(code, errors.New(strings.Join(msgs, ";\n")))
}

// How often a batch's --wait looks records up while its inbox is quiet:
// first after lookFirst without an answer, the pause doubling up to
// lookEvery while nothing is found, lookMany jobs at a time. After a look
// that found records, the next comes once the answers waiting on the inbox
// are read (lookSoon): a batch whose answers do not come at all (its inbox
// refused) is otherwise settled lookMany jobs a second, hours for a big
// one.
const (
	lookFirst = time.Second
	lookEvery = 10 * time.Second
	lookSoon  = 10 * time.Millisecond
	lookMany  = 8
)

// lookAround chooses which of a batch's awaited jobs to look up while its
// inbox is quiet: lookMany at a time in the order they were stored, going
// on after the last one looked at, so that a job retried for long at the
// front of the batch does not hide the records of the jobs behind it.
type lookAround struct {
	quiet   time.Duration // how long the inbox may stay quiet before a look
	awaited []*inputJob   // the jobs awaited, in the order stored; settled ones are let go once a round
	at      int           // the next of awaited to look at
}

// newLookAround sorts the jobs of pending once: a look costs lookMany
// jobs, not a sort of every job still awaited.
func newLookAround(pending map[string]*inputJob) *lookAround {
	return &lookAround{quiet: lookFirst, awaited: slices.SortedFunc(maps.Values(pending), func(a, b *inputJob) int { return cmp.Compare(a.ack.Sequence, b.ack.Sequence) })}
}

// next looks up the next few of pending and returns the records it may
// settle them with. A token or refresh job's success is not one: its
// answer, the only copy of its secret, goes before its record, and may be
// unread on the inbox still; the lookup at --timeout's end tells whether
// it was lost.
func (l *lookAround) next(ctx context.Context, c *clerkjobs.Client, op jobs.Op, pending map[string]*inputJob) []*clerkjobs.Result {
	some, seq := map[string]*inputJob{}, map[string]uint64{}
	for len(some) < min(lookMany, len(pending)) {
		if l.at == len(l.awaited) {
			l.awaited = slices.DeleteFunc(l.awaited, func(it *inputJob) bool { return pending[it.id()] != it })
			l.at = 0
		}
		it := l.awaited[l.at]
		l.at++
		if pending[it.id()] == it {
			some[it.id()], seq[it.id()] = it, it.ack.Sequence
		}
	}
	// A record settles only a job looked up under its id: any other would
	// stay awaited, and be shown again at every look.
	var settled []*clerkjobs.Result
	for _, res := range lookUpRecords(ctx, c, some) {
		if _, looked := seq[res.JobID]; looked && (!op.Secret() || res.Outcome != jobs.Succeeded) {
			settled = append(settled, res)
		}
	}
	if len(settled) == 0 {
		l.quiet = min(max(2*l.quiet, lookFirst), lookEvery)
	} else {
		l.quiet = lookSoon
	}
	slices.SortFunc(settled, func(a, b *clerkjobs.Result) int { return cmp.Compare(seq[a.JobID], seq[b.JobID]) })
	return settled
}

// lookUpRecords finds the records of the jobs whose answers did not come,
// and takes the jobs found out of pending: a few lookups at a time, each
// given a second, all within ten seconds, so that a batch of jobs that
// have not run yet does not wait much longer than its --timeout.
func lookUpRecords(ctx context.Context, c *clerkjobs.Client, pending map[string]*inputJob) []*clerkjobs.Result {
	if len(pending) == 0 || ctx.Err() != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var (
		mu    sync.Mutex
		found []*clerkjobs.Result
		wg    sync.WaitGroup
	)
	slots := make(chan struct{}, 8)
	for _, it := range pending {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			jctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			if res, err := record(jctx, c, it, false); err == nil {
				mu.Lock()
				found = append(found, res)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for _, res := range found {
		delete(pending, res.JobID)
	}
	return found
}

// record waits for the record of a published job (dup: acknowledged as
// a duplicate), a failure's too.
func record(ctx context.Context, c *clerkjobs.Client, it *inputJob, dup bool) (*clerkjobs.Result, error) {
	res, err := c.WaitSubmitted(ctx, clerkjobs.Submitted{JobID: it.id(), Subject: it.msg.Subject, Stream: it.ack.Stream, Seq: it.ack.Sequence, Duplicate: dup, Digest: jobs.Digest(it.msg.Subject, it.msg.Data)})
	var je *clerkjobs.JobError
	if errors.As(err, &je) {
		return je.Result, nil
	}
	return res, err
}
