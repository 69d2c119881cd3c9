package publishcli

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
	"github.com/spf13/cobra"

	"github.com/clerkjobs/clerkjobs/dlq"
	"github.com/clerkjobs/clerkjobs/internal/natsconn"
	"github.com/clerkjobs/clerkjobs/internal/ratebudget"
	"github.com/clerkjobs/clerkjobs/internal/redact"
	"github.com/clerkjobs/clerkjobs/internal/streamuse"
	"github.com/clerkjobs/clerkjobs/internal/text"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// statusReport is what status shows, and its --json form.
type statusReport struct {
	Server      string          `json:"server"`
	Prefix      string          `json:"prefix"`
	Jobs        jobsStatus      `json:"jobs"`
	Consumers   []consumerState `json:"consumers"`
	Results     resultsStatus   `json:"results"`
	DeadLetters dlqStatus       `json:"dead_letters"`
	Workers     workersStatus   `json:"workers"`
	RateBudgets rateStatus      `json:"rate_budgets"`
}

// rateStatus is the Clerk keys' rate budgets the workers share.
type rateStatus struct {
	Bucket string         `json:"bucket"`
	Keys   []budgetStatus `json:"keys,omitempty"`
	Error  string         `json:"error,omitempty"`
}

type budgetStatus struct {
	// Fingerprint names the key (a hash of it, never the key).
	Fingerprint string `json:"fingerprint"`
	// Limit is the limit the fleet runs at; Limits, when there is more
	// than one, the different limits live replicas are configured with.
	Limit          string     `json:"limit"`
	Limits         []string   `json:"limits,omitempty"`
	CallsPerSecond float64    `json:"calls_per_second"`
	LimitPerSecond float64    `json:"limit_per_second"`
	Replicas       int        `json:"replicas"`
	PausedUntil    *time.Time `json:"paused_until,omitempty"`
}

// streamState is a capped stream's size against its cap.
type streamState struct {
	Stream string `json:"stream"`
	// Stored counts the messages in the stream: for the jobs stream, the
	// jobs waiting, or delivered and not yet acknowledged (it is a work
	// queue).
	Stored uint64 `json:"stored"`
	Bytes  uint64 `json:"bytes"`
	// MaxBytes is the stream's cap (-1: none), past which it refuses new
	// messages; nil, and absent from the JSON, when the stream could not
	// be read (Error): a 0 would read as "no cap" to a script. Percent is
	// Bytes of it, rounded down; NearlyFull is set from
	// streamuse.NearlyFullPercent on, as in the worker's status.
	MaxBytes   *int64 `json:"max_bytes,omitempty"`
	Percent    uint64 `json:"percent"`
	NearlyFull bool   `json:"nearly_full"`
	// use is the stream's use as streamuse says it, once it was read.
	use streamuse.Use
}

// read fills s from a stream's info.
func (s *streamState) read(info *jetstream.StreamInfo) {
	u := streamuse.Of(info)
	s.use = u
	s.Stored, s.Bytes, s.MaxBytes, s.Percent, s.NearlyFull = u.Messages, u.Bytes, &u.MaxBytes, u.Percent(), u.NearlyFull()
}

type jobsStatus struct {
	streamState
	ByOp  map[string]uint64 `json:"by_op"`
	Error string            `json:"error,omitempty"`
}

type resultsStatus struct {
	streamState
	Error string `json:"error,omitempty"`
}

type consumerState struct {
	Name string `json:"name"`
	// Pending: not yet delivered. InFlight: delivered, not acknowledged.
	Pending     uint64     `json:"pending"`
	InFlight    int        `json:"in_flight"`
	Redelivered int        `json:"redelivered"`
	Waiting     int        `json:"waiting_pulls"`
	LastActive  *time.Time `json:"last_active,omitempty"`
}

type dlqStatus struct {
	Stream    string                       `json:"stream"`
	Entries   uint64                       `json:"entries"`
	Bytes     uint64                       `json:"bytes"`
	ByOp      map[string]uint64            `json:"by_op"`
	ByClass   map[string]uint64            `json:"by_class"`
	ByOpClass map[string]map[string]uint64 `json:"by_op_class"`
	Oldest    time.Time                    `json:"oldest,omitzero"`
	Newest    time.Time                    `json:"newest,omitzero"`
	Error     string                       `json:"error,omitempty"`
}

