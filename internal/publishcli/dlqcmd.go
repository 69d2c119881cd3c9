package publishcli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/clerkjobs/clerkjobs/internal/text"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/clerkjobs/clerkjobs/dlq"
	"github.com/clerkjobs/clerkjobs/jobs"
)

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
	fs.StringSliceVar(&s.ops, "op", nil, "job types: list, create, get, refresh, revoke, token, revoke-all, unknown")
	fs.StringSliceVar(&s.classes, "class", nil, "error classes: invalid, permanent, exhausted, max_deliveries")
	fs.StringSliceVar(&s.codes, "code", nil, "Clerk error codes (e.g. rate_limit_exceeded)")
	fs.StringVar(&s.since, "since", "", "dead-lettered at or after: RFC 3339 time, date, or a duration ago (2h, 30m)")
	fs.StringVar(&s.until, "until", "", "dead-lettered before: RFC 3339 time, date, or a duration ago")
	fs.StringSliceVar(&s.jobIDs, "job-id", nil, "job ids")
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
	for _, v := range s.ops {
		if v == string(jobs.OpUnknown) {
			f.Ops = append(f.Ops, jobs.OpUnknown)
			continue
		}
		o, err := jobs.ParseOp(v)
		if err != nil {
			return f, usagef("--op: %v", err)
		}
		f.Ops = append(f.Ops, o)
	}
	for _, v := range s.classes {
		c := jobs.ErrorClass(strings.ReplaceAll(v, "-", "_"))
		if !slices.Contains(jobs.ErrorClasses(), c) {
			return f, usagef("--class %q: want one of invalid, permanent, exhausted, max_deliveries", v)
		}
		f.Classes = append(f.Classes, c)
	}
	f.ClerkCodes, f.JobIDs = s.codes, s.jobIDs
	var err error
	if f.Since, err = parseWhen(now, s.since); err != nil {
		return f, usagef("--since: %v", err)
	}
	if f.Until, err = parseWhen(now, s.until); err != nil {
		return f, usagef("--until: %v", err)
	}
	for _, v := range args {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n == 0 {
			return f, usagef("%q is not a dead-letter sequence (a positive number, as `publish dlq list` shows)", v)
		}
		f.Seqs = append(f.Seqs, n)
	}
	return f, nil
}

// parseWhen reads a time: RFC 3339, a date, or a duration before now.
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
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q: want an RFC 3339 time (2026-05-01T10:00:00Z), a date (2026-05-01), or a duration ago (2h, 30m)", s)
}

// openQueue connects and opens the dead-letter queue.
func (a *app) openQueue(ctx context.Context) (*dlq.Queue, error) {
	topo, err := a.topology()
	if err != nil {
		return nil, err
	}
	_, js, err := a.jetStream()
	if err != nil {
		return nil, err
	}
	q, err := dlq.Open(ctx, js, topo)
	if err != nil {
		return nil, streamErr(err, topo.DeadLetterStream)
	}
	return q, nil
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
	Error           jobs.ErrorInfo `json:"error"`
	Attempts        int            `json:"attempts"`
	Deliveries      int            `json:"deliveries"`
	Replays         int            `json:"replays"`
	FirstFailure    time.Time      `json:"first_failure,omitzero"`
	LastFailure     time.Time      `json:"last_failure,omitzero"`
	Worker          string         `json:"worker,omitempty"`
	Redacted        []string       `json:"redacted,omitempty"`
	Replayable      bool           `json:"replayable"`
	Size            int            `json:"size"`
	HeaderError     string         `json:"header_error,omitempty"`
	History         []jobs.Failure `json:"history,omitempty"`
	// dlq show only.
	Headers     map[string][]string `json:"headers,omitempty"`
	Payload     json.RawMessage     `json:"payload,omitempty"`
	PayloadText string              `json:"payload_text,omitempty"`
}

