package worker_test

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/clerkjobstest"
	"github.com/clerkjobs/clerkjobs/internal/netproxy"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// A worker that held its first delivery past half the ack wait (paused, its
// heartbeats lost) may have seen the job given to another worker, which
// dead-lettered it. Its late result stands and the dead letter goes: the
// Clerk call succeeded, and the job keeps exactly one record.
func TestLateResultSupersedesDeadLetter(t *testing.T) {
	// The revoke takes longer than half the test topology's 2 s ack wait.
	env := testenv.New(t, emulator.WithLatency(1500*time.Millisecond, 0))
	emu := env.Clerk.Emulator
	id := emu.CreateSessions(emu.CreateUser(), 1)[0]
	w := env.StartWorker(t)
	ack := env.Publish(t, &jobs.RevokeArgs{Common: jobs.Common{JobID: "late-1"}, SessionID: id})
	testenv.Eventually(t, 5*time.Second, "the job in flight", func() bool { return w.Worker.Status().InFlight == 1 })

	// What the other worker's delivery stored meanwhile.
	key := jobs.RecordKey{Op: jobs.OpRevoke, JobID: "late-1", Gen: generation(t, env), Seq: ack.Sequence}
	env.PublishRaw(t, env.Topology.Subjects.DeadLetter(key), []byte(`{"session_id":"`+id+`","job_id":"late-1"}`))

	wantResultAlone(t, env)
	if !strings.Contains(env.Logs.String(), "dead letter removed") {
		t.Errorf("the worker did not log the dead letter it removed")
	}
}

// Another delivery's record stored before this worker takes the job: a
// dead letter beside the result this worker stores, or beside the result
// its redelivery finds, goes.
func TestDeadLetterBesideAResultGoes(t *testing.T) {
	for _, c := range []struct {
		name string
		// before the worker starts: what Clerk answers, and the records
		// other deliveries stored
		status       int
		storedResult bool
		wait         time.Duration
	}{
		// A first delivery that waited past half the ack wait (in the
		// stream, or in a prefetch buffer where no heartbeat keeps it) may
		// have had a rival although this process took it just now.
		{name: "a first delivery that waited stores its result", wait: clerkjobstest.Topology().AckWait/2 + 200*time.Millisecond},
		// The delivery that stored the letter died before it looked for
		// the result: the redelivery that finds the result removes it.
		{name: "a redelivery finds the result", status: 500, storedResult: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			env := testenv.New(t)
			emu := env.Clerk.Emulator
			id := emu.CreateSessions(emu.CreateUser(), 1)[0]
			emu.FailSession(id, c.status) // 500: naked, then delivered again
			ack := env.Publish(t, &jobs.RevokeArgs{Common: jobs.Common{JobID: "rival-1"}, SessionID: id})
			key := jobs.RecordKey{Op: jobs.OpRevoke, JobID: "rival-1", Gen: generation(t, env), Seq: ack.Sequence}
			if c.storedResult {
				env.PublishRaw(t, env.Topology.Subjects.Result(key), []byte(`{"job_id":"rival-1"}`))
			}
			env.PublishRaw(t, env.Topology.Subjects.DeadLetter(key), []byte(`{"session_id":"`+id+`","job_id":"rival-1"}`))
			time.Sleep(c.wait)
			env.StartWorker(t)
			wantResultAlone(t, env)
		})
	}
}

// Two deliveries of one job, one storing a result while the other
// dead-letters it: each looked for the other's record before either was
// stored. Here the result lands just after the dead-lettering worker looked
// for it, every time it looks for it first. The dead letter looks again
// once it is stored, and yields.
func TestDeadLetterYieldsToAResultStoredMeanwhile(t *testing.T) {
	env := testenv.New(t)
	emu := env.Clerk.Emulator
	id := emu.CreateSessions(emu.CreateUser(), 1)[0]
	emu.FailSession(id, 404) // permanent: dead-lettered on its first delivery
	gen := generation(t, env)
	resultSubject := ""
	var once sync.Once
	var mu sync.Mutex
	// The other delivery stores its result as soon as this worker has
	// asked for it (by the leader's get, or a direct get by subject).
	storeResult := func(m *nats.Msg) {
		mu.Lock()
		want := resultSubject
		mu.Unlock()
		var req struct {
			LastFor string `json:"last_by_subj"`
		}
		_ = json.Unmarshal(m.Data, &req)
		if want == "" || (req.LastFor != want && !strings.HasSuffix(m.Subject, "."+want)) {
			return
		}
		once.Do(func() {
			if err := env.NC.Publish(want, []byte(`{"job_id":"race-1"}`)); err != nil {
				t.Error(err)
			}
		})
	}
	for _, s := range []string{"$JS.API.STREAM.MSG.GET." + env.Topology.ResultsStream, "$JS.API.DIRECT.GET." + env.Topology.ResultsStream + ".>"} {
		sub, err := env.NC.Subscribe(s, storeResult)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sub.Unsubscribe() })
	}
	// The job's record key needs its stream sequence: the next one.
	key := jobs.RecordKey{Op: jobs.OpRevoke, JobID: "race-1", Gen: gen, Seq: 1}
	mu.Lock()
	resultSubject = env.Topology.Subjects.Result(key)
	mu.Unlock()
	if err := env.NC.Flush(); err != nil {
		t.Fatal(err)
	}
	// The other delivery is quick: its result is stored before this worker
	// hears that its dead letter is (a real delivery would look for the
	// letter after storing, and remove it; the stand-in does not). Without
	// the pause, a loaded machine could run the stand-in late.
	px := netproxy.Start(t, env.NATSURL)
	px.HoldAfter([]byte("PUB "+env.Topology.Subjects.DeadLetter(key)), 2*time.Second)
	startWorkerVia(t, px, env)
	if ack := env.Publish(t, &jobs.RevokeArgs{Common: jobs.Common{JobID: "race-1"}, SessionID: id}); ack.Sequence != 1 {
		t.Fatalf("job stored at seq %d, want 1", ack.Sequence)
	}
	wantResultAlone(t, env)
}

// wantResultAlone waits until the one job published is acked, and checks
// that it has its result and no dead letter.
func wantResultAlone(t *testing.T, env *testenv.Env) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, "the job acked", func() bool { return env.StreamCount(t, env.Topology.JobsStream) == 0 })
	if n := env.StreamCount(t, env.Topology.ResultsStream); n != 1 {
		t.Errorf("%d results; want 1", n)
	}
	if n := env.StreamCount(t, env.Topology.DeadLetterStream); n != 0 {
		t.Errorf("%d dead letters beside the job's result; want none", n)
	}
}
