package clerkjobs_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs"
	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/clerkjobstest"
	"github.com/clerkjobs/clerkjobs/jobs"
)

const attackerJWT = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhdHRhY2tlciJ9.forged"

// TestForgedAnswersAreIgnored: anyone who may publish to the requester's
// inbox once made RevokeSession report success from an answer saying op
// get, tenant svc_b, stream_seq 4242, and SessionToken return an
// attacker's JWT from an answer saying op revoke: only the job id was
// checked. Now an answer must match the job's op, the client's tenant and
// the sequence JetStream gave the job; the forgeries are ignored, the wait goes on, and the real worker's answer is
// returned.
func TestForgedAnswersAreIgnored(t *testing.T) {
	env := clerkjobstest.New(t, clerkjobstest.WithoutWorker())
	emu := env.Clerk.Emulator
	user := emu.CreateUser()
	sess := emu.CreateSessions(user, 6)
	ctx := testContext(t, 60*time.Second)

	// forge is the answer a forger sends, given the job as stored (its
	// stream sequence is in plain sight of whoever reads the stream).
	type forge func(id string, seq uint64) string
	session := func(id string) string {
		return `{"object":"session","id":"` + id + `","status":"revoked","user_id":"` + user + `"}`
	}
	answer := func(jobID, op, tenant string, seq uint64, result, secret string) string {
		b, _ := json.Marshal(map[string]any{"job_id": jobID, "op": op, "tenant": tenant, "outcome": "succeeded", "stream_seq": seq,
			"finished_at": time.Now(), "duration_ms": 1, "attempts": 1, "deliveries": 1, "worker": "forger",
			"result": json.RawMessage(result), "secret": json.RawMessage(secret)})
		return string(b)
	}
	tokenSecret := `{"object":"token","jwt":"` + attackerJWT + `"}`
	cases := []struct {
		name  string
		op    jobs.Op
		forge forge
	}{
		{"revoke answered as a get", jobs.OpRevoke, func(id string, seq uint64) string {
			return answer(id, "get", "", seq, session(sess[0]), "null")
		}},
		{"revoke answered for another tenant", jobs.OpRevoke, func(id string, seq uint64) string {
			return answer(id, "revoke", "svc_b", seq, session(sess[1]), "null")
		}},
		{"revoke answered with another sequence", jobs.OpRevoke, func(id string, seq uint64) string {
			return answer(id, "revoke", "", 4242, session(sess[2]), "null")
		}},
		{"token answered as a revoke", jobs.OpToken, func(id string, seq uint64) string {
			return answer(id, "revoke", "", seq, "null", tokenSecret)
		}},
		{"token answered with another sequence", jobs.OpToken, func(id string, seq uint64) string {
			return answer(id, "token", "", seq+1000, "null", tokenSecret)
		}},
	}
	type outcome struct {
		revoked *clerkjobs.Revocation
		token   clerkjobs.Token
		err     error
	}
	done := make([]chan outcome, len(cases))
	for i, tc := range cases {
		done[i] = make(chan outcome, 1)
		jobID := fmt.Sprintf("forged-%d", i)
		go func() {
			var o outcome
			switch tc.op {
			case jobs.OpRevoke:
				o.revoked, o.err = env.Client.RevokeSession(ctx, sess[i], &clerkjobs.RevokeOptions{JobID: jobID})
			default:
				o.token, o.err = env.Client.SessionToken(ctx, sess[i], &clerkjobs.TokenOptions{JobID: jobID})
			}
			done[i] <- o
		}()
	}
	// The forger reads each job's inbox and sequence from the stream (no
	// worker yet: the jobs wait there) and answers first.
	stream, err := env.JetStream.Stream(ctx, env.Topology.JobsStream)
	if err != nil {
		t.Fatal(err)
	}
	for i, tc := range cases {
		jobID := fmt.Sprintf("forged-%d", i)
		replyTo, seq := storedJob(ctx, t, stream, jobID)
		if err := env.Conn.Publish(replyTo, []byte(tc.forge(jobID, seq))); err != nil {
			t.Fatal(err)
		}
	}
	if err := env.Conn.Flush(); err != nil {
		t.Fatal(err)
	}
	// Nothing forged ends a wait.
	time.Sleep(200 * time.Millisecond)
	for i, tc := range cases {
		select {
		case o := <-done[i]:
			t.Fatalf("%s: returned before the worker answered: %+v", tc.name, o)
		default:
		}
	}
	env.StartWorker(t)
	for i, tc := range cases {
		o := <-done[i]
		switch {
		case o.err != nil:
			t.Errorf("%s: %v", tc.name, o.err)
		case tc.op == jobs.OpRevoke && (o.revoked.Session.ID != sess[i] || o.revoked.Session.Status != clerkapi.StatusRevoked):
			t.Errorf("%s: %+v, want the worker's answer about %s", tc.name, o.revoked, sess[i])
		case tc.op == jobs.OpToken && (o.token.JWT() == attackerJWT || !strings.HasPrefix(o.token.JWT(), "eyJ")):
			t.Errorf("%s: the forger's token was returned", tc.name)
		}
	}
	if got, _ := emu.Session(sess[0]); got.Status != clerkapi.StatusRevoked {
		t.Errorf("session %s is %s: the revoke the forger reported done did not run", sess[0], got.Status)
	}
}

