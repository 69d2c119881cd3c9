package clerkapi_test

import (
	"crypto/rand"
	"crypto/rsa"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/clerkapi/internal/spectest"
)

// testSecret is the secret key of every test emulator. Tests check that it
// never appears in an error or a formatted value.
const testSecret = "sk_test_ClerkapiTestSecret5f2c9e71"

// liveSecret is a production-shaped key, for tests of what only a live key
// may not do.
const liveSecret = "sk_" + "live_ClerkapiLiveSecret8a41d0"

// signingKey is shared by all emulators of this test binary.
var signingKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

// env is an emulator server and a client talking to it through a transport
// that checks every request and answer against Clerk's OpenAPI
// description (when the file is available).
type env struct {
	t   *testing.T
	srv *emulator.Server
	emu *emulator.Emulator
	c   *clerkapi.Client
}

func newEnv(t *testing.T, opts ...emulator.Option) *env {
	t.Helper()
	return newEnvSpec(t, spectest.Optional(t), opts...)
}

func newEnvSpec(t *testing.T, spec *spectest.Spec, opts ...emulator.Option) *env {
	t.Helper()
	opts = append([]emulator.Option{emulator.WithSecretKeys(testSecret), emulator.WithSigningKey(signingKey())}, opts...)
	srv := emulator.NewServer(opts...)
	t.Cleanup(srv.Close)
	e := &env{t: t, srv: srv, emu: srv.Emulator}
	e.c = e.client(clerkapi.WithHTTPClient(&http.Client{
		Timeout:   10 * time.Second,
		Transport: spec.Transport(t, nil, spectest.Both),
	}))
	return e
}

// client returns a client for the emulator with the test secret; opts come
// last and may override anything.
func (e *env) client(opts ...clerkapi.Option) *clerkapi.Client {
	e.t.Helper()
	all := append([]clerkapi.Option{clerkapi.WithBaseURL(e.srv.URL), clerkapi.WithSecretKey(testSecret)}, opts...)
	c, err := clerkapi.New(all...)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// noSecret fails the test if the secret key appears in s.
func noSecret(t *testing.T, what, s string) {
	t.Helper()
	if strings.Contains(s, testSecret) || strings.Contains(s, "ClerkapiTestSecret") || strings.Contains(s, "ClerkapiLiveSecret") {
		t.Errorf("%s shows the secret key: %s", what, strings.ReplaceAll(s, testSecret, "<SECRET>"))
	}
}
