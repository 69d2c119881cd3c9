package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/internal/text"
	"github.com/clerkjobs/clerkjobs/jobs"
)

func TestBadConfigurationExits2NamingTheSetting(t *testing.T) {
	cases := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"concurrency", []string{"--concurrency", "0"}, nil, "--concurrency (WORKER_CONCURRENCY): concurrency 0"},
		{"not a number", []string{"--concurrency", "many"}, nil, "--concurrency"},
		{"env fallback", nil, map[string]string{"WORKER_RATE_LIMIT": "-3"}, `rate limit "-3"`},
		{"env garbage", nil, map[string]string{"WORKER_ACK_WAIT": "soon"}, "WORKER_ACK_WAIT"},
		{"secret key shape", nil, map[string]string{"CLERK_SECRET_KEY": "pk_test_123"}, "CLERK_SECRET_KEY"},
		{"api url", []string{"--clerk-api-url", "api.clerk.com"}, nil, "--clerk-api-url"},
		{"api url without /v1", []string{"--clerk-api-url", "http://127.0.0.1:8090"}, map[string]string{"CLERK_SECRET_KEY": "sk_" + "test_" + "4fTq9ZbW2xKcL8mN3vRy7HjD"}, "does not end in /v1"},
		{"live key over http", []string{"--clerk-api-url", "http://clerk-emulator:8090/v1"}, map[string]string{"CLERK_SECRET_KEY": "sk_" + "live_" + "4fTq9ZbW2xKcL8mN3vRy7HjD"}, "--clerk-api-url (CLERK_API_URL): clerkapi: a live secret key (sk_live_…) goes only over https"},
		{"replicas", []string{"--replicas", "7"}, nil, "--replicas (WORKER_REPLICAS): replicas 7"},
		{"stream names", []string{"--results-stream", "SESSION_JOBS"}, nil, "three different names"},
		{"prefix", []string{"--subject-prefix", "a.>"}, nil, "--subject-prefix (WORKER_SUBJECT_PREFIX): subject prefix"},
		{"storage", []string{"--storage", "tape"}, nil, "--storage"},
		{"log level", []string{"--log-level", "loud"}, nil, "--log-level"},
		{"stray argument", []string{"revoke"}, nil, "unexpected argument"},
		{"nats tls", []string{"--nats-url", "nats://x:4222", "--nats-tls-cert", "/nonexistent.pem"}, nil, "NATS options"},
		{"nats url", []string{"--nats-url", "nats//oops"}, nil, "a NATS URL is nats://host:port"},
		{"blank nats url", nil, map[string]string{"NATS_URL": "  "}, "--nats-url (NATS_URL) is set but blank"},
		{"bulk", []string{"--bulk-concurrency", "-1"}, nil, "--bulk-concurrency (WORKER_BULK_CONCURRENCY): bulk concurrency"},
		{"rate limit", []string{"--rate-limit", "fast"}, nil, "--rate-limit"},
		{"rate scope", []string{"--rate-limit-scope", "galaxy"}, nil, "--rate-limit-scope (WORKER_RATE_LIMIT_SCOPE): rate scope"},
		// A limit too slow for the fleet's budget: what runs it is the
		// scope, which the error names too.
		{"rate limit too slow for the fleet", []string{"--rate-limit", "4/1h"}, nil, "--rate-limit (WORKER_RATE_LIMIT) or --rate-limit-scope (WORKER_RATE_LIMIT_SCOPE): rate limit 4/h"},
		// What the worker package checks is said with the flag and the
		// variable that set it, not only as the package names it.
		{"ack wait", nil, map[string]string{"WORKER_ACK_WAIT": "0s"}, "--ack-wait (WORKER_ACK_WAIT): ack wait 0s"},
		{"nak delay max", []string{"--nak-delay-max", "1ms"}, nil, "--nak-delay-max (WORKER_NAK_DELAY_MAX) or --nak-delay (WORKER_NAK_DELAY): nak delay max 1ms"},
		{"nak delay", []string{"--nak-delay", "-1s"}, nil, "--nak-delay (WORKER_NAK_DELAY): nak delay -1s"},
		{"instance", []string{"--instance", "a.b"}, nil, "--instance (WORKER_INSTANCE): instance name"},
		{"stream name", []string{"--dlq-stream", "a.b"}, nil, "--dlq-stream (WORKER_DLQ_STREAM): dead-letter stream name"},
		{"max ack pending", []string{"--max-ack-pending", "1"}, nil, "--max-ack-pending (WORKER_MAX_ACK_PENDING) or --concurrency (WORKER_CONCURRENCY): max ack pending 1"},
		// A check of two settings names both: the one given may be either,
		// and naming only the first sent the user to a setting never set.
		{"concurrency above max ack pending", []string{"--concurrency", "4000"}, nil, "--max-ack-pending (WORKER_MAX_ACK_PENDING) or --concurrency (WORKER_CONCURRENCY): max ack pending 1000 is below concurrency 4000"},
		{"backoff initial above backoff max", nil, map[string]string{"WORKER_BACKOFF_INITIAL": "10s"}, "--backoff-max (WORKER_BACKOFF_MAX) or --backoff-initial (WORKER_BACKOFF_INITIAL): backoff max 5s: must be at least backoff initial 10s"},
		{"nak delay above nak delay max", []string{"--nak-delay", "5m"}, nil, "--nak-delay-max (WORKER_NAK_DELAY_MAX) or --nak-delay (WORKER_NAK_DELAY): nak delay max 2m0s"},
		{"subject prefix over the reply prefix", []string{"--subject-prefix", "_INBOX"}, nil, "--reply-prefix (WORKER_REPLY_PREFIX) or --subject-prefix (WORKER_SUBJECT_PREFIX): reply prefix \"_INBOX.\": is under the jobs prefix"},
		{"retry budget", []string{"--retry-budget", "-1s"}, nil, "--retry-budget (WORKER_RETRY_BUDGET): retry budget per delivery -1s"},
		{"dlq max age", []string{"--dlq-max-age", "1s"}, nil, "--dlq-max-age (WORKER_DLQ_MAX_AGE): dead-letter max age"},
		{"jobs max bytes", []string{"--jobs-max-bytes", "1000"}, nil, "--jobs-max-bytes (WORKER_JOBS_MAX_BYTES): jobs max bytes 1000: must be at least 1 MiB"},
		{"jobs max bytes unlimited", nil, map[string]string{"WORKER_JOBS_MAX_BYTES": "-1"}, "--jobs-max-bytes (WORKER_JOBS_MAX_BYTES): jobs max bytes -1"},
		// A stray comma adds "", which allows any subject: the other
		// prefixes would restrict nothing, and nothing said so.
		{"reply prefix stray comma", nil, map[string]string{"WORKER_REPLY_PREFIX": "_INBOX.,"}, "--reply-prefix (WORKER_REPLY_PREFIX): reply prefix \"\""},
		{"reply prefix empty among others", []string{"--reply-prefix", "_INBOX.,,svc."}, nil, "--reply-prefix (WORKER_REPLY_PREFIX): reply prefix \"\""},
		// Numbers JetStream or the worker cannot honour: each ran a worker
		// that was never ready, or one that misbehaved without a word.
		{"max deliveries wrapping the consumer's max_deliver", []string{"--max-deliveries", "9223372036854775807"}, nil, "--max-deliveries (WORKER_MAX_DELIVERIES): max deliveries 9223372036854775807: must be 1 to 9223372036854775805"},
		// An open circuit probed Clerk without pause, a log line each time.
		{"probe interval of a nanosecond", []string{"--probe-interval", "1ns"}, nil, "--probe-interval (WORKER_PROBE_INTERVAL): probe interval 1ns: must be at least 100ms"},
		{"probe interval just under the floor", nil, map[string]string{"WORKER_PROBE_INTERVAL": "99ms"}, "--probe-interval (WORKER_PROBE_INTERVAL): probe interval 99ms: must be at least 100ms"},
		{"probe interval zero", nil, map[string]string{"WORKER_PROBE_INTERVAL": "0s"}, "--probe-interval (WORKER_PROBE_INTERVAL): probe interval 0s: must be at least 100ms"},
		{"dedup window under JetStream's 100ms", nil, map[string]string{"WORKER_DEDUP_WINDOW": "50ms"}, "--dedup-window (WORKER_DEDUP_WINDOW): dedup window 50ms: must be at least 100ms"},
		{"jobs max bytes at the int64 top", []string{"--jobs-max-bytes", "9223372036854775807"}, nil, "--jobs-max-bytes (WORKER_JOBS_MAX_BYTES): jobs max bytes 9223372036854775807: must be at most 9223372033625161727"},
		{"record caps adding up past the int64 top", nil, map[string]string{"WORKER_RESULTS_MAX_BYTES": "4611686018427387904", "WORKER_DLQ_MAX_BYTES": "4611686018427387904"}, "--results-max-bytes (WORKER_RESULTS_MAX_BYTES): results max bytes 4611686018427387904: must be at most 4611686018150563839"},
		{"backoff max overflowing once jittered", []string{"--backoff-max", "2000000h"}, nil, "--backoff-max (WORKER_BACKOFF_MAX): backoff max 2000000h0m0s: must be at most 1708031h0m0s"},
		{"nak delay max past 2262", nil, map[string]string{"WORKER_NAK_DELAY_MAX": "1500000h"}, "--nak-delay-max (WORKER_NAK_DELAY_MAX): nak delay max 1500000h0m0s: must be at most"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var stderr strings.Builder
			getenv := func(k string) string { return c.env[k] }
			// A data directory that cannot be one: a row the checks let
			// through then exits 1 at once instead of running a worker.
			args := append(slices.Clone(c.args), "--data-dir", os.DevNull)
			code := run(context.Background(), args, getenv, io.Discard, &stderr)
			if code != 2 {
				t.Errorf("exit %d, want 2 (stderr %q)", code, stderr.String())
			}
			if lines := strings.Count(strings.TrimSpace(stderr.String()), "\n"); !strings.Contains(stderr.String(), c.want) || (lines > 0 && c.name != "not a number") {
				t.Errorf("stderr %q: want one line naming %q", stderr.String(), c.want)
			}
		})
	}
}

