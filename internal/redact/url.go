package redact

import (
	"regexp"
	"strings"
)

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

// urlUserInfo matches a URL's scheme and user information (a user and
// password, or a token) up to the @ that ends it: nats://alice:pw@,
// https://token@. The run is greedy up to a blank or a quote, so that an @
// left unescaped in a password ("p@ss") is hidden with the rest. The user
// or token ends at the first / ? or # as a URL's authority does (RFC
// 3986), and holds no bracket (an IPv6 host's); a run of digits after the
// colon followed by / ? or # is a port, not a password: an @ in a path, a
// query or a fragment (https://mastodon.social/@alice,
// http://localhost:3000/@alice) is no user information. A password's
// unescaped / counts (nats://alice:ab/cd@host). A URL cut short before its
// @ (an error quoting the first 40 bytes of a value, ending in "…") is
// taken when a colon follows its first word: what follows may be a
// password's head ("nats://alice:hunt…"), or a port ("nats://host:42…"),
// which is hidden too.
var urlUserInfo = regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.-]*://(?:` +
	`[^\s"'<>@/?#:\[\]]*(?::[0-9]*(?:[^\s"'<>@/?#0-9][^\s"'<>@]*)?(?:@[^\s"'<>@]*)*|(?:@[^\s"'<>@/?#:]*)*)@` +
	`|[^\s"'<>@/:]*:[^\s"'<>@]*…)`)

// HasURLCredentials reports whether s holds a URL with a password or token
// in it (scheme://user:password@host, scheme://token@host) that URLs
// would hide: pasted into a setting that is not a URL (a subject prefix, a
// file name, a job id), it would be repeated where others read it. A URL
// whose user information is already hidden ("u:xxxxx") does not count.
func HasURLCredentials(s string) bool {
	if !strings.Contains(s, "://") {
		return false
	}
	for _, m := range urlUserInfo.FindAllString(s, -1) {
		if hideUserInfo(m) != m {
			return true
		}
	}
	return false
}

// URLCredentials returns s with the user information of every URL in it
// hidden as URLs hides it (the user kept, "xxxxx" for a password or
// token), wherever the URL sits in s: an error that quotes a value given
// to the wrong setting. Unlike URLs it leaves an @ alone that follows no
// "scheme://" (an e-mail address, a job id such as deploy@host).
func URLCredentials(s string) string {
	if !strings.Contains(s, "://") {
		return s
	}
	return urlUserInfo.ReplaceAllStringFunc(s, hideUserInfo)
}

// All is Text and URLCredentials: s with every secret shape replaced and
// the user information of every URL in it hidden. It is for text someone
// else chose (a job's subject or field, an error quoting a setting), where
// a NATS server's URL with its password is as much a secret as a Clerk key.
func All(s string) string { return URLCredentials(Text(s)) }

// hideUserInfo hides the user information of m, a match of urlUserInfo.
func hideUserInfo(m string) string {
	i := strings.Index(m, "://") + len("://")
	if strings.HasSuffix(m, "…") && !strings.HasSuffix(m, "@") {
		user, rest, _ := strings.Cut(m[i:len(m)-len("…")], ":")
		if rest == "" || rest == "xxxxx" {
			return m
		}
		return m[:i] + user + ":xxxxx…"
	}
	info := m[i : len(m)-1]
	switch user, _, hasPass := strings.Cut(info, ":"); {
	case info == "" || info == "xxxxx" || hasPass && strings.TrimPrefix(info, user+":") == "xxxxx":
		return m
	case hasPass && !strings.ContainsAny(user, ",/@"):
		return m[:i] + user + ":xxxxx@"
	default:
		return m[:i] + "xxxxx@"
	}
}