func toJSON(e dlq.Entry) entryJSON {
	d := e.DeadLetter
	j := entryJSON{
		Seq: e.Seq, Time: e.Time, Subject: e.Subject, Op: e.Op, OriginalSubject: d.Subject,
		JobStreamSeq: d.StreamSeq, JobID: d.JobID, Error: d.Error, Attempts: d.Attempts,
		Deliveries: d.Deliveries, Replays: d.Replays, FirstFailure: d.FirstFailure,
		LastFailure: d.LastFailure, Worker: d.Worker, Redacted: d.Redacted,
		Replayable: d.Replayable() && e.HeaderErr == nil, Size: e.Size, History: d.History,
	}
	if e.HeaderErr != nil {
		j.HeaderError = e.HeaderErr.Error()
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

func (a *app) dlqListCommand() *cobra.Command {
	var sel selection
	var limit int
	cmd := &cobra.Command{
		Use:   "list [SEQ...]",
		Short: "List dead letters",
		Long: `Lists dead letters, oldest first: a table on a terminal, NDJSON (one object per
dead letter) when standard output is not a terminal or with --json.`,
		Example: `  publish dlq list
  publish dlq list --op revoke,token --class exhausted --since 2h
  publish dlq list --code rate_limit_exceeded --json | jq .job_id
  publish dlq list --job-id incident-42-sess_2abc`,
	}
	sel.define(cmd.Flags(), false)
	cmd.Flags().IntVar(&limit, "limit", 0, "show at most this many (0: all)")
	cmd.RunE = a.runE(func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		f, err := sel.filter(time.Now(), args)
		if err != nil {
			return err
		}
		q, err := a.openQueue(ctx)
		if err != nil {
			return err
		}
		table := a.stdoutTTY() && !a.jsonOut
		var tw *tabwriter.Writer
		if table {
			tw = tabwriter.NewWriter(a.env.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SEQ\tTIME\tOP\tCLASS\tSTATUS\tCODE\tJOB ID\tREPLAYS\tERROR")
		}
		n, malformed := 0, 0
		now := time.Now()
		for e, err := range q.Entries(ctx, f, dlq.WithoutPayload()) {
			if err != nil {
				return streamErr(err, q.Topology().DeadLetterStream)
			}
			n++
			if e.HeaderErr != nil {
				malformed++
			}
			if !table {
				if err := printJSON(a.env.Stdout, toJSON(e)); err != nil {
					return err
				}
			} else {
				d := e.DeadLetter
				class := string(d.Error.Class)
				if e.HeaderErr != nil {
					class += "?"
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", e.Seq, e.Time.Local().Format("2006-01-02 15:04:05")+" ("+ago(now, e.Time)+")",
					e.Op, dash(class), dash(statusOrEmpty(d.Error.HTTPStatus)), dash(d.Error.ClerkCode), dash(d.JobID), d.Replays, text.Truncate(d.Error.Message, 60))
				if n%1000 == 0 {
					tw.Flush()
				}
			}
			if limit > 0 && n >= limit {
				break
			}
		}
		if table {
			tw.Flush()
			switch {
			case n == 0:
				fmt.Fprintln(a.env.Stderr, "no dead letters match")
			case limit > 0 && n >= limit:
				fmt.Fprintf(a.env.Stderr, "%s shown (--limit %d)\n", plural(n, "dead letter", "dead letters"), limit)
			default:
				fmt.Fprintf(a.env.Stderr, "%s\n", plural(n, "dead letter", "dead letters"))
			}
			if malformed > 0 {
				fmt.Fprintf(a.env.Stderr, "%d with missing or malformed headers (class marked ?): inspect them with `publish dlq show SEQ`\n", malformed)
			}
		}
		return nil
	})
	return cmd
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func statusOrEmpty(n int) string {
	if n == 0 {
		return ""
	}
	return strconv.Itoa(n)
}

func (a *app) dlqShowCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "show SEQ",
		Short: "Show one dead letter: why it failed, its history, and its payload",
		Long: `Shows a dead letter: its failure, the history of failed attempts, its headers and
the original job body. Secret fields (tokens, refresh tokens, request headers) are
shown redacted, even if one was stored in the clear.`,
		Example: `  publish dlq show 42
  publish dlq show 42 --json | jq .history`,
		Args: cobra.ExactArgs(1),
	}
	cmd.RunE = a.runE(func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		seq, err := strconv.ParseUint(args[0], 10, 64)
		if err != nil || seq == 0 {
			return usagef("%q is not a dead-letter sequence (a positive number, as `publish dlq list` shows)", args[0])
		}
		q, err := a.openQueue(ctx)
		if err != nil {
			return err
		}
		e, err := q.Get(ctx, seq)
		if errors.Is(err, dlq.ErrNotFound) {
			return exit(ExitUsage, fmt.Errorf("%w; `publish dlq list` shows the dead letters there are", err))
		}
		if err != nil {
			return streamErr(err, q.Topology().DeadLetterStream)
		}
		payload := safePayload(e)
		if a.jsonOut {
			j := toJSON(e)
			j.Headers = e.Header
			switch {
			case json.Valid(payload):
				j.Payload = payload
			case payload == nil && len(e.Payload) > 0:
				j.PayloadText = "[REDACTED: not JSON, may hold secrets]"
			default:
				j.PayloadText = string(payload)
			}
			return printJSON(a.env.Stdout, j)
		}
		a.showEntry(a.env.Stdout, e, payload)
		return nil
	})
	return cmd
}

