package main

import (
	"context"
	"io"
	"strings"
	"testing"
)

// A URL with a password in it (nats://alice:PASSWORD@host), pasted into a
// setting that is not the NATS server's URL, is refused at start (exit 2),
// the setting named and the password never repeated: before, every such
// setting quoted it in its error ("--log-level \"nats://alice:…\""), and a
// subject prefix, an instance name or an inbox prefix holding one was taken,
// the password then written into stream subjects and log lines.
func TestURLPasswordInAnotherSettingIsRefusedUnsaid(t *testing.T) {
	pw := "Pw" + "9xQ4vLm2KzT7"
	value := "nats://alice:" + pw + "@nats.example:4222"
	check := func(t *testing.T, setting string, args []string, env map[string]string) {
		t.Helper()
		var stderr strings.Builder
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // a configuration taken would run the worker: stop it at once
		// Nothing to listen on or write to, but for the setting tested.
		for _, fv := range [][2]string{{"metrics-addr", ""}, {"embedded-addr", "127.0.0.1:0"}, {"emulator-addr", "127.0.0.1:0"}, {"data-dir", t.TempDir()}} {
			if setting != "--"+fv[0] && setting != envOf(fv[0]) {
				args = append(args, "--"+fv[0]+"="+fv[1])
			}
		}
		code := run(ctx, args, func(k string) string { return env[k] }, io.Discard, &stderr)
		if code != 2 || !strings.Contains(stderr.String(), setting) {
			t.Errorf("%s holding a URL with a password: exit %d, %q; want 2 and an error naming %s", setting, code, stderr.String(), setting)
		}
		if strings.Contains(stderr.String(), pw) {
			t.Errorf("%s holding a URL with a password: the password is repeated: %q", setting, stderr.String())
		}
	}
	for _, fe := range flagEnv() {
		t.Run(fe[1], func(t *testing.T) { check(t, fe[1], nil, map[string]string{fe[1]: value}) })
		t.Run("--"+fe[0], func(t *testing.T) { check(t, "--"+fe[0], []string{"--" + fe[0], value}, nil) })
	}
	for name, tc := range map[string]struct {
		setting string
		args    []string
		env     map[string]string
	}{
		"--storage":           {"--storage", []string{"--storage=" + value}, nil},
		"argument":            {"argument", []string{value}, nil},
		"--nats-user":         {"--nats-user", []string{"--nats-url", "nats://127.0.0.1:1", "--nats-user", value, "--nats-password", "pw-0123456789abcdef"}, nil},
		"NATS_INBOX_PREFIX":   {"--nats-inbox-prefix", nil, map[string]string{"NATS_INBOX_PREFIX": "_INBOX." + value}},
		"--nats-inbox-prefix": {"--nats-inbox-prefix", []string{"--nats-inbox-prefix", value}, nil},
		"flag given twice":    {"--concurrency", []string{"--concurrency", "3", "--concurrency", value}, nil},
	} {
		t.Run(name, func(t *testing.T) { check(t, tc.setting, tc.args, tc.env) })
	}
}

// A value of 100 KB given to a setting was repeated whole in the one-line
// error, once for each quote (three times, 300 KB, for a variable that is
// not a number): each word of the error is now cut to 256 bytes, the
// setting still named.
func TestLongValueIsNotRepeatedWhole(t *testing.T) {
	long := strings.Repeat("a", 100_000)
	for name, tc := range map[string]struct {
		setting string
		args    []string
		env     map[string]string
	}{
		"WORKER_CONCURRENCY":  {"WORKER_CONCURRENCY", nil, map[string]string{"WORKER_CONCURRENCY": long}},
		"--rate-limit":        {"--rate-limit", []string{"--rate-limit", long}, nil},
		"--log-level":         {"--log-level", []string{"--log-level", long}, nil},
		"--subject-prefix":    {"--subject-prefix", []string{"--subject-prefix", long}, nil},
		"argument":            {"argument", []string{long}, nil},
		"OTEL_TRACES_SAMPLER": {"OTEL_TRACES_SAMPLER", []string{"--metrics-addr="}, map[string]string{"OTEL_TRACES_EXPORTER": "console", "OTEL_TRACES_SAMPLER": long}},
	} {
		t.Run(name, func(t *testing.T) {
			for k, v := range tc.env {
				if strings.HasPrefix(k, "OTEL_") {
					t.Setenv(k, v) // tracing reads the process's environment
				}
			}
			var stderr strings.Builder
			code := run(context.Background(), tc.args, func(k string) string { return tc.env[k] }, io.Discard, &stderr)
			if code != 2 || !strings.Contains(stderr.String(), tc.setting) || stderr.Len() > 2000 {
				t.Errorf("exit %d, %d bytes on standard error (%.300q); want 2, naming %s, in at most 2000 bytes", code, stderr.Len(), stderr.String(), tc.setting)
			}
		})
	}
}
