package console_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/clerkjobs/clerkjobs/internal/testenv"
)

// TestSignInCookieIsSecureBehindATLSProxy: behind a TLS proxy (the
// documented alternative to --https-cert) the console serves plain HTTP,
// and its sign-in cookie went without Secure: a browser then sends it in
// the clear to any http:// URL of the console's host, where someone on
// the network can read it (an injected redirect is enough). A browser's
// sign-in says the page's scheme in its Origin header: from an https page
// the cookie is Secure, and so is the one that ends it.
func TestSignInCookieIsSecureBehindATLSProxy(t *testing.T) {
	env := testenv.New(t)
	con := onAllInterfaces(t, env.NATSURL, "--token-file", secretFile(t, "token", goodToken+"\n"))
	host := strings.TrimPrefix(con.URL, "http://")
	send := func(path string, form url.Values, origin string, ck *http.Cookie) *http.Cookie {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, con.URL+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", origin)
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		if ck != nil {
			req.AddCookie(ck)
		}
		resp := do(t, noRedirect, req)
		readBody(t, resp)
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("POST %s from %s: %d, want 303", path, origin, resp.StatusCode)
		}
		for _, c := range resp.Cookies() {
			if c.Name == "clerkjobs_console" {
				return c
			}
		}
		t.Fatalf("POST %s from %s: no cookie", path, origin)
		return nil
	}
	signIn := url.Values{"token": {goodToken}, "next": {"/"}}
	if ck := send("/login", signIn, "https://"+host, nil); !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode {
		t.Errorf("signed in from an https page: cookie Secure=%v HttpOnly=%v SameSite=%v, want Secure, HttpOnly, Strict", ck.Secure, ck.HttpOnly, ck.SameSite)
	} else if out := send("/logout", nil, "https://"+host, ck); !out.Secure {
		t.Error("signed out from an https page: the clearing cookie is not Secure")
	}
	// Over plain HTTP (a loopback console, a test) a Secure cookie would
	// not be kept by the browser: none.
	if ck := send("/login", signIn, "http://"+host, nil); ck.Secure {
		t.Error("signed in from an http page: the cookie is Secure, which the browser would drop")
	}
}
