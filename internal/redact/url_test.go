package redact_test

import (
	"testing"

	"github.com/clerkjobs/clerkjobs/internal/redact"
)

// A URL with a password or token pasted into a setting that is not a URL
// is found wherever it sits in a value or an error's text, and hidden as
// URLs hides it; an @ after no scheme, and a URL already hidden, are left.
func TestURLCredentials(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		has      bool
	}{
		{`nats://alice:s3cretPW@host:4222`, `nats://alice:xxxxx@host:4222`, true},
		{`invalid argument "https://bob:s3cretPW@h" for "--ack-wait" flag`, `invalid argument "https://bob:xxxxx@h" for "--ack-wait" flag`, true},
		{`open tls://tok3nValue@h: no such file`, `open tls://xxxxx@h: no such file`, true},
		{`nats://u:p@ss@h`, `nats://u:xxxxx@h`, true},
		{"x\nnats://u:pw@h\n", "x\nnats://u:xxxxx@h\n", true},
		{`nats://u:xxxxx@h`, `nats://u:xxxxx@h`, false},
		{`nats://xxxxx@h`, `nats://xxxxx@h`, false},
		{`deploy@host`, `deploy@host`, false},
		{`mail ops@example.com about nats://h:4222`, `mail ops@example.com about nats://h:4222`, false},
		{`nats://@h`, `nats://@h`, false},
		// Cut short before the @ by an error that bounds what it quotes.
		{`sampler "nats://alice:hunter2hunt…" is not supported`, `sampler "nats://alice:xxxxx…" is not supported`, true},
		{`"nats://alice:xxxxx…"`, `"nats://alice:xxxxx…"`, false},
		{`"https://collector.example/v1/tra…"`, `"https://collector.example/v1/tra…"`, false},
		// An @ in a URL's path, query or fragment is not user information,
		// which ends at the first / ? or # (RFC 3986): such a URL was taken
		// for one with a token, and a job id holding it refused.
		{`https://mastodon.social/@alice`, `https://mastodon.social/@alice`, false},
		{`http://localhost:3000/@alice`, `http://localhost:3000/@alice`, false},
		{`https://h/a?b=c@d`, `https://h/a?b=c@d`, false},
		{`https://h:443/#x@y`, `https://h:443/#x@y`, false},
		{`http://[::1]:8080/@alice`, `http://[::1]:8080/@alice`, false},
		{`nats://u:pw@[::1]:4222`, `nats://u:xxxxx@[::1]:4222`, true},
		{`https://mastodon.social/@a,nats://u:pw@h`, `https://mastodon.social/@a,nats://u:xxxxx@h`, true},
		// A password's raw / is still a password's.
		{`nats://alice:ab/cd@h`, `nats://alice:xxxxx@h`, true},
	} {
		if got := redact.URLCredentials(tc.in); got != tc.want {
			t.Errorf("URLCredentials(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if got := redact.HasURLCredentials(tc.in); got != tc.has {
			t.Errorf("HasURLCredentials(%q) = %v, want %v", tc.in, got, tc.has)
		}
	}
}

// TestAll: text someone else chose loses both kinds of secret, each in
// its own way: a Clerk key to the placeholder, a URL's password to xxxxx.
func TestAll(t *testing.T) {
	key := "sk_" + "live_" + "abcdefghijklmnopqrstuvwxyz0123456789ABCD"
	tests := []struct{ in, want string }{
		{"sessions.nats://alice:hunter2@nats-1.revoke", "sessions.nats://alice:xxxxx@nats-1.revoke"},
		{"key " + key + " and nats://alice:hunter2@h", "key " + redact.Placeholder + " and nats://alice:xxxxx@h"},
		{"sessions.revoke", "sessions.revoke"},
		{"deploy@host https://app.example/@alice", "deploy@host https://app.example/@alice"},
	}
	for _, tt := range tests {
		if got := redact.All(tt.in); got != tt.want {
			t.Errorf("All(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
