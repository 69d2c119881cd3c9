package publishcli

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/clerkjobs/clerkjobs"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// inputJob is one job read from the flags or from a file.
type inputJob struct {
	// line is the job's line in the input (1 for flags and single bodies).
	line int
	args jobs.Args
	// msg, ack and err: a job of a batch, published asynchronously; reused
	// is why its duplicate acknowledgement was not this job.
	msg    *nats.Msg
	ack    *jetstream.PubAck
	err    error
	reused error
	// submitted: a single job, submitted by the client.
	submitted *clerkjobs.Submitted
}

func (j *inputJob) id() string { return j.args.CommonFields().JobID }

// queued reports whether a job of a batch was acknowledged and is this job,
// queued (or stored before, as a duplicate of itself).
func (j *inputJob) queued() bool { return j.ack != nil && j.reused == nil }

// waitPlaceholder stands for the private inbox while jobs are validated,
// before there is a connection to make the inbox with.
const waitPlaceholder = "_INBOX.publish-wait"

// maxListed bounds how many invalid lines one error lists.
const maxListed = 20

func (a *app) submit(cmd *cobra.Command, spec jobSpec, sf *submitFlags, args []string) error {
	ctx := cmd.Context()
	topo, err := a.topology()
	if err != nil {
		return err
	}
	fs := cmd.Flags()
	sf.resume = resumeFlags(fs)
	if sf.wait && sf.replyTo != "" {
		return usagef("--wait and --reply-to both set the reply subject: use one")
	}
	if sf.replyTo != "" {
		if err := replyErr("--reply-to", sf.replyTo, topo, " (answers there could be stored in a stream)"); err != nil {
			return exit(ExitUsage, err)
		}
	}
	switch {
	case sf.wait && a.conn.InboxPrefix != "" && !tenantReply(a.conn.InboxPrefix+".x", topo.Subjects.Tenant):
		// --wait's inbox is <inbox prefix>.<id>.
		t := topo.Subjects.Tenant
		return usagef("--nats-inbox-prefix %s is not an inbox of tenant %s: the worker answers the tenant's jobs only under its own inboxes (_INBOX.%s. by default) and would dead-letter these jobs as invalid; use --nats-inbox-prefix _INBOX.%s, or leave it to --tenant", a.conn.InboxPrefix, t, t, t)
	case sf.window < 1:
		return usagef("--window must be at least 1")
	case sf.skip < 0:
		return usagef("--skip must not be negative")
	case sf.wait && sf.timeout <= 0:
		return usagef("--timeout must be positive")
	case sf.ackTimeout <= 0:
		return usagef("--ack-timeout must be positive")
	}

	var items []*inputJob
	batch := false
	if sf.file != "" {
		if own := spec.ownGiven(fs); len(own) > 0 || len(args) > 0 {
			given := strings.Join(append(own, args...), " ")
			return usagef("%s cannot be combined with --file: put the fields in the JSON body instead", given)
		}
		items, batch, err = a.fileJobs(spec, sf, topo)
	} else {
		if sf.skip > 0 || sf.batchID != "" {
			return usagef("--skip and --batch-id apply to a batch read with --file")
		}
		var item *inputJob
		item, err = a.flagJob(fs, spec, sf, topo, args)
		items = []*inputJob{item}
	}
	if err != nil {
		return err
	}

	_, nc, js, err := a.jetStream(
		jetstream.WithPublishAsyncMaxPending(sf.window),
		jetstream.WithPublishAsyncTimeout(sf.ackTimeout),
	)
	if err != nil {
		return err
	}
	opts := []clerkjobs.Option{clerkjobs.WithTopology(topo), clerkjobs.WithPublishTimeout(sf.ackTimeout)}
	if sf.wait {
		opts = append(opts, clerkjobs.WithTimeout(sf.timeout))
	}
	if a.conn.InboxPrefix != "" {
		opts = append(opts, clerkjobs.WithInboxPrefix(a.conn.InboxPrefix))
	}
	c, err := clerkjobs.NewClient(nc, opts...)
	if err != nil {
		return usagef("%v", err)
	}
	if !batch {
		if sf.wait {
			items[0].args.CommonFields().ReplyTo = "" // the client's inbox
			return a.requestOne(ctx, c, topo, spec, sf, items[0])
		}
		return a.publishOne(ctx, c, topo, spec, sf, items[0])
	}
	var rep *clerkjobs.Replies
	if sf.wait {
		if rep, err = c.NewReplies(ctx); err != nil {
			return exit(ExitUnavailable, err)
		}
		defer rep.Close() //nolint:errcheck // the connection closes next
		for _, it := range items {
			it.args.CommonFields().ReplyTo = rep.Subject()
		}
	}
	for _, it := range items {
		if it.msg, err = jobs.NewMessage(topo.Subjects, it.args); err != nil {
			return fmt.Errorf("line %d: %w", it.line, err)
		}
	}
	return a.publishBatch(ctx, c, js, topo, spec, sf, rep, items)
}

