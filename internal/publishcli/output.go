package publishcli

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/schollz/progressbar/v3"
)

// printJSON writes v as one line of JSON.
func printJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode output: %w", err)
	}
	b = append(b, '\n')
	_, err = w.Write(b)
	return err
}

// progress is a progress bar on stderr when stderr is a terminal, and
// nothing otherwise: a log file should not fill with redraws.
type progress struct {
	bar *progressbar.ProgressBar
}

// newProgress starts a bar of max steps (-1: unknown, a spinner).
func (a *app) newProgress(max int64, description string) *progress {
	if !a.stderrTTY() {
		return &progress{}
	}
	return &progress{bar: progressbar.NewOptions64(max,
		progressbar.OptionSetWriter(a.env.Stderr),
		progressbar.OptionSetDescription(description),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
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

// done removes the bar so the summary that follows stands alone.
func (p *progress) done() {
	if p != nil && p.bar != nil {
		_ = p.bar.Finish()
		_ = p.bar.Clear()
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

// bytesHuman formats a byte count.
func bytesHuman(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}
