package clerkjobs_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs"
	"github.com/clerkjobs/clerkjobs/clerkjobstest"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// A secret never shows in %v, %+v, %#v (or any verb), JSON or a log line of
// any value holding it: a Token, a Result, a JobError.
func TestSecretsNeverPrint(t *testing.T) {
	env := clerkjobstest.New(t)
	emu := env.Clerk.Emulator
	id := emu.CreateSessions(emu.CreateUser(), 1)[0]
	ctx := testContext(t, 30*time.Second)

	var res *clerkjobs.Result
	r, err := env.Client.Request(ctx, &jobs.TokenArgs{SessionID: id})
	if err != nil {
		t.Fatal(err)
	}
	res = r
	tok, err := res.Secret.Token()
	if err != nil {
		t.Fatal(err)
	}
	jwt := tok.JWT()
	if strings.Count(jwt, ".") != 2 {
		t.Fatalf("not a JWT: %d bytes", len(jwt))
	}
	if !strings.Contains(string(res.Reveal().Secret), jwt) || !strings.Contains(string(res.Secret.Reveal()), jwt) {
		t.Fatal("Reveal does not give the secret: the checks below prove nothing")
	}
	// A JWT's three parts, each of which would give it away.
	parts := strings.Split(jwt, ".")

	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("got", "token", tok, "secret", res.Secret, "result", res)
	jsonResult, _ := json.Marshal(res)
	jsonToken, _ := json.Marshal(tok)
	inUnexported := struct{ tok clerkjobs.Token }{tok} // fmt cannot call methods here
	failure := &clerkjobs.JobError{JobID: "j", Result: res}
	values := map[string]any{
		"token": tok, "*token": &tok, "secret": res.Secret, "result": *res, "*result": res,
		"job error": failure, "wrapped": fmt.Errorf("context: %w", failure), "unexported field": inUnexported,
		"map": map[string]any{"t": tok}, "slice": []clerkjobs.Token{tok},
	}
	var out strings.Builder
	for name, v := range values {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
			fmt.Fprintf(&out, "%s %s: "+verb+"\n", name, verb, v)
		}
		if err, ok := v.(error); ok {
			out.WriteString(err.Error())
		}
	}
	out.WriteString(tok.String() + tok.GoString() + res.Secret.String() + res.Secret.GoString())
	out.Write(jsonResult)
	out.Write(jsonToken)
	out.Write(logged.Bytes())
	all := out.String()
	for _, p := range parts {
		if strings.Contains(all, p) || strings.Contains(all, fmt.Sprintf("%x", p)) || strings.Contains(all, fmt.Sprintf("%X", p)) {
			t.Fatalf("a part of the token shows in:\n%s", all)
		}
	}
	if !strings.Contains(all, clerkjobs.Redacted) || !strings.Contains(string(jsonResult), `"secret":"[REDACTED]"`) {
		t.Errorf("the secret is not shown as %s:\n%s", clerkjobs.Redacted, all)
	}

	// The zero values print nothing, and a secret that is no token says so
	// without quoting it.
	if s := fmt.Sprint(clerkjobs.Token{}, clerkjobs.Secret{}); strings.TrimSpace(s) != "" {
		t.Errorf("zero Token and Secret print %q", s)
	}
	if _, err := (clerkjobs.Secret{}).Token(); !errors.Is(err, clerkjobs.ErrNotAToken) {
		t.Errorf("Token of a zero Secret = %v", err)
	}
}
