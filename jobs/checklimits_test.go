package jobs

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestCheckTakesTheServersRequestBatchLimit: a server configured with a
// JetStream limit on pull requests (jetstream { limits { max_request_batch:
// N } }) gives every pull consumer created or updated without max_batch
// that limit as its max_batch. Check compared the consumer's max_batch with
// 0 and reported a drift a worker's start "sets back", which no start can:
// the server puts its limit back at every update. Each worker's start and
// each topology watch then warned of a change nobody made.
func TestCheckTakesTheServersRequestBatchLimit(t *testing.T) {
	for _, limit := range []int{256, 4} { // above the workers' largest pull, and below
		t.Run(strconv.Itoa(limit), func(t *testing.T) { testCheckTakesTheServersRequestBatchLimit(t, limit) })
	}
}

func testCheckTakesTheServersRequestBatchLimit(t *testing.T, limit int) {
	js := limitedJetStream(t, server.JSLimitOpts{MaxRequestBatch: limit})
	top := DefaultTopology()
	ensureTopology(t, js, top)
	ensureTopology(t, js, top) // a second start "sets it back"
	drifts, err := top.Check(testContext(t), js)
	if err != nil || len(drifts) != 0 {
		t.Fatalf("Check after Ensure on a server limiting pull batches = %v, %v; want no drift", drifts, err)
	}
}

// TestEnsureNamesTheSettingOverAServerLimit: a server whose JetStream
// limits (jetstream { limits { … } }) are below what the workers ask for
// refuses the stream or consumer in its own words, which name neither the
// worker's setting nor the server's; the worker retried with those words
// for ever. The error now says which setting to lower, or which limit to
// raise.
func TestEnsureNamesTheSettingOverAServerLimit(t *testing.T) {
	for _, tc := range []struct {
		name   string
		limits server.JSLimitOpts
		want   []string
	}{
		{"max_ack_pending", server.JSLimitOpts{MaxAckPending: 10},
			[]string{"--max-ack-pending (WORKER_MAX_ACK_PENDING)", "max_ack_pending 1000", "limit of 10", "jetstream { limits { max_ack_pending } }", "--concurrency"}},
		{"jobs duplicate window", server.JSLimitOpts{Duplicates: 90 * time.Second},
			[]string{"--dedup-window (WORKER_DEDUP_WINDOW)", "2m0s", "jetstream { limits { duplicate_window } }"}},
		{"records duplicate window", server.JSLimitOpts{Duplicates: 30 * time.Second},
			[]string{"jetstream { limits { duplicate_window } } to 2m0s or more"}}, // the buckets' too, not 1m
	} {
		t.Run(tc.name, func(t *testing.T) {
			top := DefaultTopology()
			if tc.name == "records duplicate window" {
				top.DedupWindow = 20 * time.Second // the jobs stream's fits: the records' does not
			}
			js := limitedJetStream(t, tc.limits)
			_, err := top.Ensure(testContext(t), js)
			if err == nil {
				t.Fatal("Ensure over a server limit: no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Ensure: %v\nwant it to say %q", err, w)
				}
			}
		})
	}
}

// TestEnsureNamesTheAccountLimit: an account whose JetStream limits leave
// no room for the workers' streams was refused in JetStream's
// words alone ("maximum number of streams reached"), which say neither how
// many the workers need nor which limit to raise.
func TestEnsureNamesTheAccountLimit(t *testing.T) {
	for _, tc := range []struct{ limit, want string }{
		{"max_streams: 2", "the workers need six streams"},
		{"max_streams: 5", "the workers need six streams"}, // one is taken below
	} {
		t.Run(tc.limit, func(t *testing.T) {
			js := configuredJetStream(t, "jetstream: {store_dir: STORE}\n"+
				"accounts: { A: { jetstream: { "+tc.limit+" }, users: [{user: a, password: a}] } }\n", nats.UserInfo("a", "a"))
			if _, err := js.CreateStream(testContext(t), jetstream.StreamConfig{Name: "OTHER", Subjects: []string{"other"}}); err != nil {
				t.Fatal(err)
			}
			_, err := DefaultTopology().Ensure(testContext(t), js)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Ensure in an account with %s: %v; want it to say %q", tc.limit, err, tc.want)
			}
		})
	}
}

// configuredJetStream is JetStream on a server of its own configured by
// conf, its store directory where conf says STORE.
func configuredJetStream(t *testing.T, conf string, connOpts ...nats.Option) jetstream.JetStream {
	t.Helper()
	file := filepath.Join(t.TempDir(), "server.conf")
	if err := os.WriteFile(file, []byte(strings.ReplaceAll(conf, "STORE", strconv.Quote(t.TempDir()))), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(file)
	if err != nil {
		t.Fatal(err)
	}
	opts.Host, opts.Port, opts.NoSigs, opts.NoLog = "127.0.0.1", -1, true, true
	return jetStreamOn(t, opts, connOpts...)
}

// limitedJetStream is JetStream on a server of its own with these limits.
func limitedJetStream(t *testing.T, limits server.JSLimitOpts) jetstream.JetStream {
	t.Helper()
	return jetStreamOn(t, &server.Options{
		Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true,
		JetStream: true, StoreDir: t.TempDir(), JetStreamLimits: limits,
	})
}

// jetStreamOn is JetStream on a server of its own with opts.
func jetStreamOn(t *testing.T, opts *server.Options, connOpts ...nats.Option) jetstream.JetStream {
	t.Helper()
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	t.Cleanup(s.Shutdown)
	nc, err := nats.Connect(s.ClientURL(), connOpts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// TestCheckSaysWhenThereIsNoJetStream: a worker given a NATS server
// started without -js, or connecting as a user whose account has no
// JetStream, retried for ever saying "no responders available for request"
// or "JetStream not enabled for account": neither says what to do.
func TestCheckSaysWhenThereIsNoJetStream(t *testing.T) {
	for _, tc := range []struct{ name, conf, want string }{
		{"server without JetStream", "", "start nats-server with -js"},
		{"account without JetStream", "jetstream: {store_dir: STORE}\naccounts: { A: { users: [{user: a, password: a}] }, B: { jetstream: enabled } }\n",
			"jetstream: enabled in the account's block"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var connOpts []nats.Option
			if tc.conf != "" {
				connOpts = append(connOpts, nats.UserInfo("a", "a"))
			}
			js := configuredJetStream(t, tc.conf, connOpts...)
			_, err := DefaultTopology().Check(testContext(t), js)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Check: %v; want it to say %q", err, tc.want)
			}
		})
	}
}
