package jobs

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// TestEnsureNamesTheLimitTheBucketsNeed: a server whose JetStream limits
// allow a duplicate_window below 2m refuses the key-value buckets, whose
// window NATS fixes at 2m (their TTL is longer), whatever the worker's
// --dedup-window. The jobs stream's hint said lowering --dedup-window would
// do; an operator who did was then refused the buckets with no hint at all.
func TestEnsureNamesTheLimitTheBucketsNeed(t *testing.T) {
	js := limitedJetStream(t, server.JSLimitOpts{Duplicates: 90 * time.Second})
	for _, tc := range []struct {
		dedup time.Duration
		want  string
	}{
		{2 * time.Minute, "the workers' key-value buckets need it at 2m0s or more"}, // the jobs stream refused
		{time.Minute, "jetstream { limits { duplicate_window } } to 2m0s or more"},  // the streams fit: a bucket refused
	} {
		top := DefaultTopology()
		top.DedupWindow = tc.dedup
		_, err := top.Ensure(testContext(t), js)
		if err == nil {
			t.Fatalf("Ensure with --dedup-window %s under a duplicate_window of 90s: no error", tc.dedup)
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Ensure with --dedup-window %s: %v\nwant it to say %q", tc.dedup, err, tc.want)
		}
	}
}
