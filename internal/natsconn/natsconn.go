// Package natsconn connects to NATS with the authentication and TLS options
// every clerkjobs program accepts, so the worker and the publish command
// line agree on them: one set of flags and environment variables (Flags,
// ApplyEnv), one validation, and connection problems reported the same way
// with what to check (ConnectError.Hint).
package natsconn

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/clerkjobs/clerkjobs/internal/fileread"
	"github.com/clerkjobs/clerkjobs/internal/redact"
	"github.com/clerkjobs/clerkjobs/internal/text"
)

// DefaultURL is the server used when none is configured.
const DefaultURL = nats.DefaultURL

// Options say how to reach and authenticate to NATS. Every field is
// optional; file fields name files on disk, never hold their contents.
type Options struct {
	// URL is one server URL or a comma-separated list (DefaultURL if empty).
	URL string
	// Creds is a credentials file (JWT and NKey seed), as issued by nsc.
	Creds string
	// NKeyFile holds an NKey user seed.
	NKeyFile string
	// User and Password authenticate with a user name and password.
	// PasswordFile names a file holding the password instead (one of the
	// two), read at every connect and reconnect.
	User         string
	Password     string
	PasswordFile string
	// TLSCA verifies the server with this CA bundle instead of the system
	// roots; TLSCert and TLSKey present a client certificate.
	TLSCA   string
	TLSCert string
	TLSKey  string
	// Name identifies the connection in the server's monitoring.
	Name string
	// Timeout bounds dialing one server (nats.go's default when zero).
	Timeout time.Duration
	// InboxPrefix replaces _INBOX as the prefix of this connection's reply
	// subjects (JetStream acknowledgements, --wait replies). A restricted
	// user allowed to subscribe only to its own inboxes needs it, e.g.
	// _INBOX.svc_a (see deploy/nats).
	InboxPrefix string
}

// serverURL is the URL to connect to, DefaultURL when none is set.
func (o Options) serverURL() string {
	if strings.TrimSpace(o.URL) == "" {
		return DefaultURL
	}
	return o.URL
}

