package worker_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// lockRefusedThenList starts a worker whose Clerk refuses the lock (403,
// with lockMsg) and answers every listing of the user's sessions with
// status and listMsg, publishes a lock_user revoke_all of 3 sessions, and
// returns its dead letter's error.
func lockRefusedThenList(t *testing.T, jobID, lockMsg string, status int, listMsg string) jobs.ErrorInfo {
	t.Helper()
	env := testenv.New(t)
	emu := env.Clerk.Emulator
	user := emu.CreateUser()
	emu.CreateSessions(user, 3)
	c := env.ClerkThrough(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/lock"):
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`{"errors":[{"code":"authorization_invalid","message":"` + lockMsg + `"}],"clerk_trace_id":"trace_lock"}`))
		case strings.HasSuffix(r.URL.Path, "/sessions"):
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			_, _ = w.Write([]byte(`{"errors":[{"code":"listing_failed","message":"` + listMsg + `"}],"clerk_trace_id":"trace_list"}`))
		default:
			emu.ServeHTTP(w, r)
		}
	}))
	cfg := env.WorkerConfig()
	bulkWorker(&cfg)
	env.StartWorkerWith(t, c, cfg)
	env.Publish(t, &jobs.RevokeAllArgs{UserID: user, LockUser: true, Common: jobs.Common{JobID: jobID}})
	testenv.Eventually(t, 60*time.Second, "dead-lettered", func() bool { return env.StreamCount(t, env.Topology.DeadLetterStream) == 1 })
	return deadLetters(t, env)[jobID].Error
}

// TestLockRefusedListingDownLastLetterSaysNotLocked: Clerk refuses the
// lock (403) and answers every listing 503, so that the job ends as
// exhausted. A delivery after the first resumes from the progress the
// first saved, and its first call was the listing of the revoked sessions
// (recoverUnsaved), before the lock: that listing's 503 ended it with its
// own error, so the last delivery's dead letter read "gave up after 3
// deliveries: revoke_all: list revoked sessions …", the user NOT locked
// nowhere, where LockRefusedError.Run was to put it first.
func TestLockRefusedListingDownLastLetterSaysNotLocked(t *testing.T) {
	info := lockRefusedThenList(t, "lock-403-list-503", "lockout disabled", http.StatusServiceUnavailable, "down")
	if info.Class != jobs.ClassExhausted || !strings.HasPrefix(info.Message, "user NOT locked (Clerk refused the lock, HTTP 403)") {
		t.Errorf("dead letter %s says %q; want exhausted, the user NOT locked first", info.Class, info.Message)
	}
}

// TestLockRefusedListingRefusedKeepsTheLocksMessage: Clerk refuses the
// lock (403), then refuses the listing for good (422): the job is
// dead-lettered as permanent at once, with the listing's status, code and
// Dlq-Clerk-Message (LockRefusedError.Run decides). Its error said
// "Clerk's answer to the lock: HTTP 403 …; Clerk's message given apart",
// and the message given apart was the listing's: the lock's own, which
// says why Clerk refused it, was nowhere, and the listing's read as the
// lock's.
func TestLockRefusedListingRefusedKeepsTheLocksMessage(t *testing.T) {
	const lockMsg = "user lockout is not enabled for this instance"
	info := lockRefusedThenList(t, "lock-403-list-422", lockMsg, http.StatusUnprocessableEntity, "the listing is refused")
	if !strings.HasPrefix(info.Message, "user NOT locked (Clerk refused the lock, HTTP 403)") {
		t.Errorf("dead letter says %q; want the user NOT locked first", info.Message)
	}
	if info.ClerkMessage != lockMsg && !strings.Contains(info.Message, lockMsg) {
		t.Errorf("the lock's message %q is nowhere in the dead letter: error %q, Clerk's message %q (HTTP %d %s)",
			lockMsg, info.Message, info.ClerkMessage, info.HTTPStatus, info.ClerkCode)
	}
	if info.ClerkMessage != lockMsg && strings.Contains(info.Message, "Clerk's message given apart") {
		t.Errorf("dead letter says %q, but the message given apart, %q, is not the lock's", info.Message, info.ClerkMessage)
	}
}
