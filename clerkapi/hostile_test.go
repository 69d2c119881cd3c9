package clerkapi_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/clerkjobs/clerkjobs/clerkapi"
)

// echoingUpstream stands for Clerk, or a proxy in front of it, that quotes
// the request in its error body: the Authorization header in the message,
// the request body in the long message and the trace id.
func echoingUpstream(status int) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		auth := r.Header.Get("Authorization")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]any{
			"errors": []map[string]any{{
				"code":         "echo " + auth,
				"message":      "your key " + auth,
				"long_message": "you sent " + string(body),
				"meta":         map[string]any{"raw": string(body)},
			}},
			"clerk_trace_id": "trace " + auth + " " + string(body),
		})
	}))
}

// TestUpstreamTextNeverCarriesSecrets: whatever the upstream echoes, the
// secret key and the request's own secrets never reach the error: not its
// text, not its fields.
func TestUpstreamTextNeverCarriesSecrets(t *testing.T) {
	const key = "sk_test_hostileUpstreamKey123"
	const refresh, expired = "opaque-refresh-token-value", "eyJhbGciOiJSUzI1NiJ9.eyJzaWQiOiJzZXNzXzEifQ.c2lnbmF0dXJlcw"
	for _, status := range []int{400, 401, 422, 500, 502} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			srv := echoingUpstream(status)
			defer srv.Close()
			c, err := clerkapi.New(clerkapi.WithSecretKey(key), clerkapi.WithBaseURL(srv.URL+"/v1"))
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.RefreshSession(context.Background(), "sess_1", clerkapi.RefreshParams{
				ExpiredToken: expired, RefreshToken: refresh, RequestOrigin: "https://app.example",
				RequestHeaders: map[string]any{"Cookie": "__client=client-cookie-secret-value"},
			})
			if err == nil {
				t.Fatal("no error from an error answer")
			}
			var apiErr *clerkapi.Error
			if !errors.As(err, &apiErr) {
				t.Fatalf("error %T is not an *Error", err)
			}
			everything := fmt.Sprintf("%v %+v %#v %s %s", err, apiErr, apiErr, apiErr.Message(), apiErr.Code())
			for name, s := range map[string]string{"key": key, "refresh token": refresh, "expired token": expired, "cookie": "client-cookie-secret-value"} {
				if strings.Contains(everything, s) {
					t.Errorf("the %s appears in the error: %s", name, everything)
				}
			}
			if !strings.Contains(apiErr.Message(), "[REDACTED]") {
				t.Errorf("message %q: want the echoed key replaced, not dropped", apiErr.Message())
			}
		})
	}
}

// TestSecretAtTheCutNeverShown: an upstream that quotes the request where
// the client cuts a field (1024 bytes of a message, 128 of a code or trace
// id) must not leave the piece before the cut behind. A refresh token is
// opaque: once cut, it is no longer the whole secret the client knows, nor
// shaped like one, so the cut has to come after the redaction. Before, the
// client cut first and kept most of the token.
func TestSecretAtTheCutNeverShown(t *testing.T) {
	const refresh = "opaqueRefreshTokenValue0123456789abcdef"
	for _, cut := range []int{128, 1024} {
		t.Run(fmt.Sprint(cut), func(t *testing.T) {
			// The token starts 20 bytes before the cut (Ellipsis included).
			quoted := strings.Repeat("x", cut-len("…")-20) + refresh + " and more"
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnprocessableEntity)
				_ = json.NewEncoder(w).Encode(map[string]any{
					"errors":         []map[string]any{{"code": quoted, "message": quoted, "long_message": quoted}},
					"clerk_trace_id": quoted,
				})
			}))
			defer srv.Close()
			c, err := clerkapi.New(clerkapi.WithSecretKey(testSecret), clerkapi.WithBaseURL(srv.URL+"/v1"))
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.RefreshSession(context.Background(), "sess_1", clerkapi.RefreshParams{
				ExpiredToken: "expired-token-value", RefreshToken: refresh, RequestOrigin: "https://app.example",
			})
			var apiErr *clerkapi.Error
			if !errors.As(err, &apiErr) || len(apiErr.Errors) != 1 {
				t.Fatalf("error %v: want an *Error with one detail", err)
			}
			d := apiErr.Errors[0]
			// Any 12 bytes of the token give most of it away.
			piece := refresh[:12]
			for name, s := range map[string]string{"error": err.Error(), "code": d.Code, "message": d.Message, "long message": d.LongMessage, "trace id": apiErr.TraceID} {
				if strings.Contains(s, piece) {
					t.Errorf("the %s keeps a piece of the refresh token: …%s", name, s[max(0, len(s)-60):])
				}
			}
		})
	}
}

