package worker_test

import (
	"strings"
	"testing"

	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestRevokeAllPanicLogsTheRevokesStack: the README and docs/semantics.md
// promise a panicking handler's stack in the log, revoke_all's revokes
// included. A revoke's panic is raised again in the handler's goroutine
// once the others have returned, and the stack the worker logged was
// that re-raise's: it named revoke_all's own code, never the Clerk client
// that panicked, which is what an operator must find.
func TestRevokeAllPanicLogsTheRevokesStack(t *testing.T) {
	env := testenv.New(t)
	emu := env.Clerk.Emulator
	user := emu.CreateUser()
	emu.CreateSessions(user, 6)
	clerk := &panicOnRevoke{Client: env.ClerkClient(t, ""), nth: 2}
	cfg := env.WorkerConfig()
	bulkWorker(&cfg)
	cfg.Bulk.Concurrency = 2
	env.StartWorkerWith(t, clerk, cfg)
	r, _, _ := revokeAll(t, env, &jobs.RevokeAllArgs{Common: jobs.Common{JobID: "panic-stack"}, UserID: user})
	if r.Outcome == jobs.Succeeded {
		t.Fatalf("result %+v: want the job failed by the panic", r)
	}
	var line string
	for _, l := range strings.Split(env.Logs.String(), "\n") {
		if strings.Contains(l, "the handler panicked") && strings.Contains(l, `"stack"`) {
			line = l
		}
	}
	if line == "" {
		t.Fatalf("no log line with the panic's stack:\n%s", env.Logs.String())
	}
	if !strings.Contains(line, "panicOnRevoke") {
		t.Errorf("the logged stack does not name the Clerk client that panicked (panicOnRevoke.RevokeSession):\n%s", line)
	}
}
