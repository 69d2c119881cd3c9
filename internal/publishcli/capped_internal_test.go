package publishcli

import (
	"strconv"
	"testing"
)

// A list of problems is cut to maxListed lines, and only those are
// formatted: a batch of a million duplicates or reused ids must not make a
// million texts to print twenty.
func TestCappedFormatsOnlyWhatIsListed(t *testing.T) {
	for _, tc := range []struct {
		items, kept, formatted, lines int
	}{
		{items: 0, kept: 0, formatted: 0, lines: 0},
		{items: maxListed, kept: maxListed, formatted: maxListed, lines: maxListed},
		{items: 100_000, kept: 50_000, formatted: maxListed, lines: maxListed + 1},
	} {
		items := make([]int, tc.items)
		for i := range items {
			items[i] = i
		}
		formatted := 0
		lines, n := capped(items, func(i int) bool { return tc.kept == tc.items || i%2 == 0 },
			func(i int) string { formatted++; return strconv.Itoa(i) }, "and %d more")
		if n != tc.kept || formatted != tc.formatted || len(lines) != tc.lines {
			t.Errorf("%d items: kept %d, formatted %d, %d lines; want %d, %d, %d", tc.items, n, formatted, len(lines), tc.kept, tc.formatted, tc.lines)
		}
		if tc.kept > maxListed {
			if want := "and " + strconv.Itoa(tc.kept-maxListed) + " more"; lines[len(lines)-1] != want {
				t.Errorf("last line %q, want %q", lines[len(lines)-1], want)
			}
		}
	}
}