// TestRedirectsAreNotFollowed: Clerk's API does not redirect, so a
// redirect comes from a proxy or a hostile answer. Followed, it sent the
// request to the other host: a 307 or 308 repeats the body, a refresh
// job's tokens included, and the other host's answer was taken for
// Clerk's. Now nothing reaches the other host, and the redirect is an
// *Error with its status, systemic: the base URL is wrong, not the job.
func TestRedirectsAreNotFollowed(t *testing.T) {
	const refresh = "opaqueRefreshTokenValue0123456789abcdef"
	var reached atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"object":"token","jwt":"eyJhbGciOiJSUzI1NiJ9.eyJzaWQiOiJzZXNzXzEifQ.c2ln"}`)
	}))
	defer other.Close()
	// Another host name for the same address: net/http keeps the key for
	// the same host, so this is the case where only the body would go.
	otherURL := strings.Replace(other.URL, "127.0.0.1", "localhost", 1)
	for _, status := range []int{301, 302, 303, 307, 308} {
		for _, target := range []string{otherURL, "same"} {
			t.Run(fmt.Sprint(status, " ", target), func(t *testing.T) {
				reached.Store(0)
				var srv *httptest.Server
				srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.URL.Path == "/elsewhere" {
						reached.Add(1)
						return
					}
					to := otherURL + r.URL.Path
					if target == "same" {
						to = srv.URL + "/elsewhere"
					}
					http.Redirect(w, r, to, status)
				}))
				defer srv.Close()
				c, err := clerkapi.New(clerkapi.WithSecretKey(testSecret), clerkapi.WithBaseURL(srv.URL+"/v1"))
				if err != nil {
					t.Fatal(err)
				}
				res, err := c.RefreshSession(context.Background(), "sess_1", clerkapi.RefreshParams{
					ExpiredToken: "expired-token-value", RefreshToken: refresh, RequestOrigin: "https://app.example",
				})
				if n := reached.Load(); n != 0 {
					t.Errorf("the redirect was followed: %d request(s) reached its target", n)
				}
				var apiErr *clerkapi.Error
				if !errors.As(err, &apiErr) || apiErr.StatusCode != status {
					t.Fatalf("RefreshSession = %v, %v: want an *Error with status %d", res, err, status)
				}
				if c := clerkapi.ClassOf(err); c != clerkapi.Systemic {
					t.Errorf("class %v, want systemic", c)
				}
			})
		}
	}
}

// TestEmptyAnswersAreNotSuccesses: a 2xx whose JSON is not the object
// asked for ("null", "{}", a proxy's own JSON) decoded without error into
// an empty value, taken for Clerk's answer: a token job delivered an empty
// token, a revoke succeeded with no session, a list said the user had no
// sessions (so a revoke_all revoked none). Each is now an error, retryable
// like any answer that does not decode, but for a create or a refresh:
// retried, a create that Clerk did carry out would make a second session,
// a refresh would send its spent refresh token again, so they are
// Permanent and ErrUnconfirmed.
func TestEmptyAnswersAreNotSuccesses(t *testing.T) {
	ctx := context.Background()
	refresh := clerkapi.RefreshParams{ExpiredToken: "expired-token-value", RefreshToken: "refresh-token-value", RequestOrigin: "https://app.example"}
	calls := map[string]func(c *clerkapi.Client) (any, error){
		"token": func(c *clerkapi.Client) (any, error) {
			return c.CreateSessionToken(ctx, "sess_1", clerkapi.TokenParams{})
		},
		"template": func(c *clerkapi.Client) (any, error) {
			return c.CreateSessionTokenFromTemplate(ctx, "sess_1", "tmpl", clerkapi.TokenParams{})
		},
		"refresh": func(c *clerkapi.Client) (any, error) { return c.RefreshSession(ctx, "sess_1", refresh) },
		"revoke":  func(c *clerkapi.Client) (any, error) { return c.RevokeSession(ctx, "sess_1") },
		"get":     func(c *clerkapi.Client) (any, error) { return c.GetSession(ctx, "sess_1") },
		"create": func(c *clerkapi.Client) (any, error) {
			return c.CreateSession(ctx, clerkapi.CreateParams{UserID: "user_1"})
		},
		"lock": func(c *clerkapi.Client) (any, error) { return c.LockUser(ctx, "user_1") },
		"list": func(c *clerkapi.Client) (any, error) {
			return c.ListSessions(ctx, clerkapi.ListParams{UserID: "user_1", Paginated: true})
		},
	}
	bodies := map[string][]string{
		"token":    {`null`, `{}`, `{"object":"token"}`, `{"object":"token","jwt":""}`},
		"template": {`null`, `{}`},
		"refresh":  {`null`, `{}`, `{"object":"cookies"}`, `{"object":"cookies","cookies":null}`},
		"revoke":   {`null`, `{}`, `{"ok":true}`},
		"get":      {`null`, `{}`},
		"create":   {`null`, `{}`, `{"object":"session"}`},
		"lock":     {`null`, `{}`},
		"list":     {`null`, `{}`, `{"data":null,"total_count":0}`, `[null]`, `{"data":[{}],"total_count":1}`},
	}
	for name, call := range calls {
		for _, body := range bodies[name] {
			t.Run(name+" "+body, func(t *testing.T) {
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Type", "application/json")
					_, _ = io.WriteString(w, body)
				}))
				defer srv.Close()
				c, err := clerkapi.New(clerkapi.WithSecretKey(testSecret), clerkapi.WithBaseURL(srv.URL+"/v1"))
				if err != nil {
					t.Fatal(err)
				}
				res, err := call(c)
				if err == nil {
					t.Fatalf("answer %s taken for a success: %+v", body, res)
				}
				unrepeatable := name == "create" || name == "refresh"
				want := clerkapi.Retryable
				if unrepeatable {
					want = clerkapi.Permanent
				}
				if cl := clerkapi.ClassOf(err); cl != want {
					t.Errorf("%v: class %v, want %v", err, cl, want)
				}
				if got := errors.Is(err, clerkapi.ErrUnconfirmed); got != unrepeatable {
					t.Errorf("%v: errors.Is(ErrUnconfirmed) %v, want it for a create or a refresh only", err, got)
				}
			})
		}
	}
	// The spec allows an empty list of cookies: an answer, not a failure
	// to retry (a refresh retried could spend the refresh token).
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"object":"cookies","cookies":[]}`)
	}))
	defer srv.Close()
	c, err := clerkapi.New(clerkapi.WithSecretKey(testSecret), clerkapi.WithBaseURL(srv.URL+"/v1"))
	if err != nil {
		t.Fatal(err)
	}
	if res, err := calls["refresh"](c); err != nil {
		t.Errorf("an empty list of cookies: %+v, %v; want it taken", res, err)
	}
}

