package worker_test

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/clerkjobs/clerkjobs/clerkjobstest"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/worker"
)

// TestStartLogHidesTheNATSToken: a server URL may carry a token as its
// user part (nats://TOKEN@host:4222, the nats.go convention); the worker
// names the server it is connected to in its start line, and must not
// write the token there.
func TestStartLogHidesTheNATSToken(t *testing.T) {
	e := testenv.New(t)
	const token = "SECRETnatsToken0123456789"
	u, err := url.Parse(e.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(token) // a server without auth ignores it
	nc, err := nats.Connect(u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	w, err := worker.New(nc, e.ClerkClient(t, ""), e.WorkerConfig())
	if err != nil {
		t.Fatal(err)
	}
	clerkjobstest.Run(t, w)
	testenv.Eventually(t, 10*time.Second, "the worker's start line", func() bool {
		return strings.Contains(e.Logs.String(), "worker started")
	})
	if logs := e.Logs.String(); strings.Contains(logs, token) {
		t.Fatalf("the worker log holds the NATS token:\n%s", logs)
	}
}
