package console_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/nats-io/nats.go"

	"github.com/clerkjobs/clerkjobs/internal/console"
	"github.com/clerkjobs/clerkjobs/internal/publishcli"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// secretFile holds content in a file only the owner may read, as a
// credentials file should be.
func secretFile(t *testing.T, name, content string) string {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), name)
	if err == nil {
		_, err = f.WriteString(content)
	}
	if err == nil {
		err = f.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	return f.Name()
}

const (
	goodToken    = "3f9c1d0b7a6e45c2b8d1e0f4a7c3b9d2"
	goodPassword = "correct-horse-battery-staple"
)

func TestLoadCredentials(t *testing.T) {
	tests := []struct {
		name         string
		token, basic string // file contents; "" for no file
		wantErr      string
	}{
		{name: "token", token: goodToken + "\n"},
		{name: "basic", basic: "# operators\nalice:" + goodPassword + "\n\nbob:" + goodPassword + "2\n"},
		{name: "both", token: goodToken, basic: "alice:" + goodPassword},
		{name: "empty token", token: "\n", wantErr: "is empty"},
		{name: "short token", token: "tooShort", wantErr: "at least 16"},
		{name: "two tokens", token: goodToken + "\n" + goodToken, wantErr: "one token"},
		{name: "no colon", basic: "alice", wantErr: "line 1: want user:password"},
		{name: "short password", basic: "alice:pw1234", wantErr: `password of "alice" has 6 characters`},
		{name: "no user", basic: "# nobody\n", wantErr: "lists no user"},
		{name: "a user named token", basic: "token:" + goodPassword, wantErr: `user name "token" stands for the bearer token`},
		{name: "a user twice", basic: "alice:" + goodPassword + "\nbob:" + goodPassword + "\nalice:" + goodPassword + "2", wantErr: `line 3: user "alice" is listed twice`},
		{name: "a name with a line break", basic: "al\x1bice:" + goodPassword, wantErr: `user name "al\\x1bice": want 1 to 64 letters`},
		{name: "a name with a space", basic: "al ice:" + goodPassword, wantErr: `user name "al ice"`},
		{name: "a long name", basic: strings.Repeat("a", 65) + ":" + goodPassword, wantErr: "want 1 to 64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var tf, bf string
			if tt.token != "" {
				tf = secretFile(t, "token", tt.token)
			}
			if tt.basic != "" {
				bf = secretFile(t, "users", tt.basic)
			}
			c, err := console.LoadCredentials(tf, bf)
			switch {
			case tt.wantErr == "" && (err != nil || c == nil):
				t.Fatalf("LoadCredentials = %v, %v", c, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("LoadCredentials error %v, want one saying %q", err, tt.wantErr)
			}
			for _, secret := range []string{goodToken, goodPassword, "tooShort", "pw1234"} {
				if err != nil && strings.Contains(err.Error(), secret) {
					t.Errorf("the error shows the secret: %v", err)
				}
			}
		})
	}
	if c, err := console.LoadCredentials("", ""); c != nil || err != nil {
		t.Errorf("no files: %v, %v; want none", c, err)
	}
	if _, err := console.LoadCredentials(filepath.Join(t.TempDir(), "missing"), ""); err == nil || !strings.Contains(err.Error(), "token file") {
		t.Errorf("missing file: %v", err)
	}
}

func TestCheckAddress(t *testing.T) {
	creds, err := console.LoadCredentials(secretFile(t, "token", goodToken), "")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		addr      string
		creds     *console.Credentials
		needsAuth bool
	}{
		{"127.0.0.1:8080", nil, false},
		{"127.3.4.5:8080", nil, false},
		{"[::1]:8080", nil, false},
		{"localhost:8080", nil, false},
		{":8080", nil, true},
		{"0.0.0.0:8080", nil, true},
		{"[::]:8080", nil, true},
		{"192.0.2.10:8080", nil, true},
		{"console.example:8080", nil, true},
		{"0.0.0.0:8080", creds, false},
		{":8080", creds, false},
	}
	for _, tt := range tests {
		err := console.CheckAddress(tt.addr, tt.creds)
		if got := errors.Is(err, console.ErrNeedsAuth); got != tt.needsAuth || (err != nil && !got) {
			t.Errorf("CheckAddress(%q, creds %v) = %v, want needs-auth %v", tt.addr, tt.creds != nil, err, tt.needsAuth)
		}
	}
	if err := console.CheckAddress("8080", nil); err == nil || !strings.Contains(err.Error(), "host:port") {
		t.Errorf("CheckAddress(8080) = %v", err)
	}
}