// TestEchoedRequestHeaderValuesAreRedacted: a refresh job's
// request_headers are its own secrets (the original request's cookies and
// credentials), and Clerk's refresh takes each header's values as a list,
// as a job decoded from JSON holds them ([]any). The client matched each
// value printed with fmt.Sprint ("[a b]"), which is never the text echoed,
// so a value without a secret's shape, echoed by the upstream, stayed in
// the error.
func TestEchoedRequestHeaderValuesAreRedacted(t *testing.T) {
	const v1, v2 = "opaqueHeaderProof0123456789", "secondProofValue9876543210"
	srv := echoingUpstream(http.StatusBadRequest)
	defer srv.Close()
	c, err := clerkapi.New(clerkapi.WithSecretKey(testSecret), clerkapi.WithBaseURL(srv.URL+"/v1"))
	if err != nil {
		t.Fatal(err)
	}
	var headers map[string]any // as a job's JSON decodes
	if err := json.Unmarshal([]byte(`{"X-Proof":["`+v1+`","`+v2+`"],"X-One":"`+v2+`"}`), &headers); err != nil {
		t.Fatal(err)
	}
	_, err = c.RefreshSession(context.Background(), "sess_1", clerkapi.RefreshParams{
		ExpiredToken: "expired-token-value", RefreshToken: "refresh-token-value", RequestOrigin: "https://app.example",
		RequestHeaders: headers,
	})
	var apiErr *clerkapi.Error
	if !errors.As(err, &apiErr) || len(apiErr.Errors) != 1 {
		t.Fatalf("error %v: want an *Error with one detail", err)
	}
	all := fmt.Sprintf("%v %s %s", err, apiErr.Errors[0].LongMessage, apiErr.TraceID)
	for _, v := range []string{v1, v2} {
		if strings.Contains(all, v) {
			t.Errorf("a request header value is in the error: %s", all)
		}
	}
}

