package console

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/clerkjobs/clerkjobs/internal/fileread"
	"github.com/clerkjobs/clerkjobs/internal/redact"
	"github.com/clerkjobs/clerkjobs/internal/text"
)

// Credentials authenticate the console's users: a bearer token, basic-auth
// users, or both. Secrets are kept only as SHA-256 digests and compared in
// constant time.
type Credentials struct {
	token []byte // digest of the bearer token; nil: none
	users []basicUser
}

type basicUser struct {
	name     string
	password []byte // digest
}

// minSecret is the shortest token or password accepted: a console that
// replays and purges dead letters must not be guessable.
const minSecret = 16

func digest(s string) []byte {
	d := sha256.Sum256([]byte(s))
	return d[:]
}

// LoadCredentials reads a bearer token from tokenFile (its whole content,
// surrounding blank space ignored) and basic-auth users from basicFile (a
// "user:password" per line; blank lines and lines starting with # are
// skipped). Either may be empty; with both empty it returns nil, nil.
func LoadCredentials(tokenFile, basicFile string) (*Credentials, error) {
	// Bounded, and without waiting on a pipe nobody writes to (see
	// fileread): /dev/zero was read until memory ran out.
	const maxAuthFileBytes = 1 << 20
	if tokenFile == "" && basicFile == "" {
		return nil, nil
	}
	c := &Credentials{}
	if tokenFile != "" {
		b, err := fileread.Read(tokenFile, maxAuthFileBytes)
		if err != nil {
			return nil, fmt.Errorf("token file: %w", redact.FileError(tokenFile, err))
		}
		tok := strings.TrimSpace(string(b))
		switch {
		case tok == "":
			return nil, fmt.Errorf("token file %s is empty: put a random token in it (e.g. `openssl rand -hex 32 > %s`)", tokenFile, tokenFile)
		case len(tok) < minSecret:
			return nil, fmt.Errorf("token file %s: the token has %d characters, want at least %d (e.g. `openssl rand -hex 32`)", tokenFile, len(tok), minSecret)
		case strings.ContainsAny(tok, " \t\r\n"):
			return nil, fmt.Errorf("token file %s: the token contains blank space or several lines; want one token", tokenFile)
		}
		c.token = digest(tok)
	}
	if basicFile != "" {
		b, err := fileread.Read(basicFile, maxAuthFileBytes)
		if err != nil {
			return nil, fmt.Errorf("basic-auth file: %w", redact.FileError(basicFile, err))
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		for n := 1; sc.Scan(); n++ {
			line := strings.TrimSpace(sc.Text())
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			name, pw, ok := strings.Cut(line, ":")
			switch {
			case !ok || name == "":
				return nil, fmt.Errorf("basic-auth file %s line %d: want user:password", basicFile, n)
			case !validUser.MatchString(name):
				return nil, fmt.Errorf("basic-auth file %s line %d: user name %q: want 1 to 64 letters, digits, '.', '_', '@' or '-' (it is shown on every page and logged with every action)", basicFile, n, text.Terminal(text.Truncate(name, 64)))
			case name == tokenUser:
				return nil, fmt.Errorf("basic-auth file %s line %d: user name %q stands for the bearer token in the pages and the log: choose another name", basicFile, n, name)
			case slices.ContainsFunc(c.users, func(u basicUser) bool { return u.name == name }):
				return nil, fmt.Errorf("basic-auth file %s line %d: user %q is listed twice: keep one line (one password) per user", basicFile, n, name)
			case len(pw) < minSecret:
				return nil, fmt.Errorf("basic-auth file %s line %d: the password of %q has %d characters, want at least %d", basicFile, n, name, len(pw), minSecret)
			}
			c.users = append(c.users, basicUser{name: name, password: digest(pw)})
		}
		if len(c.users) == 0 {
			return nil, fmt.Errorf("basic-auth file %s lists no user: want user:password lines", basicFile)
		}
	}
	return c, nil
}

// tokenUser is who a request signed in with the bearer token is, on the
// pages and in the log; no basic-auth user may take the name.
const tokenUser = "token"

// validUser matches a name that can name an operator on a page and in the
// log as it is.
var validUser = regexp.MustCompile(`^[A-Za-z0-9._@-]{1,64}$`)

const loginCookie = "clerkjobs_console"

// signIns are the browsers signed in with the token: a random id per
// sign-in, in the cookie, kept here (as its digest) until it expires or its
// user signs out. A cookie copied from a browser then stops working at
// sign-out, and every one at a restart; one derived from the token would
// work until the token changed.
type signIns struct {
	mu      sync.Mutex
	expires map[[sha256.Size]byte]time.Time
}

// Sign-ins last signInTTL; at most maxSignIns are kept (the oldest go).
const (
	signInTTL  = 12 * time.Hour
	maxSignIns = 1000
)

// start records a sign-in and returns its cookie value.
func (s *signIns) start(now time.Time) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("sign-in id: %w", err)
	}
	id := base64.RawURLEncoding.EncodeToString(b)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.expires == nil {
		s.expires = map[[sha256.Size]byte]time.Time{}
	}
	maps.DeleteFunc(s.expires, func(_ [sha256.Size]byte, exp time.Time) bool { return !now.Before(exp) })
	for len(s.expires) >= maxSignIns {
		delete(s.expires, slices.MinFunc(slices.Collect(maps.Keys(s.expires)), func(a, b [sha256.Size]byte) int {
			return s.expires[a].Compare(s.expires[b])
		}))
	}
	s.expires[sha256.Sum256([]byte(id))] = now.Add(signInTTL)
	return id, nil
}

