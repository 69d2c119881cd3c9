package worker_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestRefreshRefusedForItsTokensDoesNotStopTheWorker: Clerk answers a
// refresh whose tokens it refuses with a 401 (its spec names the same
// AuthenticationInvalid answer as for a refused key), and codes beyond
// the documented ones may come. Taken for the key, each such refresh
// opened the circuit three times before it was dead-lettered: every
// tenant's jobs stopped, for a probe interval each time, for one
// publisher's bad tokens. The key is now probed first; accepted, the
// refresh alone is refused.
func TestRefreshRefusedForItsTokensDoesNotStopTheWorker(t *testing.T) {
	for _, code := range []string{"authentication_invalid", "refresh_token_invalid", "token_refresh_failed"} {
		t.Run(code, func(t *testing.T) {
			env := testenv.New(t)
			emu := env.Clerk.Emulator
			ids := emu.CreateSessions(emu.CreateUser(), 2)
			clerk := env.ClerkThrough(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if strings.HasSuffix(r.URL.Path, "/refresh") {
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(http.StatusUnauthorized)
					_, _ = w.Write([]byte(`{"errors":[{"message":"refused","long_message":"refused","code":"` + code + `","meta":{}}],"meta":{}}`))
					return
				}
				emu.ServeHTTP(w, r)
			}))
			w := env.StartWorkerWith(t, clerk, env.WorkerConfig())
			env.Publish(t, &jobs.RefreshArgs{Common: jobs.Common{JobID: "bad-tokens", ReplyTo: "_INBOX.refused"}, SessionID: ids[0],
				ExpiredToken: emu.SessionToken(ids[0], -time.Minute), RefreshToken: emu.RefreshToken(ids[0]), RequestOrigin: "https://app.example.com"})
			env.Publish(t, &jobs.RevokeArgs{Common: jobs.Common{JobID: "other"}, SessionID: ids[1]})
			testenv.Eventually(t, 20*time.Second, "both jobs settled", func() bool {
				return env.StreamCount(t, env.Topology.JobsStream) == 0
			})
			dl, ok := deadLetters(t, env)["bad-tokens"]
			if !ok || dl.Error.Class != jobs.ClassPermanent || dl.Error.HTTPStatus != http.StatusUnauthorized {
				t.Errorf("the refresh's dead letter %+v (stored %v); want a permanent one with its 401", dl.Error, ok)
			}
			if len(env.Results(t)) != 1 {
				t.Errorf("%d results; want the revoke's", len(env.Results(t)))
			}
			if strings.Contains(env.Logs.String(), `"circuit":"open"`) || w.Worker.Status().CircuitOpen {
				t.Errorf("one refresh's refused tokens opened the circuit, stopping every job:\n%s", env.Logs.String())
			}
		})
	}
}

// TestRefreshUnderARejectedKeyIsHeld: the probe a refresh's 401 now asks
// first must not turn a key Clerk really rejects into the job's fault: the
// circuit opens, the refresh is held with the others, and it runs once
// the key is accepted again.
func TestRefreshUnderARejectedKeyIsHeld(t *testing.T) {
	env := testenv.New(t)
	emu := env.Clerk.Emulator
	id := emu.CreateSessions(emu.CreateUser(), 1)[0]
	expired := emu.SessionToken(id, -time.Minute)
	emu.SetFaults(emulator.Faults{RejectKey: true})
	w := env.StartWorker(t)
	env.Publish(t, &jobs.RefreshArgs{Common: jobs.Common{JobID: "held", ReplyTo: "_INBOX.held"}, SessionID: id,
		ExpiredToken: expired, RefreshToken: emu.RefreshToken(id), RequestOrigin: "https://app.example.com"})
	testenv.Eventually(t, 5*time.Second, "circuit open", func() bool { return w.Worker.Status().CircuitOpen })
	time.Sleep(300 * time.Millisecond) // several probe intervals
	if n := env.StreamCount(t, env.Topology.DeadLetterStream); n != 0 {
		t.Fatalf("%d jobs dead-lettered while the key was rejected", n)
	}
	emu.SetFaults(emulator.Faults{})
	testenv.Eventually(t, 10*time.Second, "the refresh done once the key is accepted", func() bool { return len(env.Results(t)) == 1 })
}
