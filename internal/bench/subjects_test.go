package bench_test

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/internal/embedded"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// BenchmarkRecordSubjects measures what the NATS server holds in memory
// for each job's record subject: every result has a subject of its own
// (jobs.Subjects.Result), kept for the results stream's max age, so a
// fleet at Clerk's 100 calls/s keeps 8.64 million subjects with the
// default 24 hours. Each op stores one result, on a new subject, as the
// worker does (file storage, the default topology); server_bytes/subject is
// the Go heap in use after a collection, grown over the run, per record. The
// client in the same process keeps nothing per message, so the growth is
// the server's: its per-subject index and the cache of the block it
// writes.
//
//	go test -run '^$' -bench RecordSubjects -benchtime 200000x ./internal/bench/
func BenchmarkRecordSubjects(b *testing.B) {
	srv := embedded.StartTest(b)
	topo := jobs.DefaultTopology()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := topo.Ensure(ctx, srv.JetStream); err != nil {
		b.Fatal(err)
	}
	now := time.Now().UTC()
	body, err := json.Marshal(jobs.Result{JobID: "bench-000000000", Op: jobs.OpRevoke, Outcome: jobs.Succeeded, Attempts: 1,
		ClerkCalls: 1, Deliveries: 1, StreamSeq: 1, EnqueuedAt: now, StartedAt: now, FinishedAt: now, DurationMS: 1.5, Worker: "worker-0",
		Result: json.RawMessage(`{"object":"session","id":"sess_2abcdefghijklmnopqrstuvwxyz0","user_id":"user_2abcdefghijklmnopqrstuvwxyz0","status":"revoked"}`)})
	if err != nil {
		b.Fatal(err)
	}
	gen := jobs.Generation(now)
	heap := func() uint64 {
		runtime.GC()
		debug.FreeOSMemory()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapInuse
	}
	before := heap()
	b.ResetTimer()
	var futures []jetstream.PubAckFuture
	for i := range b.N {
		key := jobs.RecordKey{Op: jobs.OpRevoke, JobID: fmt.Sprintf("bench-%09d", i), Gen: gen, Seq: uint64(i + 1)}
		f, err := srv.JetStream.PublishMsgAsync(&nats.Msg{Subject: topo.Subjects.Result(key), Data: body}, jetstream.WithExpectStream(topo.ResultsStream))
		if err != nil {
			b.Fatal(err)
		}
		futures = append(futures, f)
		if len(futures) == 1024 || i == b.N-1 {
			for _, f := range futures {
				select {
				case <-f.Ok():
				case err := <-f.Err():
					b.Fatalf("record %d: %v", i, err)
				case <-time.After(30 * time.Second):
					b.Fatal("no PubAck within 30 s")
				}
			}
			futures = futures[:0]
		}
	}
	b.StopTimer()
	grown := int64(heap()) - int64(before)
	b.ReportMetric(float64(grown)/float64(b.N), "server_bytes/subject")
	b.ReportMetric(float64(len(body)), "record_bytes")
}
