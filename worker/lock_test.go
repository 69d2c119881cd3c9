package worker_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
	"github.com/clerkjobs/clerkjobs/worker"
)

// attacker keeps signing the user in (creating sessions) until stopped,
// and counts the sessions it got.
func attacker(emu *emulator.Emulator, user string) (stop func() int) {
	var got atomic.Int64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			case <-time.After(2 * time.Millisecond):
			}
			got.Add(int64(len(emu.CreateSessions(user, 1))))
		}
	}()
	return func() int { close(done); wg.Wait(); return int(got.Load()) }
}

// TestLockUserContainsATakeover: with lock_user the user is locked before
// any listing, so the sessions an attacker keeps creating are refused, every
// session ends revoked and remaining is 0 by construction; the result says
// until when the lock holds. Without it, sessions created during the job may
// outlive it (today's behaviour, reported in remaining).
func TestLockUserContainsATakeover(t *testing.T) {
	env := testenv.New(t, emulator.WithLatency(2*time.Millisecond, 0))
	emu := env.Clerk.Emulator
	user := emu.CreateUser()
	emu.CreateSessions(user, 300)
	env.StartWorker(t, bulkWorker, func(c *worker.Config) { c.Bulk.Concurrency = 4 })
	stop := attacker(emu, user)
	r, sum, progress := revokeAll(t, env, &jobs.RevokeAllArgs{UserID: user, LockUser: true})
	stop()
	if r.Outcome != jobs.Succeeded || !sum.Locked || sum.LockedUntil == nil || sum.Remaining != 0 {
		t.Fatalf("result %+v, summary %+v; want locked, locked_until and remaining 0", r, sum)
	}
	if time.Until(*sum.LockedUntil) < 30*time.Minute {
		t.Errorf("locked until %s: want the instance's lockout (an hour by default)", sum.LockedUntil)
	}
	if n := len(emu.ActiveSessionIDs(user)); n != 0 {
		t.Errorf("%d sessions of the user still active", n)
	}
	if n := emu.LockCount(user); n != 1 {
		t.Errorf("user locked %d times, want once", n)
	}
	if len(progress) == 0 {
		t.Errorf("no progress reported during a 300-session job (reports every 20 ms)")
	} else if !progress[len(progress)-1].Progress.Locked {
		t.Errorf("progress does not say the user is locked: %+v", progress[len(progress)-1])
	}
	if _, locked := emu.LockedUntil(user); !locked {
		t.Errorf("the user is not locked after the job")
	}
	// The lock came before any listing or revoke.
	calls := emu.Calls()
	if len(calls) == 0 || !strings.HasSuffix(calls[0].Path, "/lock") {
		t.Errorf("first call %+v, want the lock", calls[:min(len(calls), 1)])
	}
}

// TestRevokeAllWithoutLockIsUnchanged: without lock_user nothing is locked.
func TestRevokeAllWithoutLockIsUnchanged(t *testing.T) {
	env := testenv.New(t)
	emu := env.Clerk.Emulator
	user := emu.CreateUser()
	emu.CreateSessions(user, 10)
	env.StartWorker(t, bulkWorker)
	r, sum, _ := revokeAll(t, env, &jobs.RevokeAllArgs{UserID: user})
	if r.Outcome != jobs.Succeeded || sum.Locked || sum.LockedUntil != nil || sum.Revoked != 10 {
		t.Fatalf("summary %+v", sum)
	}
	if n := emu.LockCount(user); n != 0 {
		t.Errorf("locked %d times without lock_user", n)
	}
	// The result counts the job's Clerk calls (a list, ten revokes, a
	// list), not its one attempt.
	if n := len(emu.Calls()); r.ClerkCalls != n || r.Attempts != 1 {
		t.Errorf("result says %d Clerk calls in %d attempts; Clerk saw %d calls", r.ClerkCalls, r.Attempts, n)
	}
}