// flagJob builds the job from flags and the positional argument.
func (a *app) flagJob(fs *pflag.FlagSet, spec jobSpec, sf *submitFlags, topo jobs.Topology, args []string) (*inputJob, error) {
	body, err := spec.body(fs)
	if err != nil {
		return nil, err
	}
	if len(args) == 1 {
		if v, ok := body[spec.positional]; ok && v != args[0] {
			return nil, usagef("the argument %s and %s disagree: give one", args[0], spec.fieldFlags[spec.positional])
		}
		body[spec.positional] = args[0]
	}
	if spec.op.Secret() && !sf.wait && sf.replyTo == "" {
		return nil, usagef("%s jobs send their answer only to a reply subject: add --wait to receive it here (or --reply-to SUBJECT for a service listening there)", spec.op)
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("encode job: %w", err)
	}
	item, err := a.prepare(raw, 1, spec, sf, topo, "")
	if err != nil {
		return nil, invalidf("%s%s", describeInvalid(err, spec, true), tooBig(body, spec, err))
	}
	return item, nil
}

// tooBig names the flag whose value made a job from flags too long, "" when
// err is not about the body's length.
func tooBig(body map[string]any, spec jobSpec, err error) string {
	var ie *jobs.InvalidError
	if !errors.As(err, &ie) || ie.Field != "" || !strings.HasPrefix(ie.Reason, "body is ") {
		return ""
	}
	field, size := "", 0
	for k, v := range body {
		if b, err := json.Marshal(v); err == nil && len(b) > size {
			field, size = k, len(b)
		}
	}
	flag, ok := spec.fieldFlags[field]
	if !ok {
		return ""
	}
	return fmt.Sprintf(": %s alone is %d bytes, give less there", flag, size)
}

