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
		if enq, ok := enqueuedAt(m.Data()); ok {
			c.latency = meta.Timestamp.Sub(enq)
		}
		select {
		case ch <- c:
		default: // never blocks the consumer: capacity is the run's size
		}
	})
	if err != nil {
		return nil, nil, err
	}
	return ch, cc.Stop, nil
}

var enqueuedKey = []byte(`"enqueued_at":"`)

// enqueuedAt finds enqueued_at in a result without decoding all of it.
func enqueuedAt(b []byte) (time.Time, bool) {
	i := bytes.Index(b, enqueuedKey)
	if i < 0 {
		return time.Time{}, false
	}
	b = b[i+len(enqueuedKey):]
	j := bytes.IndexByte(b, '"')
	if j < 0 {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, string(b[:j]))
	return t, err == nil
}

// jobMsg builds the i-th revoke job of a run as a publisher using
// jobs.Publish would: job_id in the body and as Nats-Msg-Id.
func (e *env) jobMsg(t jobs.Topology, run string, i int) *nats.Msg {
	id := run + "-" + strconv.Itoa(i)
	m := nats.NewMsg(t.Subjects.Job(jobs.OpRevoke))
	m.Data = fmt.Appendf(nil, `{"job_id":%q,"session_id":%q}`, id, e.pool[i%len(e.pool)])
	m.Header.Set(jetstream.MsgIDHeader, id)
	return m
}

// publishBacklog publishes n jobs and waits until JetStream stored all of
// them, at most 4096 unconfirmed at a time.
func (e *env) publishBacklog(ctx context.Context, n int, mk func(i int) *nats.Msg) error {
	const chunk = 4096
	for i := 0; i < n; {
		end := min(i+chunk, n)
		for ; i < end; i++ {
			if _, err := e.js.PublishMsgAsync(mk(i)); err != nil {
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
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.pubErrs > 0 {
		return fmt.Errorf("%d publishes failed", e.pubErrs)
	}
	return nil
}

// loadStats is the outcome of a driven run.
type loadStats struct {
	Published, Completed int
	Measured             int           // completions after warm-up
	Span                 time.Duration // from the warm-up mark to the last completion
	Lat                  []time.Duration
	TimedOut             bool
}

func (s loadStats) rate() float64 {
	if s.Span <= 0 {
		return 0
	}
	return float64(s.Measured) / s.Span.Seconds()
}

// closedLoop keeps window jobs outstanding: it publishes window jobs, then
// one more per completion, until total jobs are published or maxDur has
// passed; then it waits (at most grace) for the outstanding ones. The first
// warm completions are left out of the rate and the latencies.
func (e *env) closedLoop(ctx context.Context, window, total, warm int, maxDur time.Duration, mk func(i int) *nats.Msg, done <-chan completion) (loadStats, error) {
	const grace = 60 * time.Second
	var st loadStats
	publish := func() error {
		if _, err := e.js.PublishMsgAsync(mk(st.Published)); err != nil {
			return fmt.Errorf("publish job %d: %w", st.Published, err)
		}
		st.Published++
		return nil
	}
	start := time.Now()
	stopAt := start.Add(maxDur)
	for st.Published < min(window, total) {
		if err := publish(); err != nil {
			return st, err
		}
	}
	var warmAt time.Time
	var last time.Time
	st.Lat = make([]time.Duration, 0, min(total, 1<<20))
	timeout := time.NewTimer(maxDur + grace)
	defer timeout.Stop()
	for st.Completed < st.Published {
		select {
		case c := <-done:
			st.Completed++
			last = c.stored
			switch {
			case st.Completed == warm:
				warmAt = c.stored
			case st.Completed > warm:
				st.Measured++
				st.Lat = append(st.Lat, c.latency)
			}
			if st.Published < total && time.Now().Before(stopAt) {
				if err := publish(); err != nil {
					return st, err
				}
			}
		case <-timeout.C:
			st.TimedOut = true
			return st, fmt.Errorf("timed out: %d of %d jobs completed", st.Completed, st.Published)
		case <-ctx.Done():
			return st, ctx.Err()
		}
	}
	if warm == 0 {
		warmAt = start
	}
	st.Span = last.Sub(warmAt)
	return st, nil
}

// percentile of sorted durations (nearest rank).
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func latencies(l []time.Duration) (p50, p99 time.Duration) {
	s := slices.Clone(l)
	slices.Sort(s)
	return percentile(s, 0.50), percentile(s, 0.99)
}
