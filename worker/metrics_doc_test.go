package worker

import (
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/clerkjobs/clerkjobs/internal/ratebudget"
)

// TestMetricsAreInTheREADME: the metric names and labels are part of the
// contract (dashboards and alerts are written against them), and the
// README's Metrics paragraph is where they are listed. Every metric the
// worker registers must be there, with its labels as name{a,b}.
func TestMetricsAreInTheREADME(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	m := newMetrics()
	m.observeBudget(func() (ratebudget.Stats, bool) { return ratebudget.Stats{}, true })

	want := map[string]string{} // name: labels, comma-separated
	// The vectors, from their descriptions (a vector without children is
	// not gathered).
	descRE := regexp.MustCompile(`fqName: "([^"]+)".*variableLabels: \{([^}]*)\}`)
	collectors := []prometheus.Collector{m.jobs, m.retries, m.deadLetters, m.deadLettersSuperseded, m.jobDuration,
		m.apiLatency, m.inFlight, m.rateLimitWait, m.rateLimitWaits, m.retryAfterPauses, m.circuitOpen, m.recordFailures}
	if n := reflect.TypeFor[metrics]().NumField() - 1; n != len(collectors) { // all but reg
		t.Fatalf("metrics has %d collectors, the test lists %d: add the new one", n, len(collectors))
	}
	for _, c := range collectors {
		ch := make(chan *prometheus.Desc, 8)
		go func() { c.Describe(ch); close(ch) }()
		for d := range ch {
			if sm := descRE.FindStringSubmatch(d.String()); sm != nil {
				want[sm[1]] = sm[2]
			}
		}
	}
	// Everything else registered (the rate budget's functions).
	mfs, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		name := mf.GetName()
		if strings.HasPrefix(name, "go_") || strings.HasPrefix(name, "process_") {
			continue // the standard collectors
		}
		if _, ok := want[name]; !ok {
			want[name] = ""
		}
	}
	if len(want) < 15 {
		t.Fatalf("found only %d metrics: %v", len(want), want)
	}
	for name, labels := range want {
		doc := "`" + name + "`"
		if labels != "" {
			doc = "`" + name + "{" + labels + "}`"
		}
		if !strings.Contains(readme, doc) {
			t.Errorf("metric %s is not in the README's Metrics paragraph", doc)
		}
	}
}
