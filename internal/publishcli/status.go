package publishcli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
	"github.com/spf13/cobra"

	"github.com/clerkjobs/clerkjobs/dlq"
	"github.com/clerkjobs/clerkjobs/internal/natsconn"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// statusReport is what status shows, and its --json form.
type statusReport struct {
	Server      string          `json:"server"`
	Prefix      string          `json:"prefix"`
	Jobs        jobsStatus      `json:"jobs"`
	Consumers   []consumerState `json:"consumers"`
	DeadLetters dlqStatus       `json:"dead_letters"`
	Workers     workersStatus   `json:"workers"`
}

type jobsStatus struct {
	Stream string `json:"stream"`
	// Stored counts the jobs in the stream: waiting, or delivered and not
	// yet acknowledged (the stream is a work queue).
	Stored uint64            `json:"stored"`
	Bytes  uint64            `json:"bytes"`
	ByOp   map[string]uint64 `json:"by_op"`
	Error  string            `json:"error,omitempty"`
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
	Service   string       `json:"service"`
	Instances []micro.Ping `json:"instances"`
	Error     string       `json:"error,omitempty"`
}

func (a *app) statusCommand() *cobra.Command {
	var discover time.Duration
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show jobs waiting and in flight, dead letters, consumers and workers",
		Long: `Shows the state at a glance: jobs in the jobs stream per op, the consumers
(pending, in flight, redeliveries), the dead-letter queue by op and error class,
and the worker instances that answer the NATS service ping ` + "(`$SRV.PING." + WorkerService + "`)." + `

It exits with status 4 if a stream is missing or could not be read, after
showing everything it could read.`,
		Example: `  publish status
  publish status --json | jq .dead_letters.by_class`,
		Args: cobra.NoArgs,
	}
	cmd.Flags().DurationVar(&discover, "discover-wait", 500*time.Millisecond, "how long to collect worker replies")
	cmd.RunE = a.runE(func(cmd *cobra.Command, _ []string) error {
		ctx := cmd.Context()
		topo, err := a.topology()
		if err != nil {
			return err
		}
		nc, js, err := a.jetStream()
		if err != nil {
			return err
		}
		rep := statusReport{Server: natsconn.Redact(nc.ConnectedUrl()), Prefix: topo.Subjects.Prefix}
		var errs []error
		if err := jobsState(ctx, js, topo, &rep); err != nil {
			errs = append(errs, err)
		}
		if err := dlqState(ctx, js, topo, &rep.DeadLetters); err != nil {
			errs = append(errs, err)
		}
		rep.Workers.Service = WorkerService
		if rep.Workers.Instances, err = pingWorkers(ctx, nc, discover); err != nil {
			rep.Workers.Error = err.Error()
			errs = append(errs, err)
		}
		if a.jsonOut {
			if err := printJSON(a.env.Stdout, rep); err != nil {
				return err
			}
		} else {
			printStatus(a.env.Stdout, topo, rep)
		}
		if len(errs) > 0 {
			return exit(ExitUnavailable, errors.Join(errs...))
		}
		return nil
	})
	return cmd
}