// retryForAMinute keeps a job failing with 503s in its first delivery:
// the emulator's 503 asks for a second (Retry-After: 1), which spends the
// test configuration's 60 ms budget at once, and three deliveries would end
// in a dead letter within seconds, before a loaded machine gets to the
// test's next step.
func retryForAMinute(c *worker.Config) { c.Retry.DeliveryBudget = time.Minute }

// TestLockFailures: a lock answered 5xx is retried; a lock answered 404 (no
// such user) dead-letters the job before any revoke.
func TestLockFailures(t *testing.T) {
	t.Run("5xx is retried", func(t *testing.T) {
		env := testenv.New(t)
		emu := env.Clerk.Emulator
		user := emu.CreateUser()
		emu.CreateSessions(user, 5)
		emu.FailUser(user, 503)
		env.StartWorker(t, bulkWorker, retryForAMinute)
		inbox := env.NC.NewInbox()
		env.Publish(t, &jobs.RevokeAllArgs{UserID: user, LockUser: true, Common: jobs.Common{ReplyTo: inbox}})
		testenv.Eventually(t, 10*time.Second, "the lock tried a few times", func() bool { return len(emu.Calls()) >= 3 })
		for _, c := range emu.Calls() {
			if !strings.HasSuffix(c.Path, "/lock") {
				t.Fatalf("call %s %s before the lock succeeded", c.Method, c.Path)
			}
		}
		emu.FailUser(user, 0)
		testenv.Eventually(t, 20*time.Second, "the job done", func() bool { return len(env.Results(t)) == 1 })
		if n := len(emu.ActiveSessionIDs(user)); n != 0 {
			t.Errorf("%d sessions active", n)
		}
	})
	t.Run("404 dead-letters before any revoke", func(t *testing.T) {
		env := testenv.New(t)
		emu := env.Clerk.Emulator
		env.StartWorker(t)
		env.Publish(t, &jobs.RevokeAllArgs{UserID: "user_doesnotexist", LockUser: true, Common: jobs.Common{JobID: "lock-404"}})
		testenv.Eventually(t, 10*time.Second, "dead-lettered", func() bool { return env.StreamCount(t, env.Topology.DeadLetterStream) == 1 })
		dl := deadLetters(t, env)["lock-404"]
		if dl.Error.Class != jobs.ClassPermanent || dl.Error.HTTPStatus != 404 || !strings.Contains(dl.Error.Message, "lock") {
			t.Errorf("dead letter %+v", dl.Error)
		}
		for _, c := range emu.Calls() {
			if !strings.HasSuffix(c.Path, "/lock") {
				t.Errorf("call %s %s after the lock failed", c.Method, c.Path)
			}
		}
	})
}

// TestLockRefusedStillRevokes: a lock Clerk refuses for good (403: the
// instance's settings do not allow locking) dead-lettered the job before
// any revoke, and every session of the taken-over account stayed active.
// Every session is revoked; the job still ends as a permanent dead letter,
// not a result (the lock asked for was not made), whose error says how many
// were revoked, that the user is NOT locked, Clerk's refusal and what to
// do. The requester's progress never says locked.
func TestLockRefusedStillRevokes(t *testing.T) {
	env := testenv.New(t)
	emu := env.Clerk.Emulator
	user := emu.CreateUser()
	emu.CreateSessions(user, 5)
	emu.FailUser(user, 403)
	env.StartWorker(t, bulkWorker)
	r, _, progress := revokeAll(t, env, &jobs.RevokeAllArgs{UserID: user, LockUser: true, Common: jobs.Common{JobID: "lock-403"}})
	if r.Outcome != jobs.Failed || r.Error == nil {
		t.Fatalf("result %+v; want the job failed: the user is not locked", r)
	}
	if n := len(emu.ActiveSessionIDs(user)); n != 0 {
		t.Errorf("%d of 5 sessions still active after the refused lock", n)
	}
	if _, locked := emu.LockedUntil(user); locked {
		t.Errorf("the user is locked; the emulator refused the lock")
	}
	infos := notLocked(t, env, r, progress, "lock-403", "user NOT locked (Clerk refused the lock, HTTP 403): revoked 5 sessions",
		"allow user lockout", "without --lock")
	for name, info := range infos {
		if info.Class != jobs.ClassPermanent || info.HTTPStatus != 403 || info.ClerkCode != "authorization_invalid" {
			t.Errorf("%s %+v; want permanent, 403, authorization_invalid", name, info)
		}
		// Clerk's message is kept apart (Dlq-Clerk-Message), not in the
		// error, where a long one pushed the advice out of Dlq-Error.
		if info.ClerkMessage == "" || strings.Contains(info.Message, info.ClerkMessage) {
			t.Errorf("%s: Clerk's message %q; want it kept apart from the error %q", name, info.ClerkMessage, info.Message)
		}
	}
}

