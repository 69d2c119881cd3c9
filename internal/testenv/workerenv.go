package testenv

import (
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// WorkerEnv lists every environment variable cmd/worker reads, read from
// its source (its flag table and internal/natsconn's, where the connection
// variables are defined once), plus the Go runtime's: deployment tests
// check that manifests set no variable the worker would ignore.
func WorkerEnv(t testing.TB) map[string]bool {
	t.Helper()
	_, here, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("testenv: cannot find the module root")
	}
	root := filepath.Join(filepath.Dir(here), "..", "..")
	known := map[string]bool{"GOMEMLIMIT": true, "GOMAXPROCS": true, "GOGC": true}
	files, _ := filepath.Glob(filepath.Join(root, "internal", "natsconn", "*.go"))
	files = append(files, filepath.Join(root, "cmd", "worker", "config.go"))
	for _, f := range files {
		if filepath.Ext(f) != ".go" || strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile(`"([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)"`).FindAllSubmatch(src, -1) {
			known[string(m[1])] = true
		}
	}
	for _, want := range []string{"NATS_URL", "CLERK_SECRET_KEY", "WORKER_DRAIN_TIMEOUT"} {
		if !known[want] {
			t.Fatalf("the worker's source no longer names %s: update testenv.WorkerEnv", want)
		}
	}
	return known
}
