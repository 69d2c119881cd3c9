// Package jetstream_test keeps the JSON files beside it equal to what
// jobs.Topology.Export makes: the default topology with one replica (r1/, a
// single server) and with three (r3/, a three-node cluster). Regenerate
// them after changing the topology with
//
//	go test ./deploy/jetstream -run Export -update
package jetstream_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/clerkjobs/clerkjobs/jobs"
)

var update = flag.Bool("update", false, "rewrite the exported files")

func TestExportedFilesUpToDate(t *testing.T) {
	for dir, replicas := range map[string]int{"r1": 1, "r3": 3} {
		top := jobs.DefaultTopology()
		top.Replicas = replicas
		files, err := top.Export()
		if err != nil {
			t.Fatal(err)
		}
		if *update {
			_ = os.RemoveAll(dir)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			for name, b := range files {
				if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			continue
		}
		have, _ := filepath.Glob(filepath.Join(dir, "*.json"))
		var want []string
		for name, b := range files {
			want = append(want, filepath.Join(dir, name))
			got, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil || !bytes.Equal(got, b) {
				t.Errorf("%s/%s differs from Topology.Export (run go test ./deploy/jetstream -run Export -update): %v", dir, name, err)
			}
		}
		slices.Sort(want)
		if !slices.Equal(have, want) {
			t.Errorf("%s holds %v, Export makes %v", dir, have, want)
		}
	}
}
