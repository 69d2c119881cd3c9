package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// rawResultPad makes a raw result as large as the worker's result of a
// revoke job (the envelope plus Clerk's session object), so both flows move
// the same bytes.
var rawResultPad = strings.Repeat("x", 560)

// rawConsumer is the JetStream side of the worker's flow without HTTP and
// without the worker: consume a job, publish a result to the results stream
// and wait for JetStream to confirm it, ack the job. It is what a plain
// JetStream client gets on this machine: a pull consumer that prefetches
// (which the worker deliberately does not do), concurrency goroutines.
type rawConsumer struct {
	nc   *nats.Conn
	cc   jetstream.ConsumeContext
	jobs chan jetstream.Msg
	wg   sync.WaitGroup
}

func (e *env) startRawConsumer(ctx context.Context, t jobs.Topology, concurrency int) (r *rawConsumer, err error) {
	labeled("raw-consumer", func() { r, err = e.launchRawConsumer(ctx, t, concurrency) })
	return r, err
}

func (e *env) launchRawConsumer(ctx context.Context, t jobs.Topology, concurrency int) (*rawConsumer, error) {
	nc, err := nats.Connect(e.natsURL, nats.Name("bench-raw-consumer"))
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	cons, err := js.Consumer(ctx, t.JobsStream, t.Consumer)
	if err != nil {
		nc.Close()
		return nil, err
	}
	r := &rawConsumer{nc: nc, jobs: make(chan jetstream.Msg, concurrency)}
	for range concurrency {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			for m := range r.jobs {
				meta, err := m.Metadata()
				if err != nil {
					continue
				}
				op := t.Subjects.OpOf(m.Subject())
				out := nats.NewMsg(t.Subjects.Result(jobs.RecordKey{Op: op, JobID: "raw", Gen: "raw", Seq: meta.Sequence.Stream}))
				out.Data = fmt.Appendf(nil, `{"job_id":"seq-%d","op":%q,"outcome":"succeeded","enqueued_at":%q,"result":%q}`,
					meta.Sequence.Stream, op, meta.Timestamp.UTC().Format(time.RFC3339Nano), rawResultPad)
				pctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				_, err = js.PublishMsg(pctx, out, jetstream.WithExpectStream(t.ResultsStream))
				cancel()
				if err != nil {
					_ = m.Nak()
					continue
				}
				_ = m.Ack()
			}
		}()
	}
	r.cc, err = cons.Consume(func(m jetstream.Msg) { r.jobs <- m }, jetstream.PullMaxMessages(2*concurrency))
	if err != nil {
		close(r.jobs)
		r.wg.Wait()
		nc.Close()
		return nil, err
	}
	return r, nil
}

func (r *rawConsumer) stop() {
	r.cc.Drain()
	<-r.cc.Closed()
	close(r.jobs)
	r.wg.Wait()
	_ = r.nc.Drain()
}

// rawHTTP calls the emulator's RevokeSession with a plain net/http client
// (keep-alive, one idle connection per goroutine), concurrency goroutines,
// until total calls are made or maxDur has passed. It sends what the
// clerkapi client sends.
func (e *env) rawHTTP(ctx context.Context, concurrency, total, warm int, maxDur time.Duration) (loadStats, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = concurrency
	tr.MaxIdleConns = concurrency
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	defer tr.CloseIdleConnections()
	var next, errs atomic.Int64
	stopAt := time.Now().Add(maxDur)
	type obs struct {
		at  time.Time
		lat time.Duration
	}
	per := make([][]obs, concurrency)
	var wg sync.WaitGroup
	for g := range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && time.Now().Before(stopAt) {
				i := next.Add(1) - 1
				if i >= int64(total) {
					return
				}
				id := e.pool[int(i)%len(e.pool)]
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.emu.URL+"/sessions/"+id+"/revoke", strings.NewReader("null"))
				req.Header.Set("Authorization", "Bearer "+emulator.DefaultSecretKey)
				req.Header.Set("Clerk-API-Version", clerkapi.DefaultAPIVersion)
				req.Header.Set("Accept", "application/json")
				req.Header.Set("Content-Type", "application/json")
				start := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					errs.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				end := time.Now()
				if resp.StatusCode != http.StatusOK {
					errs.Add(1)
					continue
				}
				per[g] = append(per[g], obs{end, end.Sub(start)})
			}
		}()
	}
	wg.Wait()
	var all []obs
	for _, p := range per {
		all = append(all, p...)
	}
	// Order by completion time, so warm-up means the first completions.
	sortObs := func(a, b obs) int { return a.at.Compare(b.at) }
	slices.SortFunc(all, sortObs)
	st := loadStats{Published: int(min(next.Load(), int64(total))), Completed: len(all)}
	if n := errs.Load(); n > 0 {
		return st, fmt.Errorf("%d HTTP calls failed", n)
	}
	if len(all) <= warm {
		return st, fmt.Errorf("only %d calls completed", len(all))
	}
	for _, o := range all[warm:] {
		st.Lat = append(st.Lat, o.lat)
	}
	st.Measured = len(all) - warm - 1
	st.Span = all[len(all)-1].at.Sub(all[warm].at)
	return st, nil
}
