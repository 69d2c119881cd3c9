package publishcli

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// TestEveryFlagIsInDocs: publish's flags and the variables they fall back
// to are a contract (scripts and runbooks use them), and docs/publish.md is
// its full reference. Every command and every flag of every command must
// be named there, and every variable a flag's help names ("env
// CONSOLE_LISTEN"), and every variable a flag falls back to (envFlag): a
// new one fails here until it is written down.
func TestEveryFlagIsInDocs(t *testing.T) {
	b, err := os.ReadFile("../../docs/publish.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	envInUsage := regexp.MustCompile(`\(env ([^)]*)\)`)
	variable := regexp.MustCompile(`\b[A-Z][A-Z0-9]*_[A-Z0-9_]+\b|\bTRACE[A-Z]+\b`)
	seen := map[string]bool{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		c.LocalFlags().VisitAll(func(f *pflag.Flag) {
			if f.Hidden || seen[f.Name] {
				return // a hidden flag is an old name that prints its new one
			}
			seen[f.Name] = true
			if !strings.Contains(doc, "--"+f.Name) {
				t.Errorf("%s --%s is not in docs/publish.md", c.CommandPath(), f.Name)
			}
			for _, m := range envInUsage.FindAllStringSubmatch(f.Usage, -1) {
				for _, v := range variable.FindAllString(m[1], -1) {
					if !strings.Contains(doc, "`"+v+"`") && !strings.Contains(readme(t), "`"+v+"`") {
						t.Errorf("%s --%s falls back to %s, which neither docs/publish.md nor the README names", c.CommandPath(), f.Name, v)
					}
				}
			}
			// The variables the code reads, whether or not a help text says so.
			for _, v := range f.Annotations[envAnnotation] {
				if !strings.Contains(doc, "`"+v+"`") {
					t.Errorf("--%s falls back to %s, which docs/publish.md does not name", f.Name, v)
				}
			}
		})
		if c.HasParent() && !c.Hidden && c.Name() != "help" && c.Name() != "completion" && c.Parent().Name() != "completion" {
			if !regexp.MustCompile(`publish ` + regexp.QuoteMeta(c.CommandPath()[len("publish "):]) + `\s`).MatchString(doc) {
				t.Errorf("command %q is not in docs/publish.md", c.CommandPath())
			}
		}
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk((&app{env: Env{Getenv: os.Getenv}}).rootCommand())
	if len(seen) < 30 {
		t.Fatalf("found %d flags, want every command's", len(seen))
	}
}

func readme(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestExitStatusesAreInDocs: the exit statuses are what scripts branch
// on. Every Exit constant has a row in docs/publish.md's table and a line
// in --help, and every row is a status the code has.
func TestExitStatusesAreInDocs(t *testing.T) {
	b, err := os.ReadFile("../../docs/publish.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(b), "### Exit status")
	if !ok {
		t.Fatal("docs/publish.md has no Exit status section")
	}
	table, _, _ = strings.Cut(table, "\n### ")
	rows := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\| ([0-9]+) \|`).FindAllStringSubmatch(table, -1) {
		rows[m[1]] = true
	}
	src, err := os.ReadFile("cli.go")
	if err != nil {
		t.Fatal(err)
	}
	codes := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\tExit[A-Za-z]+ += ([0-9]+)$`).FindAllStringSubmatch(string(src), -1) {
		codes[m[1]] = true
	}
	if len(codes) < 8 {
		t.Fatalf("found exit codes %v in cli.go, want every Exit constant", codes)
	}
	for c := range codes {
		if !rows[c] {
			t.Errorf("exit %s has no row in docs/publish.md's Exit status table", c)
		}
		if !regexp.MustCompile(`(?m)^  ` + c + ` `).MatchString(exitCodesHelp) {
			t.Errorf("exit %s is not in --help's Exit status", c)
		}
	}
	for r := range rows {
		if !codes[r] {
			t.Errorf("docs/publish.md documents exit %s, which no Exit constant has", r)
		}
	}
}