func TestHelpExits0(t *testing.T) {
	var stderr strings.Builder
	if code := run(context.Background(), []string{"--help"}, func(string) string { return "" }, io.Discard, &stderr); code != 0 {
		t.Errorf("--help exit %d", code)
	}
	for _, want := range []string{"--nats-url", "$NATS_URL", "CLERK_SECRET_KEY", "--concurrency"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("--help does not mention %s", want)
		}
	}
}

// TestEmbeddedDefault is the README's quick start: with no NATS_URL and no
// CLERK_SECRET_KEY the worker runs everything itself, and a bare nats pub
// revokes a demo session.
func TestEmbeddedDefault(t *testing.T) {
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	args := []string{"--embedded-addr", "127.0.0.1:0", "--emulator-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0",
		"--data-dir", t.TempDir(), "--log-format", "json"}
	go func() {
		done <- run(ctx, args, func(string) string { return "" }, pw, io.Discard)
		pw.Close()
	}()
	var natsURL, session string
	lines := bufio.NewScanner(pr)
	for lines.Scan() && (natsURL == "" || session == "" || !strings.Contains(lines.Text(), "worker started")) {
		var l struct {
			NatsURL  string   `json:"nats_url"`
			Sessions []string `json:"session_ids"`
			Message  string   `json:"message"`
		}
		if err := json.Unmarshal(lines.Bytes(), &l); err != nil {
			t.Fatalf("log line is not JSON: %s", lines.Text())
		}
		if l.NatsURL != "" {
			natsURL = l.NatsURL
		}
		if len(l.Sessions) > 0 && session == "" {
			session = l.Sessions[0]
		}
		if l.Message == "worker started" {
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	if natsURL == "" || session == "" {
		t.Fatalf("the worker did not announce its NATS URL (%q) and demo sessions (%q)", natsURL, session)
	}
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if err := nc.Publish("sessions.revoke", []byte(fmt.Sprintf(`{"session_id":%q}`, session))); err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	c, err := js.OrderedConsumer(ctx, "SESSION_RESULTS", jetstream.OrderedConsumerConfig{FilterSubjects: jobs.Subjects{}.ResultsOf(jobs.OpRevoke)})
	if err != nil {
		t.Fatal(err)
	}
	m, err := c.Next(jetstream.FetchMaxWait(10 * time.Second))
	if err != nil {
		t.Fatalf("no revoke result: %v", err)
	}
	var r jobs.Result
	if err := json.Unmarshal(m.Data(), &r); err != nil || r.Outcome != jobs.Succeeded {
		t.Fatalf("result %s (%v)", m.Data(), err)
	}
	var s struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	}
	if err := json.Unmarshal(r.Result, &s); err != nil || s.ID != session || s.Status != "revoked" {
		t.Errorf("revoked session %s (%v); want %s revoked", r.Result, err, session)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d after a graceful shutdown, want 0", code)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the worker did not stop")
	}
}