// fileJobs reads --file: one JSON body, or NDJSON (a batch). It validates
// every job and returns them all, or an error listing the invalid lines.
func (a *app) fileJobs(spec jobSpec, sf *submitFlags, topo jobs.Topology) ([]*inputJob, bool, error) {
	data, err := a.readInput(sf.file)
	if err != nil {
		return nil, false, usagef("--file: %v", err)
	}
	// A UTF-8 byte order mark (Windows editors write one) is not content.
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	name := sf.file
	if name == "-" {
		name = "standard input"
	}
	type rawJob struct {
		line int
		body []byte
	}
	var raws []rawJob
	batch := true
	if t := bytes.TrimSpace(data); len(t) > 0 && t[0] == '{' && json.Valid(t) {
		// One JSON value, which may span lines: a single job.
		if sf.skip > 0 {
			return nil, false, usagef("--skip applies to a batch (NDJSON); %s holds a single job", name)
		}
		line := 1 + bytes.Count(data[:bytes.IndexByte(data, '{')], []byte("\n"))
		raws, batch = []rawJob{{line: line, body: t}}, false
	} else {
		for i, l := range bytes.Split(data, []byte("\n")) {
			l = bytes.TrimSpace(l)
			if len(l) == 0 || i < sf.skip {
				continue
			}
			raws = append(raws, rawJob{line: i + 1, body: l})
		}
	}
	if len(raws) == 0 {
		if sf.skip > 0 {
			return nil, false, invalidf("no jobs in %s after the first %d lines", name, sf.skip)
		}
		return nil, false, invalidf("no jobs in %s", name)
	}
	if batch && sf.jobID != "" {
		return nil, false, usagef("--job-id names a single job; in a batch, give each line a job_id (or let --batch-id number them)")
	}
	if !batch && sf.batchID != "" {
		return nil, false, usagef("--batch-id applies to a batch (NDJSON); %s holds a single job", name)
	}
	if batch {
		sf.batchID = cmp.Or(sf.batchID, nuid.Next())
		// Lines without job_id get <batch-id>-<line>: the last line's is
		// the longest. A batch id that cannot make job ids is the flag's
		// fault, not every line's.
		if err := jobs.CheckJobID(fmt.Sprintf("%s-%d", sf.batchID, raws[len(raws)-1].line)); err != nil {
			return nil, false, usagef("--batch-id makes the job ids of the lines without job_id, <batch-id>-<line>, and %v; use a shorter batch id of letters, digits and . _ : @ / -", err)
		}
	}

	var items []*inputJob
	var problems []string
	bad := 0
	seen := map[string]int{}
	for _, r := range raws {
		item, err := a.prepare(r.body, r.line, spec, sf, topo, sf.batchID)
		if err == nil {
			if first, dup := seen[item.id()]; dup {
				err = fmt.Errorf("job_id %q is also on line %d: job ids must be unique, or JetStream drops the second as a duplicate", item.id(), first)
			} else {
				seen[item.id()] = r.line
				items = append(items, item)
			}
		}
		// Counted, listed up to maxListed, and not kept: a batch of a
		// million bad lines must hold neither a million errors nor a
		// million texts.
		if err != nil {
			if bad++; bad <= maxListed {
				problems = append(problems, fmt.Sprintf("  line %d: %s", r.line, describeInvalid(err, spec, false)))
			}
		}
	}
	if bad > maxListed {
		problems = append(problems, fmt.Sprintf("  ... and %d more", bad-maxListed))
	}
	if bad > 0 {
		what := fmt.Sprintf("%d of %d jobs in %s are invalid", bad, len(raws), name)
		if !batch {
			what = fmt.Sprintf("the job in %s is invalid", name)
		}
		return nil, false, invalidf("%s; nothing was published:\n%s\nFix them (schemas/%s describes a %s job) and run again.",
			what, strings.Join(problems, "\n"), jobs.SchemaFile(spec.op), spec.op)
	}
	return items, batch, nil
}

// resumedFlags are the flags a stopped batch's command to continue repeats
// when they were given: without them the jobs it sends would not be those
// of the batch (another tenant's subjects and Nats-Msg-Ids, no reply_to,
// another prefix or stream). Connection settings are not repeated (they
// may hold credentials): the command runs with the same ones.
var resumedFlags = []string{"tenant", "prefix", "jobs-stream", "results-stream", "dlq-stream", "consumer",
	"reply-to", "nats-inbox-prefix", "timeout", "window", "ack-timeout", "json"}

// resumeFlags returns the resumedFlags given, as arguments.
func resumeFlags(fs *pflag.FlagSet) []string {
	var out []string
	for _, name := range resumedFlags {
		f := fs.Lookup(name)
		switch {
		case f == nil || !f.Changed:
		case f.Value.Type() == "bool":
			out = append(out, "--"+name+"="+f.Value.String())
		default:
			out = append(out, "--"+name, shellWord(f.Value.String()))
		}
	}
	return out
}

