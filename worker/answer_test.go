package worker_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/clerkjobs/clerkjobs/handlers"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
	"github.com/clerkjobs/clerkjobs/schemas"
	"github.com/clerkjobs/clerkjobs/worker"
)

// leaky fails to encode with an error that quotes its value, as a careless
// MarshalJSON might.
type leaky string

func (l leaky) MarshalJSON() ([]byte, error) { return nil, fmt.Errorf("cannot encode %s", string(l)) }

func resultSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	f, err := schemas.FS.Open("result.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("result.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("result.json")
	if err != nil {
		t.Fatal(err)
	}
	return sch
}

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
		"sess_nowhere":     {Secret: leaky(answerSecret)},
		"sess_tokenresult": {Result: struct{ JWT string }{answerSecret}},
		"sess_tokenempty":  {Secret: json.RawMessage{}},
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
		{"sess_nowhere", ""}, // a secret, and no reply_to to send it to: dropped unencoded
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
	// A token job's answer is a secret or nothing: a secret that cannot be
	// encoded, a Result in its place, or an empty one fails the job.
	badSecrets := []string{"sess_leakysecret", "sess_tokenresult", "sess_tokenempty"}
	var replies strings.Builder
	for _, id := range badSecrets {
		bad, err := env.Client.Request(ctx, &jobs.TokenArgs{Common: jobs.Common{JobID: id}, SessionID: id})
		if err == nil || (bad != nil && !bad.Secret.IsZero()) {
			t.Errorf("%s: %+v, %v; want a failure without a secret", id, bad, err)
		}
		fmt.Fprintf(&replies, "%+v %v\n", bad, err)
	}

	testenv.Eventually(t, 10*time.Second, "every job recorded", func() bool {
		return len(env.Results(t)) == len(stored)+1 && len(deadLetters(t, env)) == len(failing)+len(badSecrets)
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
	if byID["sess_nowhere"].SecretDelivered || !strings.Contains(env.Logs.String(), "secret answer was dropped") {
		t.Errorf("a secret answer to a job without reply_to: recorded as delivered, or dropped without a word")
	}
	dls := deadLetters(t, env)
	for _, c := range []struct{ id, says string }{
		{"sess_badjson", "cannot be encoded as JSON"},
		{"sess_badvalue", "cannot be encoded as JSON"},
		{"sess_leakysecret", "cannot be encoded as JSON"},
		{"sess_tokenresult", "must be a Secret"},
		{"sess_tokenempty", "must be a Secret"},
	} {
		dl := dls[c.id]
		if dl.Error.Class != jobs.ClassPermanent || dl.Deliveries != 1 || !strings.Contains(dl.Error.Message, c.says) {
			t.Errorf("%s: dead letter %+v after %d deliveries; want permanent, one delivery, saying %q", c.id, dl.Error, dl.Deliveries, c.says)
		}
	}
	// What the worker wrote is what schemas/result.json describes.
	sch := resultSchema(t)
	for _, m := range env.StreamMsgs(t, env.Topology.ResultsStream) {
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(m.Data))
		if err == nil {
			err = sch.Validate(doc)
		}
		if err != nil {
			t.Errorf("stored result %s does not fit schemas/result.json: %v", m.Data, err)
		}
	}
	var stream strings.Builder
	for _, m := range env.StreamMsgs(t, env.Topology.ResultsStream) {
		stream.Write(m.Data)
	}
	for where, text := range map[string]string{
		"results stream": stream.String(),
		"dead letters":   fmt.Sprintf("%+v", dls),
		"replies":        replies.String(),
		"worker log":     env.Logs.String(),
	} {
		if strings.Contains(text, "SECRET-ANSWER") {
			t.Errorf("the secret answer reached the %s", where)
		}
	}
}
