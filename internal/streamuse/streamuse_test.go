package streamuse_test

import (
	"strings"
	"testing"

	"github.com/clerkjobs/clerkjobs/internal/streamuse"
)

// TestUseInWords: the percent is rounded down, so that the warning starts
// where the text says 80%; no cap (JetStream's -1, or 0) is said, never
// a division by it; a cap lowered below what the stream holds is over
// 100%.
func TestUseInWords(t *testing.T) {
	const mib = 1 << 20
	for _, tt := range []struct {
		name string
		use  streamuse.Use
		text string
		warn bool
	}{
		{"empty", streamuse.Use{MaxBytes: 256 * mib}, "0 B of 256.0 MiB (0%), 0 jobs", false},
		{"a little", streamuse.Use{Bytes: 12*mib + 300<<10, MaxBytes: 256 * mib, Messages: 1234}, "12.3 MiB of 256.0 MiB (4%), 1,234 jobs", false},
		{"just under", streamuse.Use{Bytes: 80*mib - 1, MaxBytes: 100 * mib, Messages: 1}, "80.0 MiB of 100.0 MiB (79%), 1 job", false},
		{"at the threshold", streamuse.Use{Bytes: 80 * mib, MaxBytes: 100 * mib, Messages: 2}, "80.0 MiB of 100.0 MiB (80%), 2 jobs", true},
		{"full", streamuse.Use{Bytes: mib - 40, MaxBytes: mib, Messages: 5000}, "1.0 MiB of 1.0 MiB (99%), 5,000 jobs", true},
		{"cap lowered below", streamuse.Use{Bytes: 3 * mib, MaxBytes: 2 * mib, Messages: 9}, "3.0 MiB of 2.0 MiB (150%), 9 jobs", true},
		{"no cap", streamuse.Use{Bytes: 5 * mib, MaxBytes: -1, Messages: 7}, "5.0 MiB (no cap), 7 jobs", false},
		{"cap zero", streamuse.Use{Bytes: 5 * mib, MaxBytes: 0, Messages: 7}, "5.0 MiB (no cap), 7 jobs", false},
		{"huge", streamuse.Use{Bytes: 1 << 62, MaxBytes: 1 << 62, Messages: 1}, "4.0 EiB of 4.0 EiB (100%), 1 job", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.use.Text("job", "jobs"); got != tt.text {
				t.Errorf("Text = %q, want %q", got, tt.text)
			}
			if got := tt.use.NearlyFull(); got != tt.warn {
				t.Errorf("NearlyFull = %v, want %v", got, tt.warn)
			}
			w := tt.use.JobsWarning()
			if (w != "") != tt.warn || (tt.warn && !strings.Contains(w, streamuse.JobsMaxBytesSetting)) {
				t.Errorf("JobsWarning = %q, want one naming %s: %v", w, streamuse.JobsMaxBytesSetting, tt.warn)
			}
		})
	}
}