type workersStatus struct {
	Service string `json:"service"`
	// Instances are the answers to the service ping; each names its
	// worker in metadata.instance, the name the worker logs.
	Instances []micro.Ping `json:"instances"`
	Error     string       `json:"error,omitempty"`
}

// workerPingSubject is where status and replay ask which workers run.
const workerPingSubject = "$SRV.PING." + jobs.WorkerService

// discoverWait is how long the workers' answers are collected.
const discoverWait = 500 * time.Millisecond

// instanceName is the name a worker logs and records (its --instance),
// which its service identity carries in its metadata; the service id for
// a worker that does not say.
func instanceName(p micro.Ping) string { return cmp.Or(p.Metadata["instance"], p.ID) }

func (a *app) statusCommand() *cobra.Command {
	var discover time.Duration
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show jobs waiting and in flight, dead letters, consumers and workers",
		Long: `Shows the state at a glance: jobs in the jobs stream per op and how full
the stream is against its cap (a warning from 80%: a full one refuses new jobs), the workers'
consumer (pending, in flight, redeliveries), how full the results stream is (a warning
from 80%: with a full one the workers keep the jobs that succeed), the dead-letter queue by op and error
class, and the worker instances that answer the NATS service ping ` + "(`" + workerPingSubject + "`)" + `,
by the instance name each logs.

The NATS user needs, besides reading the dead-letter queue, the info of the jobs
and results streams and of the workers' consumer, and the service ping (deploy/nats: ops).
A request the server refuses is named with the permission it lacks.

It exits with status 4 if a stream is missing or could not be read, after
showing everything it could read.`,
		Example: `  publish status
  publish status --json | jq .dead_letters.by_class`,
		Args: cobra.NoArgs,
	}
	cmd.Flags().DurationVar(&discover, "discover-wait", discoverWait, "how long to collect worker replies")
	cmd.RunE = a.runE(func(cmd *cobra.Command, _ []string) error {
		ctx := cmd.Context()
		if discover <= 0 {
			// No time to answer would read as "no worker runs".
			return usagef("--discover-wait %s: must be positive, the time the workers have to answer (default %s)", cmd.Flags().Lookup("discover-wait").Value, discoverWait)
		}
		topo, nc, js, err := a.jetStream()
		if err != nil {
			return err
		}
		rep := statusReport{Server: natsconn.Redact(nc.ConnectedUrl()), Prefix: topo.Subjects.Prefix}
		var errs []error
		// note records a part's error in the report and for the exit status.
		note := func(err error, dst *string) {
			if err != nil {
				*dst = err.Error()
				errs = append(errs, err)
			}
		}
		note(a.explain(jobsState(ctx, js, topo, &rep)), &rep.Jobs.Error)
		note(a.explain(resultsState(ctx, js, topo, &rep.Results)), &rep.Results.Error)
		note(a.explain(dlqState(ctx, js, topo, &rep.DeadLetters)), &rep.DeadLetters.Error)
		note(a.explain(rateState(ctx, js, topo, &rep.RateBudgets)), &rep.RateBudgets.Error)
		rep.Workers.Service = jobs.WorkerService
		rep.Workers.Instances, err = a.pingWorkers(ctx, nc, discover, 0)
		note(err, &rep.Workers.Error)
		if a.jsonOut {
			if err := printJSON(a.env.Stdout, rep); err != nil {
				return err
			}
		} else {
			printStatus(a.env.Stdout, topo, rep, a.now())
		}
		if len(errs) > 0 {
			return exit(ExitUnavailable, errors.Join(errs...))
		}
		return nil
	})
	return cmd
}

