package worker_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
	"github.com/clerkjobs/clerkjobs/worker"
)

// Benchmarks of the whole worker against an embedded NATS server and the
// emulator, all in this process (so ns/op and allocs count the server and
// the emulator too). They report throughput; they assert nothing about
// timings. cmd/bench measures the worker as a separate process, side by
// side with the raw limits: see BENCHMARKS.md.

// benchQuiet formats log lines as in production and drops them, instead
// of keeping them in memory as the tests' logger does.
func benchQuiet(c *worker.Config) {
	c.Logger = zerolog.New(discard{}).With().Timestamp().Logger()
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// benchPublish queues n revoke jobs, at most 4096 unconfirmed at a time.
func benchPublish(b *testing.B, env *testenv.Env, sessions []string, run string, n int) {
	b.Helper()
	subject := env.Topology.Subjects.Job(jobs.OpRevoke)
	for i := 0; i < n; {
		for end := min(i+4096, n); i < end; i++ {
			m := nats.NewMsg(subject)
			id := fmt.Sprintf("%s-%d", run, i)
			m.Data = fmt.Appendf(nil, `{"job_id":%q,"session_id":%q}`, id, sessions[i%len(sessions)])
			m.Header.Set(jetstream.MsgIDHeader, id)
			if _, err := env.JS.PublishMsgAsync(m); err != nil {
				b.Fatal(err)
			}
		}
		select {
		case <-env.JS.PublishAsyncComplete():
		case <-time.After(time.Minute):
			b.Fatal("publishes not confirmed within a minute")
		}
	}
}

// benchWait waits (bounded) until the results stream holds n results.
func benchWait(b *testing.B, env *testenv.Env, n uint64, timeout time.Duration) {
	b.Helper()
	deadline := time.Now().Add(timeout)
	for env.StreamCount(b, env.Topology.ResultsStream) < n {
		if time.Now().After(deadline) {
			b.Fatalf("%d results after %s, want %d", env.StreamCount(b, env.Topology.ResultsStream), timeout, n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// BenchmarkWorkerThroughput drains b.N revoke jobs queued ahead (emulator
// without latency, no rate limit) at several concurrencies.
func BenchmarkWorkerThroughput(b *testing.B) {
	for _, c := range []int{1, 16, 256} {
		b.Run(fmt.Sprintf("concurrency=%d", c), func(b *testing.B) {
			env := testenv.New(b)
			user := env.Clerk.Emulator.CreateUser()
			sessions := env.Clerk.Emulator.CreateSessions(user, 100)
			benchPublish(b, env, sessions, "warm", 2*c)
			env.StartWorker(b, benchQuiet, func(cfg *worker.Config) { cfg.Concurrency = c; cfg.RateLimit = worker.RateLimit{} })
			benchWait(b, env, uint64(2*c), 30*time.Second)
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			benchPublish(b, env, sessions, "job", b.N)
			benchWait(b, env, uint64(2*c+b.N), time.Duration(b.N)*10*time.Millisecond+time.Minute)
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "jobs/s")
		})
	}
}

// BenchmarkRevokeAll runs revoke_all jobs of 2,000 sessions each at a rate
// limit of 1,000 requests/s and reports how close the revoke rate comes to
// the limit (sessions_per_s/limit).
func BenchmarkRevokeAll(b *testing.B) {
	const sessions, limit = 2000, 1000.0
	env := testenv.New(b)
	env.StartWorker(b, benchQuiet, func(cfg *worker.Config) {
		cfg.RateLimit, cfg.RateScope = worker.RateLimit{N: int(limit), Per: time.Second}, worker.RateProcess
	})
	var elapsed time.Duration
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		user := env.Clerk.Emulator.CreateUser()
		env.Clerk.Emulator.CreateSessions(user, sessions)
		b.StartTimer()
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := jobs.Publish(ctx, env.JS, env.Topology.Subjects, &jobs.RevokeAllArgs{Common: jobs.Common{JobID: fmt.Sprintf("bulk-%d", i)}, UserID: user})
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		benchWait(b, env, uint64(i+1), time.Duration(3*sessions/limit)*time.Second+time.Minute)
		elapsed += time.Since(start)
	}
	perSecond := float64(b.N*sessions) / elapsed.Seconds()
	b.ReportMetric(perSecond, "sessions/s")
	b.ReportMetric(perSecond/limit, "sessions_per_s/limit")
}