// shellWord quotes s for a POSIX shell when it holds anything but the
// characters of ids, subjects, paths and durations.
func shellWord(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.,/:@=+%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// tenantReply reports whether reply subject rt can be an inbox of tenant
// (any subject outside tenants): the worker sends a tenant's answers only
// under <reply prefix><tenant>., and its reply prefix is its own setting,
// so what can be known here is that one token of rt, not the last, must be
// the tenant's name. A subject without it would be dead-lettered as
// invalid after it was queued: better refused before.
func tenantReply(rt, tenant string) bool {
	if tenant == "" {
		return true
	}
	tokens := strings.Split(rt, ".")
	return slices.Contains(tokens[:len(tokens)-1], tenant)
}

// replyErr says why rt cannot be the reply subject (what names it), nil
// when it can: the worker never replies under the prefix, and answers a
// tenant's jobs only under its inboxes.
func replyErr(what, rt string, topo jobs.Topology, note string) error {
	switch t := topo.Subjects.Tenant; {
	case topo.Subjects.Owns(rt):
		return fmt.Errorf("%s %s is under the subject prefix %q, where the worker never replies%s: use a subject outside it", what, rt, topo.Subjects.Prefix, note)
	case !tenantReply(rt, t):
		return fmt.Errorf("%s %s is not an inbox of tenant %s: the worker sends a tenant's answers only under its own inbox prefix (_INBOX.%s. by default) and would dead-letter this job as invalid; use a subject such as _INBOX.%s.<name>", what, rt, t, t, t)
	}
	return nil
}

// prepare applies the job id and reply subject the command line decides to
// one JSON body and validates it against the op's schema.
func (a *app) prepare(raw []byte, line int, spec jobSpec, sf *submitFlags, topo jobs.Topology, batchID string) (*inputJob, error) {
	// The body is read into a map below, which keeps one value of a
	// member given twice: such a body is refused first, as Decode would.
	if err := jobs.CheckJSON(spec.op, raw); err != nil {
		return nil, err
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err == nil && obj != nil {
		str := func(k string) (string, bool) {
			var s string
			v, ok := obj[k]
			if ok {
				_ = json.Unmarshal(v, &s) // a non-string fails validation below
			}
			return s, ok
		}
		set := func(k, v string) { obj[k], _ = json.Marshal(v) }
		if rt, ok := str("reply_to"); ok {
			switch {
			case sf.wait:
				return nil, fmt.Errorf("it sets reply_to, but --wait receives the result on its own inbox: remove one")
			case sf.replyTo != "" && rt != sf.replyTo:
				return nil, fmt.Errorf("its reply_to %q differs from --reply-to %s", rt, sf.replyTo)
			}
		}
		switch {
		case sf.wait:
			set("reply_to", waitPlaceholder)
		case sf.replyTo != "":
			set("reply_to", sf.replyTo)
		}
		id, hasID := str("job_id")
		switch {
		case sf.jobID != "" && hasID && id != sf.jobID:
			// Either id may be shaped like a secret: Decode would refuse
			// it without repeating it, and so must this error.
			return nil, fmt.Errorf("its job_id %s differs from --job-id %s", shownID(id), shownID(sf.jobID))
		case sf.jobID != "":
			set("job_id", sf.jobID)
		case !hasID && batchID != "":
			set("job_id", fmt.Sprintf("%s-%d", batchID, line))
		}
		if raw, err = json.Marshal(obj); err != nil {
			return nil, fmt.Errorf("encode job: %w", err)
		}
	}
	args, err := jobs.Decode(spec.op, raw)
	if err != nil {
		return nil, err
	}
	if rt := args.CommonFields().ReplyTo; rt != "" && rt != waitPlaceholder {
		if err := replyErr("reply_to", rt, topo, ""); err != nil {
			return nil, err
		}
	}
	return &inputJob{line: line, args: args}, nil
}

// shownID is a job id as an error shows it: quoted when jobs.CheckJobID
// accepts it, else described by its length (it may be a pasted key).
func shownID(id string) string {
	if jobs.CheckJobID(id) != nil {
		return fmt.Sprintf("(an unusable id of %d characters)", len(id))
	}
	return strconv.Quote(id)
}

// describeInvalid says what is wrong with a job and what to do, naming the
// flag rather than the JSON field when the job came from flags.
func describeInvalid(err error, spec jobSpec, fromFlags bool) string {
	var ie *jobs.InvalidError
	if !errors.As(err, &ie) {
		return err.Error()
	}
	field := ie.Field
	name := strings.TrimPrefix(field, "/")
	if fromFlags {
		// A field's flag names its members too (/except_session_ids/1).
		top, _, _ := strings.Cut(name, "/")
		if f, ok := spec.fieldFlags[top]; ok {
			field = f
		}
	}
	msg := ie.Reason
	if field != "" {
		msg = field + ": " + ie.Reason
	}
	if spec.op.Secret() && name == "reply_to" && strings.Contains(ie.Reason, "missing") {
		msg += " (" + string(spec.op) + " answers go only to reply_to: use --wait, or set reply_to to your service's inbox)"
	}
	if fromFlags {
		return fmt.Sprintf("invalid %s job: %s", spec.op, msg)
	}
	return msg
}

// accepted is the JSON line printed for a published job.
type accepted struct {
	Line      int    `json:"line,omitempty"`
	JobID     string `json:"job_id"`
	Op        string `json:"op"`
	Subject   string `json:"subject"`
	Stream    string `json:"stream"`
	Seq       uint64 `json:"seq"`
	Duplicate bool   `json:"duplicate"`
}

// publishOne publishes a single job without waiting for its result.
func (a *app) publishOne(ctx context.Context, c *clerkjobs.Client, topo jobs.Topology, spec jobSpec, sf *submitFlags, item *inputJob) error {
	s, err := c.Submit(ctx, item.args)
	item.submitted = &s
	if err != nil {
		return a.submitErr(ctx, err, item, topo, sf)
	}
	if a.jsonOut {
		return printJSON(a.env.Stdout, accepted{JobID: item.id(), Op: string(spec.op), Subject: s.Subject, Stream: s.Stream, Seq: s.Seq, Duplicate: s.Duplicate})
	}
	a.reportSubmitted(a.env.Stdout, topo, s)
	return nil
}

// submitErr explains why a job could not be submitted.
func (a *app) submitErr(ctx context.Context, err error, item *inputJob, topo jobs.Topology, sf *submitFlags) error {
	subject := "" // where the job was (or was to be) published
	if item.submitted != nil {
		subject = item.submitted.Subject
	}
	switch {
	case ctx.Err() != nil && !errors.Is(err, jobs.ErrJobIDReused):
		return exit(ExitInterrupted, fmt.Errorf("interrupted while publishing job %s: it may or may not be stored; %s", item.id(), againAdvice(item, sf, topo)))
	case errors.Is(err, jobs.ErrJobIDReused), errors.Is(err, jobs.ErrDuplicateUnverified):
		return exit(ExitJobIDReused, err)
	case errors.Is(err, jobs.ErrStoredAsRecord):
		return exit(ExitUnavailable, fmt.Errorf("%w: run it again with --prefix set to the worker's", err))
	case errors.Is(err, jobs.ErrInvalid), jobs.StreamFull(err), jobs.StorageFull(err):
		// As it is (exit 2, or 4): it names the job, says it was not
		// stored and what to do.
		return classify(ctx, err)
	case errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, nats.ErrNoResponders):
		return exit(ExitUnavailable, fmt.Errorf("no JetStream stream stores %s: the jobs stream %s does not exist yet (the worker creates it when it starts: `go run ./cmd/worker`), or --prefix is wrong", subject, topo.JobsStream))
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout), errors.Is(err, jetstream.ErrAsyncPublishTimeout):
		if subject != "" && slices.Contains(a.refusals.list(a.nc), refusal{subject: subject}) {
			// No acknowledgement because the server dropped the job.
			return exit(ExitUnavailable, fmt.Errorf("job %s was NOT stored: %s", item.id(), a.describe(refusal{subject: subject})))
		}
		return exit(ExitUnavailable, fmt.Errorf("JetStream did not acknowledge job %s on %s within %s: it may or may not be stored; %s", item.id(), subject, sf.ackTimeout, againAdvice(item, sf, topo)))
	}
	return exit(ExitUnavailable, fmt.Errorf("publish job %s to %s: %w", item.id(), subject, err))
}