// A Clerk secret key pasted into any setting but CLERK_SECRET_KEY is
// refused, the setting named and the key never repeated: a refused value
// would be echoed in the error (the process's log), an accepted one would
// end up where others read it (the instance name in every result a tenant
// reads, stream and subject names, addresses and paths in log lines).
func TestSecretInAnotherSettingIsRefusedUnsaid(t *testing.T) {
	key := "sk_" + "live_" + "4fTq9ZbW2xKcL8mN3vRy7HjD"
	check := func(t *testing.T, setting string, args []string, env map[string]string) {
		t.Helper()
		var stderr strings.Builder
		c, err := parseFlags(args, func(k string) string { return env[k] }, &stderr)
		msg := stderr.String()
		if err != nil {
			msg += err.Error()
		}
		if err == nil || !strings.Contains(err.Error(), setting) {
			t.Errorf("%s holding a Clerk key: parseFlags = %v, %v; want an error naming %s", setting, c != nil, err, setting)
		}
		if strings.Contains(msg, key[8:]) {
			t.Errorf("%s holding a Clerk key: the key is repeated: %q", setting, msg)
		}
	}
	for _, fe := range flagEnv() {
		t.Run(fe[1], func(t *testing.T) { check(t, fe[1], nil, map[string]string{fe[1]: key}) })
		t.Run("--"+fe[0], func(t *testing.T) { check(t, "--"+fe[0], []string{"--" + fe[0], key}, nil) })
	}
	t.Run("--storage", func(t *testing.T) { check(t, "--storage", []string{"--storage=" + key}, nil) })
	// The NATS connection's settings, but for the password (a secret by
	// design, as a password or token in the URL's user information is), and
	// an argument: before, the worker repeated each in its error, or
	// connected with the key as the user, the host or the inbox prefix.
	url := map[string]string{"NATS_URL": "nats://127.0.0.1:4222"}
	for name, tc := range map[string]struct {
		setting string
		args    []string
		env     map[string]string
	}{
		"NATS_URL":                  {"--nats-url", nil, map[string]string{"NATS_URL": key}},
		"NATS_URL host":             {"--nats-url", nil, map[string]string{"NATS_URL": "nats://alice:pw@" + key + ":4222"}},
		"--nats-url in a list":      {"--nats-url", []string{"--nats-url", "nats://127.0.0.1:4222," + key}, nil},
		"NATS_USER":                 {"--nats-user", nil, map[string]string{"NATS_URL": url["NATS_URL"], "NATS_USER": key, "NATS_PASSWORD": "pw-0123456789abcdef"}},
		"--nats-user":               {"--nats-user", []string{"--nats-url", url["NATS_URL"], "--nats-user", key, "--nats-password", "pw-0123456789abcdef"}, nil},
		"NATS_INBOX_PREFIX":         {"--nats-inbox-prefix", nil, map[string]string{"NATS_URL": url["NATS_URL"], "NATS_INBOX_PREFIX": "_INBOX." + key}},
		"--nats-inbox-prefix":       {"--nats-inbox-prefix", []string{"--nats-inbox-prefix", "_INBOX." + key}, nil},
		"argument":                  {"argument", []string{"--concurrency", "4", key}, nil},
		"argument after empty flag": {"argument", []string{"--clerk-secret-key-file=", key}, nil},
	} {
		t.Run(name, func(t *testing.T) { check(t, tc.setting, tc.args, tc.env) })
	}
}