// rateState reads the rate budgets the workers share, per Clerk key.
func rateState(ctx context.Context, js jetstream.JetStream, topo jobs.Topology, r *rateStatus) error {
	r.Bucket = topo.RateBucket
	kv, err := js.KeyValue(ctx, topo.RateBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil // no worker with a fleet budget ran yet
	}
	if err != nil {
		return fmt.Errorf("rate-budget bucket %s: %w", topo.RateBucket, err)
	}
	sts, err := ratebudget.ReadStatus(ctx, kv)
	if err != nil {
		return err
	}
	for _, st := range sts {
		b := budgetStatus{Fingerprint: st.Fingerprint, Limit: st.FleetLimit.String(), CallsPerSecond: st.CallsPerSecond, Replicas: st.Members}
		if l := st.FleetLimit; l.N > 0 {
			b.LimitPerSecond = float64(l.N) / l.Per.Seconds()
		}
		if len(st.Limits) > 1 {
			for _, l := range st.Limits {
				b.Limits = append(b.Limits, l.String())
			}
		}
		if !st.PausedUntil.IsZero() {
			t := st.PausedUntil.UTC()
			b.PausedUntil = &t
		}
		r.Keys = append(r.Keys, b)
	}
	return nil
}

// jobsState reads the jobs stream and the workers' consumer: the info of
// each, nothing more, so that an operator's user needs no more than that
// (listing the stream's consumers would need CONSUMER.LIST).
func jobsState(ctx context.Context, js jetstream.JetStream, topo jobs.Topology, rep *statusReport) error {
	rep.Jobs = jobsStatus{streamState: streamState{Stream: topo.JobsStream}, ByOp: map[string]uint64{}}
	s, err := js.Stream(ctx, topo.JobsStream)
	if err != nil {
		return streamErr(err, topo.JobsStream)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(topo.Subjects.Prefix+".>"))
	if err != nil {
		return streamErr(err, topo.JobsStream)
	}
	rep.Jobs.read(info)
	for subj, n := range info.State.Subjects {
		rep.Jobs.ByOp[string(topo.Subjects.OpOf(subj))] += n
	}
	c, err := s.Consumer(ctx, topo.Consumer)
	switch {
	case errors.Is(err, jetstream.ErrConsumerNotFound):
		return nil // printStatus says the worker creates it
	case err != nil:
		return fmt.Errorf("consumer %s of %s: %w", topo.Consumer, topo.JobsStream, err)
	}
	ci := c.CachedInfo()
	rep.Consumers = []consumerState{{
		Name: ci.Name, Pending: ci.NumPending, InFlight: ci.NumAckPending,
		Redelivered: ci.NumRedelivered, Waiting: ci.NumWaiting, LastActive: ci.Delivered.Last,
	}}
	return nil
}

// resultsState reads the results stream's info: how full it is.
func resultsState(ctx context.Context, js jetstream.JetStream, topo jobs.Topology, st *resultsStatus) error {
	st.Stream = topo.ResultsStream
	s, err := js.Stream(ctx, topo.ResultsStream)
	if err != nil {
		return streamErr(err, topo.ResultsStream)
	}
	st.read(s.CachedInfo())
	return nil
}

func dlqState(ctx context.Context, js jetstream.JetStream, topo jobs.Topology, st *dlqStatus) error {
	*st = dlqStatus{Stream: topo.DeadLetterStream, ByOp: map[string]uint64{}, ByClass: map[string]uint64{}, ByOpClass: map[string]map[string]uint64{}}
	topo.Subjects.Tenant = "" // status is the whole system's, every tenant's letters
	q, err := dlq.Open(ctx, js, topo)
	if err == nil {
		var stats dlq.Stats
		if stats, err = q.Stats(ctx); err == nil {
			st.Entries, st.Bytes, st.Oldest, st.Newest = stats.Entries, stats.Bytes, stats.Oldest, stats.Newest
			// A class is what a letter's Dlq-Class header says, any
			// tenant's letter's, and shown as a name: cleared of secret
			// shapes, as every value of a letter is.
			st.ByClass = classKeys(stats.ByClass)
			for op, n := range stats.ByOp {
				st.ByOp[string(op)] = n
			}
			for op, m := range stats.ByOpClass {
				st.ByOpClass[string(op)] = classKeys(m)
			}
			return nil
		}
	}
	return streamErr(err, topo.DeadLetterStream)
}