// TestLockRefusedRevokeRejectedSaysNotLockedFirst: a lock refused, then
// a revoke Clerk refuses with an authorization error while it accepts the
// key (the circuit holds the job, the probe finds the key good, three
// times) ends the job as refused for its own sake. That text came first,
// and "user NOT locked" after it, past what the lists show.
func TestLockRefusedRevokeRejectedSaysNotLockedFirst(t *testing.T) {
	env := testenv.New(t)
	emu := env.Clerk.Emulator
	user := emu.CreateUser()
	ids := emu.CreateSessions(user, 5)
	emu.FailUser(user, 403)
	emu.FailSession(ids[2], 401)
	env.StartWorker(t, bulkWorker)
	r, _, progress := revokeAll(t, env, &jobs.RevokeAllArgs{UserID: user, LockUser: true, Common: jobs.Common{JobID: "lock-403-401"}})
	if r.Outcome != jobs.Failed || r.Error == nil {
		t.Fatalf("result %+v; want the job failed: the user is not locked", r)
	}
	infos := notLocked(t, env, r, progress, "lock-403-401", "user NOT locked (Clerk refused the lock, HTTP 403)",
		"although Clerk accepts the key")
	for name, info := range infos {
		if info.Class != jobs.ClassPermanent {
			t.Errorf("%s %+v; want permanent", name, info)
		}
	}
}

// notLocked checks what a lock_user job whose user is not locked leaves:
// its dead letter and its reply (returned by name, for the caller's own
// checks) say so first (prefix, as the lists cut it short) and say each of
// wants; no progress said locked; no result was stored.
func notLocked(t *testing.T, env *testenv.Env, r jobs.Result, progress []jobs.Progress, jobID, prefix string, wants ...string) map[string]jobs.ErrorInfo {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, "dead-lettered", func() bool { return env.StreamCount(t, env.Topology.DeadLetterStream) == 1 })
	infos := map[string]jobs.ErrorInfo{"dead letter": deadLetters(t, env)[jobID].Error, "reply": *r.Error}
	for name, info := range infos {
		if !strings.HasPrefix(info.Message, prefix) {
			t.Errorf("%s says %q; want it to start with %q (the lists cut it short)", name, info.Message, prefix)
		}
		for _, want := range wants {
			if !strings.Contains(info.Message, want) {
				t.Errorf("%s says %q; want it to say %q", name, info.Message, want)
			}
		}
	}
	// The requester hears that the user is NOT locked while the sessions
	// are revoked, not only from the job's end (five deliveries and their
	// backoff later for a lock Clerk did not confirm).
	told := false
	for _, p := range progress {
		if p.Progress.Locked {
			t.Errorf("progress says locked: %+v", p.Progress)
		}
		if why := p.Progress.NotLocked; why != "" {
			told = true
			if !strings.HasPrefix(prefix, "user NOT locked ("+why+")") {
				t.Errorf("progress says not locked for %q; want what the error says, %q", why, prefix)
			}
		}
	}
	if !told {
		t.Errorf("no progress update of %d said the user is NOT locked", len(progress))
	}
	if len(env.Results(t)) != 0 {
		t.Errorf("a result was stored for job %s, whose user is not locked", jobID)
	}
	return infos
}