// A Clerk key with a space, a line break or a control character inside
// (two keys pasted, a key and a comment, a file with a second line) can
// never authenticate: Go refuses to send it as a header ("invalid header
// field value"), or Clerk answers 401 to every call. The worker refuses it
// at start, naming where it came from, without repeating it.
func TestMalformedSecretKeyIsRefusedAtStart(t *testing.T) {
	key := "sk_" + "test_" + "4fTq9ZbW2xKcL8mN3vRy7HjD"
	for name, tc := range map[string]struct {
		value, setting string
		file           bool
	}{
		"two keys":       {key + "\n" + key, "CLERK_SECRET_KEY", false},
		"key and note":   {key + " # staging", "CLERK_SECRET_KEY", false},
		"control":        {key + "\x00", "CLERK_SECRET_KEY", false},
		"file two lines": {key + "\r\n" + key + "\n", "--clerk-secret-key-file", true},
	} {
		t.Run(name, func(t *testing.T) {
			env := map[string]string{"CLERK_SECRET_KEY": tc.value}
			if tc.file {
				f := t.TempDir() + "/key"
				if err := os.WriteFile(f, []byte(tc.value), 0o600); err != nil {
					t.Fatal(err)
				}
				env = map[string]string{"CLERK_SECRET_KEY_FILE": f}
			}
			var stderr strings.Builder
			// Accepted, the worker would run: until ctx ends.
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			code := run(ctx, []string{"--metrics-addr", "", "--embedded-addr", "127.0.0.1:0", "--data-dir", t.TempDir()},
				func(k string) string { return env[k] }, io.Discard, &stderr)
			if code != 2 || !strings.Contains(stderr.String(), tc.setting) {
				t.Errorf("exit %d, stderr %q; want 2 and an error naming %s", code, stderr.String(), tc.setting)
			}
			if strings.Contains(stderr.String(), key[8:]) {
				t.Errorf("the key is repeated: %q", stderr.String())
			}
		})
	}
}

