package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs"
	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
	"github.com/clerkjobs/clerkjobs/worker"
)

// revokeAll submits a revoke_all job with the client and returns what
// reached its inbox: the result (a failure included), its summary, and the
// progress updates that came first.
func revokeAll(t *testing.T, env *testenv.Env, a *jobs.RevokeAllArgs) (jobs.Result, jobs.RevokeAllSummary, []jobs.Progress) {
	t.Helper()
	var progress []jobs.Progress
	r, err := requestAll(env, a, 60*time.Second, func(p jobs.Progress) { progress = append(progress, p) })
	if err != nil {
		t.Fatalf("waiting for the revoke_all result: %v", err)
	}
	var sum jobs.RevokeAllSummary
	if r.Outcome == jobs.Succeeded {
		testenv.DecodeJSON(t, r.Result, &sum)
	}
	return r, sum, progress
}

// requestAll is Request for a test: a failure is a result too.
func requestAll(env *testenv.Env, a jobs.Args, timeout time.Duration, onProgress func(jobs.Progress)) (jobs.Result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	r, err := env.Client.Request(ctx, a, clerkjobs.OnProgress(onProgress))
	var failed *clerkjobs.JobError
	if errors.As(err, &failed) {
		r, err = failed.Result, nil
	}
	if err != nil {
		return jobs.Result{}, err
	}
	return r.Reveal(), nil
}

func bulkWorker(c *worker.Config) {
	c.Bulk.CheckpointEvery = 20 * time.Millisecond
	c.Bulk.ReportEvery = 20 * time.Millisecond
}

func TestRevokeAllSizes(t *testing.T) {
	for _, n := range []int{0, 1, 1000} {
		t.Run(slicesName(n), func(t *testing.T) {
			env := testenv.New(t)
			emu := env.Clerk.Emulator
			user := emu.CreateUser()
			ids := emu.CreateSessions(user, n)
			other := emu.CreateSessions(emu.CreateUser(), 2) // another user's: untouched
			env.StartWorker(t, bulkWorker)
			r, sum, _ := revokeAll(t, env, &jobs.RevokeAllArgs{UserID: user})
			if r.Outcome != jobs.Succeeded {
				t.Fatalf("outcome %s: %+v", r.Outcome, r.Error)
			}
			if sum.Revoked != n || sum.AlreadyGone != 0 || sum.Failed != 0 {
				t.Errorf("summary %+v; want %d revoked", sum, n)
			}
			for _, id := range ids {
				if s, _ := emu.Session(id); s.Status != clerkapi.StatusRevoked {
					t.Fatalf("session %s is %s", id, s.Status)
				}
				if c := emu.RevokeCount(id); c != 1 {
					t.Errorf("session %s revoked %d times", id, c)
				}
			}
			for _, id := range other {
				if s, _ := emu.Session(id); s.Status != clerkapi.StatusActive {
					t.Errorf("another user's session %s is %s", id, s.Status)
				}
			}
			// Repeating the job is safe and finds nothing to do.
			_, again, _ := revokeAll(t, env, &jobs.RevokeAllArgs{UserID: user})
			if again.Revoked != 0 || again.Failed != 0 {
				t.Errorf("second run %+v; want nothing revoked", again)
			}
		})
	}
}

func slicesName(n int) string {
	b, _ := json.Marshal(n)
	return "sessions=" + string(b)
}

func TestRevokeAllHonoursExceptions(t *testing.T) {
	env := testenv.New(t)
	emu := env.Clerk.Emulator
	user := emu.CreateUser()
	ids := emu.CreateSessions(user, 20)
	keep := []string{ids[3], ids[17]}
	env.StartWorker(t, bulkWorker)
	_, sum, _ := revokeAll(t, env, &jobs.RevokeAllArgs{UserID: user, ExceptSessionIDs: keep})
	if sum.Revoked != 18 || sum.Excepted != 2 {
		t.Errorf("summary %+v; want 18 revoked, 2 excepted", sum)
	}
	for _, id := range ids {
		s, _ := emu.Session(id)
		if want := clerkapi.StatusRevoked; slices.Contains(keep, id) {
			if s.Status != clerkapi.StatusActive {
				t.Errorf("kept session %s is %s", id, s.Status)
			}
		} else if s.Status != want {
			t.Errorf("session %s is %s", id, s.Status)
		}
	}
}