// againAdvice says how to send a job again that may or may not be stored.
// The same id is deduplicated, which is right unless the job's answer is
// its secret and this run waited for it: a stored job answers only the
// inbox of the run that sent it, which nobody hears any more.
func againAdvice(item *inputJob, sf *submitFlags, topo jobs.Topology) string {
	if op := item.args.Op(); sf.wait && (op == jobs.OpToken || op == jobs.OpRefresh) {
		return fmt.Sprintf("to get its %s, publish it again with another --job-id (or none): the same id would be deduplicated, and a stored job sends its secret only to this run's inbox, which is closed", op)
	}
	return fmt.Sprintf("publishing it again with --job-id %s is safe (it is deduplicated for %s)", item.id(), topo.DedupWindow)
}

// reportSubmitted tells a person that a job was queued, or was a duplicate.
func (a *app) reportSubmitted(w io.Writer, topo jobs.Topology, s clerkjobs.Submitted) {
	if s.Duplicate {
		fmt.Fprintf(w, "job %s is a duplicate: already in stream %s (seq %d), not queued again (same Nats-Msg-Id within %s)\n", s.JobID, s.Stream, s.Seq, topo.DedupWindow)
	} else {
		fmt.Fprintf(w, "job %s queued on %s (stream %s, seq %d)\n", s.JobID, s.Subject, s.Stream, s.Seq)
	}
}