func (a *app) showEntry(w io.Writer, e dlq.Entry, payload []byte) {
	d := e.DeadLetter
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, format string, args ...any) { fmt.Fprintf(tw, "%s\t%s\n", k, fmt.Sprintf(format, args...)) }
	row("dead letter", "%d on %s, stored %s (%s)", e.Seq, e.Subject, e.Time.Local().Format(time.RFC3339), ago(time.Now(), e.Time))
	if e.HeaderErr != nil {
		row("warning", "%v", e.HeaderErr)
	}
	row("job", "%s (%s, from %s seq %d)", dash(d.JobID), e.Op, dash(d.Subject), d.StreamSeq)
	row("class", "%s", dash(string(d.Error.Class)))
	row("error", "%s", dash(d.Error.Message))
	if d.Error.HTTPStatus != 0 || d.Error.ClerkCode != "" {
		row("clerk", "%s", strings.TrimSpace(fmt.Sprintf("%s %s %s", statusText(d.Error.HTTPStatus), d.Error.ClerkCode, d.Error.ClerkMessage)))
	}
	if d.Error.TraceID != "" {
		row("trace", "%s", d.Error.TraceID)
	}
	if d.Error.Field != "" {
		row("field", "%s", d.Error.Field)
	}
	row("attempts", "%s over %s", plural(d.Attempts, "Clerk call", "Clerk calls"), plural(d.Deliveries, "delivery", "deliveries"))
	if !d.FirstFailure.IsZero() {
		row("failures", "first %s, last %s", d.FirstFailure.Local().Format(time.RFC3339), d.LastFailure.Local().Format(time.RFC3339))
	}
	if d.Worker != "" {
		row("worker", "%s", d.Worker)
	}
	row("replays", "%d", d.Replays)
	switch {
	case !d.Replayable():
		row("replayable", "no: %s redacted; ask the requester to submit the job again, then purge this entry", strings.Join(d.Redacted, ", "))
	case e.HeaderErr != nil:
		row("replayable", "no: headers missing or malformed")
	default:
		row("replayable", "yes: publish dlq replay %d", e.Seq)
	}
	tw.Flush()
	if len(d.History) > 0 {
		fmt.Fprintln(w, "\nhistory:")
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  AT\tSTATUS\tCODE\tTRACE\tERROR")
		for _, h := range d.History {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", h.At.Local().Format(time.RFC3339), dash(statusOrEmpty(h.Status)), dash(h.Code), dash(h.TraceID), h.Error)
		}
		tw.Flush()
	}
	fmt.Fprintln(w, "\nheaders:")
	keys := make([]string, 0, len(e.Header))
	for k := range e.Header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, v := range e.Header[k] {
			fmt.Fprintf(w, "  %s: %s\n", k, v)
		}
	}
	fmt.Fprintf(w, "\npayload (%d bytes):\n", e.Size)
	var buf bytes.Buffer
	switch {
	case payload == nil && len(e.Payload) > 0:
		fmt.Fprintln(w, "  [REDACTED: not JSON, may hold secrets]")
	case json.Indent(&buf, payload, "  ", "  ") == nil:
		fmt.Fprintf(w, "  %s\n", buf.String())
	default:
		fmt.Fprintf(w, "  %q\n", payload)
	}
}

