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
	r = &rawConsumer{jobs: make(chan jetstream.Msg, concurrency)}
	labeled("raw-consumer", func() {
		if r.nc, err = nats.Connect(e.srv.ClientURL(), nats.Name("bench-raw-consumer")); err != nil {
			return
		}
		var js jetstream.JetStream
		var cons jetstream.Consumer
		if js, err = jetstream.New(r.nc); err == nil {
			cons, err = js.Consumer(ctx, t.JobsStream, t.Consumer)
		}
		if err != nil {
			r.nc.Close()
			return
		}
		for range concurrency {
			r.wg.Go(func() {
				for m := range r.jobs {
					rawResult(js, t, m)
				}
			})
		}
		if r.cc, err = cons.Consume(func(m jetstream.Msg) { r.jobs <- m }, jetstream.PullMaxMessages(2*concurrency), jetstream.PullExpiry(benchPullExpiry)); err != nil {
			close(r.jobs)
			r.wg.Wait()
			r.nc.Close()
		}
	})
	return r, err
}

// rawResult publishes a result for job m, waits for its PubAck, and acks m.
func rawResult(js jetstream.JetStream, t jobs.Topology, m jetstream.Msg) {
	meta, err := m.Metadata()
	if err != nil {
		return
	}
	op := t.Subjects.OpOf(m.Subject())
	out := nats.NewMsg(t.Subjects.Result(jobs.RecordKey{Op: op, JobID: "raw", Gen: "raw", Seq: meta.Sequence.Stream}))
	out.Data = fmt.Appendf(nil, `{"job_id":"seq-%d","op":%q,"outcome":"succeeded","enqueued_at":%q,"result":%q}`,
		meta.Sequence.Stream, op, meta.Timestamp.UTC().Format(time.RFC3339Nano), rawResultPad)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.PublishMsg(ctx, out, jetstream.WithExpectStream(t.ResultsStream)); err != nil {
		_ = m.Nak()
		return
	}
	_ = m.Ack()
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
// clerkapi client sends. The first warm completions are left out.
func (e *env) rawHTTP(ctx context.Context, concurrency, total, warm int, maxDur time.Duration) (loadStats, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost, tr.MaxIdleConns = concurrency, concurrency
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	var next, errs atomic.Int64
	start := time.Now()
	per := make([][]completion, concurrency) // a slice per goroutine: no lock in the measured loop
	var wg sync.WaitGroup
	for g := range concurrency {
		wg.Go(func() {
			for ctx.Err() == nil && time.Since(start) < maxDur {
				i := int(next.Add(1) - 1)
				if i >= total {
					return
				}
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.emu.URL+"/sessions/"+e.pool[i%len(e.pool)]+"/revoke", strings.NewReader("null"))
				req.Header.Set("Authorization", "Bearer "+emulator.DefaultSecretKey)
				req.Header.Set("Clerk-API-Version", clerkapi.DefaultAPIVersion)
				req.Header.Set("Accept", "application/json")
				req.Header.Set("Content-Type", "application/json")
				t0 := time.Now()
				resp, err := client.Do(req)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				if err != nil || resp.StatusCode != http.StatusOK {
					errs.Add(1)
					continue
				}
				per[g] = append(per[g], completion{time.Now(), time.Since(t0)})
			}
		})
	}
	wg.Wait()
	all := slices.Concat(per...)
	// By completion time, so warm-up means the first completions.
	slices.SortFunc(all, func(a, b completion) int { return a.stored.Compare(b.stored) })
	if n := errs.Load(); n > 0 {
		return loadStats{}, fmt.Errorf("%d HTTP calls failed", n)
	}
	if len(all) <= warm {
		return loadStats{}, fmt.Errorf("only %d calls completed", len(all))
	}
	return statsOf(all, warm, start), nil
}