// runConsole runs `publish console` with args to its end (it must not
// start) and returns its exit status and output.
func runConsole(t *testing.T, natsURL string, args ...string) (int, string) {
	t.Helper()
	return runPublish(t, natsURL, append([]string{"console"}, args...)...)
}

func TestRefusesToStart(t *testing.T) {
	env := testenv.New(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"all interfaces without credentials", []string{"--listen", "0.0.0.0:0"}, "only with authentication"},
		{"any address without credentials", []string{"--listen", ":0"}, "give --token-file or --basic-auth-file"},
		{"a weak token", []string{"--listen", "0.0.0.0:0", "--token-file", secretFile(t, "t", "short")}, "at least 16"},
		{"half of HTTPS", []string{"--https-cert", "x.pem"}, "--https-cert and --https-key go together"},
		{"an address in use", []string{"--listen", taken.Addr().String()}, "cannot listen on " + taken.Addr().String()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stderr := runConsole(t, env.NATSURL, tt.args...)
			if code != publishcli.ExitUsage || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr, publishcli.ExitUsage, tt.want)
			}
		})
	}
}

// onAllInterfaces starts the console on 0.0.0.0 with args (credentials)
// and returns its URL on the loopback address: the test's requests stay on
// this machine.
func onAllInterfaces(t *testing.T, natsURL string, args ...string) *running {
	t.Helper()
	r := startConsole(t, natsURL, append([]string{"--listen", "0.0.0.0:0"}, args...)...)
	u, err := url.Parse(r.URL)
	if err != nil {
		t.Fatal(err)
	}
	if ip := net.ParseIP(u.Hostname()); ip == nil || !ip.IsUnspecified() {
		t.Fatalf("listening on %s, want every interface", u.Host)
	}
	r.URL = "http://127.0.0.1:" + u.Port()
	return r
}

func TestBasicAuth(t *testing.T) {
	env := testenv.New(t)
	con := onAllInterfaces(t, env.NATSURL, "--basic-auth-file", secretFile(t, "users", "alice:"+goodPassword+"\n"))
	get := func(user, pw string) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, con.URL+"/dlq", nil)
		if user != "" {
			req.SetBasicAuth(user, pw)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	tests := []struct {
		name     string
		user, pw string
		want     int
	}{
		{"no credentials", "", "", http.StatusUnauthorized},
		{"wrong password", "alice", goodPassword + "x", http.StatusUnauthorized},
		{"unknown user", "mallory", goodPassword, http.StatusUnauthorized},
		{"alice", "alice", goodPassword, http.StatusOK},
	}
	for _, tt := range tests {
		resp := get(tt.user, tt.pw)
		if resp.StatusCode != tt.want {
			t.Errorf("%s: %d, want %d", tt.name, resp.StatusCode, tt.want)
		}
		if tt.want == http.StatusUnauthorized && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic ") {
			t.Errorf("%s: WWW-Authenticate %q", tt.name, resp.Header.Get("WWW-Authenticate"))
		}
	}
	// A refused POST changes nothing and is logged.
	status, _ := con.post(t, "/dlq/plan", url.Values{"action": {"purge"}, "scope": {"matching"}})
	if status != http.StatusUnauthorized {
		t.Errorf("unauthenticated POST: %d", status)
	}
	if !strings.Contains(con.Logs.String(), "refused an unauthenticated request") {
		t.Error("refusals are not logged")
	}
	if strings.Contains(con.Logs.String(), goodPassword) {
		t.Error("the log shows the password")
	}
}

