package publishcli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/clerkjobs/clerkjobs/dlq"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestShowTextsFollowShowHeader: dlq show (as text and as JSON), dlq list
// (its table and --json) and the line dlq replay and purge print of each
// letter printed the texts a dead letter's headers gave (Dlq-Error,
// Dlq-Clerk-Message, Dlq-Worker, the history's failures, and Dlq-Redacted
// in why it cannot be replayed) cleared of secret shapes only, while the headers it printed below hid those very values by
// jobs.ShowHeader's judgement: a refresh token in a form, or a JWT whose
// dots were escaped, was printed above the line that hid it. Each is
// printed as its header is.
func TestShowTextsFollowShowHeader(t *testing.T) {
	jwt := "eyJ" + "hbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"
	const token = "opaqueTOKEN123"
	for _, v := range []string{
		"session_id=sess_1&refresh_token=" + token,
		`{"job":{"refresh\u005ftoken":"` + token + `"},`,
		`[{"error":"` + strings.ReplaceAll(jwt, ".", `\u002e`),
		strings.Repeat("a", jobs.MaxShownHeader+1),
	} {
		if _, secret := jobs.ShowHeader(jobs.HeaderError, v); !secret {
			t.Fatalf("jobs.ShowHeader(%.80q) shows it: the test needs a value it hides", v)
		}
		hist, err := json.Marshal([]jobs.Failure{{Error: v, Code: v, TraceID: v}})
		if err != nil {
			t.Fatal(err)
		}
		h := nats.Header{}
		h.Set(jobs.HeaderSubject, "sessions.revoke")
		h.Set(jobs.HeaderClass, "permanent")
		for _, k := range []string{jobs.HeaderError, jobs.HeaderClerkMessage, jobs.HeaderClerkCode, jobs.HeaderTraceID,
			jobs.HeaderField, jobs.HeaderWorker, jobs.HeaderJobID, jobs.HeaderRedacted} {
			h.Set(k, v)
		}
		h.Set(jobs.HeaderHistory, string(hist))
		e := dlq.Entry{Seq: 1, Header: h}
		e.DeadLetter, e.HeaderErr = jobs.ParseDeadLetter(h)
		if len(e.DeadLetter.History) != 1 {
			t.Fatalf("history %v: %v", e.DeadLetter.History, e.HeaderErr)
		}
		var text bytes.Buffer
		q := new(dlq.Queue)
		showEntry(&text, e, nil, q.CheckReplay(e), time.UTC)
		j, err := json.Marshal(toJSON(q, e))
		if err != nil {
			t.Fatal(err)
		}
		views := map[string]string{
			"dlq show": text.String(), "dlq show --json": string(j),
			"dlq replay/purge (the letter's line)": letterLine(e, time.UTC), "dlq list": listRow(e, time.Now()),
		}
		for what, out := range views {
			for _, s := range []string{token, "c2lnbmF0dXJl", strings.Repeat("a", 100)} {
				if strings.Contains(out, s) {
					t.Errorf("%s of a letter whose headers hide %.60q prints %q:\n%.2000s", what, v, s, out)
				}
			}
		}
	}
}
