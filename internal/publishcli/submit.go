package publishcli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/clerkjobs/clerkjobs/jobs"
)

// inputJob is one job read from the flags or from a file.
type inputJob struct {
	// line is the job's line in the input (1 for flags and single bodies).
	line int
	args jobs.Args
	msg  *nats.Msg
	ack  *jetstream.PubAck
	err  error
}

func (j *inputJob) id() string { return j.args.CommonFields().JobID }

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
	switch {
	case sf.wait && sf.replyTo != "":
		return usagef("--wait and --reply-to both set the reply subject: use one")
	case sf.replyTo != "" && topo.Subjects.Owns(sf.replyTo):
		return usagef("--reply-to %s is under the subject prefix %q, where the worker never replies (answers there could be stored in a stream): use a subject outside it", sf.replyTo, topo.Subjects.Prefix)
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
		if own := changed(fs, spec.ownFlags()...); len(own) > 0 || len(args) > 0 {
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

	nc, js, err := a.jetStream(
		jetstream.WithPublishAsyncMaxPending(sf.window),
		jetstream.WithPublishAsyncTimeout(sf.ackTimeout),
	)
	if err != nil {
		return err
	}
	var sub *nats.Subscription
	if sf.wait {
		// Subscribe before publishing, and make sure the server has the
		// subscription: a fast worker could otherwise answer first.
		inbox := nc.NewInbox()
		if sub, err = nc.SubscribeSync(inbox); err != nil {
			return fmt.Errorf("subscribe to the reply inbox: %w", err)
		}
		defer sub.Unsubscribe() //nolint:errcheck // the connection closes next
		if err := sub.SetPendingLimits(-1, -1); err != nil {
			return fmt.Errorf("reply inbox: %w", err)
		}
		if err := nc.FlushTimeout(sf.ackTimeout); err != nil {
			return fmt.Errorf("subscribe to the reply inbox: %w", err)
		}
		for _, it := range items {
			it.args.CommonFields().ReplyTo = inbox
		}
	}
	for _, it := range items {
		if it.msg, err = jobs.NewMessage(topo.Subjects, it.args); err != nil {
			return fmt.Errorf("line %d: %w", it.line, err)
		}
	}
	if !batch {
		return a.publishOne(ctx, js, topo, spec, sf, sub, items[0])
	}
	return a.publishBatch(ctx, js, topo, spec, sf, sub, items)
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
		return nil, usagef("%s", describeInvalid(err, spec, true))
	}
	return item, nil
}

// fileJobs reads --file: one JSON body, or NDJSON (a batch). It validates
// every job and returns them all, or an error listing the invalid lines.
func (a *app) fileJobs(spec jobSpec, sf *submitFlags, topo jobs.Topology) ([]*inputJob, bool, error) {
	data, err := a.readInput(sf.file)
	if err != nil {
		return nil, false, usagef("--file: %v", err)
	}
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
		raws, batch = []rawJob{{line, t}}, false
	} else {
		for i, l := range bytes.Split(data, []byte("\n")) {
			l = bytes.TrimSpace(l)
			if len(l) == 0 || i < sf.skip {
				continue
			}
			raws = append(raws, rawJob{i + 1, l})
		}
	}
	if len(raws) == 0 {
		if sf.skip > 0 {
			return nil, false, usagef("no jobs in %s after the first %d lines", name, sf.skip)
		}
		return nil, false, usagef("no jobs in %s", name)
	}
	if batch && sf.jobID != "" {
		return nil, false, usagef("--job-id names a single job; in a batch, give each line a job_id (or let --batch-id number them)")
	}
	if !batch && sf.batchID != "" {
		return nil, false, usagef("--batch-id applies to a batch (NDJSON); %s holds a single job", name)
	}
	if batch && sf.batchID == "" {
		sf.batchID = nuid.Next()
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
			}
		}
		if err != nil {
			if bad++; bad <= maxListed {
				problems = append(problems, fmt.Sprintf("  line %d: %s", r.line, describeInvalid(err, spec, false)))
			}
			continue
		}
		items = append(items, item)
	}
	if bad > 0 {
		if bad > maxListed {
			problems = append(problems, fmt.Sprintf("  ... and %d more", bad-maxListed))
		}
		what := fmt.Sprintf("%d of %d jobs in %s are invalid", bad, len(raws), name)
		if !batch {
			what = fmt.Sprintf("the job in %s is invalid", name)
		}
		return nil, false, usagef("%s; nothing was published:\n%s\nFix them (schemas/%s describes a %s job) and run again.",
			what, strings.Join(problems, "\n"), jobs.SchemaFile(spec.op), spec.op)
	}
	return items, batch, nil
}