// TestBrowserSignIn: on a non-loopback listener with a token, a browser
// without it gets the sign-in page, never the console; with it, the
// console.
func TestBrowserSignIn(t *testing.T) {
	b := newBrowser(t)
	env := testenv.New(t)
	con := onAllInterfaces(t, env.NATSURL, "--token-file", secretFile(t, "token", goodToken+"\n"))

	b.do(t, "open the console", chromedp.Navigate(con.URL+"/dlq"))
	b.waitText(t, 10*time.Second, "h1", regexp.MustCompile(`^Sign in$`))
	b.load(t, "a wrong token", chromedp.SetValue(chromedp.CSS("input[name=token]"), "not-the-token-at-all"), chromedp.Submit(chromedp.CSS("form")))
	b.waitText(t, 10*time.Second, "main .error", regexp.MustCompile(`not the console's token`))
	b.load(t, "the token", chromedp.SetValue(chromedp.CSS("input[name=token]"), goodToken), chromedp.Submit(chromedp.CSS("form")))
	b.waitText(t, 10*time.Second, "h1", regexp.MustCompile(`^Dead letters$`))
	if page := b.main(); strings.Contains(page, goodToken) {
		t.Error("the page shows the token")
	}

	// Scripts and other clients: the bearer header, or nothing.
	for _, tc := range []struct {
		auth string
		want int
	}{{"", http.StatusUnauthorized}, {"Bearer " + goodToken[1:], http.StatusUnauthorized}, {"Bearer " + goodToken, http.StatusOK}} {
		req, _ := http.NewRequest(http.MethodGet, con.URL+"/", nil)
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("Authorization %q: %d, want %d", tc.auth, resp.StatusCode, tc.want)
		}
	}
}

