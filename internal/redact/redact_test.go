package redact

import (
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