// storedJob waits for the job jobID in the jobs stream and returns its
// reply_to and sequence.
func storedJob(ctx context.Context, t *testing.T, stream jetstream.Stream, jobID string) (string, uint64) {
	t.Helper()
	for {
		info, err := stream.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for s := info.State.FirstSeq; s <= info.State.LastSeq && s > 0; s++ {
			m, err := stream.GetMsg(ctx, s)
			if err != nil {
				continue
			}
			var c jobs.Common
			if json.Unmarshal(m.Data, &c) == nil && c.JobID == jobID {
				return c.ReplyTo, s
			}
		}
		if ctx.Err() != nil {
			t.Fatal(ctx.Err())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestJobErrorIsRedacted: a failure's message, from the worker's answer
// (which may quote Clerk, or a proxy that echoed the request), went into
// JobError.Error and so into callers' logs: a "Bearer sk_live_..." and a
// JWT were seen there. Now nothing shaped like a secret is left in the
// error's text nor in its fields.
func TestJobErrorIsRedacted(t *testing.T) {
	env := clerkjobstest.New(t, clerkjobstest.WithoutWorker())
	ctx := testContext(t, 30*time.Second)
	stream, err := env.JetStream.Stream(ctx, env.Topology.JobsStream)
	if err != nil {
		t.Fatal(err)
	}
	for i, tc := range []struct{ name, text, secret string }{
		{"jwt", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyXzEifQ.c2lnbmF0dXJlLXBhcnQ", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyXzEifQ"},
		{"live key", "sk_" + "live_0123456789abcdefABCDEF", "sk_" + "live_0123456789abcdef"},
		{"test key", "sk_test_0123456789abcdefABCDEF", "sk_test_0123456789abcdef"},
		{"bearer key", "Bearer sk_" + "live_0123456789abcdefABCDEF", "0123456789abcdef"},
		{"bearer token", "Bearer abcdefghijklmnopqrstuvwxyz0123456789", "abcdefghijklmnopqrstuvwxyz0123456789"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			jobID := fmt.Sprintf("leak-%d", i)
			errc := make(chan error, 1)
			go func() {
				_, err := env.Client.RevokeSession(ctx, "sess_1", &clerkjobs.RevokeOptions{JobID: jobID})
				errc <- err
			}()
			replyTo, seq := storedJob(ctx, t, stream, jobID)
			msg := "proxy echoed Authorization: " + tc.text
			b, _ := json.Marshal(jobs.Result{JobID: jobID, Op: jobs.OpRevoke, Outcome: jobs.Failed, StreamSeq: seq, FinishedAt: time.Now(),
				Error: &jobs.ErrorInfo{Class: jobs.ClassPermanent, Message: msg, HTTPStatus: 502, ClerkCode: "proxy", ClerkMessage: msg}})
			if err := env.Conn.Publish(replyTo, b); err != nil {
				t.Fatal(err)
			}
			err := <-errc
			var je *clerkjobs.JobError
			if !errors.As(err, &je) {
				t.Fatalf("RevokeSession: %v, want a *JobError", err)
			}
			for name, s := range map[string]string{"Error()": err.Error(), "Message": je.Message, "ClerkMessage": je.ClerkMessage} {
				if strings.Contains(s, tc.secret) || !strings.Contains(s, "[REDACTED]") {
					t.Errorf("%s = %q: the secret is not redacted", name, s)
				}
			}
		})
	}
}
