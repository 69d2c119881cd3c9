package text

import (
	"fmt"
	"strconv"
	"strings"
)

// Bytes writes a byte count for people, in binary units: "512 B",
// "12.3 MiB".
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
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
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