// classKeys is m with the classes as string keys, cleared of secret
// shapes: the counts of classes cleared alike are added up.
func classKeys(m map[jobs.ErrorClass]uint64) map[string]uint64 {
	out := make(map[string]uint64, len(m))
	for k, n := range m {
		out[redact.Text(string(k))] += n
	}
	return out
}

// pingWorkers collects the replies to the micro service ping for wait, or
// until enough have come (0: all that come within wait), and returns one
// per instance. A ping or a reply inbox the server refuses is an error that
// says so: "no worker answered" would not be true.
func (a *app) pingWorkers(ctx context.Context, nc *nats.Conn, wait time.Duration, enough int) ([]micro.Ping, error) {
	inbox := nc.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return nil, fmt.Errorf("discover workers: %w", err)
	}
	defer sub.Unsubscribe() //nolint:errcheck // best effort; the connection closes soon
	if err := nc.PublishRequest(workerPingSubject, inbox, nil); err != nil {
		return nil, fmt.Errorf("discover workers: %w", err)
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	seen := map[string]micro.Ping{}
	for enough == 0 || len(seen) < enough {
		m, err := sub.NextMsgWithContext(wctx)
		if err != nil {
			break
		}
		var p micro.Ping
		if json.Unmarshal(m.Data, &p) == nil && p.ID != "" {
			seen[p.ID] = p
		}
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if len(seen) == 0 {
		for _, v := range a.refusals.list(nc) {
			// Refused: the ping, or the subscription to its inbox.
			if !v.subscribe && v.subject == workerPingSubject || v.subscribe && strings.HasPrefix(v.subject, a.inboxPrefix()+".") {
				return nil, fmt.Errorf("could not ask the workers: %s", a.describe(v))
			}
		}
	}
	out := slices.AppendSeq(make([]micro.Ping, 0, len(seen)), maps.Values(seen))
	slices.SortFunc(out, func(p, q micro.Ping) int { return strings.Compare(instanceName(p)+p.ID, instanceName(q)+q.ID) })
	return out, nil
}

func printStatus(w io.Writer, topo jobs.Topology, r statusReport, now time.Time) {
	fmt.Fprintf(w, "NATS %s, subject prefix %q\n", text.Terminal(r.Server), r.Prefix)

	switch n := len(r.Workers.Instances); {
	case r.Workers.Error != "":
		fmt.Fprintf(w, "workers: %s\n", text.TerminalLines(r.Workers.Error))
	case n == 0:
		fmt.Fprintf(w, "workers: none answered: jobs wait until one runs (go run ./cmd/worker)\n")
	default:
		var ids []string
		for _, p := range r.Workers.Instances {
			ids = append(ids, fmt.Sprintf("%s (%s)", text.Terminal(instanceName(p)), text.Terminal(p.Version)))
		}
		fmt.Fprintf(w, "workers: %s: %s\n", plural(n, "instance", "instances"), strings.Join(ids, ", "))
	}

	switch rb := r.RateBudgets; {
	case rb.Error != "":
		fmt.Fprintf(w, "rate budgets: %s\n", text.TerminalLines(rb.Error))
	case len(rb.Keys) == 0:
		fmt.Fprintf(w, "rate budgets: none in %s (no worker shares a Clerk key's limit yet)\n", rb.Bucket)
	default:
		for _, k := range rb.Keys {
			line := fmt.Sprintf("rate budget of key %s: %.1f calls/s of %s (%.1f/s), %s sharing it", k.Fingerprint, k.CallsPerSecond, k.Limit, k.LimitPerSecond, plural(k.Replicas, "replica", "replicas"))
			if k.PausedUntil != nil && k.PausedUntil.After(now) {
				line += fmt.Sprintf(", paused by a 429 until %s", k.PausedUntil.In(now.Location()).Format(time.TimeOnly))
			}
			if len(k.Limits) > 1 {
				line += fmt.Sprintf("; its replicas are configured with different limits (%s): the fleet runs at the strictest until every replica has the same --rate-limit", strings.Join(k.Limits, ", "))
			}
			fmt.Fprintln(w, text.Terminal(line))
		}
	}

	fmt.Fprintf(w, "\njobs (stream %s): ", r.Jobs.Stream)
	if r.Jobs.Error != "" {
		fmt.Fprintf(w, "%s\n", text.TerminalLines(r.Jobs.Error))
	} else {
		fmt.Fprintf(w, "%d waiting or in flight\n", r.Jobs.Stored)
		fmt.Fprintf(w, "  jobs stream: %s\n", r.Jobs.use.Text("job", "jobs"))
		if warn := r.Jobs.use.JobsWarning(); warn != "" {
			fmt.Fprintf(w, "  warning: %s\n", warn)
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		if len(r.Jobs.ByOp) > 0 {
			fmt.Fprintln(tw, "  OP\tJOBS")
			for _, op := range opOrder(r.Jobs.ByOp) {
				fmt.Fprintf(tw, "  %s\t%d\n", text.Terminal(op), r.Jobs.ByOp[op])
			}
		}
		if len(r.Consumers) > 0 {
			fmt.Fprintln(tw, "\n  CONSUMER\tPENDING\tIN FLIGHT\tREDELIVERED\tWAITING PULLS\tLAST DELIVERY")
			for _, c := range r.Consumers {
				last := "-"
				if c.LastActive != nil {
					last = ago(now, *c.LastActive)
				}
				fmt.Fprintf(tw, "  %s\t%d\t%d\t%d\t%d\t%s\n", text.Terminal(c.Name), c.Pending, c.InFlight, c.Redelivered, c.Waiting, last)
			}
		} else {
			fmt.Fprintf(tw, "  no consumer: the worker creates %s when it starts\n", topo.Consumer)
		}
		tw.Flush()
	}

	fmt.Fprintf(w, "\nresults (stream %s): ", r.Results.Stream)
	if r.Results.Error != "" {
		fmt.Fprintf(w, "%s\n", text.TerminalLines(r.Results.Error))
	} else {
		fmt.Fprintf(w, "%s\n", r.Results.use.Text("result", "results"))
		if warn := r.Results.use.ResultsWarning(); warn != "" {
			fmt.Fprintf(w, "  warning: %s\n", warn)
		}
	}

	d := r.DeadLetters
	fmt.Fprintf(w, "\ndead letters (stream %s): ", d.Stream)
	switch {
	case d.Error != "":
		fmt.Fprintf(w, "%s\n", text.TerminalLines(d.Error))
	case d.Entries == 0:
		fmt.Fprintln(w, "none")
	default:
		fmt.Fprintf(w, "%d, %s, oldest %s, newest %s\n", d.Entries, text.Bytes(d.Bytes), ago(now, d.Oldest), ago(now, d.Newest))
		classes := []string{}
		for _, c := range jobs.ErrorClasses() {
			classes = append(classes, string(c))
		}
		for c := range d.ByClass {
			if !slices.Contains(classes, c) {
				classes = append(classes, c) // "" for entries without headers
			}
		}
		// The header names the classes, escaped: a class comes from a dead
		// letter's header.
		heads := make([]string, len(classes))
		for i, c := range classes {
			heads[i] = cmp.Or(text.Terminal(c), "no headers")
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "  OP\t%s\tTOTAL\n", strings.ToUpper(strings.Join(heads, "\t")))
		for _, op := range opOrder(d.ByOp) {
			fmt.Fprintf(tw, "  %s", text.Terminal(op))
			for _, c := range classes {
				fmt.Fprintf(tw, "\t%d", d.ByOpClass[op][c])
			}
			fmt.Fprintf(tw, "\t%d\n", d.ByOp[op])
		}
		tw.Flush()
		fmt.Fprintln(w, "  details: publish dlq list; replay: publish dlq replay --help")
	}
}

// opOrder lists the ops of m in the contract's order, unknown ones last.
func opOrder(m map[string]uint64) []string {
	order := append(jobs.AllOps(), jobs.OpUnknown)
	rank := func(op string) int {
		if i := slices.Index(order, jobs.Op(op)); i >= 0 {
			return i
		}
		return len(order)
	}
	return slices.SortedFunc(maps.Keys(m), func(x, y string) int { return cmp.Or(cmp.Compare(rank(x), rank(y)), strings.Compare(x, y)) })
}
