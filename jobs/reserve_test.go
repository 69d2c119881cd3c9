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
			srv := storeOf(t, 1<<30+128<<20)
			top := DefaultTopology()
			top.ResultsMaxBytes = 1 << 20 // fits: the two caps above are the test's
			c.older(t, srv, top)
			_, err := top.Ensure(testContext(t), srv.JetStream)
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
	srv := storeOf(t, 8<<20+GivenUpMaxBytes)
	top := DefaultTopology()
	top.JobsMaxBytes, top.ResultsMaxBytes, top.DeadLetterMaxBytes = 1<<20, 4<<20, 1<<20 // reserved within the 8 MiB, the given-up stream's cap beside
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

// TestEnsureDoesNotCapARecordStreamBelowWhatItHolds: a record stream
// capped below what it holds (an older worker's uncapped results stream
// of a few GiB meeting the new 2 GiB default, or a lowered --dlq-max-bytes)
// refuses every new record until enough age out, a day for results and
// 90 days for dead letters: every worker keeps each job that succeeds (or
// fails), not ready, and the fleet stops, said only once jobs are refused.
// Ensure refuses such a cap instead, before any job runs, naming what the
// stream holds and the setting; the stream is left as it was. A stream
// full at its own cap, or the jobs stream (which the workers work off),
// is capped as configured.
func TestEnsureDoesNotCapARecordStreamBelowWhatItHolds(t *testing.T) {
	cases := []struct {
		name    string
		older   func(top Topology) jetstream.StreamConfig // as an older worker left it
		subject func(top Topology, i int) string
		want    []string // "" refusal: Ensure succeeds
	}{
		{"an older worker's uncapped results stream", func(top Topology) jetstream.StreamConfig {
			c := top.ResultsStreamConfig()
			c.MaxBytes = -1
			return c
		}, func(top Topology, i int) string {
			return top.Subjects.Result(RecordKey{Op: OpList, JobID: fmt.Sprintf("old-%d", i), Gen: "g", Seq: uint64(i + 1)})
		}, []string{"stream SESSION_RESULTS holds", "--results-max-bytes (WORKER_RESULTS_MAX_BYTES)", "1048576", "age out", "nats stream info SESSION_RESULTS"}},
		{"a dead-letter stream whose cap is lowered", func(top Topology) jetstream.StreamConfig {
			c := top.DeadLetterStreamConfig()
			c.MaxBytes = 8 << 20
			return c
		}, func(top Topology, i int) string {
			return top.Subjects.DeadLetter(RecordKey{Op: OpRevoke, JobID: fmt.Sprintf("old-%d", i), Gen: "g", Seq: uint64(i + 1)})
		}, []string{"stream SESSION_DLQ holds", "--dlq-max-bytes (WORKER_DLQ_MAX_BYTES)", "1048576"}},
		{"an uncapped results stream kept longer than configured: the shorter age first", func(top Topology) jetstream.StreamConfig {
			c := top.ResultsStreamConfig()
			c.MaxBytes, c.MaxAge = -1, 2*top.ResultsMaxAge
			return c
		}, func(top Topology, i int) string {
			return top.Subjects.Result(RecordKey{Op: OpList, JobID: fmt.Sprintf("old-%d", i), Gen: "g", Seq: uint64(i + 1)})
		}, []string{"stream SESSION_RESULTS holds", "--results-max-bytes (WORKER_RESULTS_MAX_BYTES)", "shorter max_age 24h0m0s is applied first"}},
		{"an older worker's uncapped jobs stream, worked off by the workers", func(top Topology) jetstream.StreamConfig {
			c := top.JobsStreamConfig()
			c.MaxBytes = -1
			return c
		}, func(top Topology, _ int) string { return top.Subjects.Job(OpRevoke) }, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := storeOf(t, 64<<20)
			top := DefaultTopology()
			top.JobsMaxBytes, top.ResultsMaxBytes, top.DeadLetterMaxBytes = 1<<20, 1<<20, 1<<20
			ctx := testContext(t)
			old := c.older(top)
			if _, err := srv.JetStream.CreateStream(ctx, old); err != nil {
				t.Fatal(err)
			}
			for i := range 40 { // 2.4 MiB, more than the new 1 MiB cap
				if _, err := srv.JetStream.Publish(ctx, c.subject(top, i), make([]byte, 60<<10)); err != nil {
					t.Fatal(err)
				}
			}
			_, err := top.Ensure(ctx, srv.JetStream)
			if c.want == nil {
				if err != nil {
					t.Fatalf("Ensure: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Ensure capped the stream below what it holds: it refuses every new record until they age out")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Ensure: %v\nwant it to say %q", err, w)
				}
			}
			s, err := srv.JetStream.Stream(ctx, old.Name)
			if err != nil {
				t.Fatal(err)
			}
			if got := s.CachedInfo().Config.MaxBytes; got != old.MaxBytes {
				t.Errorf("the stream's max_bytes is %d after the refusal, want it left at %d", got, old.MaxBytes)
			}
			if got, want := s.CachedInfo().Config.MaxAge, min(old.MaxAge, top.ResultsMaxAge); old.Name == top.ResultsStream && got != want {
				t.Errorf("the stream's max_age is %s after the refusal, want %s", got, want)
			}
			if _, err := srv.JetStream.Publish(ctx, c.subject(top, 1000), []byte("{}")); err != nil {
				t.Errorf("a new record refused after the refusal: %v", err)
			}
		})
	}
	// Full at its own cap, as the workers fill it: nothing to refuse.
	srv := storeOf(t, 64<<20)
	top := DefaultTopology()
	top.JobsMaxBytes, top.ResultsMaxBytes, top.DeadLetterMaxBytes = 1<<20, 1<<20, 1<<20
	ensureTopology(t, srv.JetStream, top)
	for i := 0; ; i++ {
		if _, err := srv.JetStream.Publish(testContext(t), top.Subjects.Result(RecordKey{Op: OpList, JobID: fmt.Sprintf("f-%d", i), Gen: "g", Seq: uint64(i + 1)}), make([]byte, 60<<10)); err != nil {
			break
		}
	}
	ensureTopology(t, srv.JetStream, top)
}

// storeOf starts a server whose JetStream may store maxStore bytes, closed
// at cleanup.
func storeOf(t *testing.T, maxStore int64) *embedded.Connected {
	t.Helper()
	srv, err := embedded.StartConnected(embedded.Options{StoreDir: t.TempDir(), MaxStore: maxStore})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

// TestEnsureSaysTheGivenUpStreamsCapDoesNotFit: the given-up stream's cap
// has no setting of its own; a server with no room left for it beside the
// other caps is told so, with the limits to raise and the caps to lower.
func TestEnsureSaysTheGivenUpStreamsCapDoesNotFit(t *testing.T) {
	srv := storeOf(t, 8<<20)
	top := DefaultTopology()
	top.JobsMaxBytes, top.ResultsMaxBytes, top.DeadLetterMaxBytes = 1<<20, 1<<20, 1<<20
	_, err := top.Ensure(testContext(t), srv.JetStream)
	if err == nil {
		t.Fatal("Ensure made a given-up stream of 8 MiB beside 3 MiB of caps on a server of 8 MiB")
	}
	for _, want := range []string{top.GivenUpStream(), fmt.Sprintf("max_bytes %d (fixed)", GivenUpMaxBytes), "max_file_store", "--jobs-max-bytes"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Ensure = %q, want it to say %q", err, want)
		}
	}
}