// TestEveryFlagHasAnEnvironmentVariable is the README's promise ("Every flag
// has an environment fallback") and --help's: each flag --help lists names
// the variable that sets it, and the variable does set it.
func TestEveryFlagHasAnEnvironmentVariable(t *testing.T) {
	var stderr strings.Builder
	if code := run(context.Background(), []string{"--help"}, func(string) string { return "" }, io.Discard, &stderr); code != 0 {
		t.Fatalf("--help exit %d", code)
	}
	n := 0
	for _, line := range strings.Split(stderr.String(), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], "-") {
			continue
		}
		n++
		if !strings.Contains(line, "[$") {
			t.Errorf("flag without an environment variable in --help: %s", strings.TrimSpace(line))
		}
	}
	if n < 30 {
		t.Fatalf("found %d flags in --help, want the whole list:\n%s", n, stderr.String())
	}
	c, err := parseFlags(nil, func(k string) string { return map[string]string{"WORKER_STORAGE": "memory"}[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.worker.Topology.Storage != jetstream.MemoryStorage {
		t.Errorf("WORKER_STORAGE=memory: storage %v", c.worker.Topology.Storage)
	}
}

// A worker configured for Clerk but left without a usable key ran the
// in-process emulator instead, saying so only in a warning: an empty key
// file (a Kubernetes Secret created from an unset variable), a blank
// CLERK_SECRET_KEY, or a Clerk API URL given with no key at all. On the
// production NATS it then took real jobs: a revoke_all listed the
// emulator's sessions of the user, found none, and succeeded having
// revoked nothing. Each is refused at start, naming the setting.
func TestClerkConfiguredWithoutKeyIsRefused(t *testing.T) {
	empty := t.TempDir() + "/key"
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		args    []string
		env     map[string]string
		setting string
	}{
		"empty key file":      {nil, map[string]string{"CLERK_SECRET_KEY_FILE": empty}, "--clerk-secret-key-file"},
		"empty key file flag": {[]string{"--clerk-secret-key-file", empty}, nil, "--clerk-secret-key-file"},
		"blank key":           {nil, map[string]string{"CLERK_SECRET_KEY": " \n"}, "CLERK_SECRET_KEY"},
		"api url, no key":     {nil, map[string]string{"CLERK_API_URL": "https://api.clerk.com/v1"}, "--clerk-api-url"},
		"api url flag":        {[]string{"--clerk-api-url", "https://api.clerk.com/v1"}, nil, "--clerk-api-url"},
	} {
		t.Run(name, func(t *testing.T) {
			var stderr strings.Builder
			c, err := parseFlags(tc.args, func(k string) string { return tc.env[k] }, &stderr)
			if err == nil {
				t.Fatalf("accepted (secret key %q: the emulator would run); want an error naming %s", c.secretKey, tc.setting)
			}
			if !strings.Contains(err.Error(), tc.setting) || !strings.Contains(err.Error(), "emulator") {
				t.Errorf("error %q: want it to name %s and say what to do", err, tc.setting)
			}
		})
	}
	// Neither a key nor a URL: the emulator, as the quick start says.
	if c, err := parseFlags(nil, func(string) string { return "" }, io.Discard); err != nil || c.secretKey != "" {
		t.Errorf("no Clerk settings: %v; want the emulator", err)
	}
}

// The key given both ways (CLERK_SECRET_KEY and a key file) is ambiguous:
// the file won, silently, so a key rotated in one place and not the other
// kept the worker on the old key with nothing said. It is refused, naming
// both settings, as two ways to authenticate to NATS are.
func TestClerkKeyGivenTwiceIsRefused(t *testing.T) {
	key := "sk_" + "test_" + "4fTq9ZbW2xKcL8mN3vRy7HjD"
	file := t.TempDir() + "/key"
	if err := os.WriteFile(file, []byte("sk_"+"test_"+"OtherKeyInTheFile123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		args []string
		env  map[string]string
	}{
		"both variables": {nil, map[string]string{"CLERK_SECRET_KEY": key, "CLERK_SECRET_KEY_FILE": file}},
		"variable, flag": {[]string{"--clerk-secret-key-file", file}, map[string]string{"CLERK_SECRET_KEY": key}},
	} {
		t.Run(name, func(t *testing.T) {
			c, err := parseFlags(tc.args, func(k string) string { return tc.env[k] }, io.Discard)
			if err == nil {
				t.Fatalf("accepted; the worker would use the %s key", map[bool]string{true: "file's", false: "variable's"}[c.secretKey != key])
			}
			if msg := err.Error(); !strings.Contains(msg, "CLERK_SECRET_KEY ") || !strings.Contains(msg, "--clerk-secret-key-file") || strings.Contains(msg, key[8:]) || strings.Contains(msg, "OtherKey") {
				t.Errorf("error %q: want both settings named, neither key repeated", msg)
			}
		})
	}
}

// TestEmbeddedServerStaysOnThisMachineWithAKey: the embedded NATS server
// has no authentication. Served beyond this machine (--embedded-addr
// 0.0.0.0:4222, or :4222, every interface) by a worker holding a Clerk
// key, it let anyone who reached it revoke sessions or mint tokens with
// that key. It is refused, naming the setting; loopback addresses, and any
// address with the emulator, are not.
func TestEmbeddedServerStaysOnThisMachineWithAKey(t *testing.T) {
	key := map[string]string{"CLERK_SECRET_KEY": "sk_" + "test_" + "4fTq9ZbW2xKcL8mN3vRy7HjD"}
	for _, tc := range []struct {
		addr string
		env  map[string]string
		ok   bool
	}{
		{"0.0.0.0:4222", key, false},
		{":4222", key, false},
		{"[::]:4222", key, false},
		{"10.1.2.3:4222", key, false},
		{"nats.example.com:4222", key, false},
		{"127.0.0.1:4222", key, true},
		{"[::1]:4222", key, true},
		{"localhost:4222", key, true},
		{"0.0.0.0:4222", nil, true}, // the emulator: nothing to take
		{strings.Repeat("h", 3000) + ":4222", key, false},
	} {
		t.Run(tc.addr[:min(len(tc.addr), 40)]+map[bool]string{true: " with a key", false: " with the emulator"}[tc.env != nil], func(t *testing.T) {
			_, err := parseFlags([]string{"--embedded-addr", tc.addr}, func(k string) string { return tc.env[k] }, io.Discard)
			switch {
			case tc.ok && err != nil:
				t.Errorf("refused: %v", err)
			case !tc.ok && (err == nil || !strings.Contains(err.Error(), "--embedded-addr") || !strings.Contains(err.Error(), "NATS_URL")):
				t.Errorf("error %v: want a refusal naming --embedded-addr and NATS_URL", err)
			case err != nil && len(err.Error()) > 600:
				t.Errorf("error of %d bytes: the address is quoted whole", len(err.Error()))
			}
		})
	}
}

// TestStrayVariablesAreNamed: a variable meant for the worker that sets
// nothing (a typo) is named at start with the setting it is nearest to,
// instead of being ignored while the worker runs on the default; what
// Kubernetes and other programs put in the environment is not.
func TestStrayVariablesAreNamed(t *testing.T) {
	key := "sk_" + "live_" + strings.Repeat("a", 40)
	tests := []struct {
		variable string
		want     string // "" when nothing is said
	}{
		{"WORKER_CONCURENCY=4", `"WORKER_CONCURENCY" is not a setting of the worker and is ignored: did you mean WORKER_CONCURRENCY?`},
		{"worker_concurrency=4", `"worker_concurrency" is not a setting of the worker and is ignored: did you mean WORKER_CONCURRENCY?`},
		{"WORKER_RATE_LIMT=100/10s", "did you mean WORKER_RATE_LIMIT?"},
		{"WORKER_FLAVOUR=1", `"WORKER_FLAVOUR" is not a setting of the worker and is ignored (--help lists them)`},
		{"CLERK_SECRET_KY=" + key, "did you mean CLERK_SECRET_KEY?"},
		{"CLERK_API_UR=https://api.clerk.com/v1", "did you mean CLERK_API_URL?"},
		{"NATS_URLS=nats://a:4222", "did you mean NATS_URL?"},
		{"WORKER_" + key + "=1", `"WORKER_[REDACTED]" is not a setting`},
		{"WORKER_" + strings.Repeat("X", 500) + "=1", "…"},
		// Settings, other programs' variables, Kubernetes's service variables.
		{"WORKER_CONCURRENCY=4", ""}, {"NATS_URL=nats://a:4222", ""}, {"CLERK_SECRET_KEY=" + key, ""},
		{"CLERK_PUBLISHABLE_KEY=pk_test_x", ""}, {"NATS_HOME=/x", ""}, {"PATH=/bin", ""}, {"GOGC=200", ""},
		{"WORKER_SERVICE_HOST=10.0.0.1", ""}, {"WORKER_SERVICE_PORT=9090", ""}, {"WORKER_SERVICE_PORT_METRICS=9090", ""},
		{"WORKER_PORT=tcp://10.0.0.1:9090", ""}, {"WORKER_PORT_9090_TCP=tcp://10.0.0.1:9090", ""},
		{"WORKER_PORT_9090_TCP_ADDR=10.0.0.1", ""}, {"NATS_PORT_4222_TCP_PORT=4222", ""}, {"NATS_SERVICE_HOST=10.0.0.2", ""},
	}
	for _, tt := range tests {
		name, _, _ := strings.Cut(tt.variable, "=")
		t.Run(text.Truncate(name, 40), func(t *testing.T) {
			got := strayVariables([]string{tt.variable})
			switch {
			case tt.want == "" && len(got) != 0:
				t.Errorf("said %q, want nothing", got)
			case tt.want != "" && (len(got) != 1 || !strings.Contains(got[0], tt.want)):
				t.Errorf("said %q, want one line with %q", got, tt.want)
			}
			for _, line := range got {
				if strings.Contains(line, key) || len(line) > 300 {
					t.Errorf("the line repeats a key or the whole name (%d bytes): %q", len(line), line)
				}
			}
		})
	}
}

// TestNATSSettingsWithoutAURLAreRefused: without a NATS URL the worker
// runs an embedded server, which has no authentication. A credential or a
// TLS file given without a URL (NATS_URL missing from a deployment that
// sets NATS_CREDS) was accepted and ignored: the worker ran, ready, on a
// server of its own nobody publishes to, Clerk key and all. As for an API
// URL without a Clerk key, the setting is refused, named, and what to do
// said; without any of them the embedded server still runs.
func TestNATSSettingsWithoutAURLAreRefused(t *testing.T) {
	dir := t.TempDir()
	file := dir + "/file"
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	key := "sk_" + "test_" + "4fTq9ZbW2xKcL8mN3vRy7HjD"
	for name, tc := range map[string]struct {
		args    []string
		env     map[string]string
		setting string
	}{
		"creds variable":    {nil, map[string]string{"NATS_CREDS": file, "CLERK_SECRET_KEY": key}, "--nats-creds (NATS_CREDS)"},
		"creds flag":        {[]string{"--nats-creds", file}, nil, "--nats-creds (NATS_CREDS)"},
		"nkey":              {nil, map[string]string{"NATS_NKEY": file}, "--nats-nkey (NATS_NKEY)"},
		"user and password": {nil, map[string]string{"NATS_USER": "svc", "NATS_PASSWORD": "hunter2hunter2", "CLERK_SECRET_KEY": key}, "--nats-user (NATS_USER)"},
		"password alone":    {nil, map[string]string{"NATS_PASSWORD": "hunter2hunter2"}, "--nats-password (NATS_PASSWORD)"},
		"password file":     {nil, map[string]string{"NATS_PASSWORD_FILE": file}, "--nats-password-file (NATS_PASSWORD_FILE)"},
		"tls ca":            {[]string{"--nats-tls-ca", file}, nil, "--nats-tls-ca (NATS_CA)"},
		"tls client cert":   {nil, map[string]string{"NATS_CERT": file, "NATS_KEY": file}, "--nats-tls-cert (NATS_CERT)"},
	} {
		t.Run(name, func(t *testing.T) {
			c, err := parseFlags(tc.args, func(k string) string { return tc.env[k] }, io.Discard)
			if err == nil {
				t.Fatalf("accepted (NATS URL %q): the worker would run an embedded server and ignore %s", c.nats.URL, tc.setting)
			}
			if msg := err.Error(); !strings.Contains(msg, tc.setting) || !strings.Contains(msg, "NATS_URL") || strings.Contains(msg, "hunter2") {
				t.Errorf("error %q: want %s and NATS_URL named, no password repeated", msg, tc.setting)
			}
		})
	}
	if _, err := parseFlags([]string{"--nats-url", "nats://127.0.0.1:4222", "--nats-creds", file}, func(string) string { return "" }, io.Discard); err != nil {
		t.Errorf("with a URL: %v", err)
	}
}

// TestLogLevelIsOneOfFour: zerolog reads more than the four levels the
// worker offers, and they were accepted without a word: a number (99:
// nothing is logged, not a dead letter, not the emulator's warning),
// "disabled", "panic". Each is refused, naming the setting.
func TestLogLevelIsOneOfFour(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
	}{
		{[]string{"--log-level", "99"}, nil},
		{[]string{"--log-level", "-3"}, nil},
		{nil, map[string]string{"WORKER_LOG_LEVEL": "disabled"}},
		{[]string{"--log-level", "panic"}, nil},
		{[]string{"--log-level", "trace"}, nil},
	} {
		_, err := parseFlags(tc.args, func(k string) string { return tc.env[k] }, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "--log-level") {
			t.Errorf("%v %v: %v; want a refusal naming --log-level", tc.args, tc.env, err)
		}
	}
	for _, l := range []string{"debug", "info", "warn", "error", "INFO"} {
		if _, err := parseFlags([]string{"--log-level", l}, func(string) string { return "" }, io.Discard); err != nil {
			t.Errorf("--log-level %s: %v", l, err)
		}
	}
}

// TestNATSSettingWithoutAURLGivenAsAFlag: a credential given on the command
// line without a URL is refused; what to do must name the flag given, not
// only a variable that is not set ("unset NATS_CREDS" does nothing there).
func TestNATSSettingWithoutAURLGivenAsAFlag(t *testing.T) {
	file := t.TempDir() + "/creds"
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := parseFlags([]string{"--nats-creds", file}, func(string) string { return "" }, io.Discard)
	if err == nil {
		t.Fatal("accepted")
	}
	if msg := err.Error(); !strings.Contains(msg, "remove --nats-creds") {
		t.Errorf("error %q: want it to say to remove --nats-creds", msg)
	}
}

// TestRateLimitDefaultFollowsTheKey: Clerk limits a development
// instance's key (sk_test_) to 100 calls per 10 s, a tenth of a production
// one's; the worker's default of 1000/10s drew 429s from it all day.
func TestRateLimitDefaultFollowsTheKey(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"development key", nil, map[string]string{"CLERK_SECRET_KEY": "sk_" + "test_" + "4fTq9ZbW2xKcL8mN3vRy7HjD"}, "100/10s"},
		{"production key", nil, map[string]string{"CLERK_SECRET_KEY": "sk_" + "live_" + "4fTq9ZbW2xKcL8mN3vRy7HjD"}, "1000/10s"},
		{"no key: the emulator", nil, nil, "1000/10s"},
		{"development key, limit given", []string{"--rate-limit", "50/10s"}, map[string]string{"CLERK_SECRET_KEY": "sk_" + "test_" + "4fTq9ZbW2xKcL8mN3vRy7HjD"}, "50/10s"},
		// docker-compose.yml passes WORKER_RATE_LIMIT through from .env,
		// empty when .env does not set it.
		{"development key, limit in the environment empty", nil, map[string]string{"CLERK_SECRET_KEY": "sk_" + "test_" + "4fTq9ZbW2xKcL8mN3vRy7HjD", "WORKER_RATE_LIMIT": ""}, "100/10s"},
		{"development key, limit in the environment", nil, map[string]string{"CLERK_SECRET_KEY": "sk_" + "test_" + "4fTq9ZbW2xKcL8mN3vRy7HjD", "WORKER_RATE_LIMIT": "1000/10s"}, "1000/10s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseFlags(tc.args, func(k string) string { return tc.env[k] }, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.worker.RateLimit.String(); got != tc.want {
				t.Errorf("rate limit %s, want %s", got, tc.want)
			}
		})
	}
}

