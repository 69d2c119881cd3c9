package worker_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/clerkjobstest"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestDeadLetterWithoutBodyKeepsEveryRedactedName: a dead letter stored
// without its body (over max_payload) adds "body" to the names its
// Dlq-Redacted header lists, and keeps those already there as they are,
// the first one too when it is a member named "" (listed as `""`, sorted
// first).
func TestDeadLetterWithoutBodyKeepsEveryRedactedName(t *testing.T) {
	nc := testenv.ConnectWithMaxPayload(t, "16KB")
	cfg := clerkjobstest.WorkerConfig(clerkjobstest.Topology())
	runWorkerOn(t, nc, cfg)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tok := "sk_" + "live_" + strings.Repeat("x", 40)
	body := `{"":"` + tok + `","b":"` + tok + `","session_id":"sess_1","note":"` + strings.Repeat("word ", 3200) + `"}`
	if _, err := js.Publish(ctx, cfg.Topology.Subjects.Job(jobs.OpRevoke), []byte(body)); err != nil {
		t.Fatal(err)
	}
	dlq, err := js.Stream(ctx, cfg.Topology.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "the job dead-lettered", func() bool {
		info, err := dlq.Info(ctx)
		return err == nil && info.State.Msgs == 1
	})
	m, err := dlq.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	dl, err := jobs.ParseDeadLetter(m.Header)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{`""`, "b", "body"}; !slices.Equal(dl.Redacted, want) || len(m.Data) != 0 {
		t.Errorf("dead letter redacted %q with %d bytes of body; want %q and none", dl.Redacted, len(m.Data), want)
	}
}