// prepare applies the job id and reply subject the command line decides to
// one JSON body and validates it against the op's schema.
func (a *app) prepare(raw []byte, line int, spec jobSpec, sf *submitFlags, topo jobs.Topology, batchID string) (*inputJob, error) {
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
			return nil, fmt.Errorf("its job_id %q differs from --job-id %s", id, sf.jobID)
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
	if rt := args.CommonFields().ReplyTo; rt != "" && rt != waitPlaceholder && topo.Subjects.Owns(rt) {
		return nil, fmt.Errorf("reply_to %s is under the subject prefix %q, where the worker never replies: use a subject outside it", rt, topo.Subjects.Prefix)
	}
	return &inputJob{line: line, args: args}, nil
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
		if f, ok := spec.fieldFlags[name]; ok {
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

// publishErr explains a failed publish.
func publishErr(err error, item *inputJob, topo jobs.Topology, sf *submitFlags) error {
	subject := item.msg.Subject
	switch {
	case errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, nats.ErrNoResponders):
		return exit(ExitUnavailable, fmt.Errorf("no JetStream stream stores %s: the jobs stream %s does not exist yet (the worker creates it when it starts: `go run ./cmd/worker`), or --prefix is wrong", subject, topo.JobsStream))
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout), errors.Is(err, jetstream.ErrAsyncPublishTimeout):
		return exit(ExitUnavailable, fmt.Errorf("JetStream did not acknowledge job %s on %s within %s: it may or may not be stored; publishing it again with --job-id %s is safe (it is deduplicated for %s)", item.id(), subject, sf.ackTimeout, item.id(), topo.DedupWindow))
	}
	return exit(ExitUnavailable, fmt.Errorf("publish job %s to %s: %w", item.id(), subject, err))
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

func (a *app) publishOne(ctx context.Context, js jetstream.JetStream, topo jobs.Topology, spec jobSpec, sf *submitFlags, sub *nats.Subscription, item *inputJob) error {
	pctx, cancel := context.WithTimeout(ctx, sf.ackTimeout)
	ack, err := js.PublishMsg(pctx, item.msg)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return exit(ExitInterrupted, fmt.Errorf("interrupted while publishing job %s: it may or may not be stored; publishing it again with --job-id %s is safe", item.id(), item.id()))
		}
		return publishErr(err, item, topo, sf)
	}
	item.ack = ack
	switch {
	case a.jsonOut && sub == nil:
		return printJSON(a.env.Stdout, accepted{JobID: item.id(), Op: string(spec.op), Subject: item.msg.Subject, Stream: ack.Stream, Seq: ack.Sequence, Duplicate: ack.Duplicate})
	case a.jsonOut:
	default:
		w := a.env.Stdout
		if sub != nil {
			w = a.env.Stderr // with --wait, standard output is the result's
		}
		if ack.Duplicate {
			fmt.Fprintf(w, "job %s is a duplicate: already in stream %s (seq %d), not queued again (same Nats-Msg-Id within %s)\n", item.id(), ack.Stream, ack.Sequence, topo.DedupWindow)
		} else {
			fmt.Fprintf(w, "job %s queued on %s (stream %s, seq %d)\n", item.id(), item.msg.Subject, ack.Stream, ack.Sequence)
		}
	}
	if sub == nil {
		return nil
	}
	if ack.Duplicate {
		return exit(ExitTimeout, fmt.Errorf("job %s was published before, with another reply subject, so its result will not come here: look for it on %s, or in `publish dlq list --job-id %s`", item.id(), topo.Subjects.ResultsOf(spec.op)[0], item.id()))
	}
	return a.waitOne(ctx, topo, spec, sf, sub, item)
}