// check rejects a replay or purge selection that selects nothing explicitly
// or mixes its kinds: "all" must be asked for.
func (s *selection) check(f dlq.Filter) error {
	switch {
	case s.all && (s.hasFilter() || len(f.Seqs) > 0):
		return usagef("--all selects every dead letter: drop it, or the sequences and filters")
	case !s.all && !s.hasFilter() && len(f.Seqs) == 0:
		return usagef("say which dead letters: sequences, filters (--op, --class, --code, --since, --until, --job-id), or --all")
	case len(f.Seqs) > 0 && s.hasFilter():
		return usagef("give dead-letter sequences or filters, not both")
	}
	return nil
}

// selectSeqs resolves a replay selection to sequences. Sequences given
// are returned as they are: Replay reports those not in the queue.
func (a *app) selectSeqs(ctx context.Context, q *dlq.Queue, sel *selection, f dlq.Filter) ([]uint64, error) {
	if err := sel.check(f); err != nil {
		return nil, err
	}
	if len(f.Seqs) > 0 {
		return f.Seqs, nil
	}
	var seqs []uint64
	for e, err := range q.Entries(ctx, f, dlq.WithoutPayload()) {
		if err != nil {
			return nil, streamErr(err, q.Topology().DeadLetterStream)
		}
		seqs = append(seqs, e.Seq)
	}
	return seqs, nil
}

// parseRate reads "20", "20/s", "600/m" or "3600/h" as a rate per second.
func parseRate(s string) (float64, error) {
	if s == "" {
		return 0, nil
	}
	num, unit, _ := strings.Cut(s, "/")
	n, err := strconv.ParseFloat(num, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q: want a positive number per second, like 20 or 20/s, 600/m", s)
	}
	switch unit {
	case "", "s":
		return n, nil
	case "m":
		return n / 60, nil
	case "h":
		return n / 3600, nil
	}
	return 0, fmt.Errorf("%q: the unit after / must be s, m or h", s)
}

