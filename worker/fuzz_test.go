package worker_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// FuzzWholeMessages drives whole messages — subject, a header, a body —
// through a real worker on a real server, and after each one checks that a
// good job published next still succeeds: no message, however hostile,
// stops the worker or poisons what follows.
func FuzzWholeMessages(f *testing.F) {
	long := strings.Repeat("x", 3000)
	for _, s := range []struct {
		subject, key, value, body string
	}{
		{"revoke_all", jetstream.MsgIDHeader, long, `{"user_id":"user_x"}`},
		{"revoke", jetstream.MsgIDHeader, "a\x1b[2J", `{"session_id":"sess_1"}`},
		{"token.request", "Replay-Count", "99999999999999999999", `{"session_id":"sess_1","reply_to":"_INBOX.x"}`},
		{"tenant." + long[:100] + ".revoke", "traceparent", "00-zz", `{"session_id":"sess_1"}`},
		{"tenant.svc_a.refresh", "Nats-Msg-Id", "r1", `{"session_id":"sess_1","expired_token":"eyJhbGciOiJub25lIn0.eyJ4IjoxfQ.","refresh_token":"x","request_origin":"https://a","reply_to":"_INBOX.svc_a.y"}`},
		{"list", "Dlq-Error-Class", "invalid", `{"user_id":"user_1","limit":1e999999}`},
		{"revoke", "", "", `{"session_id":"sess_` + long + `"}`},
		{"get", "X", "\u202e", "\xff\xfe"},
	} {
		f.Add(s.subject, s.key, s.value, []byte(s.body))
	}
	env := testenv.New(f)
	emu := env.Clerk.Emulator
	user := emu.CreateUser()
	env.StartWorker(f)
	pub, err := nats.Connect(env.NATSURL) // a hostile publisher breaks only its own connection
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { pub.Close() })
	n := 0
	f.Fuzz(func(t *testing.T, subject, key, value string, body []byte) {
		if pub.IsClosed() {
			if pub, err = nats.Connect(env.NATSURL); err != nil {
				t.Fatal(err)
			}
		}
		js, err := jetstream.New(pub)
		if err != nil {
			t.Fatal(err)
		}
		m := &nats.Msg{Subject: "sessions." + subject, Header: nats.Header{}, Data: body}
		if key != "" {
			m.Header[key] = []string{value}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, _ = js.PublishMsg(ctx, m) // stored or not: what follows must work
		cancel()

		n++
		session := emu.CreateSessions(user, 1)[0]
		r := request(t, env, &jobs.RevokeArgs{SessionID: session, Common: jobs.Common{JobID: fmt.Sprintf("good-%d", n)}})
		if r.Outcome != jobs.Succeeded {
			t.Fatalf("a good job after a hostile message: %+v", r)
		}
	})
}
