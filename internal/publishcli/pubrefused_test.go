package publishcli_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/internal/publishcli"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestPublishRefusedByPermissionsSaysSo: a user the server does not let
// publish on the job's subject (another tenant's, or a mistyped op) gets no
// acknowledgement: the server drops the job and reports a permissions
// violation apart. publish said only "JetStream did not acknowledge …: it
// may or may not be stored", and left the violation out because its text
// named the same subject. The job was refused, not lost on the way: it
// says so, and what to do.
func TestPublishRefusedByPermissionsSaysSo(t *testing.T) {
	s := testenv.StartLimitedServer(t, `{publish: {deny: ["sessions.revoke"]}}`)
	admin := testenv.ConnectAs(t, s, "admin")
	js, err := jetstream.New(admin)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := jobs.DefaultTopology().Ensure(ctx, js); err != nil {
		t.Fatal(err)
	}
	h := &harness{}
	r := h.runWith(t, runOpts{env: map[string]string{"NATS_URL": s.ClientURL(), "NATS_USER": "worker", "NATS_PASSWORD": "worker"}},
		"revoke", "sess_1", "--ack-timeout", "2s")
	if r.code != publishcli.ExitUnavailable || !strings.Contains(r.stderr, "NOT stored") || !strings.Contains(r.stderr, "permissions violation") || strings.Contains(r.stderr, "may or may not") {
		t.Fatalf("publish on a subject the user may not publish to: %v; want exit 4 saying the server refused it (permissions violation)", r)
	}
}
