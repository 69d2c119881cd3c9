package redact

import "strings"

// URLs hides the user information (a user and password, or a token) of
// every URL in s, a URL or a comma-separated list of them, so that a log
// line or an error can show it: "xxxxx" in place of a password or token.
// It works on the text, as given, not on a parsed URL: a comma in a
// password cuts its URL in two in a list (the piece before the @ would be
// shown as a URL of its own), and a URL that does not parse is still
// shown. What precedes an @, back to the nearest "://" (or the start), is
// the user information, a user name before its first ':' kept. That holds
// even across a '/': an @ in a NATS or API URL's path is unheard of, while
// a '/' in a password after digits (nats://alice:12/x@h) parses as a port
// and a path.
func URLs(s string) string {
	var b strings.Builder
	rest := s
	for {
		at := strings.IndexByte(rest, '@')
		if at < 0 {
			b.WriteString(rest)
			return b.String()
		}
		start := 0
		if i := strings.LastIndex(rest[:at], "://"); i >= 0 {
			start = i + len("://")
		}
		info := rest[start:at]
		b.WriteString(rest[:start])
		switch user, _, hasPass := strings.Cut(info, ":"); {
		case hasPass && !strings.ContainsAny(user, ",/"):
			b.WriteString(user + ":xxxxx")
		default:
			b.WriteString("xxxxx")
		}
		b.WriteByte('@')
		rest = rest[at+1:]
	}
}
