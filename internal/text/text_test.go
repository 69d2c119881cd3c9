package text

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestTruncate(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"abcdefghijkl", 10, "abcdefg…"},
		{"ééééé", 8, "éé…"}, // 10 bytes; a cut at 5 would split an é
		{"abc", 2, "\xe2\x80"[:0] + Ellipsis[:2]},
		{"abc", 0, ""},
	}
	for _, tt := range tests {
		got := Truncate(tt.in, tt.n)
		if got != tt.want {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
		if len(got) > max(tt.n, 0) {
			t.Errorf("Truncate(%q, %d) is %d bytes", tt.in, tt.n, len(got))
		}
		if tt.n > 3 && !utf8.ValidString(got) {
			t.Errorf("Truncate(%q, %d) = %q is not valid UTF-8", tt.in, tt.n, got)
		}
	}
}

func TestLine(t *testing.T) {
	if got := Line("a\r\nb\tc\x00d\u2028e", 100); got != "a  b c d e" {
		t.Errorf("Line = %q", got)
	}
	if got := Line(strings.Repeat("x", 50), 10); len(got) != 10 {
		t.Errorf("Line is %d bytes, want 10", len(got))
	}
}

func TestTerminal(t *testing.T) {
	tests := map[string]string{
		"plain job-1":                 "plain job-1",
		"café ✓":                      "café ✓",
		"\x1b]0;owned\x07\x1b[2Jfake": `\x1b]0;owned\a\x1b[2Jfake`,
		"line\nbreak":                 `line\nbreak`,
		"rtl\u202eevil":               `rtl\u202eevil`,
		"bad\xffbyte":                 `bad\xffbyte`,
		"del\x7f":                     `del\x7f`,
		"c1\u009bcontrol":             `c1\u009bcontrol`,
	}
	for in, want := range tests {
		if got := Terminal(in); got != want {
			t.Errorf("Terminal(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTerminalLines(t *testing.T) {
	tests := map[string]string{
		"one\ntwo":               "one\ntwo",
		"rtl\u202e\nnext\x1b[2J": `rtl\u202e` + "\n" + `next\x1b[2J`,
		"cr\r\nlf":               `cr\r` + "\n" + "lf",
	}
	for in, want := range tests {
		if got := TerminalLines(in); got != want {
			t.Errorf("TerminalLines(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestIndentJSON(t *testing.T) {
	for _, src := range []string{`{}`, `[]`, `{"a":[1,2,{"b":"x,[y]\"{"}],"c":{}}`, `[[[[[]]]]]`, ` { "a" : [ 1 , 2 ] } `} {
		out, ok := IndentJSON([]byte(src), "  ", "  ", 1<<20)
		if !ok {
			t.Fatalf("%s: not indented", src)
		}
		if n := IndentedSize([]byte(src), 2, 2, 1<<20); n < len(out) {
			t.Errorf("%s: bound %d below the indented length %d", src, n, len(out))
		}
	}
	deep := strings.Repeat("[", 5000) + strings.Repeat("]", 5000)
	if _, ok := IndentJSON([]byte(deep), "", "  ", 1<<20); ok {
		t.Error("arrays 5,000 deep indented within 1 MiB")
	}
	if _, ok := IndentJSON([]byte(`{"a":`), "", "  ", 1<<20); ok {
		t.Error("invalid JSON indented")
	}
}

func TestJSON(t *testing.T) {
	for _, s := range []string{"plain", "é and 日本", "a\u202eevil\u202c", "del\x7f", "c1\u0085", "tag\U000E0041", "nl\n", "<&>"} {
		b, err := json.Marshal(map[string]string{"v": s})
		if err != nil {
			t.Fatal(err)
		}
		out := JSON(b)
		for _, r := range string(out) {
			if r >= 0x7f && unsafeRune(r) {
				t.Errorf("JSON(%q) = %s: %U left as it is", s, out, r)
			}
		}
		var back map[string]string
		if err := json.Unmarshal(out, &back); err != nil || back["v"] != s {
			t.Errorf("JSON(%q) = %s decodes to %q, %v; want the same value", s, out, back["v"], err)
		}
	}
}

func TestBytes(t *testing.T) {
	for _, tt := range []struct {
		n    uint64
		want string
	}{
		{0, "0 B"}, {1023, "1023 B"}, {1024, "1.0 KiB"}, {12*1<<20 + 300<<10, "12.3 MiB"},
		{1<<20 - 40, "1.0 MiB"}, {1<<20 - 60<<10, "964.0 KiB"}, {256 << 20, "256.0 MiB"}, {1<<64 - 1, "16.0 EiB"},
	} {
		if got := Bytes(tt.n); got != tt.want {
			t.Errorf("Bytes(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}

func TestGroupDigits(t *testing.T) {
	for in, want := range map[string]string{"0": "0", "999": "999", "1000": "1,000", "-1234567": "-1,234,567", "12.5": "12.5", "–": "–"} {
		if got := GroupDigits(in); got != want {
			t.Errorf("GroupDigits(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestWords(t *testing.T) {
	long := strings.Repeat("a", 1000)
	cut := long[:20-len(Ellipsis)] + Ellipsis
	for _, tc := range []struct{ in, want string }{
		{"short words stay", "short words stay"},
		{`--log-level "` + long + `": want debug`, `--log-level "` + long[:19-len(Ellipsis)] + Ellipsis + `(1003 bytes) want debug`},
		{long + "\n" + long, cut + "(1000 bytes)\n" + cut + "(1000 bytes)"},
		{"a  b ", "a  b "},
	} {
		if got := Words(tc.in, 20); got != tc.want {
			t.Errorf("Words(%.40q, 20) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