// TestLockSurvivesACrash: a worker that locked the user and died before
// revoking: the redelivery resumes without locking again.
func TestLockSurvivesACrash(t *testing.T) {
	env := testenv.New(t)
	emu := env.Clerk.Emulator
	user := emu.CreateUser()
	ids := emu.CreateSessions(user, 5)
	for _, id := range ids {
		emu.FailSession(id, 503) // the revokes fail after the lock
	}
	first := env.StartWorker(t, bulkWorker, retryForAMinute, func(c *worker.Config) { c.DrainTimeout = 0 })
	env.Publish(t, &jobs.RevokeAllArgs{UserID: user, LockUser: true})
	testenv.Eventually(t, 10*time.Second, "locked, revokes failing", func() bool {
		_, locked := emu.LockedUntil(user)
		return locked && emu.RevokeCount(ids[0])+len(emu.Calls()) > 3
	})
	first.Stop(t)
	for _, id := range ids {
		emu.FailSession(id, 0)
	}
	env.StartWorker(t, bulkWorker)
	testenv.Eventually(t, 20*time.Second, "the job done", func() bool { return len(env.Results(t)) == 1 })
	if n := emu.LockCount(user); n != 1 {
		t.Errorf("locked %d times, want once: the redelivery must resume", n)
	}
	if n := len(emu.ActiveSessionIDs(user)); n != 0 {
		t.Errorf("%d sessions active", n)
	}
}

