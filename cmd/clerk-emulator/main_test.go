package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/clerkapi"
)

// env returns a getenv over a map.
func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of run and
// reads of the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestRunServesUntilCanceled(t *testing.T) {
	const secret = "sk_test_CmdSecret4242"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	outR, outW := io.Pipe()
	var stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--addr", "127.0.0.1:0", "--seed-users", "2", "--seed-sessions", "3", "--rate-limit", "100"},
			env(map[string]string{"CLERK_SECRET_KEY": secret, "CLERK_EMULATOR_LATENCY": "1ms"}), outW, &stderr)
		outW.Close()
	}()
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(outR)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	next := func() string {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("output ended; stderr: %s", stderr.String())
			}
			return l
		case <-time.After(10 * time.Second):
			t.Fatal("no output")
		}
		return ""
	}

	first := next()
	base, ok := strings.CutPrefix(first, "clerk emulator listening on ")
	if !ok || !strings.HasPrefix(base, "http://127.0.0.1:") || !strings.HasSuffix(base, "/v1") || strings.HasSuffix(base, ":0/v1") {
		t.Fatalf("first line %q", first)
	}
	var out []string
	for l := next(); !strings.HasPrefix(l, "  "); l = next() {
		out = append(out, l)
	}
	all := strings.Join(out, "\n")
	if strings.Contains(all, secret) || strings.Contains(stderr.String(), secret) {
		t.Errorf("the secret key was printed:\n%s", all)
	}
	for _, want := range []string{"control API: http://127.0.0.1:", "secret key: sk_test_[REDACTED]", "rate limit: 100 requests per 10s per key (fixed window)", `"latency":"1ms"`, "seeded 2 users with 3 sessions each"} {
		if !strings.Contains(all, want) {
			t.Errorf("output lacks %q:\n%s", want, all)
		}
	}

	c, err := clerkapi.New(clerkapi.WithBaseURL(base), clerkapi.WithSecretKey(secret))
	if err != nil {
		t.Fatal(err)
	}
	u, err := http.Post(strings.TrimSuffix(base, "/v1")+"/_emulator/users", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	u.Body.Close()
	if u.StatusCode != 201 {
		t.Fatalf("control API: %d", u.StatusCode)
	}
	list, err := c.ListSessions(ctx, clerkapi.ListParams{UserID: "user_nobody", Paginated: true})
	if err != nil || list.TotalCount != 0 {
		t.Fatalf("list: %v %v", list, err)
	}
	wrong, _ := clerkapi.New(clerkapi.WithBaseURL(base), clerkapi.WithSecretKey("sk_test_emulator"))
	if _, err := wrong.GetSession(ctx, "sess_x"); clerkapi.ClassOf(err) != clerkapi.Systemic {
		t.Errorf("default key accepted although CLERK_SECRET_KEY was set: %v", err)
	}

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d; stderr: %s", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after cancel")
	}
	if _, err := c.ListSessions(context.Background(), clerkapi.ListParams{UserID: "user_x"}); err == nil {
		t.Error("still serving after shutdown")
	}
}

func TestRunSeededOutputNamesSessions(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--addr=127.0.0.1:0", "--seed-users=4", "--seed-sessions=2", "--seed=99"}, env(nil), &stdout, &stderr)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(stdout.String(), "… and 1 more") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	out := stdout.String()
	if !strings.Contains(out, "secret key: sk_test_emulator (default)") {
		t.Errorf("default key not printed:\n%s", out)
	}
	if n := strings.Count(out, "\n  user_"); n != 3 {
		t.Errorf("%d seeded users listed, want 3:\n%s", n, out)
	}
	if strings.Count(out, " sess_") != 6 {
		t.Errorf("want 2 session ids per listed user:\n%s", out)
	}
}

