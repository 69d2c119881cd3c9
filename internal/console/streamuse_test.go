package console_test

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/internal/text"
)

// TestOverviewSaysHowFullTheJobsStreamIs: the overview shows the jobs
// stream's bytes against its cap, in the warning state with the setting
// that raises the cap once it is nearly full, "no cap" for a stream whose
// cap was removed, and a stream that is gone as an error, not a number.
func TestOverviewSaysHowFullTheJobsStreamIs(t *testing.T) {
	env := testenv.New(t)
	con := startConsole(t, env.NATSURL)
	const setting = "--jobs-max-bytes (WORKER_JOBS_MAX_BYTES)"
	stream := regexp.MustCompile(`<div class="card[^"]*" id="card-stream"><div class="big[^"]*">[^<]*</div>[^<]*</div>`)
	line := regexp.MustCompile(`<p id="jobs-stream"[^>]*>.*?</p>`)
	overview := func(re *regexp.Regexp) (card, para string) {
		t.Helper()
		body := con.waitPage(t, 20*time.Second, "/", regexp.MustCompile(`(?s)^.*`+re.String()+`.*$`))[0]
		return stream.FindString(body), line.FindString(body)
	}

	card, para := overview(regexp.MustCompile(`Jobs stream: 0 B of 256\.0 MiB \(0%\), 0 jobs`))
	if strings.Contains(card+para, "warn") || strings.Contains(para, setting) || !strings.Contains(card, ">0%<") {
		t.Errorf("empty jobs stream:\n%s\n%s", card, para)
	}

	held := testenv.FillJobsStream(t, env.JS, env.Topology)
	card, para = overview(regexp.MustCompile(`Jobs stream: [0-9.]+ [KM]iB of 1\.0 MiB \(99%\), ` + text.GroupDigits(strconv.Itoa(held)) + ` jobs`))
	if !strings.Contains(para, `class="warn"`) || !strings.Contains(para, "the jobs stream is 99% full") || !strings.Contains(para, setting) ||
		!strings.Contains(card, "warn") || !strings.Contains(card, ">99%<") {
		t.Errorf("full jobs stream:\n%s\n%s", card, para)
	}

	cfg := env.Topology.JobsStreamConfig()
	cfg.MaxBytes = -1
	if _, err := env.JS.UpdateStream(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	card, para = overview(regexp.MustCompile(`Jobs stream: [0-9.]+ [KM]iB \(no cap\), ` + text.GroupDigits(strconv.Itoa(held)) + ` jobs`))
	if strings.Contains(card+para, "warn") || strings.Contains(para, setting) || !strings.Contains(card, "no cap") {
		t.Errorf("uncapped jobs stream:\n%s\n%s", card, para)
	}

	if err := env.JS.DeleteStream(t.Context(), env.Topology.JobsStream); err != nil {
		t.Fatal(err)
	}
	body := con.waitPage(t, 20*time.Second, "/", regexp.MustCompile(`(?s)^.*<p class="error">jobs stream `+env.Topology.JobsStream+`: [^<]*not found.*$`))[0]
	if line.MatchString(body) || !strings.Contains(stream.FindString(body), "cannot be read") {
		t.Errorf("missing jobs stream: %s", stream.FindString(body))
	}
}

// TestOverviewSaysHowFullTheResultsStreamIs: a full results stream refuses
// every success, and the workers then keep each job that succeeded, not
// ready, until room comes: the overview shows its fill beside the jobs
// stream's, warning from 80% with what to do.
func TestOverviewSaysHowFullTheResultsStreamIs(t *testing.T) {
	env := testenv.New(t)
	con := startConsole(t, env.NATSURL)
	const setting = "--results-max-bytes (WORKER_RESULTS_MAX_BYTES)"
	line := regexp.MustCompile(`<p id="results-stream"[^>]*>.*?</p>`)
	overview := func(want string) string {
		t.Helper()
		body := con.waitPage(t, 20*time.Second, "/", regexp.MustCompile(`(?s)^.*Results stream: `+want+`.*$`))[0]
		return line.FindString(body)
	}
	cfg := env.Topology.ResultsStreamConfig()
	cfg.MaxBytes = 1 << 20
	if _, err := env.JS.UpdateStream(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	if para := overview(`0 B of 1\.0 MiB \(0%\), 0 results`); strings.Contains(para, "warn") || strings.Contains(para, setting) {
		t.Errorf("empty results stream: %s", para)
	}
	for i := range 15 {
		if _, err := env.JS.Publish(t.Context(), fmt.Sprintf("sessions.results.filler.%d", i), make([]byte, 60<<10)); err != nil {
			t.Fatal(err)
		}
	}
	para := overview(`[0-9.]+ KiB of 1\.0 MiB \(8[0-9]%\), 15 results`)
	if !strings.Contains(para, `class="warn"`) || !strings.Contains(para, "the workers keep the jobs that succeed") || !strings.Contains(para, setting) {
		t.Errorf("nearly full results stream: %s", para)
	}
}