// valid reports whether the request carries the cookie of a sign-in that
// has not ended.
func (s *signIns) valid(r *http.Request, now time.Time) bool {
	ck, err := r.Cookie(loginCookie)
	if err != nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.expires[sha256.Sum256([]byte(ck.Value))]
	return ok && now.Before(exp)
}

// end forgets the request's sign-in.
func (s *signIns) end(r *http.Request) {
	if ck, err := r.Cookie(loginCookie); err == nil {
		s.mu.Lock()
		delete(s.expires, sha256.Sum256([]byte(ck.Value)))
		s.mu.Unlock()
	}
}

// check returns who the request's Authorization header authenticates as,
// or "" when it does not. (A browser's sign-in cookie is checked by the
// console's signIns.)
// Every configured secret is compared, whatever matched first, so the time
// taken says nothing about which one came close.
func (c *Credentials) check(r *http.Request) string {
	who := ""
	if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && c.tokenMatches(tok) {
		who = tokenUser
	}
	if name, pw, ok := r.BasicAuth(); ok {
		d := digest(pw)
		for _, u := range c.users {
			nameOK := subtle.ConstantTimeCompare(digest(name), digest(u.name))
			pwOK := subtle.ConstantTimeCompare(d, u.password)
			if nameOK&pwOK == 1 {
				who = u.name
			}
		}
	}
	return who
}

// tokenMatches reports whether tok is the bearer token (the login form).
func (c *Credentials) tokenMatches(tok string) bool {
	return c.token != nil && subtle.ConstantTimeCompare(digest(tok), c.token) == 1
}

// ErrNeedsAuth is returned for a listen address other than loopback
// without credentials.
var ErrNeedsAuth = errors.New("the console listens on a non-loopback address only with authentication")

// CheckAddress refuses to listen on addr without credentials unless every
// address it stands for is a loopback address.
func CheckAddress(addr string, creds *Credentials) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("listen address %q: %w (want host:port, e.g. 127.0.0.1:8080)", addr, err)
	}
	if creds != nil || loopbackHost(host) {
		return nil
	}
	return fmt.Errorf("listen address %q: %w: give --token-file or --basic-auth-file, or listen on 127.0.0.1", addr, ErrNeedsAuth)
}

// loopbackHost reports whether host (a listen or Host-header host) names
// only loopback addresses. "" and unspecified addresses mean every
// interface.
func loopbackHost(host string) bool {
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
