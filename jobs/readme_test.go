package jobs

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestREADMEStatesTheBodyLimit: the largest job body is part of the
// contract (a larger one is refused by publishers and dead-lettered by the
// worker); the README states it, and the limit the jobs stream enforces.
func TestREADMEStatesTheBodyLimit(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := strings.Join(strings.Fields(string(b)), " ") // as rendered: line breaks are spaces
	body := fmt.Sprintf("at most %d KiB (`jobs.MaxJobBytes`)", MaxJobBytes>>10)
	stream := fmt.Sprintf("more than %d KiB, headers included", DefaultTopology().JobsStreamConfig().MaxMsgSize>>10)
	for _, want := range []string{body, stream} {
		if !strings.Contains(readme, want) {
			t.Errorf("the README does not say %q", want)
		}
	}
}