// TestFlagGivenTwiceIsSaid: a flag given twice with different values keeps
// the last, as a deployment appending its overrides to an image's defaults
// expects, but the worker says so (pflag did not), naming the flag and not
// the values; an old connection flag's name beside its new one is the same
// flag given twice. --server, the old name of --nats-url, takes a URL with
// its password as --nats-url does (it was refused as a password pasted
// into another setting).
func TestFlagGivenTwiceIsSaid(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		said    string // in stderr; "" for nothing said
		natsURL string
	}{
		{"flag given twice", []string{"--concurrency", "3", "--concurrency", "4"}, "--concurrency given more than once with different values: the last given counts", ""},
		{"URL given twice", []string{"--nats-url", "nats://a:hunter2@127.0.0.1:4223", "--nats-url", "nats://127.0.0.1:4222"}, "--nats-url given more than once", "nats://127.0.0.1:4222"},
		{"old and new name of a flag", []string{"--server", "nats://127.0.0.1:4222", "--nats-url", "nats://u:hunter2@127.0.0.1:4223"}, "--nats-url, --server given more than once", "nats://u:hunter2@127.0.0.1:4223"},
		{"old name with a password", []string{"--server", "nats://u:hunter2@127.0.0.1:4223"}, "", "nats://u:hunter2@127.0.0.1:4223"},
		{"same value twice", []string{"--concurrency", "3", "--concurrency=3"}, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr strings.Builder
			c, err := parseFlags(tc.args, func(string) string { return "" }, &stderr)
			if err != nil {
				t.Fatalf("parseFlags: %v", err)
			}
			if got := strings.Contains(stderr.String(), "more than once"); tc.said == "" && got || tc.said != "" && !strings.Contains(stderr.String(), tc.said) {
				t.Errorf("stderr %q, want it to say %q", stderr.String(), tc.said)
			}
			if strings.Contains(stderr.String(), "hunter2") {
				t.Errorf("stderr repeats a password: %q", stderr.String())
			}
			if tc.natsURL != "" && c.nats.URL != tc.natsURL {
				t.Errorf("NATS URL %q, want %q", c.nats.URL, tc.natsURL)
			}
		})
	}
}