// TestLockUnconfirmedStillRevokes: Clerk answers every lock 200 with the
// user not locked (an instance whose lockout is off answering without
// refusing, or a proxy answering for Clerk). The lock failed retryably
// before any revoke, on every delivery, and the job ended dead-lettered as
// exhausted, "gave up after 3 deliveries: …", with every session of the
// taken-over account active. Every session is now revoked on the first
// delivery; each delivery tries the lock again, and the last one's dead
// letter (exhausted: a replay may lock) starts with the user NOT locked and
// the counts, as the lists cut it short.
func TestLockUnconfirmedStillRevokes(t *testing.T) {
	env := testenv.New(t)
	emu := env.Clerk.Emulator
	user := emu.CreateUser()
	emu.CreateSessions(user, 5)
	var locks atomic.Int64
	c := env.ClerkThrough(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/lock") {
			locks.Add(1)
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"object":"user","id":"` + user + `","locked":false,"lockout_expires_in_seconds":null,"banned":false,"created_at":1,"updated_at":1}`))
			return
		}
		emu.ServeHTTP(w, r)
	}))
	cfg := env.WorkerConfig()
	bulkWorker(&cfg)
	env.StartWorkerWith(t, c, cfg)
	r, _, progress := revokeAll(t, env, &jobs.RevokeAllArgs{UserID: user, LockUser: true, Common: jobs.Common{JobID: "lock-200"}})
	if r.Outcome != jobs.Failed || r.Error == nil {
		t.Fatalf("result %+v; want the job failed: the user is not locked", r)
	}
	if n := len(emu.ActiveSessionIDs(user)); n != 0 {
		t.Errorf("%d of 5 sessions still active after an unconfirmed lock", n)
	}
	if n := locks.Load(); n < int64(cfg.Topology.MaxDeliver) {
		t.Errorf("the lock was sent %d times; want it tried on each of the %d deliveries", n, cfg.Topology.MaxDeliver)
	}
	infos := notLocked(t, env, r, progress, "lock-200", "user NOT locked (Clerk did not confirm the lock, HTTP 200): revoked 5 sessions",
		"a user who is not locked", "without --lock", fmt.Sprintf("gave up after %d deliveries", cfg.Topology.MaxDeliver))
	for name, info := range infos {
		if info.Class != jobs.ClassExhausted {
			t.Errorf("%s %+v; want exhausted (the lock may take when sent again)", name, info)
		}
	}
}

// TestLockTakenLaterRevokesWhatCameMeanwhile: Clerk answers the first
// delivery's lock 200 without locking the user, and the attacker, not
// locked out, signs in again as fast as sessions are revoked, so that
// delivery spends the job's three passes and fails retryably with sessions
// still active. The next delivery's lock takes. It listed those sessions
// and, the passes spent by the delivery before, revoked none: the job
// succeeded with locked: true (remaining "0 by construction", the README
// says) and the attacker's sessions active. The passes since the lock was
// sent are the ones counted, so the delivery that locks revokes what was
// created meanwhile, as the unconfirmed lock's error promises; and so does
// the one after it, should that delivery's revokes fail (Clerk 503s: the
// lock holds, and the next delivery does not send it again).
func TestLockTakenLaterRevokesWhatCameMeanwhile(t *testing.T) {
	for _, tc := range []struct {
		name       string
		revokes503 bool
	}{
		{"the lock takes", false},
		{"the lock takes, its delivery's revokes fail", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := testenv.New(t)
			emu := env.Clerk.Emulator
			user := emu.CreateUser()
			emu.CreateSessions(user, 5)
			// phase 0: the lock is answered unlocked; 1: it took, and the
			// revokes answer 503 (revokes503) until the next run; 2: Clerk.
			var phase, revokes atomic.Int64
			// justLocked: the run that locks lists the revoked sessions
			// next (recoverUnsaved, after the lock): not yet the next run.
			var justLocked atomic.Bool
			c := env.ClerkThrough(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch {
				case strings.HasSuffix(r.URL.Path, "/lock") && phase.Load() == 0:
					if revokes.Load() == 0 { // the first delivery
						w.Header().Set("Content-Type", "application/json")
						_, _ = w.Write([]byte(`{"object":"user","id":"` + user + `","locked":false,"lockout_expires_in_seconds":null,"banned":false,"created_at":1,"updated_at":1}`))
						return
					}
					phase.Store(2)
					if tc.revokes503 {
						phase.Store(1)
						justLocked.Store(true)
					}
					emu.ServeHTTP(w, r)
				case strings.HasSuffix(r.URL.Path, "/sessions") && r.URL.Query().Get("status") == string(clerkapi.StatusRevoked):
					// A run that resumes under the lock starts here: the
					// one after the lock's finds Clerk back.
					if !justLocked.Swap(false) {
						phase.CompareAndSwap(1, 2)
					}
					emu.ServeHTTP(w, r)
				case strings.HasSuffix(r.URL.Path, "/revoke") && phase.Load() == 1:
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(http.StatusServiceUnavailable)
					_, _ = w.Write([]byte(`{"errors":[{"code":"service_unavailable","message":"try again"}]}`))
				case strings.HasSuffix(r.URL.Path, "/revoke"):
					revokes.Add(1)
					emu.ServeHTTP(w, r)
					// Not locked out, the attacker signs in again (refused
					// once the user is locked).
					emu.CreateSessions(user, 1)
				default:
					emu.ServeHTTP(w, r)
				}
			}))
			cfg := env.WorkerConfig()
			bulkWorker(&cfg)
			env.StartWorkerWith(t, c, cfg)
			r, sum, _ := revokeAll(t, env, &jobs.RevokeAllArgs{UserID: user, LockUser: true, Common: jobs.Common{JobID: "lock-later"}})
			if r.Outcome != jobs.Succeeded {
				t.Fatalf("result %+v, error %+v; want a result: a later delivery's lock takes", r, r.Error)
			}
			if !sum.Locked || !sum.Resumed {
				t.Errorf("summary %+v; want locked and resumed", sum)
			}
			if active := emu.ActiveSessionIDs(user); len(active) != 0 || sum.Remaining != 0 {
				t.Errorf("the job ended locked with remaining %d and %d sessions active (%v); want every session revoked once the lock holds",
					sum.Remaining, len(active), active)
			}
		})
	}
}
