package publishcli

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/clerkjobs/clerkjobs/internal/text"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// printJSON writes v as one line of JSON.
func printJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode output: %w", err)
	}
	// Text from elsewhere (Clerk's words, a publisher's headers) may hold
	// characters that act on a terminal: escaped, they decode the same.
	b = append(text.JSON(b), '\n')
	_, err = w.Write(b)
	return err
}

// summary prints a command's summary: v as {"summary": v} with --json,
// else the text.
func (a *app) summary(v any, text string) error {
	if a.jsonOut {
		return printJSON(a.env.Stdout, map[string]any{"summary": v})
	}
	fmt.Fprintln(a.env.Stdout, text)
	return nil
}

// capped formats the items keep selects, only the first maxListed of them
// (a batch of a million lines must not make a million texts), then a line
// saying how many more there were (more: a format of that count). n is how
// many keep selected.
func capped[T any](items []T, keep func(T) bool, format func(T) string, more string) (lines []string, n int) {
	for _, it := range items {
		if !keep(it) {
			continue
		}
		if n++; n <= maxListed {
			lines = append(lines, format(it))
		}
	}
	if n > maxListed {
		lines = append(lines, fmt.Sprintf(more, n-maxListed))
	}
	return lines, n
}

// progress is a progress bar on stderr when stderr is a terminal, and
// nothing otherwise: a log file should not fill with redraws.
type progress struct {
	bar *progressbar.ProgressBar
	w   io.Writer
}

// newProgress starts a bar of max steps (-1: unknown, a spinner).
func (a *app) newProgress(max int64, description string) *progress {
	if !a.stderrTTY() {
		return &progress{}
	}
	// Not cleared on finish: the bar stays, at its total when the work is
	// complete (the bar always draws reaching its total, throttled or
	// not), where the work stopped otherwise.
	return &progress{w: a.env.Stderr, bar: progressbar.NewOptions64(max,
		progressbar.OptionSetWriter(a.env.Stderr),
		progressbar.OptionSetDescription(description),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetWidth(30),
	)}
}

func (p *progress) add(n int) {
	if p != nil && p.bar != nil {
		_ = p.bar.Add(n) // drawing errors must not stop the work
	}
}

func (p *progress) set(done, max int64) {
	if p == nil || p.bar == nil {
		return
	}
	if max > 0 && p.bar.GetMax64() != max {
		p.bar.ChangeMax64(max)
	}
	_ = p.bar.Set64(done)
}

// interrupt clears the bar, for a line to be written in its place; the
// bar is drawn again at its next step.
func (p *progress) interrupt() {
	if p != nil && p.bar != nil {
		_ = p.bar.Clear()
	}
}

// done stops the bar where the work is, never claiming more than was done,
// and ends its line so that the summary that follows stands alone.
func (p *progress) done() {
	if p != nil && p.bar != nil {
		_ = p.bar.Exit()
		fmt.Fprintln(p.w)
	}
}

// ago says how long ago t was, for people.
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now.Sub(t).Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm ago", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}

// runText says how a job ran: its attempts and deliveries. An attempt of
// most jobs is one Clerk call; one of a revoke_all makes a call per page
// of sessions and per session, so its attempts are not counted as calls.
func runText(op jobs.Op, attempts, deliveries int) string {
	calls := plural(attempts, "Clerk call", "Clerk calls")
	if op == jobs.OpRevokeAll {
		calls = plural(attempts, "attempt", "attempts")
	}
	return calls + " over " + plural(deliveries, "delivery", "deliveries")
}

func plural(n int, one, many string) string {
	if n != 1 {
		one = many
	}
	return fmt.Sprintf("%d %s", n, one)
}
