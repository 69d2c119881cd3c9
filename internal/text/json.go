package text

import (
	"bytes"
	"encoding/json"
)

// IndentLimit is a bound for the indented form of an n-byte payload to
// pass to IndentJSON: a job's shallow JSON indents to a small multiple of
// its size, while arrays nested thousands deep would indent to the square
// of their depth.
func IndentLimit(n int) int { return 64<<10 + 4*n }

// IndentJSON indents src as json.Indent does, unless src is not JSON or
// its indented form could pass limit bytes: ok is false then, and nothing
// was allocated for it. Indenting is not linear: every line is as long as
// its depth, so a few kilobytes of arrays nested thousands deep indent to
// tens of megabytes, a megabyte of them to gigabytes. The size is bounded
// before indenting, from the depth of each token that starts a line.
func IndentJSON(src []byte, prefix, indent string, limit int) (_ []byte, ok bool) {
	if IndentedSize(src, len(prefix), len(indent), limit) > limit {
		return nil, false
	}
	var buf bytes.Buffer
	if json.Indent(&buf, src, prefix, indent) != nil {
		return nil, false
	}
	return buf.Bytes(), true
}

// IndentedSize is an upper bound of the length of src indented with a
// prefix and an indent of the given lengths, counted until it passes
// limit (it returns a value above limit then).
func IndentedSize(src []byte, prefix, indent, limit int) int {
	n, depth, inString, escaped := len(src), 0, false, false
	for _, c := range src {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		case c == '"':
			inString = true
			continue
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			if depth > 0 {
				depth--
			}
		case c == ':':
			n++ // ": "
			continue
		case c != ',':
			continue
		}
		// A newline, the prefix and the indent of a level at most one
		// deeper than the token's.
		n += 1 + prefix + indent*(depth+1)
		if n > limit {
			return n
		}
	}
	return n
}