// Validate reports options that cannot work together, before any network
// traffic, and files that cannot be read.
func (o Options) Validate() error {
	var errs []error
	// A value shaped like a secret (a Clerk key pasted into the wrong
	// variable) would go where others read it: a server URL into every
	// connection error and log line, a user name into CONNECT and the
	// server's log, an inbox prefix into every reply subject. Refused, the
	// setting named and the value never repeated, before any check that
	// would quote it. A URL's user information holds a password or token by
	// design, and Redact hides it.
	for _, f := range []struct{ flag, v string }{{FlagURL, Redact(o.URL)}, {FlagUser, o.User}, {FlagInboxPrefix, o.InboxPrefix}} {
		switch {
		case redact.Looks(f.v):
			errs = append(errs, fmt.Errorf("%s: its value is shaped like a secret (a Clerk key or a JWT), so it is not repeated here; the Clerk secret key goes only in CLERK_SECRET_KEY (or a file named by --clerk-secret-key-file)", setting(f.flag)))
		case f.flag != FlagURL && redact.HasURLCredentials(f.v):
			// A server URL pasted into the user or the inbox prefix: its
			// password would go into CONNECT or every reply subject.
			errs = append(errs, fmt.Errorf("%s: its value holds a URL with a password or token in it (scheme://user:password@host), so it is not repeated here; the server's URL goes in %s, a password in %s or %s", setting(f.flag), setting(FlagURL), setting(FlagPasswordFile), setting(FlagPassword)))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	creds, nkey, user := o.Creds != "", o.NKeyFile != "", o.User != "" || o.Password != "" || o.PasswordFile != ""
	// A user or token in a server URL is a way of its own, and nats.go
	// sends it in place of --nats-user's: beside another, one is ignored.
	urlUser := false
	for _, u := range strings.Split(o.serverURL(), ",") {
		if p, err := parseURL(u); err == nil && p.User != nil {
			urlUser = true
		}
	}
	if creds && nkey || creds && user || nkey && user || urlUser && (creds || nkey || user) {
		// Named: one way may come from a variable left in the
		// environment, the other from a flag.
		var given []string
		if urlUser {
			given = append(given, setting(FlagURL)+" with a user or token in it")
		}
		for _, g := range []struct {
			set  bool
			flag string
		}{{creds, FlagCreds}, {nkey, FlagNKey}, {o.User != "", FlagUser}, {o.Password != "", FlagPassword}, {o.PasswordFile != "", FlagPasswordFile}} {
			if g.set {
				given = append(given, setting(g.flag))
			}
		}
		errs = append(errs, fmt.Errorf("choose one way to authenticate: a credentials file, an NKey seed file, a user and password, or a user or token in the server URL; given: %s: unset all but one", strings.Join(given, ", ")))
	}
	for _, f := range []struct {
		set  bool
		flag string
	}{{o.Password != "", FlagPassword}, {o.PasswordFile != "", FlagPasswordFile}} {
		if f.set && o.User == "" {
			errs = append(errs, fmt.Errorf("a password was given without a user name: %s is set, %s is not", setting(f.flag), setting(FlagUser)))
		}
	}
	if o.Password != "" && o.PasswordFile != "" {
		// Which would win is a guess: a password rotated in one place
		// only would keep the program on the other, with nothing said.
		errs = append(errs, fmt.Errorf("%s and %s are both set: give the password one way (the file keeps it out of the environment), and unset the other", setting(FlagPassword), setting(FlagPasswordFile)))
	} else if o.PasswordFile != "" {
		if _, err := o.password(); err != nil {
			errs = append(errs, err)
		}
	}
	if (o.TLSCert == "") != (o.TLSKey == "") {
		errs = append(errs, fmt.Errorf("a TLS client certificate needs both the certificate and its key file: %s and %s", setting(FlagTLSCert), setting(FlagTLSKey)))
	}
	for _, f := range []struct{ what, flag, path string }{
		{"credentials file", FlagCreds, o.Creds}, {"NKey seed file", FlagNKey, o.NKeyFile},
		{"TLS CA file", FlagTLSCA, o.TLSCA}, {"TLS certificate file", FlagTLSCert, o.TLSCert}, {"TLS key file", FlagTLSKey, o.TLSKey},
	} {
		if f.path == "" {
			continue
		}
		// These settings name files, while NATS_PASSWORD holds the value:
		// the seed or key itself given in place of the path is the mistake
		// to expect, and the stat error would quote it.
		if fileContents(f.path) {
			errs = append(errs, fmt.Errorf("%s (--%s, %s): its value (%d characters) looks like a file's contents (a seed, credentials or a key), not a path, so it is not repeated here: write it to a file and give that file's path",
				f.what, f.flag, EnvOf(f.flag), len(f.path)))
			continue
		}
		if st, err := os.Stat(f.path); err != nil {
			errs = append(errs, fmt.Errorf("%s (--%s, %s): %w", f.what, f.flag, EnvOf(f.flag), err))
		} else if st.IsDir() {
			errs = append(errs, fmt.Errorf("%s (--%s, %s): %s is a directory: give the path of the file in it", f.what, f.flag, EnvOf(f.flag), f.path))
		} else if !st.Mode().IsRegular() {
			// nats.go reads it whole at every connect: a device (/dev/zero)
			// until memory runs out, a named pipe waiting for a writer,
			// SIGTERM ignored meanwhile.
			errs = append(errs, fmt.Errorf("%s (--%s, %s): %s is not a regular file (a device or a named pipe): give the path of the file itself, which is read again at every reconnect", f.what, f.flag, EnvOf(f.flag), f.path))
		}
	}
	if st, err := os.Stat(o.NKeyFile); o.NKeyFile != "" && err == nil && st.Mode().IsRegular() {
		// Read now, so that a file holding no seed is bad input named
		// as such, not a failed connection. nats.go's error says what
		// is wrong, never the file's contents.
		if _, err := nats.NkeyOptionFromSeed(o.NKeyFile); err != nil {
			errs = append(errs, fmt.Errorf("NKey seed file %s (--%s): %w: want the user seed file nsc writes (one line starting SU)", o.NKeyFile, FlagNKey, err))
		}
	}
	if why := inboxPrefixProblem(o.InboxPrefix); o.InboxPrefix != "" && why != "" {
		errs = append(errs, fmt.Errorf("inbox prefix %q (--%s, %s) %s: write dot-separated tokens without a trailing '.', e.g. _INBOX.svc_a",
			text.Truncate(redact.Text(o.InboxPrefix), 80), FlagInboxPrefix, EnvOf(FlagInboxPrefix), why))
	}
	all := Redact(o.serverURL())
	for _, u := range strings.Split(o.serverURL(), ",") {
		if err := checkURL(u); err != nil {
			// A piece the whole list's redaction hid is part of a
			// password or token that holds a comma: not shown.
			if shown := Redact(u); !strings.Contains(all, shown) {
				errs = append(errs, fmt.Errorf("server URL %q: a password or token in it holds a comma, which separates server URLs: write the comma as %%2C", all))
			} else {
				errs = append(errs, fmt.Errorf("server URL %q %w", shown, err))
			}
		}
	}
	return errors.Join(errs...)
}

// maxPasswordFileBytes bounds the file --nats-password-file names.
const maxPasswordFileBytes = 64 << 10

// password is Password, or the content of PasswordFile without its one
// trailing line break (an editor's, or echo's); any other blank belongs to
// the password. Errors name the setting and the file, never the content.
func (o Options) password() (string, error) {
	if o.PasswordFile == "" {
		return o.Password, nil
	}
	b, err := fileread.Read(o.PasswordFile, maxPasswordFileBytes)
	if err != nil {
		return "", passwordFileError(o.PasswordFile, err)
	}
	pw := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	switch {
	case pw == "":
		return "", fmt.Errorf("password file %s (%s) is empty: write the password in it, on one line", o.PasswordFile, setting(FlagPasswordFile))
	case strings.ContainsAny(pw, "\r\n"):
		// Two passwords, or a note beside it: sent as one, the server
		// would refuse it, with nothing saying why.
		return "", fmt.Errorf("password file %s (%s) holds more than one line: keep the password alone, on one line", o.PasswordFile, setting(FlagPasswordFile))
	}
	return pw, nil
}

// userInfo authenticates as User. A password file is read again at every
// connect and reconnect, as nats.go reads a credentials file, so that a
// password rotated in it (a Kubernetes Secret updated in place) is the one
// sent after the server dropped the connection for the old one. A file
// that cannot be read then leaves the last password read: the server says
// whether it still holds.
func (o Options) userInfo() (nats.Option, error) {
	pw, err := o.password()
	if err != nil || o.PasswordFile == "" {
		return nats.UserInfo(o.User, pw), err
	}
	var mu sync.Mutex
	return nats.UserInfoHandler(func() (string, string) {
		mu.Lock()
		defer mu.Unlock()
		if now, err := o.password(); err == nil {
			pw = now
		}
		return o.User, pw
	}), nil
}

// passwordFileError says why the password file at path cannot be read.
// The password itself given in place of the path is the mistake to
// expect (NATS_PASSWORD_FILE set as NATS_PASSWORD was): a path that names
// nothing is shown only when absolute, as no password is written.
func passwordFileError(path string, err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		err = pe.Err // os's message repeats the path
	}
	if errors.Is(err, os.ErrNotExist) && !filepath.IsAbs(path) {
		return fmt.Errorf("password file (%s): no such file; the value (%d characters) is not repeated, in case it is the password itself: give the path of a file holding the password", setting(FlagPasswordFile), len(path))
	}
	return fmt.Errorf("password file %s (%s): %w", path, setting(FlagPasswordFile), err)
}

// setting names a connection flag with its variable: "--nats-user (NATS_USER)".
func setting(flag string) string { return "--" + flag + " (" + EnvOf(flag) + ")" }

// fileContents reports whether a file setting's value is a file's
// contents rather than a path: more than one line, PEM, a JWT or other
// secret shape, or an NKey seed (58 base32 characters starting with S).
func fileContents(v string) bool {
	if strings.ContainsAny(v, "\r\n") || strings.Contains(v, "-----BEGIN") || redact.Looks(v) {
		return true
	}
	if len(v) != 58 || v[0] != 'S' {
		return false
	}
	return strings.Trim(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") == ""
}

// MaxInboxPrefixLen is the longest inbox prefix: its inboxes (the prefix, a
// dot and a 22-character NUID) are at most jobs.MaxSubjectLen (255)
// characters, the longest reply_to the worker takes.
const MaxInboxPrefixLen = 255 - 1 - 22

// inboxPrefixProblem says what keeps p from starting reply subjects, ""
// when nothing does. nats.go refuses only a trailing '.' and wildcards, at
// connect, as "invalid custom prefix"; a space or an empty token it takes,
// and then every request through the inbox fails ("invalid subject").
func inboxPrefixProblem(p string) string {
	if len(p) > MaxInboxPrefixLen {
		// An inbox is the prefix, a dot and a 22-character id: a reply
		// subject longer than the worker takes as a job's reply_to, and
		// past the server's 4 KiB control line a connection the server
		// closes at the first subscription, naming nothing.
		return fmt.Sprintf("is %d characters long: an inbox under it (the prefix, a dot and a 22-character id) would be longer than the 255 characters of a reply subject; use at most %d", len(p), MaxInboxPrefixLen)
	}
	if strings.HasSuffix(p, ".") {
		return "ends with '.' (the client adds it)"
	}
	for _, tok := range strings.Split(p, ".") {
		switch {
		case tok == "":
			return "has an empty token (two dots in a row, or a leading '.')"
		case strings.ContainsAny(tok, "*>"):
			return "holds a wildcard ('*' or '>')"
		case strings.ContainsFunc(tok, func(r rune) bool { return r <= ' ' || r == 0x7f }):
			return "holds a space or a control character"
		}
	}
	return ""
}

// checkURL says what is wrong with one server URL, in the words that
// follow it in an error.
func checkURL(s string) error {
	u, err := parseURL(s)
	switch {
	case err != nil:
		return errors.New("is not a URL: want nats://host:port, e.g. " + DefaultURL)
	case u.Scheme == "http" || u.Scheme == "https":
		return errors.New("is a web address: NATS clients connect to the client port with nats://host:port (4222 by default), not to the monitoring or any HTTP port")
	case u.Scheme != "nats" && u.Scheme != "tls" && u.Scheme != "ws" && u.Scheme != "wss":
		return fmt.Errorf("has scheme %q: want nats://, tls://, ws:// or wss://", u.Scheme)
	case u.Hostname() == "":
		return errors.New("names no host: want nats://host:port, e.g. " + DefaultURL)
	case u.Path != "" && u.Path != "/" && (u.Scheme == "nats" || u.Scheme == "tls") && strings.Contains(u.Path, "@"):
		// The path holds the rest of a password with a '/' in it.
		return errors.New("has a path with an @ in it: write a '/' in a password or token as %2F")
	case u.Path != "" && u.Path != "/" && (u.Scheme == "nats" || u.Scheme == "tls"):
		return fmt.Errorf("has a path (%s): a NATS URL is nats://host:port, e.g. %s", u.Path, DefaultURL)
	}
	return nil
}

// Connect validates o and connects. extra options are applied after o's
// (a program's reconnect or error handlers). A failure names the server
// URL, with any password in it hidden.
func (o Options) Connect(extra ...nats.Option) (*nats.Conn, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	opts := []nats.Option{}
	if o.Name != "" {
		opts = append(opts, nats.Name(o.Name))
	}
	if o.Timeout > 0 {
		opts = append(opts, nats.Timeout(o.Timeout))
	}
	if o.InboxPrefix != "" {
		opts = append(opts, nats.CustomInboxPrefix(o.InboxPrefix))
	}
	if o.Creds != "" {
		opts = append(opts, nats.UserCredentials(o.Creds), jwtOnly(o.Creds))
	}
	if o.NKeyFile != "" {
		opt, err := nats.NkeyOptionFromSeed(o.NKeyFile)
		if err != nil {
			// nats.go's message names the file and what is wrong with it;
			// it never includes the seed.
			return nil, fmt.Errorf("NKey seed file: %w", err)
		}
		opts = append(opts, opt)
	}
	if o.User != "" {
		opt, err := o.userInfo()
		if err != nil {
			return nil, err
		}
		opts = append(opts, opt)
	}
	if o.TLSCA != "" {
		opts = append(opts, nats.RootCAs(o.TLSCA))
	}
	if o.TLSCert != "" {
		opts = append(opts, nats.ClientCert(o.TLSCert, o.TLSKey))
	}
	nc, err := nats.Connect(o.serverURL(), append(opts, extra...)...)
	if err != nil {
		return nil, &ConnectError{URL: Redact(o.serverURL()), Err: err}
	}
	return nc, nil
}

// jwtOnly keeps a credentials file that holds no user JWT from being sent
// as one. nats.go reads the JWT between the file's "-----BEGIN …-----"
// lines, but takes a file without them whole (nkeys.ParseDecoratedJWT
// returns it as it is): an NKey seed file given as the credentials file
// would go, seed and all, into CONNECT, which a tracing server logs and an
// auth callout receives. It applies to every connect and reconnect, as
// the file is read each time; the error names the file, never its
// contents.
func jwtOnly(path string) nats.Option {
	return func(no *nats.Options) error {
		read := no.UserJWT
		if read == nil {
			return nil
		}
		no.UserJWT = func() (string, error) {
			jwt, err := read()
			if err != nil {
				return "", err
			}
			if !jwtShaped(jwt) {
				return "", fmt.Errorf("credentials file %s holds no user JWT between -----BEGIN NATS USER JWT----- lines (as nsc writes them); an NKey seed file goes to --%s", path, FlagNKey)
			}
			return jwt, nil
		}
		return nil
	}
}

// jwtShaped reports whether s is three non-empty dot-separated base64url
// segments, as a JWT is.
func jwtShaped(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return false
	}
	for _, p := range parts {
		if p == "" || strings.TrimLeft(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=") != "" {
			return false
		}
	}
	return true
}

// ConnectError is a failure to connect; URL has passwords hidden.
type ConnectError struct {
	URL string
	Err error
}

func (e *ConnectError) Error() string {
	return fmt.Sprintf("connect to NATS at %s: %v", e.URL, e.Err)
}

func (e *ConnectError) Unwrap() error { return e.Err }

// Refused reports whether no server answered at all (nothing listening, or
// unreachable), as opposed to a server that refused the credentials or TLS.
func (e *ConnectError) Refused() bool { return errors.Is(e.Err, nats.ErrNoServers) }

// Hint says, for a person, what to check given how the connection failed,
// naming the settings concerned; "" when there is nothing better to say
// than the error.
func (e *ConnectError) Hint() string {
	var dns *net.DNSError
	var netErr net.Error
	var x509Err x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var certErr *tls.CertificateVerificationError
	switch {
	case e.Refused():
		return fmt.Sprintf("No NATS server answered at %s: check --%s (%s) and that the server runs", e.URL, FlagURL, EnvOf(FlagURL))
	case errors.Is(e.Err, nats.ErrAuthorization), errors.Is(e.Err, nats.ErrAuthExpired),
		errors.Is(e.Err, nats.ErrAuthRevoked), errors.Is(e.Err, nats.ErrAccountAuthExpired):
		return fmt.Sprintf("The server refused the credentials: check --%s, --%s, or --%s and --%s or --%s (%s, %s, %s, %s, %s)",
			FlagCreds, FlagNKey, FlagUser, FlagPassword, FlagPasswordFile, EnvOf(FlagCreds), EnvOf(FlagNKey), EnvOf(FlagUser), EnvOf(FlagPassword), EnvOf(FlagPasswordFile))
	case errors.Is(e.Err, nats.ErrSecureConnRequired), errors.Is(e.Err, nats.ErrSecureConnWanted), errors.Is(e.Err, nats.ErrTLS),
		errors.As(e.Err, &x509Err), errors.As(e.Err, &hostErr), errors.As(e.Err, &certErr):
		return fmt.Sprintf("TLS failed: check the URL's scheme (tls:// for a server that requires TLS) and --%s, --%s, --%s (%s, %s, %s)",
			FlagTLSCA, FlagTLSCert, FlagTLSKey, EnvOf(FlagTLSCA), EnvOf(FlagTLSCert), EnvOf(FlagTLSKey))
	case errors.As(e.Err, &dns):
		return fmt.Sprintf("The host %q is not known: check --%s (%s)", dns.Name, FlagURL, EnvOf(FlagURL))
	case errors.Is(e.Err, nats.ErrNoInfoReceived), errors.As(e.Err, &netErr) && netErr.Timeout():
		return fmt.Sprintf("Something listens at %s but did not greet like a NATS server: is it the NATS client port (4222 by default), not the monitoring port (8222) or an HTTP service? Check --%s (%s)", e.URL, FlagURL, EnvOf(FlagURL))
	}
	return ""
}

// Redact hides the passwords and tokens in a comma-separated list of server
// URLs, so that it can be logged.
func Redact(urls string) string {
	parts := strings.Split(redact.URLs(urls), ",")
	for i, p := range parts {
		switch u, err := parseURL(p); {
		case err != nil && strings.Contains(p, "@"):
			parts[i] = "(unparsable URL)"
		case err == nil && u.User != nil:
			if _, hasPass := u.User.Password(); !hasPass {
				u.User = url.User("xxxxx") // nats://TOKEN@host: the user part alone is a token
			}
			parts[i] = u.Redacted()
		}
	}
	return strings.Join(parts, ",")
}

// parseURL parses one server URL the way nats.go reads it: "host:port"
// without a scheme means nats://host:port.
func parseURL(s string) (*url.URL, error) {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "://") {
		s = "nats://" + s
	}
	return url.Parse(s)
}

// ErrorText is err's message for a person. nats.go's jetstream package
// wraps an error JetStream answers to a publish in a second "nats: " (as
// "nats: nats: API error: …"); it is said once.
func ErrorText(err error) string {
	s := err.Error()
	for strings.Contains(s, "nats: nats: ") {
		s = strings.ReplaceAll(s, "nats: nats: ", "nats: ")
	}
	return s
}
