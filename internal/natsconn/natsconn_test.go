package natsconn

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	natsjwt "github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"github.com/spf13/pflag"

	"github.com/clerkjobs/clerkjobs/internal/embedded"
	"github.com/clerkjobs/clerkjobs/internal/text"
)

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")
	tests := []struct {
		name string
		o    Options
		want string // substring of the error, "" for none
	}{
		{"zero", Options{}, ""},
		{"host:port", Options{URL: "127.0.0.1:4222"}, ""},
		{"list", Options{URL: "nats://a:4222, nats://b:4222"}, ""},
		{"user and password", Options{User: "u", Password: "p"}, ""},
		{"creds", Options{Creds: file}, ""},
		{"two methods", Options{Creds: file, User: "u"}, "choose one way"},
		{"password alone", Options{Password: "p"}, "without a user"},
		{"cert without key", Options{TLSCert: file}, "both the certificate and its key"},
		{"missing creds", Options{Creds: missing}, "credentials file"},
		{"missing CA", Options{TLSCA: missing}, "TLS CA file"},
		// A directory was taken, and the connection then failed with
		// nats.go's "read DIR: is a directory", naming no setting (the
		// worker's exit 1, a runtime failure, for bad configuration).
		{"creds a directory", Options{Creds: dir}, "credentials file (--nats-creds, NATS_CREDS): " + dir + " is a directory"},
		{"NKey a directory", Options{NKeyFile: dir}, "NKey seed file (--nats-nkey, NATS_NKEY): " + dir + " is a directory"},
		{"CA a directory", Options{TLSCA: dir}, "TLS CA file (--nats-tls-ca, NATS_CA): " + dir + " is a directory"},
		{"cert a directory", Options{TLSCert: dir, TLSKey: file}, "TLS certificate file (--nats-tls-cert, NATS_CERT): " + dir + " is a directory"},
		{"key a directory", Options{TLSCert: file, TLSKey: dir}, "TLS key file (--nats-tls-key, NATS_KEY): " + dir + " is a directory"},
		{"tls scheme", Options{URL: "tls://nats.example.com:4222"}, ""},
		{"websocket with a path", Options{URL: "wss://nats.example.com/ws"}, ""},
		// What a hurried operator types: each told what a NATS URL is,
		// before any connection is tried.
		{"missing colon", Options{URL: "nats//oops"}, `"nats//oops" has a path (//oops)`},
		{"http URL", Options{URL: "http://127.0.0.1:8222"}, "is a web address"},
		{"unknown scheme", Options{URL: "nast://h:4222"}, `has scheme "nast"`},
		{"no host", Options{URL: "nats://:4222"}, "names no host"},
		{"port not a number", Options{URL: "nats://h:port"}, "is not a URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.o.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Validate() = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"nats://127.0.0.1:4222", "nats://127.0.0.1:4222"},
		{"nats://alice:s3cret@h:4222", "nats://alice:xxxxx@h:4222"},
		{"nats://tok3n@h:4222", "nats://xxxxx@h:4222"},
		{"nats://a:4222,nats://bob:pw@b:4222", "nats://a:4222,nats://bob:xxxxx@b:4222"},
		{"bob:pw@b:4222", "nats://bob:xxxxx@b:4222"},
		// A comma separates URLs, so one in a password or token cuts
		// the URL in two: neither piece may show any of it.
		{"nats://alice:s3cret,x@h:4222", "nats://alice:xxxxx@h:4222"},
		{"nats://alice:1234,s3cret@h:4222", "nats://alice:xxxxx@h:4222"},
		{"nats://a:4222,nats://tok3n,x@b:4222", "nats://a:4222,nats://xxxxx@b:4222"},
		{"alice:s3cret,x@h:4222", "nats://alice:xxxxx@h:4222"},
		// A '/' in a password after digits reads as a port and a path.
		{"nats://alice:12/s3cret@h:4222", "nats://alice:xxxxx@h:4222"},
	}
	for _, tt := range tests {
		if got := Redact(tt.in); got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if strings.Contains(Redact(tt.in), "s3cret") || strings.Contains(Redact(tt.in), "tok3n") || strings.Contains(Redact(tt.in), "1234") {
			t.Errorf("Redact(%q) leaks a secret", tt.in)
		}
		if err := (Options{URL: tt.in}).Validate(); err != nil && (strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "tok3n")) {
			t.Errorf("Validate(%q) leaks a secret: %v", tt.in, err)
		}
	}
}

