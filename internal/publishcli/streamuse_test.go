package publishcli_test

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/clerkjobs/clerkjobs/internal/publishcli"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/internal/text"
)

// TestStatusSaysHowFullTheJobsStreamIs: publish status says the jobs
// stream's bytes against its cap, in words and in --json, warns once it is
// nearly full naming the setting that raises the cap, says "no cap" for a
// stream an operator uncapped, and a missing stream without a number.
func TestStatusSaysHowFullTheJobsStreamIs(t *testing.T) {
	h := newHarness(t)
	const setting = "--jobs-max-bytes (WORKER_JOBS_MAX_BYTES)"
	type jobsJSON struct {
		Jobs struct {
			Stored     uint64 `json:"stored"`
			Bytes      uint64 `json:"bytes"`
			MaxBytes   *int64 `json:"max_bytes"`
			Percent    uint64 `json:"percent"`
			NearlyFull bool   `json:"nearly_full"`
			Error      string `json:"error"`
		} `json:"jobs"`
		// Members are the members of jobs the output has, whatever their
		// value: an unread cap must be absent, not 0 nor null.
		Members map[string]any `json:"-"`
	}
	statusJSON := func() jobsJSON {
		t.Helper()
		out := []byte(h.run(t, "status", "--json").stdout)
		var st jobsJSON
		testenv.DecodeJSON(t, out, &st)
		var raw struct {
			Jobs map[string]any `json:"jobs"`
		}
		testenv.DecodeJSON(t, out, &raw)
		st.Members = raw.Jobs
		return st
	}
	maxBytes := func(st jobsJSON) any {
		if st.Jobs.MaxBytes == nil {
			return nil
		}
		return *st.Jobs.MaxBytes
	}

	r := h.run(t, "status")
	if r.code != 0 || !strings.Contains(r.stdout, "\n  jobs stream: 0 B of 256.0 MiB (0%), 0 jobs\n") || strings.Contains(r.stdout, setting) {
		t.Fatalf("empty jobs stream: %v", r)
	}

	held := h.fillJobsStream(t)
	r = h.run(t, "status")
	stored := regexp.MustCompile(`\n  jobs stream: [0-9.]+ [KM]iB of 1\.0 MiB \(99%\), ([0-9,]+) jobs\n  warning: the jobs stream is 99% full: once full it refuses new jobs .*` + regexp.QuoteMeta(setting) + `\n`).FindStringSubmatch(r.stdout)
	if r.code != 0 || stored == nil || stored[1] != text.GroupDigits(strconv.Itoa(held)) {
		t.Fatalf("full jobs stream (%d jobs): %v", held, r)
	}
	if st := statusJSON(); maxBytes(st) != int64(1<<20) || st.Jobs.Stored != uint64(held) || st.Jobs.Bytes > 1<<20 || st.Jobs.Percent != 99 || !st.Jobs.NearlyFull {
		t.Errorf("status --json of the full jobs stream: jobs %v", st.Members)
	}

	cfg := h.topo.JobsStreamConfig()
	cfg.MaxBytes = -1
	if _, err := h.js.UpdateStream(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	r = h.run(t, "status")
	if r.code != 0 || !regexp.MustCompile(`\n  jobs stream: [0-9.]+ [KM]iB \(no cap\), `+stored[1]+` jobs\n`).MatchString(r.stdout) || strings.Contains(r.stdout, setting) {
		t.Errorf("uncapped jobs stream: %v", r)
	}
	if st := statusJSON(); maxBytes(st) != int64(-1) || st.Jobs.Percent != 0 || st.Jobs.NearlyFull {
		t.Errorf("status --json of the uncapped jobs stream: jobs %v", st.Members)
	}

	if err := h.js.DeleteStream(t.Context(), h.topo.JobsStream); err != nil {
		t.Fatal(err)
	}
	r = h.run(t, "status")
	if r.code != publishcli.ExitUnavailable || !strings.Contains(r.stdout, "jobs (stream "+h.topo.JobsStream+"): ") || strings.Contains(r.stdout, "jobs stream: ") {
		t.Errorf("missing jobs stream: %v", r)
	}
	// A cap of 0 would read as "no cap" (or as a stream that takes nothing)
	// to a script: an unread cap is no member at all.
	st := statusJSON()
	if _, has := st.Members["max_bytes"]; has || st.Jobs.Error == "" || st.Jobs.NearlyFull {
		t.Errorf("status --json of the missing jobs stream: jobs %v; want an error and no max_bytes", st.Members)
	}
}

// TestStatusSaysHowFullTheResultsStreamIs: the results stream has a cap
// too, and once full the workers keep every job that succeeds: publish
// status says how full it is and, from 80%, what to raise.
func TestStatusSaysHowFullTheResultsStreamIs(t *testing.T) {
	h := newHarness(t)
	const setting = "--results-max-bytes (WORKER_RESULTS_MAX_BYTES)"
	r := h.run(t, "status")
	if r.code != 0 || !strings.Contains(r.stdout, "\nresults (stream "+h.topo.ResultsStream+"): 0 B of 2.0 GiB (0%), 0 results\n") || strings.Contains(r.stdout, setting) {
		t.Fatalf("empty results stream: %v", r)
	}
	cfg := h.topo.ResultsStreamConfig()
	cfg.MaxBytes = 1 << 20
	if _, err := h.js.UpdateStream(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	for i := range 15 {
		if _, err := h.js.Publish(t.Context(), fmt.Sprintf("sessions.results.filler.%d", i), make([]byte, 60<<10)); err != nil {
			t.Fatal(err)
		}
	}
	r = h.run(t, "status")
	if r.code != 0 || !regexp.MustCompile(`\nresults \(stream `+h.topo.ResultsStream+`\): [0-9.]+ KiB of 1\.0 MiB \(8[0-9]%\), 15 results\n  warning: the results stream is 8[0-9]% full: .*the workers keep the jobs that succeed .*`+regexp.QuoteMeta(setting)).MatchString(r.stdout) {
		t.Fatalf("nearly full results stream: %v", r)
	}
	var st struct {
		Results struct {
			Stored     uint64 `json:"stored"`
			MaxBytes   *int64 `json:"max_bytes"`
			NearlyFull bool   `json:"nearly_full"`
		} `json:"results"`
	}
	testenv.DecodeJSON(t, []byte(h.run(t, "status", "--json").stdout), &st)
	if st.Results.Stored != 15 || st.Results.MaxBytes == nil || *st.Results.MaxBytes != 1<<20 || !st.Results.NearlyFull {
		t.Errorf("status --json of the nearly full results stream: %+v", st.Results)
	}
}