func TestRevokeAllDeadLettersPermanentFailuresAsRevokeJobs(t *testing.T) {
	env := testenv.New(t)
	emu := env.Clerk.Emulator
	user := emu.CreateUser()
	ids := emu.CreateSessions(user, 30)
	broken := []string{ids[5], ids[20]}
	for _, id := range broken {
		emu.FailSession(id, 422)
	}
	env.StartWorker(t, bulkWorker)
	_, sum, _ := revokeAll(t, env, &jobs.RevokeAllArgs{UserID: user, Common: jobs.Common{JobID: "offboard-42"}})
	slices.Sort(broken)
	if sum.Revoked != 28 || sum.Failed != 2 || !slices.Equal(sum.FailedSessionIDs, broken) {
		t.Fatalf("summary %+v; want 28 revoked and %v failed", sum, broken)
	}
	dls := env.StreamMsgs(t, env.Topology.DeadLetterStream)
	if len(dls) != 2 {
		t.Fatalf("%d dead letters, want one per failed session", len(dls))
	}
	for _, m := range dls {
		dl, err := jobs.ParseDeadLetter(m.Header)
		if err != nil {
			t.Fatal(err)
		}
		a, err := jobs.Decode(jobs.OpRevoke, m.Data)
		if err != nil {
			t.Fatalf("dead letter body is not a revoke job: %v", err)
		}
		sid := a.(*jobs.RevokeArgs).SessionID
		if env.Topology.Subjects.OpOfDeadLetter(m.Subject) != jobs.OpRevoke || dl.Subject != "sessions.revoke" || dl.JobID != "offboard-42/"+sid || !slices.Contains(broken, sid) || dl.Error.HTTPStatus != 422 {
			t.Errorf("dead letter %s %+v for %s", m.Subject, dl, sid)
		}
	}
	// Once the fault is gone, replaying the dead letters revokes just those.
	emu.FailSession(broken[0], 0)
	emu.FailSession(broken[1], 0)
	for _, m := range dls {
		env.PublishRaw(t, "sessions.revoke", m.Data)
	}
	testenv.Eventually(t, 10*time.Second, "replayed revokes done", func() bool {
		s0, _ := emu.Session(broken[0])
		s1, _ := emu.Session(broken[1])
		return s0.Status == clerkapi.StatusRevoked && s1.Status == clerkapi.StatusRevoked
	})
}

func TestRevokeAllSurvivesA429Storm(t *testing.T) {
	env := testenv.New(t, emulator.WithRateLimit(40, 200*time.Millisecond))
	emu := env.Clerk.Emulator
	user := emu.CreateUser()
	ids := emu.CreateSessions(user, 300)
	env.StartWorker(t, bulkWorker, func(c *worker.Config) { c.Bulk.Concurrency = 16 })
	r, sum, progress := revokeAll(t, env, &jobs.RevokeAllArgs{UserID: user})
	if r.Outcome != jobs.Succeeded || sum.Revoked != 300 {
		t.Fatalf("result %+v summary %+v", r, sum)
	}
	var limited int
	for _, c := range emu.Calls() {
		if c.Status == 429 {
			limited++
		}
	}
	if limited == 0 {
		t.Errorf("no 429 was answered: the storm did not happen, the test proves nothing")
	}
	for _, id := range ids {
		if c := emu.RevokeCount(id); c != 1 {
			t.Errorf("session %s revoked %d times", id, c)
		}
	}
	if len(progress) == 0 {
		t.Errorf("no progress update reached reply_to")
	}
	for i := 1; i < len(progress); i++ {
		if progress[i].Done < progress[i-1].Done {
			t.Errorf("progress went backwards: %d then %d", progress[i-1].Done, progress[i].Done)
		}
	}
}

func TestRevokeAllResumesAfterACrash(t *testing.T) {
	// 8 revokes in flight at 20 ms each: the job takes about 2.5 s.
	env := testenv.New(t, emulator.WithLatency(20*time.Millisecond, 0))
	emu := env.Clerk.Emulator
	user := emu.CreateUser()
	ids := emu.CreateSessions(user, 1000)
	first := env.StartWorker(t, bulkWorker, func(c *worker.Config) { c.DrainTimeout = 0 })
	type outcome struct {
		r   jobs.Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		r, err := requestAll(env, &jobs.RevokeAllArgs{UserID: user, Common: jobs.Common{JobID: "takeover-1"}}, 60*time.Second, nil)
		done <- outcome{r, err}
	}()
	revoked := func() int {
		n := 0
		for _, id := range ids {
			if s, _ := emu.Session(id); s.Status == clerkapi.StatusRevoked {
				n++
			}
		}
		return n
	}
	testenv.Eventually(t, 20*time.Second, "a third revoked", func() bool { return revoked() >= 300 })
	first.Stop(t) // stops mid-job; drain timeout 0
	before := revoked()
	if before >= 1000 {
		t.Fatalf("the job finished before the stop; the test proves nothing")
	}
	env.StartWorker(t, bulkWorker)
	o := <-done
	if o.err != nil {
		t.Fatalf("no result after the restart: %v", o.err)
	}
	r := o.r
	var sum jobs.RevokeAllSummary
	testenv.DecodeJSON(t, r.Result, &sum)
	if sum.Revoked+sum.AlreadyGone != 1000 || sum.Failed != 0 || !sum.Resumed {
		t.Errorf("summary %+v; want all 1000 accounted for, resumed", sum)
	}
	dup := 0
	for _, id := range ids {
		switch c := emu.RevokeCount(id); {
		case c == 0:
			t.Fatalf("session %s never revoked", id)
		case c > 1:
			dup += c - 1
		}
	}
	// Only revokes on the wire at the stop may be sent again.
	if limit := worker.DefaultBulkConfig().Concurrency; dup > limit {
		t.Errorf("%d sessions revoked twice; a resumed job should redo at most the %d in flight", dup, limit)
	}
	t.Logf("revoked before the stop: %d; duplicate revoke calls: %d", before, dup)
}