func TestConnect(t *testing.T) {
	s, err := embedded.Start(embedded.Options{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown()
	nc, err := Options{URL: s.ClientURL(), Name: "natsconn-test"}.Connect()
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	nc.Close()

	// Nothing listens on port 1: the error names the URL, hides the
	// password, and says the server was not reached.
	_, err = Options{URL: "nats://bob:s3cret@127.0.0.1:1"}.Connect()
	var ce *ConnectError
	if !errors.As(err, &ce) || !ce.Refused() {
		t.Fatalf("Connect to a closed port = %v, want a refused *ConnectError", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "127.0.0.1:1") || strings.Contains(msg, "s3cret") {
		t.Fatalf("error %q: want the URL without the password", msg)
	}
}

// TestConnectHints: each way a connection fails gets the hint that matches
// it, against real listeners.
func TestConnectHints(t *testing.T) {
	plain, err := embedded.Start(embedded.Options{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Shutdown()
	auth := startServer(t, &server.Options{Host: "127.0.0.1", Port: -1, Username: "alice", Password: "right", NoSigs: true})
	// A web server: it waits for a request and never greets.
	web := httptest.NewServer(http.NotFoundHandler())
	defer web.Close()

	tests := []struct {
		name string
		o    Options
		want string
	}{
		{"nothing listens", Options{URL: "nats://127.0.0.1:1"}, "No NATS server answered at nats://127.0.0.1:1: check --nats-url (NATS_URL)"},
		{"an HTTP port", Options{URL: "nats://" + web.Listener.Addr().String(), Timeout: time.Second}, "did not greet like a NATS server: is it the NATS client port"},
		{"wrong password", Options{URL: auth.ClientURL(), User: "alice", Password: "wrong"}, "refused the credentials: check --nats-creds, --nats-nkey, or --nats-user and --nats-password"},
		{"TLS asked of a plain server", Options{URL: "tls://" + plain.Addr().String()}, "TLS failed: check the URL's scheme"},
		{"unknown host", Options{URL: "nats://no-such-host.invalid:4222"}, `The host "no-such-host.invalid" is not known`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nc, err := tt.o.Connect(nats.MaxReconnects(0))
			if err == nil {
				nc.Close()
				t.Fatal("connected")
			}
			var ce *ConnectError
			if !errors.As(err, &ce) {
				t.Fatalf("Connect = %v, want a *ConnectError", err)
			}
			if h := ce.Hint(); !strings.Contains(h, tt.want) {
				t.Errorf("Hint() = %q (error %v), want it to contain %q", h, err, tt.want)
			}
		})
	}
}

// TestFlags: one set of names and variables; a flag wins over its
// variable, and the old names still set the same option.
func TestFlags(t *testing.T) {
	env := map[string]string{"NATS_URL": "nats://env:4222", "NATS_USER": "env-user", "NATS_PASSWORD": "env-pw", "NATS_INBOX_PREFIX": "_INBOX.env"}
	tests := []struct {
		args []string
		want Options
	}{
		{nil, Options{URL: "nats://env:4222", User: "env-user", Password: "env-pw", InboxPrefix: "_INBOX.env"}},
		{[]string{"-s", "nats://flag:4222", "--nats-user", "u", "--nats-inbox-prefix", "_INBOX.u"}, Options{URL: "nats://flag:4222", User: "u", Password: "env-pw", InboxPrefix: "_INBOX.u"}},
		{[]string{"--server", "nats://old:4222", "--creds", "c", "--nkey", "k", "--tls-ca", "ca", "--tls-cert", "cert", "--tls-key", "key", "--inbox-prefix", "_INBOX.old"},
			Options{URL: "nats://old:4222", Creds: "c", NKeyFile: "k", TLSCA: "ca", TLSCert: "cert", TLSKey: "key", User: "env-user", Password: "env-pw", InboxPrefix: "_INBOX.old"}},
	}
	for _, tt := range tests {
		var o Options
		fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
		fs.SetOutput(io.Discard)
		Flags(fs, &o)
		if err := fs.Parse(tt.args); err != nil {
			t.Fatalf("%v: %v", tt.args, err)
		}
		ApplyEnv(fs, &o, func(k string) string { return env[k] })
		if o != tt.want {
			t.Errorf("%v: %+v, want %+v", tt.args, o, tt.want)
		}
		notes := Renamed(fs)
		if old := len(tt.args) > 0 && tt.args[0] == "--server"; old != (len(notes) == 7) ||
			(old && notes[0] != "--server is an old name: use --nats-url (the same, in every clerkjobs program)") {
			t.Errorf("%v: Renamed = %q", tt.args, notes)
		}
	}
	if EnvOf(FlagTLSCA) != "NATS_CA" || EnvOf("concurrency") != "" {
		t.Errorf("EnvOf(%s) = %q", FlagTLSCA, EnvOf(FlagTLSCA))
	}
}

// traceLog collects what a server logs.
type traceLog struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (l *traceLog) logf(format string, v ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(&l.buf, format+"\n", v...)
}
func (l *traceLog) Noticef(format string, v ...any) { l.logf(format, v...) }
func (l *traceLog) Warnf(format string, v ...any)   { l.logf(format, v...) }
func (l *traceLog) Fatalf(format string, v ...any)  { l.logf(format, v...) }
func (l *traceLog) Errorf(format string, v ...any)  { l.logf(format, v...) }
func (l *traceLog) Debugf(format string, v ...any)  { l.logf(format, v...) }
func (l *traceLog) Tracef(format string, v ...any)  { l.logf(format, v...) }
func (l *traceLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// TestCredsWithoutJWTSendNoSeed: a credentials file holds a user JWT and
// an NKey seed, each between "-----BEGIN …-----" lines. nats.go takes a
// file without those lines (an NKey seed file given as --nats-creds, the
// usual mix-up) whole as the JWT, and sends it in CONNECT, where a server
// that traces (and an auth callout) sees it, seed and all. The seed never
// leaves the process, and the error does not quote the file.
func TestCredsWithoutJWTSendNoSeed(t *testing.T) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, err := kp.Seed()
	if err != nil {
		t.Fatal(err)
	}
	creds := filepath.Join(t.TempDir(), "user.nk")
	if err := os.WriteFile(creds, append(seed, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoSigs: true, Debug: true, Trace: true})
	if err != nil {
		t.Fatal(err)
	}
	log := &traceLog{}
	s.SetLogger(log, true, true)
	go s.Start()
	defer s.Shutdown()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	nc, err := Options{URL: s.ClientURL(), Creds: creds}.Connect(nats.MaxReconnects(0))
	if err == nil {
		nc.Close()
		t.Error("connected with a credentials file that holds no JWT")
	} else if strings.Contains(err.Error(), string(seed[2:20])) || !strings.Contains(err.Error(), "holds no user JWT") {
		t.Errorf("Connect = %v; want an error saying the file holds no JWT, without quoting it", err)
	}

	// A file as nsc writes it still connects.
	account, err := nkeys.CreateAccount()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := kp.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	userJWT, err := natsjwt.NewUserClaims(pub).Encode(account)
	if err != nil {
		t.Fatal(err)
	}
	formatted, err := natsjwt.FormatUserConfig(userJWT, seed)
	if err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(t.TempDir(), "user.creds")
	if err := os.WriteFile(good, formatted, 0o600); err != nil {
		t.Fatal(err)
	}
	nc, gerr := Options{URL: s.ClientURL(), Creds: good}.Connect(nats.MaxReconnects(0))
	if gerr != nil {
		t.Fatalf("Connect with a well-formed credentials file: %v", gerr)
	}
	nc.Close()
	time.Sleep(100 * time.Millisecond) // the server logs as it reads
	if strings.Contains(log.String(), string(seed[2:20])) {
		// Even a seed made for the test is not printed.
		t.Fatalf("the seed reached the server (Connect error: %v); its log, the seed replaced:\n%s", err, strings.ReplaceAll(log.String(), strings.TrimSpace(string(seed)), "<SEED>"))
	}
}

// TestBadInboxPrefixNamesTheSetting: an inbox prefix that cannot be one
// was accepted by Validate. With a trailing '.' (as --reply-prefix is
// written: _INBOX.svc_a.) or a wildcard, nats.go refused it at connect
// with "nats: invalid custom prefix", naming no setting, after the program
// had started; with a space or an empty token it connected, and every
// request through the inbox then failed with "nats: invalid subject". Each
// is now refused by Validate, naming --nats-inbox-prefix and what to
// write.
func TestBadInboxPrefixNamesTheSetting(t *testing.T) {
	s, err := embedded.Start(embedded.Options{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown()
	// Too long for a reply subject (the prefix, a dot and a 22-character
	// id make at most 255: the worker refuses a longer reply_to), or for
	// the server's 4 KiB control line: the worker started, and its
	// connection was closed by the server ("the NATS connection is
	// closed", exit 1), naming nothing; the error quoted all of it.
	long, huge := "_INBOX."+strings.Repeat("a", 226), "_INBOX."+strings.Repeat("a", 100_000)
	for _, prefix := range []string{"_INBOX.svc_a.", "_INBOX.>", "_INBOX.*", "_INBOX.svc a", "_INBOX..svc_a", ".svc_a", "_INBOX.svc\ta", long, huge} {
		t.Run(text.Truncate(prefix, 40), func(t *testing.T) {
			o := Options{URL: s.ClientURL(), InboxPrefix: prefix, Timeout: 2 * time.Second}
			if err := o.Validate(); err == nil || !strings.Contains(err.Error(), "--"+FlagInboxPrefix) || len(err.Error()) > 500 {
				t.Errorf("Validate() = %.600v; want an error naming --%s, of at most 500 bytes", err, FlagInboxPrefix)
			}
			nc, err := o.Connect()
			if err == nil {
				defer nc.Close()
				// Connected: a request through the inbox shows what the
				// prefix does.
				sub, _ := nc.Subscribe("svc.echo", func(m *nats.Msg) { _ = m.Respond([]byte("pong")) })
				defer sub.Unsubscribe()
				_, rerr := nc.Request("svc.echo", nil, time.Second)
				t.Fatalf("Connect accepted the prefix (a request through it: %v)", rerr)
			}
			if !strings.Contains(err.Error(), "--"+FlagInboxPrefix) {
				t.Errorf("Connect() = %v; want an error naming --%s", err, FlagInboxPrefix)
			}
		})
	}
	// A good one still connects and gets answers, the longest too.
	if err := (Options{URL: s.ClientURL(), InboxPrefix: long[:len(long)-1]}).Validate(); err != nil {
		t.Errorf("an inbox prefix of %d characters: %v", len(long)-1, err)
	}
	nc, err := Options{URL: s.ClientURL(), InboxPrefix: "_INBOX.svc_a"}.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	sub, _ := nc.Subscribe("svc.echo", func(m *nats.Msg) { _ = m.Respond([]byte("pong")) })
	defer sub.Unsubscribe()
	if _, err := nc.Request("svc.echo", nil, 2*time.Second); err != nil {
		t.Errorf("a request with a good prefix: %v", err)
	}
}

// TestFileSettingHoldingContentsIsNotRepeated: NATS_NKEY, NATS_CREDS and
// NATS_KEY name files, while NATS_PASSWORD holds the value itself: the
// seed, the credentials or the private key pasted in place of the path is
// the mistake to expect. Validate quoted the "path" in its stat error, so
// the seed went whole into the error the worker and publish print. Now the
// setting is named and the value is not repeated.
func TestFileSettingHoldingContentsIsNotRepeated(t *testing.T) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, err := kp.Seed()
	if err != nil {
		t.Fatal(err)
	}
	creds := "-----BEGIN NATS USER JWT-----\neyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.eyJqdGkiOiJ4In0.c2lnbmF0dXJl\n------END NATS USER JWT------\n\n" +
		"-----BEGIN USER NKEY SEED-----\n" + string(seed) + "\n------END USER NKEY SEED------\n"
	pemKey := "-----BEGIN " + "PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC\n-----END PRIVATE KEY-----\n"
	for _, tc := range []struct {
		name, flag, secret string
		o                  Options
	}{
		{"seed as NKey file", FlagNKey, string(seed), Options{NKeyFile: string(seed)}},
		{"creds as creds file", FlagCreds, string(seed), Options{Creds: creds}},
		{"seed as creds file", FlagCreds, string(seed), Options{Creds: string(seed)}},
		{"private key as TLS key", FlagTLSKey, "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC", Options{TLSCert: "/nonexistent.pem", TLSKey: pemKey}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.o.Validate()
			if err == nil || !strings.Contains(err.Error(), "--"+tc.flag) {
				t.Fatalf("Validate() = %v; want an error naming --%s", err, tc.flag)
			}
			if strings.Contains(err.Error(), tc.secret) {
				t.Errorf("the error repeats the secret: %s", strings.ReplaceAll(err.Error(), tc.secret, "<secret>"))
			}
		})
	}
}

// TestAuthAndTLSConflictsNameTheSettings: two ways to authenticate, a
// password without a user, half a client certificate were refused without
// naming a setting. A variable left in the environment (NATS_CREDS, for
// the nats CLI) beside a flag (--nats-user) then gave an error naming
// neither, and no way to tell where the second way came from. Each names
// the flags and variables concerned, never a password.
func TestAuthAndTLSConflictsNameTheSettings(t *testing.T) {
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		o    Options
		want []string
	}{
		{"creds and user", Options{Creds: file, User: "u", Password: "hunter2hunter2"}, []string{"--nats-creds (NATS_CREDS)", "--nats-user (NATS_USER)"}},
		{"creds and nkey", Options{Creds: file, NKeyFile: file}, []string{"--nats-creds (NATS_CREDS)", "--nats-nkey (NATS_NKEY)"}},
		{"password alone", Options{Password: "hunter2hunter2"}, []string{"--nats-password (NATS_PASSWORD)", "--nats-user (NATS_USER)"}},
		{"cert without key", Options{TLSCert: file}, []string{"--nats-tls-cert (NATS_CERT)", "--nats-tls-key (NATS_KEY)"}},
		{"key without cert", Options{TLSKey: file}, []string{"--nats-tls-cert (NATS_CERT)", "--nats-tls-key (NATS_KEY)"}},
	} {
		t.Run(tt.name, func(t *testing.T) { refusedNaming(t, tt.o.Validate(), tt.want) })
	}
}

// TestURLUserBesideAnotherWayIsRefused: a user or token in the server URL
// is a way to authenticate of its own, and nats.go prefers it: NATS_URL
// nats://alice:…@host with --nats-user bob connected as alice, without a
// word (a deployment given a restricted user kept its old one). It is
// refused as any two ways are, naming the settings, never the password.
func TestURLUserBesideAnotherWayIsRefused(t *testing.T) {
	s := startServer(t, &server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoSigs: true, NoLog: true,
		Users: []*server.User{{Username: "alice", Password: "alicepw1234"}, {Username: "bob", Password: "bobpw5678"}}})
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	withAlice := strings.Replace(s.ClientURL(), "nats://", "nats://alice:alicepw1234@", 1)
	for name, o := range map[string]Options{
		"user":             {URL: withAlice, User: "bob", Password: "bobpw5678"},
		"token and user":   {URL: strings.Replace(s.ClientURL(), "nats://", "nats://sometoken1234@", 1), User: "bob", Password: "bobpw5678"},
		"second URL, user": {URL: "nats://127.0.0.1:1," + withAlice, User: "bob", Password: "bobpw5678"},
		"creds":            {URL: withAlice, Creds: file},
	} {
		t.Run(name, func(t *testing.T) {
			nc, err := o.Connect()
			if err == nil {
				defer nc.Close()
				cz, _ := s.Connz(&server.ConnzOptions{Username: true})
				var as []string
				for _, c := range cz.Conns {
					as = append(as, c.AuthorizedUser)
				}
				t.Fatalf("connected (as %v); want a refusal", as)
			}
			msg := err.Error()
			if !strings.Contains(msg, "choose one way") || !strings.Contains(msg, "--nats-url (NATS_URL)") {
				t.Errorf("error %q: want the two ways named", msg)
			}
			for _, secret := range []string{"alicepw1234", "bobpw5678", "sometoken1234"} {
				if strings.Contains(msg, secret) {
					t.Errorf("error %q repeats a secret", msg)
				}
			}
		})
	}
	if nc, err := (Options{URL: withAlice}).Connect(); err != nil {
		t.Errorf("the URL's user alone: %v", err)
	} else {
		nc.Close()
	}
}

// TestPasswordFile: NATS_PASSWORD puts the password in the environment,
// which `kubectl describe`, child processes and crash reports show; a file
// (a Kubernetes Secret volume) keeps it out. The file's one trailing line
// break is the editor's, not the password's; any other blank is kept.
func TestPasswordFile(t *testing.T) {
	const pw = "s3cret-pw "
	s := startServer(t, &server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoSigs: true, NoLog: true,
		Users: []*server.User{{Username: "alice", Password: pw}}})
	dir := t.TempDir()
	write := func(name, content string) string { return writeFile(t, dir, name, content) }
	for _, tt := range []struct {
		name, content string
		ok            bool
	}{
		{"a line", pw + "\n", true},
		{"a Windows line", pw + "\r\n", true},
		{"no line break", pw, true},
		{"blank trimmed would be another password", "s3cret-pw\n", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o := Options{URL: s.ClientURL(), User: "alice", PasswordFile: write("pw", tt.content)}
			nc, err := o.Connect(nats.MaxReconnects(0))
			if err == nil {
				nc.Close()
			}
			if ok := err == nil; ok != tt.ok {
				t.Fatalf("Connect() = %v, want success %v", err, tt.ok)
			}
			if err != nil && strings.Contains(err.Error(), "s3cret") {
				t.Errorf("the error repeats the password: %v", err)
			}
		})
	}
}

