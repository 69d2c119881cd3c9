package console_test

import (
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/clerkjobs/clerkjobs/internal/testenv"
)

// from is a client whose connections come from ip, a loopback address
// other than 127.0.0.1: another machine, as far as the console can tell.
func from(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{
		Transport:     &http.Transport{DialContext: d.DialContext},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// TestSignInFailuresAreBounded: a guesser could try tokens and passwords
// as fast as the console answered. An address now gets five failures, the
// fifth answered 429 with when to try again; the operator, from another
// address, still signs in. Neither the pages nor the log repeat a secret.
func TestSignInFailuresAreBounded(t *testing.T) {
	env := testenv.New(t)
	con := onAllInterfaces(t, env.NATSURL, "--token-file", secretFile(t, "token", goodToken+"\n"))
	wrong := "wrong-" + goodToken
	attempts := map[string]func(c *http.Client, token string) *http.Response{
		"sign-in form": func(c *http.Client, token string) *http.Response {
			req, _ := http.NewRequest(http.MethodPost, con.URL+"/login", strings.NewReader(url.Values{"token": {token}, "next": {"/"}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return do(t, c, req)
		},
		"bearer header": func(c *http.Client, token string) *http.Response {
			req, _ := http.NewRequest(http.MethodGet, con.URL+"/", nil)
			req.Header.Set("Authorization", "Bearer "+token)
			return do(t, c, req)
		},
	}
	guesser := map[string]string{"sign-in form": "127.0.0.2", "bearer header": "127.0.0.3"}
	for name, attempt := range attempts {
		t.Run(name, func(t *testing.T) {
			c := from(guesser[name])
			for i := 1; i <= 5; i++ {
				resp := attempt(c, wrong)
				body := readBody(t, resp)
				if i < 5 {
					if resp.StatusCode != http.StatusUnauthorized {
						t.Fatalf("failure %d: %d, want 401", i, resp.StatusCode)
					}
					continue
				}
				if resp.StatusCode != http.StatusTooManyRequests {
					t.Fatalf("failure %d: %d, want 429", i, resp.StatusCode)
				}
				if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || s < 1 {
					t.Errorf("Retry-After %q, want whole seconds", resp.Header.Get("Retry-After"))
				}
				if !strings.Contains(body, "too many failed sign-ins from your address: try again after") {
					t.Errorf("the 429 page does not say when to try again:\n%s", body)
				}
				if strings.Contains(body, goodToken) {
					t.Error("the 429 page shows a token")
				}
			}
		})
	}
	// The operator, from another address, signs in and is served.
	operator := from("127.0.0.4")
	resp := attempts["sign-in form"](operator, goodToken)
	readBody(t, resp)
	if resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) == 0 {
		t.Errorf("the operator's sign-in from another address: %d, want 303 and a cookie", resp.StatusCode)
	}
	if resp := attempts["bearer header"](operator, goodToken); readBody(t, resp) == "" || resp.StatusCode != http.StatusOK {
		t.Errorf("the operator's bearer token from another address: %d, want 200", resp.StatusCode)
	}
	logs := con.Logs.String()
	if !strings.Contains(logs, "too many failed sign-ins from this address") {
		t.Errorf("the lock-outs are not logged:\n%s", logs)
	}
	if strings.Contains(logs, goodToken) {
		t.Error("the log shows a token")
	}
}

func do(t *testing.T, c *http.Client, req *http.Request) *http.Response {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
