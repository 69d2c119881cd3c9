package bench_test

import (
	"testing"

	"github.com/clerkjobs/clerkjobs/jobs"
)

// The job contract's hot path, measured here rather than in jobs/ (whose
// tests are another change's): decoding and validating the body of every
// job the worker runs.

func BenchmarkDecode(b *testing.B) {
	for _, c := range []struct {
		name string
		op   jobs.Op
		body string
	}{
		{"revoke", jobs.OpRevoke, `{"job_id":"bench-123456","session_id":"sess_2abcdefghijklmnopqrstuvwxyz0"}`},
		{"token", jobs.OpToken, `{"session_id":"sess_2abcdefghijklmnopqrstuvwxyz0","reply_to":"_INBOX.abcdef.123","expires_in_seconds":120}`},
		{"revoke_all", jobs.OpRevokeAll, `{"user_id":"user_2abc","except_session_ids":["sess_keep1","sess_keep2"]}`},
		{"invalid", jobs.OpRevoke, `{"session_id":"sess_2abc","sesion_id":"x"}`},
	} {
		b.Run(c.name, func(b *testing.B) {
			data := []byte(c.body)
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				_, _ = jobs.Decode(c.op, data)
			}
		})
	}
}