func (a *app) dlqReplayCommand() *cobra.Command {
	var sel selection
	var dryRun bool
	var rateFlag string
	cmd := &cobra.Command{
		Use:   "replay [SEQ...]",
		Short: "Send dead letters back to the jobs stream",
		Long: `Republishes each selected dead letter's original job to its original subject and
deletes the dead letter once JetStream has acknowledged the job. The job gets a
new Nats-Msg-Id, replay-<dead-letter seq>-<replay count>, so the jobs stream does
not mistake it for the original, and headers Replay-Count and Replay-Of.

Safe to interrupt and run again: an entry whose job was acknowledged but whose
dead letter was not deleted yet gets the same message id again, and the jobs
stream drops it as a duplicate if the re-run comes within its deduplication window
(2 minutes by default). Replay stops at the first error.

Entries that cannot succeed are skipped and stay in the queue: refresh jobs whose
secrets were redacted, bodies that fail their schema, jobs from no job subject.`,
		Example: `  publish dlq replay 42 43
  publish dlq replay --class exhausted --since 2h --dry-run
  publish dlq replay --class exhausted,max_deliveries --rate 20
  publish dlq replay --all --json`,
	}
	sel.define(cmd.Flags(), true)
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "show what would be replayed, change nothing")
	cmd.Flags().StringVar(&rateFlag, "rate", "", "at most this many jobs per second (20, 20/s, 600/m); default: no limit")
	cmd.RunE = a.runE(func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		f, err := sel.filter(time.Now(), args)
		if err != nil {
			return err
		}
		perSec, err := parseRate(rateFlag)
		if err != nil {
			return usagef("--rate %v", err)
		}
		if err := sel.check(f); err != nil {
			return err
		}
		q, err := a.openQueue(ctx)
		if err != nil {
			return err
		}
		seqs, err := a.selectSeqs(ctx, q, &sel, f)
		if err != nil {
			return err
		}
		if len(seqs) == 0 {
			if a.jsonOut {
				return printJSON(a.env.Stdout, map[string]any{"summary": dlq.ReplayReport{DryRun: dryRun}})
			}
			fmt.Fprintln(a.env.Stdout, "no dead letters match: nothing to replay")
			return nil
		}
		desc := "replaying"
		if dryRun {
			desc = "checking"
		}
		bar := a.newProgress(int64(len(seqs)), desc)
		opts := []dlq.Option{dlq.WithRate(perSec), dlq.WithProgress(func(o dlq.Outcome) {
			bar.add(1)
			if a.jsonOut {
				_ = printJSON(a.env.Stdout, o)
			} else if dryRun && o.Status == dlq.StatusWouldReplay {
				fmt.Fprintf(a.env.Stdout, "would replay %d: job %s (%s) to %s\n", o.Seq, dash(o.JobID), o.Op, o.Subject)
			}
		})}
		if dryRun {
			opts = append(opts, dlq.WithDryRun())
		}
		rep, rerr := q.Replay(ctx, seqs, opts...)
		bar.done()
		if a.jsonOut {
			if err := printJSON(a.env.Stdout, map[string]any{"summary": rep}); err != nil {
				return err
			}
		} else {
			a.replaySummary(rep)
		}
		switch {
		case rerr != nil && ctx.Err() != nil:
			return exit(ExitInterrupted, fmt.Errorf("interrupted: %d replayed, %d not attempted; run the same command again to continue", rep.Replayed, rep.NotAttempted))
		case rerr != nil && rep.Replayed == 0:
			return exit(ExitUnavailable, fmt.Errorf("%w; run the same command again once that is fixed", rerr))
		case rerr != nil:
			return exit(ExitPartial, fmt.Errorf("%w; run the same command again once that is fixed: it continues where this one stopped", rerr))
		case rep.Skipped > 0 && !dryRun:
			return exit(ExitPartial, nil)
		}
		return nil
	})
	return cmd
}

func (a *app) replaySummary(rep dlq.ReplayReport) {
	w := a.env.Stdout
	for i, p := range rep.Problems {
		if i == maxListed {
			fmt.Fprintf(w, "... and %d more (--json lists them all)\n", len(rep.Problems)-maxListed)
			break
		}
		fmt.Fprintf(w, "%s %d (job %s, %s): %s\n", p.Status, p.Seq, dash(p.JobID), dash(string(p.Op)), p.Reason)
	}
	verb := "replayed"
	if rep.DryRun {
		verb = "would replay"
	}
	s := fmt.Sprintf("%s %d", verb, rep.Replayed)
	if rep.Duplicates > 0 {
		s += fmt.Sprintf(" (%d had been republished by an interrupted run and were only removed from the queue)", rep.Duplicates)
	}
	s += fmt.Sprintf(", skipped %d, failed %d", rep.Skipped, rep.Failed)
	if rep.NotAttempted > 0 {
		s += fmt.Sprintf(", not attempted %d", rep.NotAttempted)
	}
	fmt.Fprintln(w, s)
}

