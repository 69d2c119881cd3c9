package text

import (
	"fmt"
	"strconv"
	"strings"
)

// Bytes writes a byte count for people, in binary units: "512 B",
// "12.3 MiB". A count that would round to 1024.0 of a unit is written in
// the next ("1.0 MiB", not "1024.0 KiB", for a stream a few bytes short of
// its 1 MiB cap).
func Bytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	v := float64(n) / float64(div)
	if v >= unit-0.05 && exp < len("KMGTPE")-1 {
		v, exp = v/unit, exp+1
	}
	return fmt.Sprintf("%.1f %ciB", v, "KMGTPE"[exp])
}

// GroupDigits puts commas between groups of three digits of the integer
// written in s ("1234567": "1,234,567"); any other s is returned as it is.
func GroupDigits(s string) string {
	digits := strings.TrimPrefix(s, "-")
	if _, err := strconv.Atoi(digits); err != nil || len(digits) <= 3 {
		return s
	}
	var b strings.Builder
	b.WriteString(s[:len(s)-len(digits)]) // the sign
	for i, r := range digits {
		if i > 0 && (len(digits)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}
