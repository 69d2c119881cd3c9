package worker

import (
	"fmt"
	"strings"
	"testing"

	"github.com/clerkjobs/clerkjobs/internal/embedded"
	"github.com/clerkjobs/clerkjobs/internal/redact"
)

// TestJobsStreamErrorIsRedacted: why the jobs stream could not be read is
// shown in the status (jobs_stream.error, /readyz) as text from elsewhere
// (JetStream's, or whatever sits in front of it), so it goes through
// redact.Text as the reasons of records do: a secret-shaped string in it
// is not shown, and the rest of the words are.
func TestJobsStreamErrorIsRedacted(t *testing.T) {
	srv, err := embedded.StartConnected(embedded.Options{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	w := newEmulatedWorker(t, srv.Conn)
	cases := []struct{ name, format, secret string }{
		{"a session token", "nats: permissions violation (echoed: Authorization: Bearer %s)", "eyJ" + "hbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyXzEifQ.c2lnbmF0dXJlc2lnbmF0dXJl"},
		{"a Clerk key", "nats: permissions violation (echoed: key %s)", "sk_" + "live_" + "0123456789abcdefghijklmnop"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w.noteJobsStream(nil, fmt.Errorf(c.format, c.secret))
			st := w.Status().JobsStream
			if st == nil {
				t.Fatal("no jobs_stream in the status after a read")
			}
			if strings.Contains(st.Error, c.secret) || !strings.Contains(st.Error, redact.Placeholder) ||
				!strings.Contains(st.Error, "cannot read the jobs stream "+w.cfg.Topology.JobsStream+": nats: permissions violation") {
				// The secret itself is not printed: test output is a log too.
				t.Errorf("jobs_stream.error %q: want JetStream's words with the secret replaced by %q",
					strings.ReplaceAll(st.Error, c.secret, "<the secret>"), redact.Placeholder)
			}
		})
	}
}
