package console

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"

	"github.com/clerkjobs/clerkjobs/internal/clock"
	"github.com/clerkjobs/clerkjobs/internal/streamuse"
	"github.com/clerkjobs/clerkjobs/jobs"
	"github.com/clerkjobs/clerkjobs/worker"
)

// snapshot is what the poller last saw of the jobs stream and the workers.
// Pages read it; they never wait on NATS for it.
type snapshot struct {
	At time.Time
	// Jobs counts the jobs stored per op: waiting, or delivered and not
	// acknowledged yet (the stream is a work queue).
	Jobs      map[jobs.Op]uint64
	JobsTotal uint64
	// JobsUse is the jobs stream's size against its cap; nil when the
	// stream could not be read (JobsErr), or before the first poll (At
	// zero, JobsErr nil too: nothing failed, nothing was read yet).
	JobsUse *streamuse.Use
	JobsErr error
	// ResultsUse is the results stream's size against its cap: full, it
	// refuses every success. Nil when it could not be read (the overview
	// counts successes from it too, and says so then).
	ResultsUse *streamuse.Use
	Consumer   *consumerView
	ConsErr    error
	Workers    []workerView
	WorkErr    error
	// InFlight counts the jobs the answering workers hold, per op.
	InFlight map[jobs.Op]int
}

// WaitingOf is the jobs of op stored and not held by a worker: not yet
// delivered, or delivered to a worker that did not answer.
func (s snapshot) WaitingOf(op jobs.Op) uint64 {
	stored, held := s.Jobs[op], uint64(max(s.InFlight[op], 0))
	if held > stored { // the two are read a moment apart
		return 0
	}
	return stored - held
}

type consumerView struct {
	Name        string
	Pending     uint64 // not delivered yet
	InFlight    int    // delivered, not acknowledged
	Redelivered int
	Waiting     int
	LastActive  time.Time
}

// workerView is one worker instance, from its micro service identity and
// its status endpoint.
type workerView struct {
	ID       string
	Instance string
	Version  string
	Status   *worker.Status // nil: the status endpoint did not answer
	Err      string
	// RateBudget says the Clerk key's rate budget as this worker sees it:
	// the limit, the replicas sharing it, a pause; empty when the worker
	// has none (no limit, or an older version).
	RateBudget string
}

// poller refreshes the snapshot every interval.
type poller struct {
	nc       *nats.Conn
	js       jetstream.JetStream
	topo     jobs.Topology
	activity *activity
	wait     time.Duration // how long to collect service replies

	mu   sync.RWMutex
	last snapshot
}

func (p *poller) get() snapshot {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.last
}

func (p *poller) run(ctx context.Context, every time.Duration) {
	p.poll(ctx)
	for range clock.Ticks(ctx, every) {
		p.poll(ctx)
	}
}

func (p *poller) poll(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s := snapshot{At: time.Now(), Jobs: map[jobs.Op]uint64{}}
	var wg sync.WaitGroup
	wg.Go(func() { s.JobsErr, s.ConsErr = p.jobsState(ctx, &s) })
	wg.Go(func() { s.Workers, s.WorkErr = p.workers(ctx) })
	wg.Go(func() {
		if st, err := p.js.Stream(ctx, p.topo.ResultsStream); err == nil {
			use := streamuse.Of(st.CachedInfo())
			s.ResultsUse = &use
		}
	})
	wg.Wait()
	s.InFlight = map[jobs.Op]int{}
	for _, w := range s.Workers {
		if w.Status != nil {
			for op, n := range w.Status.InFlightByOp {
				s.InFlight[op] += n
			}
		}
	}
	p.mu.Lock()
	p.last = s
	p.mu.Unlock()
}