// TestPasswordFileRefusals: each way the file cannot give a password is
// said before connecting, naming the setting and (when it is one) the
// path, never the password.
func TestPasswordFileRefusals(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string { return writeFile(t, dir, name, content) }
	good := write("good", "hunter2hunter2\n")
	empty := write("empty", "")
	newline := write("newline", "\n")
	twoLines := write("two", "hunter2hunter2\nhunter2again\n")
	missing := filepath.Join(dir, "missing")
	const setting = "--nats-password-file (NATS_PASSWORD_FILE)"
	for _, tt := range []struct {
		name string
		o    Options
		want []string
	}{
		{"password and file", Options{User: "u", Password: "hunter2hunter2", PasswordFile: good}, []string{setting, "--nats-password (NATS_PASSWORD)", "one"}},
		{"missing file", Options{User: "u", PasswordFile: missing}, []string{setting, missing, "no such file"}},
		{"a directory", Options{User: "u", PasswordFile: dir}, []string{setting, dir, "is a directory"}},
		{"empty file", Options{User: "u", PasswordFile: empty}, []string{setting, empty, "is empty"}},
		{"only a line break", Options{User: "u", PasswordFile: newline}, []string{setting, newline, "is empty"}},
		{"two lines", Options{User: "u", PasswordFile: twoLines}, []string{setting, twoLines, "more than one line"}},
		{"no user", Options{PasswordFile: good}, []string{setting, "--nats-user (NATS_USER)"}},
		{"beside creds", Options{Creds: good, User: "u", PasswordFile: good}, []string{setting, "--nats-creds (NATS_CREDS)"}},
		// The password itself given as the path: not repeated.
		{"the password as the path", Options{User: "u", PasswordFile: "hunter2hunter2"}, []string{setting, "14 characters"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			refusedNaming(t, tt.o.Validate(), tt.want)
			nc, cerr := tt.o.Connect()
			if cerr == nil {
				nc.Close()
				t.Fatal("Connect accepted what Validate refuses")
			}
			if strings.Contains(cerr.Error(), "hunter2") {
				t.Errorf("Connect() = %q: repeats the password", cerr)
			}
		})
	}
}