// TestSignOutEndsTheSignIn: each browser sign-in gets a cookie of its
// own, which stops working when its user signs out or signs in again. The cookie used to be
// derived from the token: the same for everyone, still valid after signing
// out, until the token changed.
func TestSignOutEndsTheSignIn(t *testing.T) {
	env := testenv.New(t)
	con := onAllInterfaces(t, env.NATSURL, "--token-file", secretFile(t, "token", goodToken+"\n"))
	// signIn signs in from a browser holding the cookies had.
	signIn := func(had ...*http.Cookie) *http.Cookie {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, con.URL+"/login", strings.NewReader(url.Values{"token": {goodToken}, "next": {"/"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for _, ck := range had {
			req.AddCookie(ck)
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		for _, ck := range resp.Cookies() {
			if ck.Name == "clerkjobs_console" && ck.Value != "" {
				return ck
			}
		}
		t.Fatalf("sign-in: %s, no cookie", resp.Status)
		return nil
	}
	status := func(method, path string, ck *http.Cookie) int {
		t.Helper()
		req, _ := http.NewRequest(method, con.URL+path, nil)
		req.AddCookie(ck)
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	a, b := signIn(), signIn()
	if a.Value == b.Value || strings.Contains(a.Value, goodToken) {
		t.Errorf("two sign-ins got cookies %q and %q: want a new random one each", a.Value, b.Value)
	}
	if got := status(http.MethodGet, "/", a); got != http.StatusOK {
		t.Fatalf("signed in: %d, want 200", got)
	}
	if got := status(http.MethodPost, "/logout", a); got != http.StatusSeeOther {
		t.Fatalf("sign out: %d, want 303", got)
	}
	// Signing in again in the same browser ends the sign-in it had: a
	// copy of the old cookie taken meanwhile is good for nothing.
	again := signIn(b)
	forged := &http.Cookie{Name: a.Name, Value: strings.Repeat("A", len(a.Value))}
	for name, c := range map[string]struct {
		ck   *http.Cookie
		want int
	}{"signed out": {a, http.StatusUnauthorized}, "signed in again": {b, http.StatusUnauthorized}, "still signed in": {again, http.StatusOK}, "made up": {forged, http.StatusUnauthorized}} {
		if got := status(http.MethodGet, "/", c.ck); got != c.want {
			t.Errorf("%s: %d, want %d", name, got, c.want)
		}
	}
}

// TestLoopbackOnly: without credentials the console answers only for a
// loopback host name, so a web page whose name resolves to 127.0.0.1 (DNS
// rebinding) cannot read it; pages carry the security headers.
func TestLoopbackOnly(t *testing.T) {
	env := testenv.New(t)
	con := startConsole(t, env.NATSURL)
	for _, tc := range []struct {
		host string
		want int
	}{{"", http.StatusOK}, {"localhost", http.StatusOK}, {"attacker.example", http.StatusMisdirectedRequest}, {"127.0.0.1.nip.io", http.StatusMisdirectedRequest}} {
		req, _ := http.NewRequest(http.MethodGet, con.URL+"/", nil)
		if tc.host != "" {
			req.Host = tc.host
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("Host %q: %d, want %d", tc.host, resp.StatusCode, tc.want)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") {
			t.Errorf("Content-Security-Policy %q", csp)
		}
		if resp.Header.Get("X-Frame-Options") != "DENY" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("headers %v", resp.Header)
		}
	}
	// State changes are POSTs only, and a cross-site one is refused before
	// it is looked at.
	for _, tc := range []struct {
		method, path string
		header       map[string]string
		want         int
	}{
		{http.MethodGet, "/plans/x/run", nil, http.StatusMethodNotAllowed},
		{http.MethodPost, "/dlq/plan", map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{http.MethodPost, "/dlq/plan", map[string]string{"Sec-Fetch-Site": "same-site"}, http.StatusForbidden},
		{http.MethodPost, "/dlq/plan", map[string]string{"Origin": "http://attacker.example"}, http.StatusForbidden},
		{http.MethodPost, "/revoke-all/plan", map[string]string{"Origin": "null"}, http.StatusForbidden},
	} {
		req, _ := http.NewRequest(tc.method, con.URL+tc.path, strings.NewReader("action=purge&scope=matching"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range tc.header {
			req.Header.Set(k, v)
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s %s %v: %d, want %d", tc.method, tc.path, tc.header, resp.StatusCode, tc.want)
		}
	}
}

// TestOtherSitesAndHugeFilters: a page of another site cannot make a
// browser load the console (an <img> or fetch aimed at a costly filter),
// only open its overview; and a filter of more values or bytes than the
// console accepts is refused with a 400 that says so, before any work.
func TestOtherSitesAndHugeFilters(t *testing.T) {
	env := testenv.New(t)
	subj := env.Topology.Subjects
	at := time.Now().UTC()
	seed(t, env.JS, 5, func(i int) *nats.Msg {
		id := fmt.Sprintf("job-%d", i)
		return deadLetter(subj, jobs.OpRevoke, jobs.ClassExhausted, id, fmt.Sprintf(`{"job_id":%q,"session_id":"sess_x%d"}`, id, i), at)
	})
	con := startConsole(t, env.NATSURL)
	con.waitIndexed(t, 20*time.Second)

	ids := func(n int) string {
		v := make([]string, n)
		for i := range v {
			v[i] = fmt.Sprintf("job-%d", i)
		}
		return url.QueryEscape(strings.Join(v, ","))
	}
	crossImg := map[string]string{"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "image"}
	crossNav := map[string]string{"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}
	for _, tc := range []struct {
		name, method, path string
		header             map[string]string
		want               int
		says               string
	}{
		{"an image from another site", http.MethodGet, "/dlq?job-id=" + ids(3), crossImg, http.StatusForbidden, "came from another site"},
		{"a fetch from another site", http.MethodGet, "/", map[string]string{"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "cors"}, http.StatusForbidden, "came from another site"},
		{"a frame from another site", http.MethodGet, "/dlq", map[string]string{"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "iframe"}, http.StatusForbidden, "came from another site"},
		{"a form from another site to the overview", http.MethodPost, "/", crossNav, http.StatusForbidden, "came from another site"},
		// A link pasted in a chat opens the page: one page, its filter
		// bounded like any other.
		{"a link from another site to a list", http.MethodGet, "/dlq?job-id=" + ids(3), crossNav, http.StatusOK, "<strong>3</strong> match"},
		{"a link from another site to an entry", http.MethodGet, "/dlq/1", crossNav, http.StatusOK, "Dead letter 1"},
		{"a link from another site to the overview", http.MethodGet, "/", crossNav, http.StatusOK, "Overview"},
		{"a link from another site with 1,001 job ids", http.MethodGet, "/dlq?job-id=" + ids(1001), crossNav, http.StatusBadRequest, "more than 1000 values"},
		{"the console's own page", http.MethodGet, "/dlq?job-id=" + ids(3), map[string]string{"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "navigate"}, http.StatusOK, "<strong>3</strong> match"},
		{"typed in the address bar", http.MethodGet, "/dlq", map[string]string{"Sec-Fetch-Site": "none", "Sec-Fetch-Mode": "navigate"}, http.StatusOK, "<strong>5</strong> dead letters"},
		{"no fetch metadata (curl)", http.MethodGet, "/dlq/1", nil, http.StatusOK, "Dead letter 1"},
		{"1,000 job ids", http.MethodGet, "/dlq?job-id=" + ids(1000), nil, http.StatusOK, "<strong>5</strong> match"},
		{"1,001 job ids", http.MethodGet, "/dlq?job-id=" + ids(1001), nil, http.StatusBadRequest, "more than 1000 values"},
		{"1,001 values over several filters", http.MethodGet, "/dlq?job-id=" + ids(1000) + "&code=a", nil, http.StatusBadRequest, "more than 1000 values"},
		{"a query over 64 KiB", http.MethodGet, "/dlq?job-id=" + strings.Repeat("x", 70<<10), nil, http.StatusBadRequest, "more than the 65536"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, con.URL+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, err := noRedirect.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.want || !strings.Contains(string(b), tc.says) {
				t.Errorf("%d, want %d saying %q:\n%.2000s", resp.StatusCode, tc.want, tc.says, b)
			}
		})
	}
	// A POST selecting more dead letters than a page can show is refused.
	form := url.Values{"action": {"purge"}, "scope": {"selected"}}
	for i := range 1001 {
		form.Add("seq", fmt.Sprint(i+1))
	}
	if status, _ := con.post(t, "/dlq/plan", form); status != http.StatusBadRequest {
		t.Errorf("1,001 selected: %d, want 400", status)
	}
}

// TestStrangersLearnNothing: what the console answers a client that has
// not authenticated (the sign-in page, a refusal) does not name the NATS
// server it uses or the subject prefix: those are for operators.
func TestStrangersLearnNothing(t *testing.T) {
	env := testenv.New(t)
	natsHost := strings.TrimPrefix(env.NATSURL, "nats://")
	con := onAllInterfaces(t, env.NATSURL, "--token-file", secretFile(t, "token", goodToken+"\n"))
	for _, path := range []string{"/", "/dlq", "/login", "/dlq/1"} {
		code, body := con.get(t, path)
		if code != http.StatusOK && code != http.StatusUnauthorized {
			t.Errorf("GET %s: %d", path, code)
		}
		if strings.Contains(body, natsHost) || strings.Contains(body, "subject prefix") {
			t.Errorf("GET %s without credentials (%d) shows the NATS server or the subject prefix:\n%s", path, code, body)
		}
	}
	// Without credentials, a page whose DNS name was pointed at 127.0.0.1
	// (DNS rebinding) reads the refusal as its own origin's: it names
	// neither.
	local := startConsole(t, env.NATSURL)
	for _, path := range []string{"/", "/dlq", "/static/console.css"} {
		req, _ := http.NewRequest(http.MethodGet, local.URL+path, nil)
		req.Host = "rebound.attacker.example:" + strings.Split(local.URL, ":")[2]
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusMisdirectedRequest {
			t.Errorf("GET %s for another host name: %d, want 421", path, resp.StatusCode)
		}
		if strings.Contains(string(body), natsHost) || strings.Contains(string(body), "subject prefix") {
			t.Errorf("GET %s for another host name shows the NATS server or the subject prefix:\n%s", path, body)
		}
	}
	// Signed in, the footer names them.
	req, _ := http.NewRequest(http.MethodGet, con.URL+"/", nil)
	req.Header.Set("Authorization", "Bearer "+goodToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), natsHost) {
		t.Errorf("the overview does not name the NATS server %s", natsHost)
	}
}
