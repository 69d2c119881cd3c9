package worker_test

import (
	"strings"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
	"github.com/clerkjobs/clerkjobs/worker"
)

// TestHandBackOfADeletedStreamsJobNaksNoNewJob: a worker whose only slot
// runs a revoke_all holds a prefetched job when the jobs stream and the
// progress bucket are deleted; the revoke_all's next checkpoint creates
// them again (heal), so the worker has read the new stream. Another worker
// takes the new stream's jobs. When the first stops, the prefetched job
// of the deleted stream is handed back: a nak names only the consumer and
// the sequence, so it reached the new job at that sequence, running on the
// other worker, and handed it out again.
func TestHandBackOfADeletedStreamsJobNaksNoNewJob(t *testing.T) {
	env := testenv.New(t, emulator.WithLatency(200*time.Millisecond, 0))
	emu := env.Clerk.Emulator
	users := []string{emu.CreateUser(), emu.CreateUser()}
	for _, u := range users {
		emu.CreateSessions(u, 40)
	}
	single := emu.CreateSessions(emu.CreateUser(), 2)
	bulk1 := func(c *worker.Config) { c.Bulk.Concurrency = 1 }
	w1 := env.StartWorker(t, bulk1, func(c *worker.Config) { c.Concurrency = 1 })
	old1 := env.Publish(t, &jobs.RevokeAllArgs{UserID: users[0]})
	old2 := env.PublishRaw(t, "sessions.revoke", []byte(`{"session_id":"`+single[0]+`"}`))
	testenv.Eventually(t, 5*time.Second, "the revoke_all in flight", func() bool { return w1.Worker.Status().InFlight == 1 })
	time.Sleep(1100 * time.Millisecond) // a generation is a second: the next stream's differs
	if err := env.JS.DeleteStream(t.Context(), env.Topology.JobsStream); err != nil {
		t.Fatal(err)
	}
	if err := env.JS.DeleteKeyValue(t.Context(), env.Topology.ProgressBucket); err != nil {
		t.Fatal(err)
	}
	// Its consumer too, the last thing the worker creates: the second
	// worker's start updates the stream, which JetStream (2.15) races
	// against a consumer's creation (the race detector sees it).
	testenv.Eventually(t, 10*time.Second, "the worker created the jobs stream and its consumer again", func() bool {
		_, err := env.JS.Consumer(t.Context(), env.Topology.JobsStream, env.Topology.Consumer)
		return err == nil
	})
	w2 := env.StartWorker(t, bulk1, func(c *worker.Config) { c.Concurrency = 2 })
	new1 := env.PublishRaw(t, "sessions.revoke", []byte(`{"session_id":"`+single[1]+`"}`))
	new2 := env.Publish(t, &jobs.RevokeAllArgs{UserID: users[1]})
	if new1.Sequence != old1.Sequence || new2.Sequence != old2.Sequence {
		t.Fatalf("sequences: old %d %d, new %d %d: the test needs them equal", old1.Sequence, old2.Sequence, new1.Sequence, new2.Sequence)
	}
	testenv.Eventually(t, 5*time.Second, "the new revoke_all in flight", func() bool { return w2.Worker.Status().InFlight >= 1 })
	time.Sleep(300 * time.Millisecond)
	w1.Stop(t)
	time.Sleep(2 * time.Second)
	if logs := env.Logs.String(); strings.Contains(logs, "delivered again while its earlier delivery runs here") {
		t.Errorf("the new stream's revoke_all was delivered again while it ran: the old job's hand-back nak reached it\n%s", logs)
	}
}