// TestEscapedEchoesNeverCarrySecrets: an upstream that quotes the request
// seldom quotes it as sent. A proxy's error puts the body in a URL
// (percent-encoded) or logs the request as base64, and a server answering
// with a broken header line makes net/http quote that line with %q. A
// refresh token holding <, & or " is escaped twice then (by the JSON body,
// then by the echo), is shaped like nothing, and was shown in the error;
// the key in base64 too.
func TestEscapedEchoesNeverCarrySecrets(t *testing.T) {
	const key = "sk_test_escapedEchoKey0123456789"
	const refresh = `opaque/Rfrsh+Tkn=<0123456789>&"end`
	const cookie = "__client=clientCookieValue; theme=Dark+Light/Mode"
	pieces := []string{"Rfrsh", "0123456789", "clientCookie", "Light", "escapedEchoKey"}
	for _, p := range []string{"Rfrsh+Tkn", "0123456789", "clientCookieValue", "escapedEchoKey"} {
		pieces = append(pieces, base64Pieces(p)...)
	}
	for name, echo := range map[string]func(w http.ResponseWriter, auth, body string){
		"percent-encoded": func(w http.ResponseWriter, auth, body string) {
			writeErrorBody(w, "proxy refused "+url.QueryEscape(auth+" "+body))
		},
		"base64": func(w http.ResponseWriter, auth, body string) {
			writeErrorBody(w, "request "+base64.StdEncoding.EncodeToString([]byte(auth+"\n"+body)))
		},
		"broken header line": func(w http.ResponseWriter, auth, body string) {
			conn, buf, err := http.NewResponseController(w).Hijack()
			if err != nil {
				panic(err)
			}
			defer conn.Close()
			_, _ = buf.WriteString("HTTP/1.1 500 Oops\r\nX-Seen: 1\r\n" + body + "\r\n\r\n")
			_ = buf.Flush()
		},
	} {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				echo(w, r.Header.Get("Authorization"), string(body))
			}))
			defer srv.Close()
			c, err := clerkapi.New(clerkapi.WithSecretKey(key), clerkapi.WithBaseURL(srv.URL+"/v1"))
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.RefreshSession(context.Background(), "sess_1", clerkapi.RefreshParams{
				ExpiredToken: "expired-token-value", RefreshToken: refresh, RequestOrigin: "https://app.example",
				RequestHeaders: map[string]any{"Cookie": cookie},
			})
			if err == nil {
				t.Fatal("no error from a failed call")
			}
			all := fmt.Sprintf("%v | %+v", err, err)
			for _, piece := range pieces {
				if strings.Contains(all, piece) {
					t.Errorf("the error holds %q of a secret: %s", piece, all)
				}
			}
			if clerkapi.ClassOf(err) != clerkapi.Permanent {
				t.Errorf("class %v: want the refresh's failure kept permanent (unconfirmed or refused)", clerkapi.ClassOf(err))
			}
		})
	}
}

