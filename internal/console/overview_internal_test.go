package console

import (
	"errors"
	"regexp"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/internal/streamuse"
)

// TestOverviewStreamCardBeforeTheFirstRead: the overview's jobs stream
// card says what the poller knows. Before its first poll (which can take
// up to 10 s) the snapshot holds neither a reading nor an error, and the
// card said "cannot be read", an alarm for a read that never failed; it
// now says "not read yet", and "cannot be read" only when the read failed.
func TestOverviewStreamCardBeforeTheFirstRead(t *testing.T) {
	p, err := loadPages()
	if err != nil {
		t.Fatal(err)
	}
	card := regexp.MustCompile(`<div class="card[^"]*" id="card-stream"><div class="big[^"]*">([^<]*)</div>([^<]*)</div>`)
	cases := []struct {
		name      string
		snap      snapshot
		big, text string
	}{
		{"before the first poll", snapshot{}, "–", "jobs stream: not read yet"},
		{"a read that failed", snapshot{At: time.Now(), JobsErr: errors.New("jobs stream SESSION_JOBS: stream not found")}, "–", "jobs stream: cannot be read"},
		{"a read", snapshot{At: time.Now(), JobsUse: &streamuse.Use{Bytes: 1 << 19, MaxBytes: 1 << 20}}, "50%", "of the jobs stream's cap"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := p.render("overview", frame{Title: "Overview", Now: time.Now(), Page: overviewPage{Snap: c.snap}})
			if err != nil {
				t.Fatal(err)
			}
			m := card.FindStringSubmatch(string(b))
			if m == nil || m[1] != c.big || m[2] != c.text {
				t.Errorf("jobs stream card %q, want %q and %q", m, c.big, c.text)
			}
		})
	}
}