// TestPasswordFileFlag: one flag and variable, in every program that
// takes the connection flags; the flag wins over the variable.
func TestPasswordFileFlag(t *testing.T) {
	env := map[string]string{"NATS_PASSWORD_FILE": "/env/pw"}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{nil, "/env/pw"},
		{[]string{"--nats-password-file", "/flag/pw"}, "/flag/pw"},
	} {
		var o Options
		fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
		Flags(fs, &o)
		if err := fs.Parse(tt.args); err != nil {
			t.Fatalf("%v: %v", tt.args, err)
		}
		ApplyEnv(fs, &o, func(k string) string { return env[k] })
		if o.PasswordFile != tt.want {
			t.Errorf("%v: PasswordFile = %q, want %q", tt.args, o.PasswordFile, tt.want)
		}
	}
	if EnvOf(FlagPasswordFile) != "NATS_PASSWORD_FILE" {
		t.Errorf("EnvOf(%s) = %q", FlagPasswordFile, EnvOf(FlagPasswordFile))
	}
}

// TestPasswordFileReadAtEachConnect: a password rotated in the file (a
// Kubernetes Secret updated in place) is the one sent when the connection
// is made again, as a credentials file is read each time: read once, the
// program would reconnect with the old password until restarted, refused
// every time. A file that cannot be read at a reconnect leaves the last
// password in use.
func TestPasswordFileReadAtEachConnect(t *testing.T) {
	opts := func(pw string) *server.Options {
		return &server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoSigs: true, NoLog: true,
			Users: []*server.User{{Username: "alice", Password: pw}}}
	}
	s := startServer(t, opts("first-password"))
	file := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(file, []byte("first-password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	reconnected := make(chan struct{}, 1)
	nc, err := Options{URL: s.ClientURL(), User: "alice", PasswordFile: file}.Connect(
		nats.ReconnectWait(10*time.Millisecond), nats.MaxReconnects(-1),
		nats.ReconnectHandler(func(*nats.Conn) { reconnected <- struct{}{} }))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()

	if err := os.WriteFile(file, []byte("second-password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	o := opts("second-password")
	o.Port = s.Addr().(*net.TCPAddr).Port
	if err := s.ReloadOptions(o); err != nil {
		t.Fatal(err)
	}
	// The server closes the connections whose user changed.
	select {
	case <-reconnected:
	case <-time.After(30 * time.Second):
		t.Fatalf("not reconnected with the rotated password (last error: %v)", nc.LastError())
	}
	if err := nc.Flush(); err != nil {
		t.Fatalf("after the rotation: %v", err)
	}
}

// refusedNaming checks that Validate refused (err), naming each of want,
// without repeating the test's password.
func refusedNaming(t *testing.T, err error, want []string) {
	t.Helper()
	if err == nil {
		t.Fatal("accepted")
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("Validate() = %q: want it to contain %q", err, w)
		}
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("Validate() = %q: repeats the password", err)
	}
}

// startServer starts a NATS server on opts, stopped when the test ends.
func startServer(t *testing.T, opts *server.Options) *server.Server {
	t.Helper()
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	t.Cleanup(s.Shutdown)
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	return s
}

// writeFile writes content to the file name in dir, readable by its owner
// only, as a password file would be, and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
