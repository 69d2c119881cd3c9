package bench

import (
	"path/filepath"
	"testing"
)

// TestStalledFlowStillWritesItsReport: a raw flow that measured no rate
// (stalled past its warm-up, as once in CI) rated the worker at +Inf, and
// the report could not be written as JSON, losing the whole run.
func TestStalledFlowStillWritesItsReport(t *testing.T) {
	rows, target := overheadRows(1, Row{Name: "raw JetStream", Jobs: 8}, Row{Name: "raw HTTP", JobsPerS: 9000}, Row{Name: "worker", JobsPerS: 1500})
	rep := &Report{Rows: rows, Targets: []Target{target}}
	if err := rep.WriteJSON(filepath.Join(t.TempDir(), "r.json")); err != nil {
		t.Fatalf("WriteJSON: %v", err)
	}
	if w := rows[2]; w.Ratio != 0 || target.Met {
		t.Errorf("worker rated %v against no limit (met %v), want 0 and not met", w.Ratio, target.Met)
	}
}
