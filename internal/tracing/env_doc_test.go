package tracing_test

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestVariablesAreInDocs: the OTEL_* variables the programs read are how
// operators turn tracing on; docs/tracing.md lists them. Every one this
// package reads must be in its table.
func TestVariablesAreInDocs(t *testing.T) {
	src, err := os.ReadFile("tracing.go")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("../../docs/tracing.md")
	if err != nil {
		t.Fatal(err)
	}
	vars := regexp.MustCompile(`(?m)^\tenv[A-Za-z]+ += "(OTEL_[A-Z_]+)"`).FindAllStringSubmatch(string(src), -1)
	if len(vars) < 8 {
		t.Fatalf("found %d OTEL_ variables in tracing.go, want every one", len(vars))
	}
	for _, v := range vars {
		if !strings.Contains(string(b), "| `"+v[1]+"`") && !strings.Contains(string(b), ", `"+v[1]+"`") {
			t.Errorf("%s is read but not in docs/tracing.md's table", v[1])
		}
	}
}