func TestRunBadValues(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string // the single stderr line must contain this
	}{
		{"bad duration", []string{"--latency", "soon"}, nil, "-latency"},
		{"negative latency", []string{"--latency=-1s"}, nil, "--latency"},
		{"negative jitter", []string{"--jitter=-1ms"}, nil, "--jitter"},
		{"error rate above 1", []string{"--error-rate", "1.5"}, nil, "--error-rate"},
		{"error rate NaN", []string{"--error-rate", "NaN"}, nil, "--error-rate"},
		{"drop rate negative", []string{"--drop-rate=-0.1"}, nil, "--drop-rate"},
		{"gateway error rate above 1", []string{"--gateway-error-rate=1.01"}, nil, "--gateway-error-rate"},
		{"bad env gateway error rate", nil, map[string]string{"CLERK_EMULATOR_GATEWAY_ERROR_RATE": "-1"}, "--gateway-error-rate"},
		{"rate limit not a number", []string{"--rate-limit", "many"}, nil, "-rate-limit"},
		{"rate limit negative", []string{"--rate-limit=-5"}, nil, "--rate-limit"},
		{"zero window", []string{"--rate-window=0s"}, nil, "--rate-window"},
		{"unknown rate limit mode", []string{"--rate-limit-mode=leaky"}, nil, "--rate-limit-mode"},
		{"bad env rate limit mode", nil, map[string]string{"CLERK_EMULATOR_RATE_LIMIT_MODE": "Sliding"}, "--rate-limit-mode"},
		{"seed users negative", []string{"--seed-users=-1"}, nil, "--seed-users"},
		{"too many sessions", []string{"--seed-sessions=100000"}, nil, "--seed-sessions"},
		{"log level", []string{"--log-level=loud"}, nil, "--log-level"},
		{"empty addr", []string{"--addr="}, nil, "--addr"},
		{"addr without a port", []string{"--addr=127.0.0.1"}, nil, "--addr"},
		{"addr with a port out of range", []string{"--addr=127.0.0.1:99999"}, nil, "--addr"},
		{"addr that is a URL", []string{"--addr=http://127.0.0.1:8090"}, nil, "--addr"},
		{"bad env addr", nil, map[string]string{"CLERK_EMULATOR_ADDR": "localhost"}, "--addr"},
		{"empty key", []string{"--secret-key= , "}, nil, "--secret-key"},
		{"unknown flag", []string{"--colour"}, nil, "-colour"},
		{"stray argument", []string{"serve"}, nil, `"serve"`},
		{"bad env duration", nil, map[string]string{"CLERK_EMULATOR_LATENCY": "abc"}, "CLERK_EMULATOR_LATENCY"},
		{"bad env rate", nil, map[string]string{"CLERK_EMULATOR_ERROR_RATE": "2"}, "--error-rate"},
		{"bad env int", nil, map[string]string{"CLERK_EMULATOR_RATE_LIMIT": "x"}, "CLERK_EMULATOR_RATE_LIMIT"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr syncBuffer
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			code := run(ctx, tc.args, env(tc.env), &stdout, &stderr)
			if code != 2 {
				t.Fatalf("exit %d, want 2; stderr %q", code, stderr.String())
			}
			msg := stderr.String()
			if strings.Count(msg, "\n") != 1 || !strings.HasPrefix(msg, "clerk-emulator: ") || !strings.Contains(msg, tc.want) {
				t.Errorf("stderr %q: want one line naming %s", msg, tc.want)
			}
			if stdout.String() != "" {
				t.Errorf("stdout %q", stdout.String())
			}
		})
	}
}

func TestRunGatewayErrorRate(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
	}{
		{"flag", []string{"--gateway-error-rate=0.3"}, nil},
		{"env", nil, map[string]string{"CLERK_EMULATOR_GATEWAY_ERROR_RATE": "0.3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := parse(tc.args, env(tc.env), io.Discard)
			if err != nil || cfg.gatewayRate != 0.3 {
				t.Errorf("gateway rate %v, err %v; want 0.3", cfg.gatewayRate, err)
			}
		})
	}
}

