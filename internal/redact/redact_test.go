package redact

import (
	"encoding/base64"
	"encoding/json"
	"html"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

func TestText(t *testing.T) {
	const jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyXzEifQ.c2lnbmF0dXJl"
	tests := []struct {
		name, in string
		secrets  []string
		want     string
	}{
		{"plain text stays", "session not found", nil, "session not found"},
		{"known secret", "refresh token REFRESH-SECRET-123 is invalid", []string{"REFRESH-SECRET-123"}, "refresh token [REDACTED] is invalid"},
		{"short known secret ignored", "a b c", []string{"b"}, "a b c"},
		{"jwt anywhere", "bad token " + jwt + " here", nil, "bad token [REDACTED] here"},
		{"clerk key", "your key sk_test_abcdEFGH1234 was", nil, "your key [REDACTED] was"},
		{"live key", "sk_" + "live_ZZZZ9999", nil, "[REDACTED]"},
		{"bearer in any case", "Authorization: BeArEr abcdefghijklmnopqrstuv", nil, "Authorization: BeArEr [REDACTED]"},
		{"bearer header echoed", "Authorization: Bearer abcdefghijklmnopqrstuvwxyz012345", nil, "Authorization: Bearer [REDACTED]"},
		{"bearer prose stays", "bearer token invalid", nil, "bearer token invalid"},
		{"several", jwt + "," + jwt, nil, "[REDACTED],[REDACTED]"},
		{"secret inside a word", "xxREFRESH-SECRET-123yy", []string{"REFRESH-SECRET-123"}, "xx[REDACTED]yy"},
		{"restricted key", "key rk_" + "live_abcdEFGH1234", nil, "key [REDACTED]"},
		{"session cookie", "Cookie: __session=abc.def-ghi; theme=dark", nil, "Cookie: __session=[REDACTED]; theme=dark"},
		{"client cookie with suffix", `set "__client_uat=1700000000"`, nil, `set "__client_uat=[REDACTED]"`},
		{"python dunder stays", "__init__ failed", nil, "__init__ failed"},
		{"basic credentials", "Authorization: Basic b3BzOmh1bnRlcjI=", nil, "Authorization: Basic [REDACTED]"},
		{"basic credentials in any case", "proxy said: basic dXNlcjpwYXNzd29yZA", nil, "proxy said: basic [REDACTED]"},
		{"basic prose stays", "basic authentication failed", nil, "basic authentication failed"},
		{"basic prose capitalised stays", "Basic Configuration", nil, "Basic Configuration"},
		// base64 of "nick:2j9rs9m": lower-case letters alone, as a word is.
		{"basic credentials that read as a word", "Authorization: Basic bmljazoyajlyczlt", nil, "Authorization: Basic [REDACTED]"},
		{"basic credentials capitalised like a word", "Authorization: Basic Bmljazoyajlyczlt", nil, "Authorization: Basic [REDACTED]"},
		// base64 of "ab:cd", shorter than 8 characters before its padding.
		{"short basic credentials", "Authorization: Basic YWI6Y2Q=", nil, "Authorization: Basic [REDACTED]"},
		{"short basic prose stays", "Basic HTTP auth over TLS", nil, "Basic HTTP auth over TLS"},
		// A key pasted across two lines, as a flag's error quotes it
		// (pflag's %q) and as it is: the part after the break is the key's
		// too. Before, only the first line was hidden.
		{"key with an escaped line break", `invalid argument "sk_test_AbCd\nEf123456789" for "--concurrency"`, nil, `invalid argument "[REDACTED]" for "--concurrency"`},
		{"key with escaped CR LF", `"rk_` + `live_AbCd\r\nEf123456789"`, nil, `"[REDACTED]"`},
		{"key with a hex-escaped line break", `time: invalid duration "sk_test_AbCd\x0aEf123456789"`, nil, `time: invalid duration "[REDACTED]"`},
		{"key with a unicode-escaped line break", `"sk_test_AbCd\u000aEf123456789"`, nil, `"[REDACTED]"`},
		{"key with a line break", "key: sk_test_AbCd\nEf123456789", nil, "key: [REDACTED]"},
		{"key ending a line", "key sk_test_AbCd1234\n", nil, "key [REDACTED]\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Text(tt.in, tt.secrets...); got != tt.want {
				t.Errorf("Text(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestLooks(t *testing.T) {
	for in, want := range map[string]bool{
		"sess_123": false, "user_abc": false, "": false, "sk_test_abcd1234": true,
		"eyJhbGciOiJIUzI1NiJ9.eyJhIjoxfQ.sig": true, "pk_test_abcd1234": false,
		"Bearer " + strings.Repeat("a", 20): true, "rk_test_abcd1234": true, "__session=abc": true, "__init__": false,
		"Basic b3BzOmh1bnRlcjI=": true, "basic dXNlcjpwYXNzd29yZA": true, "basic authentication failed": false, "Basic Configuration": false,
		"basic 1bcdefghij": true, "Basic bmljazoyajlyczlt": true, "Basic YWI6Y2Q=": true, "basic auth": false,
	} {
		if got := Looks(in); got != want {
			t.Errorf("Looks(%q) = %v, want %v", in, got, want)
		}
	}
}

// TestTextFindsKnownSecretsEscaped: an upstream quotes the request as it
// travelled (a JSON body escapes <, > and &) and often escapes it again:
// percent-encoded in a URL, Go-quoted in net/http's error, HTML-escaped,
// base64 in a gateway's log line. A refresh token is opaque, shaped like
// nothing: before, Text found it only as it is, and each of these showed
// it.
func TestTextFindsKnownSecretsEscaped(t *testing.T) {
	const tok = `rt/AbC+dEf=gh<12345 67890&"q`
	jsonForm := `rt/AbC+dEf=gh\u003c12345 67890\u0026\"q`
	for name, in := range map[string]string{
		"as it is":                      "token " + tok + " refused",
		"JSON-escaped":                  `{"refresh_token":"` + jsonForm + `"}`,
		"JSON-escaped, percent-encoded": "body=" + url.QueryEscape(`{"refresh_token":"`+jsonForm+`"}`),
		"percent-encoded, every byte":   "GET /x?t=rt%2FAbC%2BdEf%3Dgh%3C12345%2067890%26%22q",
		"query-escaped":                 "t=" + url.QueryEscape(tok),
		"path-escaped":                  "/x/" + url.PathEscape(tok),
		"JSON-escaped, Go-quoted":       "malformed MIME header line: " + strconv.Quote(`{"refresh_token":"`+jsonForm+`"}`),
		"JSON in JSON":                  `{"message":` + jsonOf(`you sent {"refresh_token":"`+jsonForm+`"}`) + `}`,
		"HTML-escaped":                  "<pre>" + html.EscapeString(tok) + "</pre>",
		"base64":                        "request: " + base64.StdEncoding.EncodeToString([]byte("x="+tok+"&y=1")),
		"base64, another offset":        "request: " + base64.StdEncoding.EncodeToString([]byte("xy="+tok)),
		"base64url, third offset":       "request: " + base64.RawURLEncoding.EncodeToString([]byte("t="+tok)),
	} {
		got := Text(in, tok)
		if k := Prepare(tok, "sk_test_"+"emulator").Text(in); k != Text(in, tok, "sk_test_"+"emulator") || k != got {
			t.Errorf("%s: Prepare(…).Text(%q) = %q, want %q as Text has it", name, in, k, got)
		}
		for _, piece := range []string{"AbC", "QWJD", "67890", "Njc4OTA"} {
			if strings.Contains(got, piece) {
				t.Errorf("%s: Text(%q) = %q, still holds %q of the token", name, in, got, piece)
			}
		}
	}
	if got := Text("a plain sentence about nothing", tok); got != "a plain sentence about nothing" {
		t.Errorf("unrelated text changed: %q", got)
	}
}

// jsonOf is s as a JSON string, quotes included.
func jsonOf(s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// TestTextHidesPiecesOfAKnownSecret: an upstream that cuts what it quotes
// (a bounded message ending in "…", one half in its message and the other
// in its long message, net/http's status code up to the first space) shows
// a part of a refresh token, which is neither the whole token nor shaped
// like one: Text left it.
func TestTextHidesPiecesOfAKnownSecret(t *testing.T) {
	const tok = "opaqueRefreshTokenValue0123456789abcdef"
	for name, in := range map[string]string{
		"head, cut":         "refresh token " + tok[:20] + "… is invalid",
		"tail":              "…" + tok[15:] + " is invalid",
		"head at the end":   "token=" + tok[:14],
		"both halves":       tok[:19] + " | " + tok[19:],
		"JSON-escaped head": `{"refresh_token":"` + tok[:25],
		"twice":             tok[:13] + " and " + tok[:16],
	} {
		got := Text(in, tok)
		for i := 0; i+minPiece <= len(tok); i++ {
			if (i == 0 || i+minPiece == len(tok)) && strings.Contains(got, tok[i:i+minPiece]) {
				t.Errorf("%s: Text(%q) = %q keeps a piece of the token", name, in, got)
			}
		}
	}
	for _, in := range []string{"opaqueRefre is a word", "0123456789abc"} {
		if got := Text(in, tok); got != in {
			t.Errorf("Text(%q) = %q: pieces shorter than %d bytes are left", in, got, minPiece)
		}
	}
}
