package console

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/clerkjobs/clerkjobs/dlq"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestEntryTextsFollowShowHeader: the entry page showed the texts a dead
// letter's headers gave (Dlq-Error, Dlq-Clerk-Message, Dlq-Worker, the
// history's errors) scrubbed of secret shapes only, and the list its
// error the same way, while the headers table of the same page hid those
// very values whole by jobs.ShowHeader's judgement: a refresh token in a
// form, or a JWT whose dots were escaped, was shown beside the table that
// hid it. Each is shown as the table shows it.
func TestEntryTextsFollowShowHeader(t *testing.T) {
	jwt := "eyJ" + "hbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"
	const token = "opaqueTOKEN123"
	for _, v := range []string{
		"session_id=sess_1&refresh_token=" + token,
		`{"job":{"refresh\u005ftoken":"` + token + `"},`,
		`[{"error":"` + strings.ReplaceAll(jwt, ".", `\u002e`),
		"sk_" + "live_" + "abc\u200bdefghijklmnop",
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
		h.Set(jobs.HeaderError, v)
		h.Set(jobs.HeaderClerkMessage, v)
		h.Set(jobs.HeaderClerkCode, v)
		h.Set(jobs.HeaderTraceID, v)
		h.Set(jobs.HeaderField, v)
		h.Set(jobs.HeaderWorker, v)
		h.Set(jobs.HeaderJobID, v)
		h.Set(jobs.HeaderRedacted, v)
		h.Set(jobs.HeaderHistory, string(hist))
		e := dlq.Entry{Seq: 1, Header: h}
		e.DeadLetter, e.HeaderErr = jobs.ParseDeadLetter(h)
		if len(e.DeadLetter.History) != 1 {
			t.Fatalf("history %v: %v", e.DeadLetter.History, e.HeaderErr)
		}
		s := safeEntry(e)
		d := s.DeadLetter
		texts := map[string]string{
			"error": d.Error.Message, "clerk message": d.Error.ClerkMessage, "clerk code": d.Error.ClerkCode,
			"trace": d.Error.TraceID, "field": d.Error.Field, "worker": d.Worker, "job id": d.JobID,
			"redacted":      strings.Join(d.Redacted, ","),
			"history error": d.History[0].Error, "history code": d.History[0].Code, "history trace": d.History[0].TraceID,
		}
		x := newIndex(nil)
		x.add(e)
		texts["list message"] = x.rows[0].Message
		for what, got := range texts {
			if strings.Contains(got, token) || strings.Contains(got, "c2lnbmF0dXJl") || strings.Contains(got, "defghijklmnop") || strings.Contains(got, "aaaa") {
				t.Errorf("%s of a letter whose header hides %.60q shown as %.80q", what, v, got)
			}
		}
	}
}