func TestRunFlagBeatsEnv(t *testing.T) {
	cfg, err := parse([]string{"--error-rate=0.25", "--addr=127.0.0.1:0"},
		env(map[string]string{"CLERK_EMULATOR_ERROR_RATE": "0.5", "CLERK_EMULATOR_JITTER": "3ms", "CLERK_EMULATOR_SEED_USERS": "7"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.errorRate != 0.25 || cfg.jitter != 3*time.Millisecond || cfg.seedUsers != 7 || cfg.addr != "127.0.0.1:0" {
		t.Errorf("config %+v", cfg)
	}
}

func TestRunRateLimitMode(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{nil, nil, "fixed"},
		{[]string{"--rate-limit-mode", "sliding"}, nil, "sliding"},
		{nil, map[string]string{"CLERK_EMULATOR_RATE_LIMIT_MODE": "sliding"}, "sliding"},
		{[]string{"--rate-limit-mode=fixed"}, map[string]string{"CLERK_EMULATOR_RATE_LIMIT_MODE": "sliding"}, "fixed"},
	} {
		cfg, err := parse(tc.args, env(tc.env), io.Discard)
		if err != nil || cfg.rateMode != tc.want {
			t.Errorf("parse(%v, %v): mode %q, %v; want %q", tc.args, tc.env, cfg.rateMode, err, tc.want)
		}
	}
}

func TestRunAddressInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var stdout, stderr syncBuffer
	code := run(context.Background(), []string{"--addr", ln.Addr().String()}, env(nil), &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "--addr") {
		t.Errorf("exit %d, stderr %q", code, stderr.String())
	}
}

func TestRunHelp(t *testing.T) {
	var stdout, stderr syncBuffer
	if code := run(context.Background(), []string{"-h"}, env(nil), &stdout, &stderr); code != 0 {
		t.Errorf("exit %d", code)
	}
	if !strings.Contains(stderr.String(), "-rate-window") {
		t.Errorf("usage lacks flags: %s", stderr.String())
	}
}

// TestRunNeverRepeatsAKeyInTheWrongSetting: a secret key given to another
// flag or variable than --secret-key (CLERK_SECRET_KEY) is refused, and the
// refusal, which goes to the log, does not repeat it. Before, each message
// quoted the value as given: flag's "invalid value", the environment's
// %q, the --rate-limit-mode and --log-level checks, and the failed listen.
func TestRunNeverRepeatsAKeyInTheWrongSetting(t *testing.T) {
	key := "sk_" + "live_" + "4fTq9ZbW2xKcL8mN3vRy7HjD"
	for _, name := range flagNames {
		fe := struct{ flag, env string }{name, envOf(name)}
		if fe.flag == "secret-key" {
			continue
		}
		for _, tc := range []struct {
			name string
			args []string
			env  map[string]string
		}{
			{"--" + fe.flag, []string{"--" + fe.flag, key}, nil},
			{fe.env, nil, map[string]string{fe.env: key}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				var stdout, stderr syncBuffer
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if code := run(ctx, tc.args, env(tc.env), &stdout, &stderr); code == exitOK {
					t.Fatalf("a key accepted as %s", tc.name)
				}
				if out := stdout.String() + stderr.String(); strings.Contains(out, key[8:]) {
					t.Errorf("the key is repeated: %q", out)
				}
			})
		}
	}
}

// TestRunNeverRepeatsAURLPassword: a URL with a password in it
// (nats://alice:PASSWORD@host), given to any flag or variable, or as an
// argument, is refused without the password: before, flag's "invalid
// value", --log-level's check, the argument's and the failed listen's
// messages quoted it.
func TestRunNeverRepeatsAURLPassword(t *testing.T) {
	pw := "Pw" + "3hVn8cQw5LsJ"
	u := "nats://alice:" + pw + "@nats.example:4222"
	cases := []struct {
		name string
		args []string
		env  map[string]string
	}{{"argument", []string{u}, nil}}
	for _, name := range flagNames {
		if name == "secret-key" {
			continue
		}
		cases = append(cases, struct {
			name string
			args []string
			env  map[string]string
		}{"--" + name, []string{"--" + name, u}, nil}, struct {
			name string
			args []string
			env  map[string]string
		}{envOf(name), nil, map[string]string{envOf(name): u}})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr syncBuffer
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if code := run(ctx, tc.args, env(tc.env), &stdout, &stderr); code == exitOK {
				t.Fatalf("a URL accepted as %s", tc.name)
			}
			if out := stdout.String() + stderr.String(); strings.Contains(out, pw) {
				t.Errorf("the password is repeated: %q", out)
			}
		})
	}
}

// TestRunLongValueIsNotRepeatedWhole: a value of 100 KB given to a flag was
// repeated whole in the error; each word is now cut to 256 bytes.
func TestRunLongValueIsNotRepeatedWhole(t *testing.T) {
	long := strings.Repeat("a", 100_000)
	for _, args := range [][]string{{"--log-level", long}, {"--latency", long}, {"--rate-limit-mode", long}, {long}} {
		var stdout, stderr syncBuffer
		if code := run(context.Background(), args, env(nil), &stdout, &stderr); code != exitUsage || len(stderr.String()) > 2000 {
			t.Errorf("%.20q: exit %d, %d bytes on standard error; want %d, in at most 2000 bytes", args, code, len(stderr.String()), exitUsage)
		}
	}
}

// TestRunGoodAddrs: what net.Listen takes as host:port is taken, a named
// port (a service, as "http") too; the check added for malformed addresses
// refused "localhost:http" as a bad value (exit 2).
func TestRunGoodAddrs(t *testing.T) {
	for _, addr := range []string{":8090", "[::1]:0", "localhost:0", "127.0.0.1:65535", "localhost:http", ":https"} {
		if _, err := parse([]string{"--addr=" + addr}, env(nil), io.Discard); err != nil {
			t.Errorf("--addr=%s: %v", addr, err)
		}
	}
}