func TestSingleJobsFlowDuringABulkJob(t *testing.T) {
	env := testenv.New(t)
	emu := env.Clerk.Emulator
	user := emu.CreateUser()
	emu.CreateSessions(user, 1000)
	singles := emu.CreateSessions(emu.CreateUser(), 10)
	// 200 calls/s: the bulk job takes about 5 s.
	env.StartWorker(t, bulkWorker, func(c *worker.Config) {
		c.RateLimit, c.RateScope = worker.RateLimit{N: 200, Per: time.Second}, worker.RateProcess
	})
	started := make(chan struct{})
	var once sync.Once
	type outcome struct {
		r   jobs.Result
		err error
	}
	bulk := make(chan outcome, 1)
	go func() {
		r, err := requestAll(env, &jobs.RevokeAllArgs{UserID: user}, 60*time.Second, func(jobs.Progress) { once.Do(func() { close(started) }) })
		bulk <- outcome{r, err}
	}()
	// Wait until the bulk job is well under way, then send single jobs.
	select {
	case <-started:
	case o := <-bulk:
		t.Fatalf("the bulk job ended before its first progress update: %+v, %v", o.r, o.err)
	case <-time.After(10 * time.Second):
		t.Fatal("no progress update from the bulk job")
	}
	for _, id := range singles {
		if r, err := requestAll(env, &jobs.RevokeArgs{SessionID: id}, 10*time.Second, nil); err != nil || r.Outcome != jobs.Succeeded {
			t.Fatalf("a single revoke did not finish during the bulk job: %+v, %v", r, err)
		}
	}
	// The singles finished while the bulk job was still running.
	select {
	case <-bulk:
		t.Fatalf("the bulk job finished before the single revokes: they waited behind it")
	default:
	}
	if o := <-bulk; o.err != nil || o.r.Outcome != jobs.Succeeded {
		t.Fatalf("bulk result: %+v, %v", o.r, o.err)
	}
}

// failingRevokes answers RevokeSession with a 503 for a while from the
// first revoke (not from the test's start, which a loaded machine may
// spend starting the worker): Clerk failing in the middle of a bulk job,
// delivery after delivery.
type failingRevokes struct {
	clerkapi.Sessions
	failFor time.Duration
	first   sync.Once
	until   time.Time
}

func (f *failingRevokes) RevokeSession(ctx context.Context, id string) (*clerkapi.Session, error) {
	f.first.Do(func() { f.until = time.Now().Add(f.failFor) })
	if time.Now().Before(f.until) {
		return nil, &clerkapi.Error{Op: "RevokeSession", StatusCode: 503}
	}
	return f.Sessions.RevokeSession(ctx, id)
}

// TestRevokeAllInterruptedPassesAreRedone: deliveries that fail in the
// middle of a pass must not count as passes, or the job would end
// "succeeded" with the sessions still active.
func TestRevokeAllInterruptedPassesAreRedone(t *testing.T) {
	env := testenv.New(t)
	emu := env.Clerk.Emulator
	user := emu.CreateUser()
	ids := emu.CreateSessions(user, 5)
	cfg := env.WorkerConfig()
	bulkWorker(&cfg)
	cfg.Topology.MaxDeliver = 12
	clerk := &failingRevokes{Sessions: env.ClerkClient(t, ""), failFor: 600 * time.Millisecond}
	env.StartWorkerWith(t, clerk, cfg)
	r, sum, _ := revokeAll(t, env, &jobs.RevokeAllArgs{UserID: user})
	if r.Outcome != jobs.Succeeded || r.Deliveries < 4 {
		t.Fatalf("result %+v: want success after several failed deliveries", r)
	}
	if sum.Revoked != len(ids) || sum.Remaining != 0 {
		t.Errorf("summary %+v; want all %d revoked", sum, len(ids))
	}
	for _, id := range ids {
		if s, _ := emu.Session(id); s.Status != clerkapi.StatusRevoked {
			t.Errorf("session %s is %s after a succeeded revoke_all", id, s.Status)
		}
	}
}