// writeErrorBody answers 400 with Clerk's error body carrying message.
func writeErrorBody(w http.ResponseWriter, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]any{{"code": "bad", "message": message}}})
}

// base64Pieces are what base64 of a text holding s shows of s, whichever
// of the three offsets of a 3-byte group s starts at.
func base64Pieces(s string) []string {
	var out []string
	for lead := range 3 {
		b := base64.StdEncoding.EncodeToString(append(make([]byte, lead), s...))
		out = append(out, b[4:len(b)-4])
	}
	return out
}

// TestEchoInAnAnswerIsNotKept: an upstream (a proxy, a debugging echo)
// answering 200 with what it was sent put the Authorization header into
// the session the client returned, and the worker stored that in the job's
// result: the key in the results stream. Every text of a session or user
// answer is cleared now, the actor's too, even behind JSON escapes; a token
// (the secret asked for) is left whole.
func TestEchoInAnAnswerIsNotKept(t *testing.T) {
	const key = "sk_test_answerEchoKey0123456789"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		escaped := strings.ReplaceAll(auth, "sk_", `\u0073k_`)
		session := `{"object":"session","id":"sess_1","user_id":"user_1","client_id":"client_` + auth[len(auth)-10:] + `","status":"active",` +
			`"actor":{"sub":"user_admin","note":"` + auth + `","hidden":"` + escaped + `","n":12345678901234567890},` +
			`"latest_activity":{"object":"session_activity","id":"act_1","browser_name":"` + auth + `","city":"` + key + `"}}`
		w.Header().Set("Content-Type", "application/json")
		switch {
		case strings.HasSuffix(r.URL.Path, "/lock"):
			_, _ = io.WriteString(w, `{"object":"user","id":"user_1","external_id":"`+auth+`","locked":true}`)
		case strings.HasSuffix(r.URL.Path, "/tokens"):
			_, _ = io.WriteString(w, `{"object":"token","jwt":"`+key+`"}`)
		case r.URL.Path == "/v1/sessions":
			_, _ = io.WriteString(w, `[`+session+`]`)
		default:
			_, _ = io.WriteString(w, session)
		}
	}))
	defer srv.Close()
	c, err := clerkapi.New(clerkapi.WithSecretKey(key), clerkapi.WithBaseURL(srv.URL+"/v1"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var got []any
	keep := func(v any, err error) {
		if err != nil {
			t.Errorf("call failed: %v", err)
		}
		got = append(got, v)
	}
	keep(c.GetSession(ctx, "sess_1"))
	keep(c.ListSessions(ctx, clerkapi.ListParams{UserID: "user_1"}))
	keep(c.LockUser(ctx, "user_1"))
	for _, v := range got {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("%T: %v", v, err)
		}
		if strings.Contains(string(b), "answerEchoKey") || strings.Contains(string(b), "u0073k") {
			t.Errorf("the answer keeps the key: %s", b)
		}
		if _, ok := v.(*clerkapi.Session); ok && !strings.Contains(string(b), `"n":12345678901234567890`) {
			t.Errorf("the actor's other values changed: %s", b)
		}
	}
	tok, err := c.CreateSessionToken(ctx, "sess_1", clerkapi.TokenParams{})
	if err != nil || tok.JWT != key {
		t.Errorf("token %+v, %v: want the secret asked for, whole", tok, err)
	}
}
