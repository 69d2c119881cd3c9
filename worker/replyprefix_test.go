package worker_test

import (
	"strings"
	"testing"

	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/worker"
)

// TestReplyPrefixThatCannotWorkIsRefused: a reply prefix every reply_to
// would fail against is refused by New, naming it, instead of every job
// with a reply_to being dead-lettered as invalid once the worker runs. A
// tenant's reply_to must start with <prefix><tenant>., so a prefix without
// its final dot ("_INBOX") glues the tenant to it ("_INBOXsvc_a.") and no
// tenant's job can ever be answered.
func TestReplyPrefixThatCannotWorkIsRefused(t *testing.T) {
	e := testenv.New(t)
	for _, tc := range []struct{ prefix, want string }{
		{"_INBOX", "must end with '.'"},
		{"_INBOX.svc", "must end with '.'"},
		{" .", "not a subject"},
		{"_INBOX.\x1b[2J.", "not a subject"},
		{"_INBOX.*.", "not a subject"},
		{"$JS.", "system subject"},
		{"sessions.", "jobs prefix"},
	} {
		cfg := e.WorkerConfig()
		cfg.ReplyPrefixes = []string{"_INBOX.", tc.prefix}
		_, err := worker.New(e.NC, e.ClerkClient(t, ""), cfg)
		if err == nil || !strings.Contains(err.Error(), "reply prefix") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("reply prefix %q: New = %v; want an error about the reply prefix saying %q", tc.prefix, err, tc.want)
		}
	}
	for _, ok := range [][]string{{"_INBOX."}, {""}, {"_INBOX.", "replies.svc."}} {
		cfg := e.WorkerConfig()
		cfg.ReplyPrefixes = ok
		if err := cfg.Validate(); err != nil {
			t.Errorf("reply prefixes %q: %v", ok, err)
		}
	}
}
