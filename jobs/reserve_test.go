package jobs

import (
	"fmt"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/internal/embedded"
)

// A server whose JetStream storage cannot hold the capped streams' caps
// (JetStream reserves max_bytes when a stream is created or updated) makes
// Ensure fail; the error names the cap that did not fit, the setting that
// sets it, and the server's limit to raise, so that an operator whose
// server was sized before the jobs stream was capped knows what to do.
func TestEnsureSaysWhichCapDoesNotFit(t *testing.T) {
	cases := []struct {
		name string
		// older makes what an older worker left on the server.
		older func(t *testing.T, c *embedded.Connected, top Topology)
		want  []string
	}{
		{"new streams: the dead-letter cap does not fit beside the jobs cap", func(*testing.T, *embedded.Connected, Topology) {},
			[]string{"stream SESSION_DLQ", "--dlq-max-bytes", "WORKER_DLQ_MAX_BYTES", "1073741824", "max_file_store", "account"}},
		{"an older worker's uncapped jobs stream beside the dead letters", func(t *testing.T, c *embedded.Connected, top Topology) {
			old := top.JobsStreamConfig()
			old.MaxBytes = -1
			if _, err := c.JetStream.CreateStream(testContext(t), old); err != nil {
				t.Fatal(err)
			}
			if _, err := c.JetStream.CreateStream(testContext(t), top.DeadLetterStreamConfig()); err != nil {
				t.Fatal(err)
			}
		}, []string{"stream SESSION_JOBS", "--jobs-max-bytes", "WORKER_JOBS_MAX_BYTES", "268435456", "max_file_store", "account"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// Room for the dead-letter cap, not for both.
			srv, err := embedded.StartConnected(embedded.Options{StoreDir: t.TempDir(), MaxStore: 1<<30 + 128<<20})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(srv.Close)
			top := DefaultTopology()
			top.ResultsMaxBytes = 1 << 20 // fits: the two caps above are the test's
			c.older(t, srv, top)
			_, err = top.Ensure(testContext(t), srv.JetStream)
			if err == nil {
				t.Fatal("Ensure on a server without room for both caps succeeded")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Ensure: %v\nwant it to say %q", err, w)
				}
			}
		})
	}
}

// The refusals JetStream gives for a cap that does not fit, single server
// and clustered, and for the account's own limits, each with what to do;
// other refusals, and streams without a cap, get nothing added.
func TestNoRoomForCap(t *testing.T) {
	capped := DefaultTopology().JobsStreamConfig()
	memory := capped
	memory.Storage = jetstream.MemoryStorage
	uncapped := DefaultTopology().ResultsStreamConfig()
	uncapped.MaxBytes = 0
	const setting = "--jobs-max-bytes (WORKER_JOBS_MAX_BYTES)"
	cases := []struct {
		name  string
		cfg   jetstream.StreamConfig
		err   error
		limit string // "": nothing said
	}{
		{"server's file storage", capped, &jetstream.APIError{ErrorCode: 10047, Description: "insufficient storage resources available"}, "max_file_store"},
		{"server's memory", memory, &jetstream.APIError{ErrorCode: 10028, Description: "insufficient memory resources available"}, "max_memory_store"},
		{"account's max stream bytes", capped, &jetstream.APIError{ErrorCode: 10122, Description: "stream max bytes exceeds account limit max stream bytes"}, "max_file_store"},
		{"clustered, no peer with room", capped, fmt.Errorf("wrapped: %w", &jetstream.APIError{ErrorCode: 10005, Description: "no suitable peers for placement, insufficient storage"}), "max_file_store"},
		{"clustered, no peer for tags", capped, &jetstream.APIError{ErrorCode: 10005, Description: "no suitable peers for placement, tags not matched ['x']"}, ""},
		{"no permission", capped, &jetstream.APIError{ErrorCode: 10039, Description: "not authorized"}, ""},
		{"uncapped stream", uncapped, &jetstream.APIError{ErrorCode: 10047, Description: "insufficient storage resources available"}, ""},
	}
	for _, c := range cases {
		got := noRoomForCap(c.cfg, setting, c.err)
		switch {
		case c.limit == "" && got != "":
			t.Errorf("%s: %q, want nothing", c.name, got)
		case c.limit != "" && (!strings.Contains(got, c.limit) || !strings.Contains(got, setting) || !strings.Contains(got, fmt.Sprint(c.cfg.MaxBytes))):
			t.Errorf("%s: %q, want the cap %d, %s and %s named", c.name, got, c.cfg.MaxBytes, setting, c.limit)
		}
	}
}

// TestResultsCannotStarveTheOtherStreams: JetStream counts what every
// stream stores against the account's or server's storage, whatever the
// caps reserved. The results stream had no cap: results (a tenant's flood
// of 300 KB list answers, or a day of revokes at Clerk's rate) filled the
// storage, and then the jobs stream refused every tenant's new jobs and the
// dead-letter stream every dead letter. Results now stop at their own cap.
func TestResultsCannotStarveTheOtherStreams(t *testing.T) {
	srv, err := embedded.StartConnected(embedded.Options{StoreDir: t.TempDir(), MaxStore: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	top := DefaultTopology()
	top.JobsMaxBytes, top.ResultsMaxBytes, top.DeadLetterMaxBytes = 1<<20, 4<<20, 1<<20 // reserved within the 8 MiB
	ensureTopology(t, srv.JetStream, top)
	ctx := testContext(t)
	big := make([]byte, 60<<10)
	for i := 0; ; i++ {
		_, err := srv.JetStream.Publish(ctx, top.Subjects.Result(RecordKey{Tenant: "svc_a", Op: OpList, JobID: fmt.Sprintf("flood-%d", i), Gen: "g", Seq: uint64(i + 1)}), big)
		if err != nil {
			if !StreamFull(err) {
				t.Fatalf("result %d refused, but not by the results stream's own cap: %v", i, err)
			}
			break
		}
		if i > 1000 {
			t.Fatal("1000 results of 60 KiB stored: the results stream has no cap")
		}
	}
	if _, err := srv.JetStream.Publish(ctx, top.Subjects.TenantJob("svc_b", OpRevoke), []byte(`{"session_id":"sess_1"}`)); err != nil {
		t.Errorf("with the results stream full, another tenant's job was refused: %v", err)
	}
	if _, err := srv.JetStream.Publish(ctx, top.Subjects.DeadLetter(RecordKey{Tenant: "svc_b", Op: OpRevoke, JobID: "j", Gen: "g", Seq: 1}), []byte(`{}`)); err != nil {
		t.Errorf("with the results stream full, a dead letter was refused: %v", err)
	}
}
