package worker

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// BenchmarkResultEncode: a revoke's result with Clerk's answer kept typed
// and encoded once (what the worker's own handlers return), and with the
// answer encoded by the handler first (json.RawMessage, as they returned
// until the answer became any), which encoding/json then compacts again.
// `go test -run '^$' -bench ResultEncode ./worker/`
func BenchmarkResultEncode(b *testing.B) {
	org := "org_2abcdefghijk"
	sess := &clerkapi.Session{Object: "session", ID: "sess_2abcdefghijklmnopqrstuvwxyz", UserID: "user_2abcdefghijklmnop",
		ClientID: "client_2abcdefghijklmnop", Status: clerkapi.StatusRevoked, LastActiveOrganizationID: &org,
		LastActiveAt: 1700000000000, ExpireAt: 1700000000000, AbandonAt: 1700000000000, UpdatedAt: 1700000000000, CreatedAt: 1700000000000,
		LatestActivity: &clerkapi.SessionActivity{Object: "session_activity", ID: "sess_activity_2abc", DeviceType: "Macintosh",
			BrowserName: "Chrome", BrowserVersion: "120.0.0.0", IPAddress: "203.0.113.7", City: "Berlin", Country: "DE"},
		Tasks: []clerkapi.SessionTask{}}
	now := time.Now()
	res := jobs.Result{JobID: "job-123456", Tenant: "acme", Op: jobs.OpRevoke, Outcome: jobs.Succeeded, Attempts: 1, ClerkCalls: 1,
		Deliveries: 1, StreamSeq: 12345, EnqueuedAt: now, StartedAt: now, FinishedAt: now, DurationMS: 1.234, Worker: "worker-abc"}
	b.Run("typed", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(answered{Result: res, Answer: sess}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("raw", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			raw, err := json.Marshal(sess)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := json.Marshal(answered{Result: res, Answer: json.RawMessage(raw)}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
