package jobs

import (
	"encoding/json"
	"testing"
	"time"
)

var benchRevoke = []byte(`{"job_id":"job-123456","session_id":"sess_2abcdefghijklmnopqrstuvwxyz","reply_to":"_INBOX.acme.abcdefghijklmnop"}`)

func BenchmarkDecode(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(OpRevoke, benchRevoke); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDigest(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		Digest("clerk.jobs.acme.revoke", benchRevoke)
	}
}

func BenchmarkResultMarshal(b *testing.B) {
	b.ReportAllocs()
	now := time.Now()
	r := Result{JobID: "job-123456", Tenant: "acme", Op: OpRevoke, Outcome: Succeeded, Attempts: 1, ClerkCalls: 1, Deliveries: 1, StreamSeq: 12345,
		EnqueuedAt: now, StartedAt: now, FinishedAt: now, DurationMS: 1.234, Worker: "worker-abc", Result: json.RawMessage(`{"id":"sess_2abc","status":"revoked"}`)}
	for b.Loop() {
		if _, err := json.Marshal(r); err != nil {
			b.Fatal(err)
		}
	}
}