func jobsState(ctx context.Context, js jetstream.JetStream, topo jobs.Topology, rep *statusReport) error {
	rep.Jobs = jobsStatus{Stream: topo.JobsStream, ByOp: map[string]uint64{}}
	fail := func(err error) error {
		err = streamErr(err, topo.JobsStream)
		rep.Jobs.Error = err.Error()
		return err
	}
	s, err := js.Stream(ctx, topo.JobsStream)
	if err != nil {
		return fail(err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(topo.Subjects.Prefix+".>"))
	if err != nil {
		return fail(err)
	}
	rep.Jobs.Stored, rep.Jobs.Bytes = info.State.Msgs, info.State.Bytes
	for subj, n := range info.State.Subjects {
		rep.Jobs.ByOp[string(topo.Subjects.OpOf(subj))] += n
	}
	lister := s.ListConsumers(ctx)
	for ci := range lister.Info() {
		rep.Consumers = append(rep.Consumers, consumerState{
			Name: ci.Name, Pending: ci.NumPending, InFlight: ci.NumAckPending,
			Redelivered: ci.NumRedelivered, Waiting: ci.NumWaiting, LastActive: ci.Delivered.Last,
		})
	}
	if err := lister.Err(); err != nil {
		return fail(fmt.Errorf("list consumers of %s: %w", topo.JobsStream, err))
	}
	sort.Slice(rep.Consumers, func(i, j int) bool { return rep.Consumers[i].Name < rep.Consumers[j].Name })
	return nil
}

func dlqState(ctx context.Context, js jetstream.JetStream, topo jobs.Topology, st *dlqStatus) error {
	*st = dlqStatus{Stream: topo.DeadLetterStream, ByOp: map[string]uint64{}, ByClass: map[string]uint64{}, ByOpClass: map[string]map[string]uint64{}}
	q, err := dlq.Open(ctx, js, topo)
	if err == nil {
		var stats dlq.Stats
		if stats, err = q.Stats(ctx); err == nil {
			st.Entries, st.Bytes, st.Oldest, st.Newest = stats.Entries, stats.Bytes, stats.Oldest, stats.Newest
			for op, n := range stats.ByOp {
				st.ByOp[string(op)] = n
			}
			for c, n := range stats.ByClass {
				st.ByClass[string(c)] = n
			}
			for op, m := range stats.ByOpClass {
				st.ByOpClass[string(op)] = map[string]uint64{}
				for c, n := range m {
					st.ByOpClass[string(op)][string(c)] = n
				}
			}
			return nil
		}
	}
	err = streamErr(err, topo.DeadLetterStream)
	st.Error = err.Error()
	return err
}

// pingWorkers collects the replies to the micro service ping for wait and
// returns one per instance.
func pingWorkers(ctx context.Context, nc *nats.Conn, wait time.Duration) ([]micro.Ping, error) {
	subject, err := micro.ControlSubject(micro.PingVerb, WorkerService, "")
	if err != nil {
		return nil, err
	}
	inbox := nc.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return nil, fmt.Errorf("discover workers: %w", err)
	}
	defer sub.Unsubscribe() //nolint:errcheck // best effort; the connection closes soon
	if err := nc.PublishRequest(subject, inbox, nil); err != nil {
		return nil, fmt.Errorf("discover workers: %w", err)
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	seen := map[string]micro.Ping{}
	for {
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
	out := make([]micro.Ping, 0, len(seen))
	for _, p := range seen {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func printStatus(w io.Writer, topo jobs.Topology, r statusReport) {
	now := time.Now()
	fmt.Fprintf(w, "NATS %s, subject prefix %q\n", r.Server, r.Prefix)

	switch n := len(r.Workers.Instances); {
	case r.Workers.Error != "":
		fmt.Fprintf(w, "workers: could not ask: %s\n", r.Workers.Error)
	case n == 0:
		fmt.Fprintf(w, "workers: none answered: jobs wait until one runs (go run ./cmd/worker)\n")
	default:
		var ids []string
		for _, p := range r.Workers.Instances {
			ids = append(ids, fmt.Sprintf("%s (%s)", p.ID, p.Version))
		}
		fmt.Fprintf(w, "workers: %s: %s\n", plural(n, "instance", "instances"), strings.Join(ids, ", "))
	}

	fmt.Fprintf(w, "\njobs (stream %s): ", r.Jobs.Stream)
	if r.Jobs.Error != "" {
		fmt.Fprintf(w, "%s\n", r.Jobs.Error)
	} else {
		fmt.Fprintf(w, "%d waiting or in flight, %s\n", r.Jobs.Stored, bytesHuman(r.Jobs.Bytes))
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		if len(r.Jobs.ByOp) > 0 {
			fmt.Fprintln(tw, "  OP\tJOBS")
			for _, op := range opOrder(r.Jobs.ByOp) {
				fmt.Fprintf(tw, "  %s\t%d\n", op, r.Jobs.ByOp[op])
			}
		}
		if len(r.Consumers) > 0 {
			fmt.Fprintln(tw, "\n  CONSUMER\tPENDING\tIN FLIGHT\tREDELIVERED\tWAITING PULLS\tLAST DELIVERY")
			for _, c := range r.Consumers {
				last := "-"
				if c.LastActive != nil {
					last = ago(now, *c.LastActive)
				}
				fmt.Fprintf(tw, "  %s\t%d\t%d\t%d\t%d\t%s\n", c.Name, c.Pending, c.InFlight, c.Redelivered, c.Waiting, last)
			}
		} else {
			fmt.Fprintf(tw, "  no consumer: the worker creates %s when it starts\n", topo.Consumer)
		}
		tw.Flush()
	}

	d := r.DeadLetters
	fmt.Fprintf(w, "\ndead letters (stream %s): ", d.Stream)
	switch {
	case d.Error != "":
		fmt.Fprintf(w, "%s\n", d.Error)
	case d.Entries == 0:
		fmt.Fprintln(w, "none")
	default:
		fmt.Fprintf(w, "%d, %s, oldest %s, newest %s\n", d.Entries, bytesHuman(d.Bytes), ago(now, d.Oldest), ago(now, d.Newest))
		classes := []string{}
		for _, c := range jobs.ErrorClasses() {
			classes = append(classes, string(c))
		}
		for c := range d.ByClass {
			if !slices.Contains(classes, c) {
				classes = append(classes, c) // "" for entries without headers
			}
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "  OP\t%s\tTOTAL\n", strings.ToUpper(strings.Join(replaceEmpty(classes), "\t")))
		for _, op := range opOrder(d.ByOp) {
			fmt.Fprintf(tw, "  %s", op)
			for _, c := range classes {
				fmt.Fprintf(tw, "\t%d", d.ByOpClass[op][c])
			}
			fmt.Fprintf(tw, "\t%d\n", d.ByOp[op])
		}
		tw.Flush()
		fmt.Fprintln(w, "  details: publish dlq list; replay: publish dlq replay --help")
	}
}

func replaceEmpty(classes []string) []string {
	out := make([]string, len(classes))
	for i, c := range classes {
		out[i] = c
		if c == "" {
			out[i] = "no headers"
		}
	}
	return out
}

// opOrder lists the ops of m in the contract's order, unknown ones last.
func opOrder(m map[string]uint64) []string {
	var out []string
	for _, o := range append(jobs.AllOps(), jobs.OpUnknown) {
		if _, ok := m[string(o)]; ok {
			out = append(out, string(o))
		}
	}
	for k := range m {
		if !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out
}
