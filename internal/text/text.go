// Package text bounds and escapes strings that came from elsewhere (a
// message, an upstream answer) before they are stored, logged or printed,
// and writes numbers for people (Bytes, GroupDigits) in one way for the
// command line and the console.
package text

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// Ellipsis marks a cut.
const Ellipsis = "…"

// Truncate returns s cut to at most n bytes, never in the middle of a UTF-8
// sequence, ending in Ellipsis when it was cut (the Ellipsis counts in the n
// bytes).
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	if n <= len(Ellipsis) {
		return Ellipsis[:max(n, 0)]
	}
	cut := n - len(Ellipsis)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + Ellipsis
}

// Line returns s on one line: line breaks and every other control
// character become spaces, and it is truncated to n bytes. It is for
// header values and log fields, where a line break would forge a line.
func Line(s string, n int) string {
	clean := strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, s)
	return Truncate(clean, n)
}

// Terminal makes publisher-controlled text safe to print on an operator's
// terminal: control characters (escape sequences that clear the screen,
// retitle the window, move the cursor), DEL, invalid UTF-8 and Unicode
// format characters (bidirectional overrides) are written as Go escapes
// (\x1b, \u202e), so the text shows what it is and cannot act on the
// terminal. Printable text, including non-ASCII letters, is unchanged.
func Terminal(s string) string {
	if safe(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b.WriteString(`\x` + strconv.FormatUint(uint64(s[i]), 16))
		case unsafeRune(r):
			q := strconv.QuoteRuneToASCII(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// TerminalLines is Terminal for a text of several lines: each line is
// escaped, the line breaks between them kept.
func TerminalLines(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = Terminal(l)
	}
	return strings.Join(lines, "\n")
}

// JSON escapes, in encoded JSON, the characters that encoding/json leaves
// as they are and that act on a terminal or hide what follows them: DEL,
// C1 controls and Unicode format characters (bidirectional overrides). The
// value the JSON decodes to is the same; what a terminal shows is what it
// holds. b must be valid UTF-8, as json.Marshal writes it.
func JSON(b []byte) []byte {
	if safe(string(b)) {
		return b
	}
	out := make([]byte, 0, len(b)+16)
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r >= 0x7f && unsafeRune(r) {
			for _, u := range utf16.Encode([]rune{r}) {
				out = fmt.Appendf(out, `\u%04x`, u)
			}
		} else {
			out = append(out, b[i:i+size]...)
		}
		i += size
	}
	return out
}

func safe(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f || c >= utf8.RuneSelf {
			return !strings.ContainsFunc(s, unsafeRune) && utf8.ValidString(s)
		}
	}
	return true
}

func unsafeRune(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == '\u2028' || r == '\u2029'
}

// Words returns s with every word (a run without a space or a line break)
// longer than n bytes cut to n, Ellipsis included, and followed by its
// length: "aaaa…(100000 bytes)". It is for an error that quotes values it
// refuses: a value of 100 KB given to a setting would otherwise be
// repeated whole, on one line, once for each quote.
func Words(s string, n int) string {
	if len(s) <= n {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		j := strings.IndexAny(s[i:], " \n")
		if j < 0 {
			j = len(s) - i
		}
		w := s[i : i+j]
		if len(w) > n {
			b.WriteString(Truncate(w, n) + fmt.Sprintf("(%d bytes)", len(w)))
		} else {
			b.WriteString(w)
		}
		i += j
		if i < len(s) {
			b.WriteByte(s[i])
			i++
		}
	}
	return b.String()
}
