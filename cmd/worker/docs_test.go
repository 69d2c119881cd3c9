package main

import (
	"context"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestEveryWorkerFlagIsInDocs: the worker's flags, their variables and
// defaults are a contract (deployments set them), and docs/worker.md is
// where each is written. Both ways: every flag of --help has a row naming
// its variable and default, and every flag a row names exists, so that
// neither a new flag nor a renamed or removed one goes unwritten.
func TestEveryWorkerFlagIsInDocs(t *testing.T) {
	b, err := os.ReadFile("../../docs/worker.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{} // flag: its table row
	rowFlag := regexp.MustCompile("^\\| `--([a-z0-9-]+)`")
	for line := range strings.SplitSeq(string(b), "\n") {
		if m := rowFlag.FindStringSubmatch(line); m != nil {
			rows[m[1]] = line
		}
	}
	var stderr strings.Builder
	if code := run(context.Background(), []string{"--help"}, func(string) string { return "" }, io.Discard, &stderr); code != 0 {
		t.Fatalf("--help exit %d", code)
	}
	usage := regexp.MustCompile(`^\s+(?:-\w, )?--([a-z0-9-]+)(?: \w+)?\s+.*?(?:\[\$(\w+)\])?(?: \(default (.*)\))?$`)
	flags := map[string]bool{}
	for line := range strings.SplitSeq(stderr.String(), "\n") {
		m := usage.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		name, env, def := m[1], m[2], docDefault(m[3])
		flags[name] = true
		row, ok := rows[name]
		if !ok {
			t.Errorf("--%s [$%s] has no row in docs/worker.md", name, env)
			continue
		}
		if env != "" && !strings.Contains(row, "`"+env+"`") {
			t.Errorf("docs/worker.md: the row of --%s does not name its variable %s: %s", name, env, row)
		}
		// The instance's default is new at each start.
		if def != "" && name != "instance" && !strings.Contains(row, "`"+def+"`") {
			t.Errorf("docs/worker.md: the row of --%s does not give its default `%s`: %s", name, def, row)
		}
	}
	if len(flags) < 40 {
		t.Fatalf("found %d flags in --help, want the whole list:\n%s", len(flags), stderr.String())
	}
	for name := range rows {
		if !flags[name] {
			t.Errorf("docs/worker.md has a row for --%s, which the worker does not have", name)
		}
	}
	// The README's tables of the main settings and of the NATS connection
	// name only real ones.
	rb, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(rb), "## Running the worker")
	section, _, _ = strings.Cut(section, "Bad configuration prints")
	for line := range strings.SplitSeq(section, "\n") {
		if !strings.HasPrefix(line, "| `--") {
			continue
		}
		cells := strings.SplitN(line, "|", 4)
		for _, m := range regexp.MustCompile("`--([a-z0-9-]+)`").FindAllStringSubmatch(cells[1], -1) {
			if !flags[m[1]] {
				t.Errorf("the README's tables of worker settings name --%s, which the worker does not have", m[1])
			}
		}
		for _, m := range regexp.MustCompile("`((?:WORKER|CLERK|NATS)_[A-Z_]+)`").FindAllStringSubmatch(cells[2], -1) {
			if !strings.Contains(stderr.String(), "[$"+m[1]+"]") && m[1] != "CLERK_SECRET_KEY" {
				t.Errorf("the README's tables of worker settings name %s, which no flag reads", m[1])
			}
		}
	}
}

// docDefault is a default as --help prints it, written as the docs write
// it: without Go's quotes and brackets, and 2m0s as 2m.
func docDefault(d string) string {
	d = strings.Trim(d, `"[]`)
	if regexp.MustCompile(`^[0-9]+[hm](0m)?0s$`).MatchString(d) {
		d = strings.TrimSuffix(strings.TrimSuffix(d, "0s"), "0m")
	}
	return d
}
