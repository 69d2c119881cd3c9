package publishcli_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/internal/publishcli"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// e2e is the whole system: NATS, the Clerk emulator and a worker, with the
// command line pointed at it.
func e2e(t *testing.T, opts ...emulator.Option) (*testenv.Env, *harness) {
	t.Helper()
	if testing.Short() {
		t.Skip("end to end")
	}
	env := testenv.New(t, opts...)
	return env, &harness{url: env.NATSURL, nc: env.NC, js: env.JS, topo: env.Topology}
}

// waitResult runs a job command with --wait --json and decodes its result.
func waitResult(t *testing.T, h *harness, args ...string) (jobs.Result, result) {
	t.Helper()
	r := h.run(t, append(args, "--wait", "--json", "--timeout", "20s")...)
	var res jobs.Result
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatalf("%v: not a result: %v", args, r)
	}
	return res, r
}

// TestE2EEveryJobType submits every job type through the command line to a
// running worker, checks each result and Clerk's state, and that no secret
// is stored in any stream or logged.
func TestE2EEveryJobType(t *testing.T) {
	env, h := e2e(t, emulator.WithTemplate("hasura", map[string]any{"role": "admin"}, time.Minute))
	emu := env.Clerk.Emulator
	user := emu.CreateUser()
	ids := emu.CreateSessions(user, 6)
	env.StartWorker(t)

	expired := emu.SessionToken(ids[3], -time.Minute)
	refreshToken := emu.RefreshToken(ids[3])
	expiredFile, refreshFile := writeFile(t, "expired", expired), writeFile(t, "refresh", refreshToken)
	secrets := map[string]string{"expired token": expired, "refresh token": refreshToken, "secret key": emulator.DefaultSecretKey}
	var outputs []string

	tests := []struct {
		name  string
		args  []string
		check func(t *testing.T, r jobs.Result)
	}{
		{"list", []string{"list", "--user", user, "--status", "active", "--limit", "2", "--paginated"}, func(t *testing.T, r jobs.Result) {
			var l clerkapi.SessionList
			testenv.DecodeJSON(t, r.Result, &l)
			if len(l.Data) != 2 || l.TotalCount != 6 {
				t.Errorf("list: %d of %d sessions, want 2 of 6", len(l.Data), l.TotalCount)
			}
		}},
		{"create", []string{"create", "--user", user}, func(t *testing.T, r jobs.Result) {
			var s clerkapi.Session
			testenv.DecodeJSON(t, r.Result, &s)
			if s.UserID != user || s.Status != clerkapi.StatusActive {
				t.Errorf("create: %+v", s)
			}
		}},
		{"get", []string{"get", ids[0]}, func(t *testing.T, r jobs.Result) {
			var s clerkapi.Session
			testenv.DecodeJSON(t, r.Result, &s)
			if s.ID != ids[0] {
				t.Errorf("get: %+v", s)
			}
		}},
		{"token", []string{"token", ids[1], "--expires-in", "2m"}, func(t *testing.T, r jobs.Result) {
			var tok clerkapi.Token
			testenv.DecodeJSON(t, r.Secret, &tok)
			if strings.Count(tok.JWT, ".") != 2 {
				t.Fatalf("token: not a JWT (%d parts)", strings.Count(tok.JWT, ".")+1)
			}
			secrets["token"] = tok.JWT
			// Not the emulator's default of 60 s: --expires-in reached Clerk.
			if c := testenv.JWTClaims(t, tok.JWT); c.Exp-c.Iat != 120 {
				t.Errorf("token: lifetime %d s, want --expires-in's 120", c.Exp-c.Iat)
			}
		}},
		{"token from template", []string{"token", "--session", ids[1], "--template", "hasura"}, func(t *testing.T, r jobs.Result) {
			var tok clerkapi.Token
			testenv.DecodeJSON(t, r.Secret, &tok)
			if strings.Count(tok.JWT, ".") != 2 {
				t.Fatalf("template token: not a JWT (%d parts)", strings.Count(tok.JWT, ".")+1)
			}
			secrets["template token"] = tok.JWT
			// Only the template's token carries its claims.
			if c := testenv.JWTClaims(t, tok.JWT); c.Role != "admin" {
				t.Errorf("template token: role claim %q, want the template's \"admin\"", c.Role)
			}
		}},
		{"refresh", []string{"refresh", ids[3], "--origin", "https://app.example.com", "--expired-token-file", expiredFile, "--refresh-token-file", refreshFile}, func(t *testing.T, r jobs.Result) {
			var tok clerkapi.Token
			testenv.DecodeJSON(t, r.Secret, &tok)
			if tok.Object != "token" || tok.JWT == "" {
				t.Fatalf("refresh: object %q", tok.Object)
			}
			secrets["refreshed token"] = tok.JWT
		}},
		{"revoke", []string{"revoke", ids[2]}, func(t *testing.T, r jobs.Result) {
			if s, _ := emu.Session(ids[2]); s.Status != clerkapi.StatusRevoked {
				t.Errorf("revoke: session is %s", s.Status)
			}
		}},
		{"revoke again", []string{"revoke", "--session", ids[2]}, func(t *testing.T, r jobs.Result) {
			var s clerkapi.Session
			testenv.DecodeJSON(t, r.Result, &s)
			if s.Status != clerkapi.StatusRevoked {
				t.Errorf("revoking a revoked session: %+v", s)
			}
		}},
		{"revoke-all", []string{"revoke-all", "--user", user, "--except", ids[0] + "," + ids[1]}, func(t *testing.T, r jobs.Result) {
			var sum jobs.RevokeAllSummary
			testenv.DecodeJSON(t, r.Result, &sum)
			if sum.Failed != 0 || sum.Excepted != 2 || sum.Revoked < 3 {
				t.Errorf("revoke-all: %+v", sum)
			}
			for i, id := range ids {
				s, _ := emu.Session(id)
				if active := s.Status == clerkapi.StatusActive; active != (i < 2) {
					t.Errorf("after revoke-all, session %d is %s", i, s.Status)
				}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, r := waitResult(t, h, tt.args...)
			outputs = append(outputs, r.stderr)
			if r.code != publishcli.ExitOK || res.Outcome != jobs.Succeeded {
				t.Fatalf("%v", r)
			}
			tt.check(t, res)
		})
	}

	// A person's view of a token: on standard output, nowhere else.
	r := h.run(t, "token", ids[0], "--wait", "--timeout", "20s")
	if r.code != 0 || !matches(r.stdout, `token\s+\S+\.\S+\.\S+`) || strings.Contains(r.stderr, "eyJ") {
		t.Fatalf("%v", r)
	}
	outputs = append(outputs, r.stderr)

	// status sees the worker.
	r = h.run(t, "status", "--json")
	var st struct {
		Workers struct {
			Instances []json.RawMessage `json:"instances"`
		} `json:"workers"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); r.code != 0 || err != nil || len(st.Workers.Instances) != 1 {
		t.Fatalf("status: %v", r)
	}

	testenv.Eventually(t, 10*time.Second, "the jobs stream drained", func() bool {
		return env.StreamCount(t, env.Topology.JobsStream) == 0
	})
	for _, stream := range []string{env.Topology.JobsStream, env.Topology.ResultsStream, env.Topology.DeadLetterStream} {
		for _, m := range env.StreamMsgs(t, stream) {
			for name, s := range secrets {
				if strings.Contains(string(m.Data), s) || strings.Contains(fmt.Sprint(m.Header), s) {
					t.Errorf("the %s appears in stream %s seq %d", name, stream, m.Sequence)
				}
			}
		}
	}
	logs := env.Logs.String() + strings.Join(outputs, "")
	for name, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("the %s appears in a log or on standard error", name)
		}
	}
}

// TestE2EReplayAfterFault dead-letters jobs while Clerk fails, then replays
// them through the command line once Clerk is healthy: they succeed, and the
// queue is empty.
func TestE2EReplayAfterFault(t *testing.T) {
	env, h := e2e(t)
	emu := env.Clerk.Emulator
	ids := emu.CreateSessions(emu.CreateUser(), 4)
	emu.SetFaults(emulator.Faults{ErrorRate: 1})
	env.StartWorker(t)

	// With --wait, the failure is the answer: exit 1.
	res, r := waitResult(t, h, "revoke", ids[0], "--job-id", "first")
	if r.code != publishcli.ExitJobFailed || res.Outcome != jobs.Failed || res.Error == nil || res.Error.Class != jobs.ClassExhausted {
		t.Fatalf("%v", r)
	}
	var lines strings.Builder
	for _, id := range ids[1:] {
		fmt.Fprintf(&lines, `{"session_id":%q}`+"\n", id)
	}
	if r := h.run(t, "revoke", "--file", writeFile(t, "batch.ndjson", lines.String()), "--batch-id", "inc"); r.code != 0 {
		t.Fatalf("%v", r)
	}
	testenv.Eventually(t, 20*time.Second, "4 dead letters", func() bool {
		return env.StreamCount(t, env.Topology.DeadLetterStream) == 4
	})
	if got := listSeqs(t, h, "--class", "exhausted", "--op", "revoke"); len(got) != 4 {
		t.Fatalf("dlq list found %v; the whole queue:\n%s", got, h.run(t, "dlq", "list", "--json").stdout)
	}

	emu.SetFaults(emulator.Faults{})
	r = h.run(t, "dlq", "replay", "--class", "exhausted", "--since", "1h")
	if r.code != 0 || !strings.Contains(r.stdout, "replayed 4, skipped 0, failed 0") {
		t.Fatalf("%v", r)
	}
	testenv.Eventually(t, 20*time.Second, "4 successes", func() bool { return len(env.Results(t)) == 4 })
	want := map[string]bool{"first": true, "inc-1": true, "inc-2": true, "inc-3": true}
	for _, res := range env.Results(t) {
		if res.Outcome != jobs.Succeeded || !want[res.JobID] {
			t.Errorf("result %+v", res)
		}
		delete(want, res.JobID)
	}
	for _, id := range ids {
		if s, _ := emu.Session(id); s.Status != clerkapi.StatusRevoked {
			t.Errorf("session %s is %s after the replay", id, s.Status)
		}
	}
	if n := env.StreamCount(t, env.Topology.DeadLetterStream); n != 0 {
		t.Errorf("%d dead letters left", n)
	}
}
