package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/handlers"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
	"github.com/clerkjobs/clerkjobs/worker"
)

// leaky fails to encode with an error that quotes its value, as a careless
// MarshalJSON might.
type leaky string

func (l leaky) MarshalJSON() ([]byte, error) { return nil, fmt.Errorf("cannot encode %s", string(l)) }

const answerSecret = "eyJhbGciOiJSUzI1NiJ9.SECRET-ANSWER"

// TestHandlerAnswers: whatever a custom handler answers, the job ends at
// once in one record that says what happened. A typed answer is stored as
// its JSON and bytes as the JSON they hold. An answer that cannot be
// encoded dead-letters the job as permanent after one delivery (it used
// to be nakked until its deliveries ran out, repeating the Clerk call each
// time), and a secret that cannot be encoded reaches neither the reply nor
// the dead letter nor the log.
func TestHandlerAnswers(t *testing.T) {
	env := testenv.New(t)
	answers := map[string]handlers.Answer{
		"sess_typed":       {Result: struct{ Status string }{"revoked"}},
		"sess_bytes":       {Result: []byte(`{"status":"revoked"}`)},
		"sess_none":        {Result: json.RawMessage(nil)},
		"sess_badjson":     {Result: json.RawMessage(`{"status":`)},
		"sess_badvalue":    {Result: leaky("not secret")},
		"sess_secret":      {Secret: struct{ JWT string }{answerSecret}},
		"sess_nowhere":     {Secret: struct{ JWT string }{answerSecret}},
		"sess_leakysecret": {Secret: leaky(answerSecret)},
	}
	h := handlers.HandlerFunc(func(_ context.Context, a jobs.Args) (handlers.Answer, error) {
		var id string
		switch a := a.(type) {
		case *jobs.GetArgs:
			id = a.SessionID
		case *jobs.TokenArgs:
			id = a.SessionID
		}
		if out, ok := answers[id]; ok {
			return out, nil
		}
		return handlers.Answer{}, errors.New("no answer for " + id)
	})
	env.StartWorkerWith(t, env.ClerkClient(t, ""), env.WorkerConfig(), worker.WithHandler(h))

	stored := []struct {
		session, want string // want: the stored result's "result", "" for none
	}{
		{"sess_typed", `{"Status":"revoked"}`},
		{"sess_bytes", `{"status":"revoked"}`},
		{"sess_none", ""},
		{"sess_nowhere", ""}, // a secret, and no reply_to to send it to
	}
	for _, c := range stored {
		env.Publish(t, &jobs.GetArgs{Common: jobs.Common{JobID: c.session}, SessionID: c.session})
	}
	failing := []string{"sess_badjson", "sess_badvalue"}
	for _, s := range failing {
		env.Publish(t, &jobs.GetArgs{Common: jobs.Common{JobID: s}, SessionID: s})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	tok, err := env.Client.Request(ctx, &jobs.TokenArgs{Common: jobs.Common{JobID: "sess_secret"}, SessionID: "sess_secret"})
	if err != nil {
		t.Fatalf("typed secret: %v", err)
	}
	if string(tok.Secret.Reveal()) != `{"JWT":"`+answerSecret+`"}` || !tok.SecretDelivered {
		t.Errorf("typed secret: %+v, %v; want it delivered to the requester", tok, err)
	}
	bad, err := env.Client.Request(ctx, &jobs.TokenArgs{Common: jobs.Common{JobID: "sess_leakysecret"}, SessionID: "sess_leakysecret"})
	if err == nil || (bad != nil && !bad.Secret.IsZero()) {
		t.Errorf("secret that cannot be encoded: %+v, %v; want a failure without a secret", bad, err)
	}

	testenv.Eventually(t, 10*time.Second, "every job recorded", func() bool {
		return len(env.Results(t)) == len(stored)+1 && len(deadLetters(t, env)) == len(failing)+1
	})
	byID := map[string]jobs.Result{}
	for _, r := range env.Results(t) {
		byID[r.JobID] = r
	}
	for _, c := range stored {
		if got := string(byID[c.session].Result); got != c.want {
			t.Errorf("%s: stored result %q, want %q", c.session, got, c.want)
		}
	}
	if r := byID["sess_secret"]; r.Result != nil || r.Secret != nil || !r.SecretDelivered {
		t.Errorf("stored result of the secret answer: %+v; want no answer, no secret, secret_delivered", r)
	}
	if byID["sess_nowhere"].SecretDelivered {
		t.Errorf("a secret answer to a job without reply_to is recorded as delivered")
	}
	dls := deadLetters(t, env)
	for _, id := range append(failing, "sess_leakysecret") {
		dl := dls[id]
		if dl.Error.Class != jobs.ClassPermanent || dl.Deliveries != 1 || !strings.Contains(dl.Error.Message, "cannot be encoded as JSON") {
			t.Errorf("%s: dead letter %+v after %d deliveries; want permanent, one delivery, saying the answer cannot be encoded", id, dl.Error, dl.Deliveries)
		}
	}
	var stream strings.Builder
	for _, m := range env.StreamMsgs(t, env.Topology.ResultsStream) {
		stream.Write(m.Data)
	}
	for where, text := range map[string]string{
		"results stream": stream.String(),
		"dead letter":    fmt.Sprintf("%+v", dls["sess_leakysecret"]),
		"reply":          fmt.Sprintf("%+v %v", bad, err),
		"worker log":     env.Logs.String(),
	} {
		if strings.Contains(text, "SECRET-ANSWER") {
			t.Errorf("the secret answer reached the %s", where)
		}
	}
}