func (a *app) dlqPurgeCommand() *cobra.Command {
	var sel selection
	var yes, dryRun bool
	cmd := &cobra.Command{
		Use:   "purge [SEQ...]",
		Short: "Delete dead letters for good",
		Long: `Deletes the selected dead letters. It shows how many it selected and asks you to
type "yes" first; without a terminal to ask on, it refuses unless --yes is given.
Only the dead letters selected before the confirmation are deleted, never ones
that arrive meanwhile.`,
		Example: `  publish dlq purge 42
  publish dlq purge --class invalid --until 24h
  publish dlq purge --op token --class permanent --yes`,
	}
	sel.define(cmd.Flags(), true)
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "show what would be purged, change nothing")
	cmd.RunE = a.runE(func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		f, err := sel.filter(time.Now(), args)
		if err != nil {
			return err
		}
		if err := sel.check(f); err != nil {
			return err
		}
		q, err := a.openQueue(ctx)
		if err != nil {
			return err
		}
		// Read what is selected, so the confirmation says what goes.
		var seqs []uint64
		byKind := map[string]int{}
		for e, err := range q.Entries(ctx, f, dlq.WithoutPayload()) {
			if err != nil {
				return streamErr(err, q.Topology().DeadLetterStream)
			}
			seqs = append(seqs, e.Seq)
			byKind[fmt.Sprintf("%s/%s", e.Op, dash(string(e.DeadLetter.Error.Class)))]++
		}
		if missing := len(f.Seqs) - len(seqs); len(f.Seqs) > 0 && missing > 0 {
			fmt.Fprintf(a.env.Stderr, "%d of the given sequences are not in the dead-letter queue\n", missing)
		}
		if len(seqs) == 0 {
			if a.jsonOut {
				return printJSON(a.env.Stdout, map[string]any{"summary": dlq.PurgeReport{}})
			}
			fmt.Fprintln(a.env.Stdout, "no dead letters match: nothing to purge")
			return nil
		}
		what := fmt.Sprintf("%s (%s)", plural(len(seqs), "dead letter", "dead letters"), kinds(byKind))
		if dryRun {
			if a.jsonOut {
				return printJSON(a.env.Stdout, map[string]any{"would_purge": seqs})
			}
			fmt.Fprintf(a.env.Stdout, "would purge %s: %s\n", what, seqList(seqs))
			return nil
		}
		if !yes {
			if !a.stdinTTY() {
				return usagef("refusing to purge %s without confirmation: standard input is not a terminal to ask on; add --yes", what)
			}
			fmt.Fprintf(a.env.Stderr, "This deletes %s for good.\nType yes to purge them: ", what)
			answer, err := bufio.NewReader(a.env.Stdin).ReadString('\n')
			if err != nil {
				fmt.Fprintln(a.env.Stderr) // end the prompt's line
			}
			if strings.TrimSpace(answer) != "yes" {
				return usagef("not confirmed: nothing was purged")
			}
		}
		bar := a.newProgress(int64(len(seqs)), "purging")
		rep, perr := q.Purge(ctx, seqs, dlq.WithProgress(func(dlq.Outcome) { bar.add(1) }))
		bar.done()
		if a.jsonOut {
			if err := printJSON(a.env.Stdout, map[string]any{"summary": rep}); err != nil {
				return err
			}
		} else {
			s := fmt.Sprintf("purged %d", rep.Purged)
			if rep.NotFound > 0 {
				s += fmt.Sprintf(" (%d were gone already)", rep.NotFound)
			}
			if rep.NotAttempted > 0 {
				s += fmt.Sprintf(", not attempted %d", rep.NotAttempted)
			}
			fmt.Fprintln(a.env.Stdout, s)
		}
		switch {
		case perr != nil && ctx.Err() != nil:
			return exit(ExitInterrupted, fmt.Errorf("interrupted: %d purged, %d not attempted", rep.Purged, rep.NotAttempted))
		case perr != nil && rep.Purged == 0:
			return exit(ExitUnavailable, perr)
		case perr != nil:
			return exit(ExitPartial, perr)
		}
		return nil
	})
	return cmd
}

func kinds(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
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