func (p *poller) jobsState(ctx context.Context, s *snapshot) (jobsErr, consErr error) {
	st, err := p.js.Stream(ctx, p.topo.JobsStream)
	if err != nil {
		return fmt.Errorf("jobs stream %s: %w", p.topo.JobsStream, err), nil
	}
	// The jobs stream holds job subjects only: ">" lists them all.
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(">"))
	if err != nil {
		return fmt.Errorf("jobs stream %s: %w", p.topo.JobsStream, err), nil
	}
	s.JobsTotal = info.State.Msgs
	use := streamuse.Of(info)
	s.JobsUse = &use
	for subj, n := range info.State.Subjects {
		s.Jobs[p.topo.Subjects.OpOf(subj)] += n
	}
	p.activity.sample(s.At, info.State.LastSeq)
	ci, err := st.Consumer(ctx, p.topo.Consumer)
	if err != nil {
		return nil, fmt.Errorf("consumer %s: %w (the worker creates it when it starts)", p.topo.Consumer, err)
	}
	i := ci.CachedInfo()
	s.Consumer = &consumerView{Name: i.Name, Pending: i.NumPending, InFlight: i.NumAckPending, Redelivered: i.NumRedelivered, Waiting: i.NumWaiting}
	if i.Delivered.Last != nil {
		s.Consumer.LastActive = *i.Delivered.Last
	}
	return nil, nil
}

// workers asks the workers' micro service for its instances and each
// instance's status endpoint (found in the service's description, so its
// subject is not assumed here).
func (p *poller) workers(ctx context.Context) ([]workerView, error) {
	subject, err := micro.ControlSubject(micro.InfoVerb, jobs.WorkerService, "")
	if err != nil {
		return nil, err
	}
	infos, err := gatherInfo(ctx, p.nc, subject, p.wait)
	if err != nil {
		return nil, fmt.Errorf("discover workers: %w", err)
	}
	out := make([]workerView, len(infos))
	var wg sync.WaitGroup
	for i, info := range infos {
		out[i] = workerView{ID: info.ID, Instance: info.Metadata["instance"], Version: info.Version}
		idx := slices.IndexFunc(info.Endpoints, func(e micro.EndpointInfo) bool { return e.Name == "status" })
		if idx < 0 {
			out[i].Err = "no status endpoint"
			continue
		}
		wg.Go(func() {
			m, err := p.nc.RequestWithContext(ctx, info.Endpoints[idx].Subject, nil)
			if err != nil {
				out[i].Err = err.Error()
				return
			}
			var st worker.Status
			if err := json.Unmarshal(m.Data, &st); err != nil {
				out[i].Err = "status is not JSON"
				return
			}
			out[i].Status = &st
			out[i].RateBudget = budgetText(st.RateBudget)
		})
	}
	wg.Wait()
	sort.Slice(out, func(i, j int) bool { return out[i].Instance+out[i].ID < out[j].Instance+out[j].ID })
	return out, nil
}

// budgetText describes a worker's rate budget in a line.
func budgetText(b *worker.BudgetStatus) string {
	if b == nil {
		return ""
	}
	s := fmt.Sprintf("%s (%s), %.1f calls/s for the fleet, %d sharing", b.Limit, b.Mode, b.Rate, b.Members)
	if b.PausedUntil != nil && b.PausedUntil.After(time.Now()) {
		s += ", paused until " + b.PausedUntil.Format(time.TimeOnly) + " (429)"
	}
	return s
}

// gatherInfo sends a service INFO request to subject and collects the
// replies that arrive within wait, one per service instance.
func gatherInfo(ctx context.Context, nc *nats.Conn, subject string, wait time.Duration) ([]micro.Info, error) {
	inbox := nc.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return nil, err
	}
	defer sub.Unsubscribe() //nolint:errcheck // best effort
	if err := nc.PublishRequest(subject, inbox, nil); err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	seen := map[string]bool{}
	var out []micro.Info
	for {
		m, err := sub.NextMsgWithContext(wctx)
		if err != nil {
			break
		}
		var v micro.Info
		if json.Unmarshal(m.Data, &v) == nil && v.ID != "" && !seen[v.ID] {
			seen[v.ID] = true
			out = append(out, v)
		}
	}
	return out, ctx.Err()
}
