package bench

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/jobs"
)

// benchPullExpiry is the pull expiry of the bench's own consumers (the raw
// flow's and the results watcher). A pull the server lost or answered
// without messages is noticed after two missed heartbeats, half the expiry
// each: with nats.go's default of 30 s, one such pull stalled a run for
// 30 s (TestQuickOverheadRun completed 8 jobs in 30 s once, in CI).
const benchPullExpiry = 2 * time.Second

// completion is one result stored in a results stream.
type completion struct {
	stored  time.Time     // the result's JetStream timestamp
	latency time.Duration // job stored → result stored, both server times
}

// watchResults follows a results stream with an ordered consumer and sends
// a completion per stored result. Latency is the result's stream timestamp
// minus its enqueued_at (the job's own stream timestamp): both are the
// server's clock, so publisher and worker clocks do not matter.
func (e *env) watchResults(ctx context.Context, stream string, capacity int) (<-chan completion, func(), error) {
	cons, err := e.js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return nil, nil, err
	}
	ch := make(chan completion, capacity)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		meta, err := m.Metadata()
		if err != nil {
			return
		}
		c := completion{stored: meta.Timestamp}
		if enq := enqueuedAt(m.Data()); !enq.IsZero() {
			c.latency = meta.Timestamp.Sub(enq)
		}
		select {
		case ch <- c:
		default: // never blocks the consumer: capacity is the run's size
		}
	}, jetstream.PullExpiry(benchPullExpiry))
	if err != nil {
		return nil, nil, err
	}
	return ch, cc.Stop, nil
}

// enqueuedAt finds enqueued_at in a result without decoding all of it;
// zero if it has none.
func enqueuedAt(result []byte) time.Time {
	_, rest, _ := bytes.Cut(result, []byte(`"enqueued_at":"`))
	v, _, _ := bytes.Cut(rest, []byte(`"`))
	t, _ := time.Parse(time.RFC3339Nano, string(v))
	return t
}

// jobMsg builds the i-th revoke job of a run as a publisher using
// jobs.Publish would: job_id in the body and as Nats-Msg-Id.
func (e *env) jobMsg(t jobs.Topology, i int) *nats.Msg {
	id := t.Subjects.Prefix + "-" + strconv.Itoa(i)
	m := nats.NewMsg(t.Subjects.Job(jobs.OpRevoke))
	m.Data = fmt.Appendf(nil, `{"job_id":%q,"session_id":%q}`, id, e.pool[i%len(e.pool)])
	m.Header.Set(jetstream.MsgIDHeader, id)
	return m
}

// publishBacklog publishes n revoke jobs and waits until JetStream stored
// all of them, at most 4096 unconfirmed at a time.
func (e *env) publishBacklog(ctx context.Context, t jobs.Topology, n int) error {
	const chunk = 4096
	for i := 0; i < n; {
		end := min(i+chunk, n)
		for ; i < end; i++ {
			if _, err := e.js.PublishMsgAsync(e.jobMsg(t, i)); err != nil {
				return fmt.Errorf("publish job %d: %w", i, err)
			}
		}
		select {
		case <-e.js.PublishAsyncComplete():
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(60 * time.Second):
			return fmt.Errorf("JetStream did not confirm %d jobs within 60s", chunk)
		}
	}
	if n := e.pubErrs.Load(); n > 0 {
		return fmt.Errorf("%d publishes failed", n)
	}
	return nil
}

// loadStats is the outcome of a driven run.
type loadStats struct {
	Completed int
	Span      time.Duration   // from the warm-up mark to the last completion
	Lat       []time.Duration // of the completions after warm-up
}

func (s loadStats) rate() float64 { return float64(len(s.Lat)) / max(s.Span.Seconds(), 1e-9) }

// statsOf are the stats of a run that started at start, from its
// completions in the order they came; the first warm are left out of the
// rate and the latencies.
func statsOf(cs []completion, warm int, start time.Time) loadStats {
	st := loadStats{Completed: len(cs)}
	mark, last := start, start
	if warm > 0 && len(cs) >= warm {
		mark = cs[warm-1].stored
	}
	if len(cs) > 0 {
		last = cs[len(cs)-1].stored
	}
	for _, c := range cs[min(warm, len(cs)):] {
		st.Lat = append(st.Lat, c.latency)
	}
	st.Span = last.Sub(mark)
	return st
}

// closedLoop keeps window jobs outstanding: it publishes window jobs, then
// one more per completion, until total jobs are published or maxDur has
// passed; then it waits (at most grace) for the outstanding ones. The first
// warm completions are left out of the rate and the latencies.
func (e *env) closedLoop(ctx context.Context, t jobs.Topology, window, total, warm int, maxDur time.Duration, done <-chan completion) (loadStats, error) {
	const grace = 60 * time.Second
	published := 0
	publish := func() error {
		if _, err := e.js.PublishMsgAsync(e.jobMsg(t, published)); err != nil {
			return fmt.Errorf("publish job %d: %w", published, err)
		}
		published++
		return nil
	}
	start := time.Now()
	stopAt := start.Add(maxDur)
	for published < min(window, total) {
		if err := publish(); err != nil {
			return loadStats{}, err
		}
	}
	got := make([]completion, 0, min(total, 1<<20))
	timeout := time.NewTimer(maxDur + grace)
	defer timeout.Stop()
	for len(got) < published {
		select {
		case c := <-done:
			got = append(got, c)
			if published < total && time.Now().Before(stopAt) {
				if err := publish(); err != nil {
					return loadStats{}, err
				}
			}
		case <-timeout.C:
			return loadStats{}, fmt.Errorf("timed out: %d of %d jobs completed", len(got), published)
		case <-ctx.Done():
			return loadStats{}, ctx.Err()
		}
	}
	return statsOf(got, warm, start), nil
}

// latencies are the 50th and 99th percentiles (nearest rank), in ms.
func latencies(l []time.Duration) (p50, p99 float64) {
	if len(l) == 0 {
		return 0, 0
	}
	s := slices.Sorted(slices.Values(l))
	at := func(p float64) float64 {
		return float64(s[min(max(int(float64(len(s))*p+0.5)-1, 0), len(s)-1)].Microseconds()) / 1000
	}
	return at(0.50), at(0.99)
}
