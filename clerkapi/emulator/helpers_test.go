package emulator_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/clerkapi/internal/spectest"
)

// testKey is one signing key for the whole test binary: generating a
// 2048-bit key per emulator would dominate the run time.
var testKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

// harness is an emulator server and a raw HTTP client whose every answer on
// a Clerk path is checked against the OpenAPI description (requests are
// not: these tests send invalid ones on purpose).
type harness struct {
	t   *testing.T
	srv *emulator.Server
	emu *emulator.Emulator
	hc  *http.Client
	// root is the server root, without /v1.
	root string
}

func start(t *testing.T, opts ...emulator.Option) *harness {
	t.Helper()
	opts = append([]emulator.Option{emulator.WithSigningKey(testKey())}, opts...)
	srv := emulator.NewServer(opts...)
	t.Cleanup(srv.Close)
	spec := spectest.Optional(t)
	return &harness{
		t:    t,
		srv:  srv,
		emu:  srv.Emulator,
		hc:   &http.Client{Transport: spec.Transport(t, nil, spectest.ResponsesOnly), Timeout: 10 * time.Second},
		root: strings.TrimSuffix(srv.URL, "/v1"),
	}
}

// unchecked is h with a client that does not check answers against the
// description: for statuses a test forces (FailSession) that Clerk does
// not answer on that path.
func (h *harness) unchecked() *harness {
	u := *h
	u.hc = &http.Client{Timeout: 10 * time.Second}
	return &u
}

// answer is a raw HTTP answer.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// json decodes the body into a generic value.
func (a answer) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(a.body, &m); err != nil {
		t.Fatalf("body %q is not a JSON object: %v", a.body, err)
	}
	return m
}

// code is the code of the first Clerk error in the body.
func (a answer) code(t *testing.T) string {
	t.Helper()
	var eb struct {
		Errors []struct {
			Code string         `json:"code"`
			Meta map[string]any `json:"meta"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(a.body, &eb); err != nil || len(eb.Errors) == 0 {
		t.Fatalf("body %q is not a Clerk errors body", a.body)
	}
	return eb.Errors[0].Code
}

// param is meta.param_name of the first Clerk error.
func (a answer) param(t *testing.T) string {
	t.Helper()
	var eb struct {
		Errors []struct {
			Meta map[string]any `json:"meta"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(a.body, &eb); err != nil || len(eb.Errors) == 0 {
		t.Fatalf("body %q is not a Clerk errors body", a.body)
	}
	p, _ := eb.Errors[0].Meta["param_name"].(string)
	return p
}

// hdr is one request header.
type hdr struct{ k, v string }

// do sends a request to root+path with the default key (unless an
// Authorization header is given) and JSON content type for bodies.
func (h *harness) do(method, path, body string, headers ...hdr) answer {
	h.t.Helper()
	a, err := h.try(method, path, body, headers...)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	return a
}

func (h *harness) try(method, path, body string, headers ...hdr) (answer, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, h.root+path, rd)
	if err != nil {
		return answer{}, err
	}
	req.Header.Set("Authorization", "Bearer "+emulator.DefaultSecretKey)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, x := range headers {
		if x.v == "" {
			req.Header.Del(x.k)
		} else {
			req.Header.Set(x.k, x.v)
		}
	}
	resp, err := h.hc.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, header: resp.Header, body: b}, err
}

// fakeClock is a settable clock for WithClock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 5, 12, 9, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
