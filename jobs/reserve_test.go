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
