package clerkapi_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/clerkapi/internal/spectest"
)

// opCase is one successful client call and what its answer must be.
type opCase struct {
	name   string
	op     string // Clerk operation the emulator must log
	path   string // path the emulator must log ("" to skip)
	call   func(ctx context.Context, c *clerkapi.Client) (any, error)
	check  func(t *testing.T, got any)
	method string
}

// fixture is the data the operation table works on.
type fixture struct {
	user     string
	sessions []string // oldest first
	e        *env
}

func newFixture(t *testing.T, spec *spectest.Spec) *fixture {
	e := newEnvSpec(t, spec, emulator.WithTemplate("worker", map[string]any{"aud": "jobs", "uid": "{{user.id}}"}, 2*time.Minute))
	user := e.emu.CreateUser()
	return &fixture{user: user, sessions: e.emu.CreateSessions(user, 4), e: e}
}

func (f *fixture) claims(t *testing.T, tok string) jwt.MapClaims {
	t.Helper()
	p, err := jwt.Parse(tok, func(*jwt.Token) (any, error) { return f.e.emu.PublicKey(), nil },
		jwt.WithValidMethods([]string{"RS256"}), jwt.WithExpirationRequired())
	if err != nil {
		t.Fatalf("token does not verify: %v", err)
	}
	return p.Claims.(jwt.MapClaims)
}

func (f *fixture) cases() []opCase {
	s := f.sessions
	newest := []string{s[3], s[2], s[1], s[0]}
	clientOf := func(id string) string { x, _ := f.e.emu.Session(id); return x.ClientID }
	return []opCase{
		{
			name: "ListSessions bare array", op: "GetSessionList", method: "GET", path: "/v1/sessions",
			call: func(ctx context.Context, c *clerkapi.Client) (any, error) {
				return c.ListSessions(ctx, clerkapi.ListParams{UserID: f.user})
			},
			check: func(t *testing.T, got any) {
				l := got.(*clerkapi.SessionList)
				if l.TotalCount != -1 || !slices.Equal(idsOf(l.Data), newest) {
					t.Errorf("total %d ids %v, want -1 %v", l.TotalCount, idsOf(l.Data), newest)
				}
			},
		},
		{
			name: "ListSessions paginated with filters", op: "GetSessionList", method: "GET", path: "/v1/sessions",
			call: func(ctx context.Context, c *clerkapi.Client) (any, error) {
				return c.ListSessions(ctx, clerkapi.ListParams{UserID: f.user, Status: clerkapi.StatusActive, Limit: 2, Offset: 1, Paginated: true})
			},
			check: func(t *testing.T, got any) {
				l := got.(*clerkapi.SessionList)
				if l.TotalCount != 4 || !slices.Equal(idsOf(l.Data), newest[1:3]) {
					t.Errorf("total %d ids %v", l.TotalCount, idsOf(l.Data))
				}
			},
		},
		{
			name: "ListSessions by client", op: "GetSessionList", method: "GET", path: "/v1/sessions",
			call: func(ctx context.Context, c *clerkapi.Client) (any, error) {
				return c.ListSessions(ctx, clerkapi.ListParams{ClientID: clientOf(s[1])})
			},
			check: func(t *testing.T, got any) {
				if l := got.(*clerkapi.SessionList); !slices.Equal(idsOf(l.Data), []string{s[1]}) {
					t.Errorf("ids %v", idsOf(l.Data))
				}
			},
		},
		{
			name: "CreateSession", op: "createSession", method: "POST", path: "/v1/sessions",
			call: func(ctx context.Context, c *clerkapi.Client) (any, error) {
				return c.CreateSession(ctx, clerkapi.CreateParams{UserID: f.user, ActiveOrganizationID: "org_2abc"})
			},
			check: func(t *testing.T, got any) {
				x := got.(*clerkapi.Session)
				if x.UserID != f.user || x.Status != clerkapi.StatusActive || x.LastActiveOrganizationID == nil || *x.LastActiveOrganizationID != "org_2abc" {
					t.Errorf("created %+v", x)
				}
			},
		},
		{
			name: "GetSession", op: "GetSession", method: "GET", path: "/v1/sessions/" + s[0],
			call: func(ctx context.Context, c *clerkapi.Client) (any, error) { return c.GetSession(ctx, s[0]) },
			check: func(t *testing.T, got any) {
				x := got.(*clerkapi.Session)
				if x.ID != s[0] || x.Object != "session" || x.UserID != f.user || x.LatestActivity == nil || x.CreatedAt == 0 {
					t.Errorf("session %+v", x)
				}
			},
		},
		{
			name: "RefreshSession token", op: "RefreshSession", method: "POST", path: "/v1/sessions/" + s[0] + "/refresh",
			call: func(ctx context.Context, c *clerkapi.Client) (any, error) {
				return c.RefreshSession(ctx, s[0], clerkapi.RefreshParams{
					ExpiredToken: f.e.emu.SessionToken(s[0], -time.Minute), RefreshToken: f.e.emu.RefreshToken(s[0]),
					RequestOrigin: "https://app.example.com", RequestHeaders: map[string]any{"User-Agent": "test"},
					RequestOriginatingIP: "192.0.2.1",
				})
			},
			check: func(t *testing.T, got any) {
				r := got.(*clerkapi.RefreshResult)
				if r.Token == nil || r.Cookies != nil {
					t.Fatalf("result %+v", r)
				}
				if c := f.claims(t, r.Token.JWT); c["sid"] != s[0] || c["azp"] != "https://app.example.com" {
					t.Errorf("claims %v", c)
				}
			},
		},
		{
			name: "RefreshSession cookie", op: "RefreshSession", method: "POST", path: "/v1/sessions/" + s[1] + "/refresh",
			call: func(ctx context.Context, c *clerkapi.Client) (any, error) {
				return c.RefreshSession(ctx, s[1], clerkapi.RefreshParams{
					ExpiredToken: f.e.emu.SessionToken(s[1], -time.Hour), RefreshToken: f.e.emu.RefreshToken(s[1]),
					RequestOrigin: "https://app.example.com", Format: clerkapi.FormatCookie,
				})
			},
			check: func(t *testing.T, got any) {
				r := got.(*clerkapi.RefreshResult)
				if r.Cookies == nil || r.Token != nil || len(r.Cookies.Cookies) == 0 || !strings.HasPrefix(r.Cookies.Cookies[0], "__session=ey") {
					t.Errorf("result %+v", r)
				}
			},
		},
		{
			name: "CreateSessionToken", op: "CreateSessionToken", method: "POST", path: "/v1/sessions/" + s[0] + "/tokens",
			call: func(ctx context.Context, c *clerkapi.Client) (any, error) {
				return c.CreateSessionToken(ctx, s[0], clerkapi.TokenParams{})
			},
			check: func(t *testing.T, got any) {
				tok := got.(*clerkapi.Token)
				c := f.claims(t, tok.JWT)
				if tok.Object != "token" || c["sid"] != s[0] || c["sub"] != f.user || c["exp"].(float64)-c["iat"].(float64) != 60 {
					t.Errorf("token %v", c)
				}
			},
		},
		{
			name: "CreateSessionToken with lifetime", op: "CreateSessionToken", method: "POST", path: "/v1/sessions/" + s[0] + "/tokens",
			call: func(ctx context.Context, c *clerkapi.Client) (any, error) {
				return c.CreateSessionToken(ctx, s[0], clerkapi.TokenParams{ExpiresInSeconds: 900})
			},
			check: func(t *testing.T, got any) {
				if c := f.claims(t, got.(*clerkapi.Token).JWT); c["exp"].(float64)-c["iat"].(float64) != 900 {
					t.Errorf("lifetime %v", c["exp"].(float64)-c["iat"].(float64))
				}
			},
		},
		{
			name: "CreateSessionTokenFromTemplate", op: "CreateSessionTokenFromTemplate", method: "POST", path: "/v1/sessions/" + s[0] + "/tokens/worker",
			call: func(ctx context.Context, c *clerkapi.Client) (any, error) {
				return c.CreateSessionTokenFromTemplate(ctx, s[0], "worker", clerkapi.TokenParams{ExpiresInSeconds: 30})
			},
			check: func(t *testing.T, got any) {
				c := f.claims(t, got.(*clerkapi.Token).JWT)
				if c["aud"] != "jobs" || c["uid"] != f.user || c["exp"].(float64)-c["iat"].(float64) != 30 {
					t.Errorf("template token %v", c)
				}
			},
		},
		{
			name: "RevokeSession", op: "RevokeSession", method: "POST", path: "/v1/sessions/" + s[2] + "/revoke",
			call: func(ctx context.Context, c *clerkapi.Client) (any, error) { return c.RevokeSession(ctx, s[2]) },
			check: func(t *testing.T, got any) {
				if x := got.(*clerkapi.Session); x.ID != s[2] || x.Status != clerkapi.StatusRevoked {
					t.Errorf("revoked %+v", x)
				}
				if n := f.e.emu.RevokeCount(s[2]); n != 1 {
					t.Errorf("RevokeCount %d", n)
				}
			},
		},
		{
			name: "RevokeSession again is idempotent", op: "RevokeSession", method: "POST", path: "/v1/sessions/" + s[2] + "/revoke",
			call: func(ctx context.Context, c *clerkapi.Client) (any, error) { return c.RevokeSession(ctx, s[2]) },
			check: func(t *testing.T, got any) {
				if x := got.(*clerkapi.Session); x.Status != clerkapi.StatusRevoked || f.e.emu.RevokeCount(s[2]) != 2 {
					t.Errorf("second revoke %+v count %d", x, f.e.emu.RevokeCount(s[2]))
				}
			},
		},
		{
			// Every session was active when the filtered listing above ran,
			// so only a status that leaves some out shows the filter is sent.
			name: "ListSessions of one status", op: "GetSessionList", method: "GET", path: "/v1/sessions",
			call: func(ctx context.Context, c *clerkapi.Client) (any, error) {
				return c.ListSessions(ctx, clerkapi.ListParams{UserID: f.user, Status: clerkapi.StatusRevoked, Paginated: true})
			},
			check: func(t *testing.T, got any) {
				if l := got.(*clerkapi.SessionList); l.TotalCount != 1 || !slices.Equal(idsOf(l.Data), []string{s[2]}) {
					t.Errorf("total %d ids %v, want the one revoked, %s", l.TotalCount, idsOf(l.Data), s[2])
				}
			},
		},
		{
			name: "LockUser", op: "LockUser", method: "POST", path: "/v1/users/" + f.user + "/lock",
			call: func(ctx context.Context, c *clerkapi.Client) (any, error) { return c.LockUser(ctx, f.user) },
			check: func(t *testing.T, got any) {
				u := got.(*clerkapi.User)
				if u.ID != f.user || u.Object != "user" || !u.Locked || u.LockoutExpiresInSeconds == nil || *u.LockoutExpiresInSeconds != 3600 || u.CreatedAt == 0 {
					t.Errorf("locked %+v", u)
				}
				if _, locked := f.e.emu.LockedUntil(f.user); !locked {
					t.Error("the emulator does not hold the lock")
				}
			},
		},
		{
			name: "UnlockUser", op: "UnlockUser", method: "POST", path: "/v1/users/" + f.user + "/unlock",
			call: func(ctx context.Context, c *clerkapi.Client) (any, error) { return c.UnlockUser(ctx, f.user) },
			check: func(t *testing.T, got any) {
				if u := got.(*clerkapi.User); u.ID != f.user || u.Locked || u.LockoutExpiresInSeconds != nil {
					t.Errorf("unlocked %+v", u)
				}
				if _, locked := f.e.emu.LockedUntil(f.user); locked {
					t.Error("the emulator still holds the lock")
				}
			},
		},
	}
}

func idsOf(ss []clerkapi.Session) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.ID
	}
	return out
}

// runOps runs every operation in order against one fixture and checks both
// the answer and what the emulator logged.
func runOps(t *testing.T, spec *spectest.Spec) {
	f := newFixture(t, spec)
	ctx := context.Background()
	for _, tc := range f.cases() {
		t.Run(tc.name, func(t *testing.T) {
			f.e.emu.ResetCalls()
			got, err := tc.call(ctx, f.e.c)
			if err != nil {
				t.Fatalf("error: %v", err)
			}
			tc.check(t, got)
			calls := f.e.emu.Calls()
			if len(calls) != 1 {
				t.Fatalf("%d calls logged, want 1: %+v", len(calls), calls)
			}
			if c := calls[0]; c.Op != tc.op || c.Method != tc.method || c.Path != tc.path || c.Status != 200 {
				t.Errorf("logged %+v, want %s %s %s 200", c, tc.op, tc.method, tc.path)
			}
		})
	}
}

// TestOperations runs every client operation against the emulator over
// real HTTP.
func TestOperations(t *testing.T) {
	runOps(t, spectest.Optional(t))
}

// TestSpecConformance is TestOperations with the OpenAPI description
// required: it skips when the file is missing (fails in CI), so a green run
// with this test passing means every request the client sent and every
// answer it got matched the description.
func TestSpecConformance(t *testing.T) {
	runOps(t, spectest.Load(t))
}

func TestNewOptions(t *testing.T) {
	tests := []struct {
		name string
		opts []clerkapi.Option
		ok   bool
	}{
		{"minimal", []clerkapi.Option{clerkapi.WithSecretKey(testSecret)}, true},
		{"no key", nil, false},
		{"blank key", []clerkapi.Option{clerkapi.WithSecretKey("   ")}, false},
		{"relative base URL", []clerkapi.Option{clerkapi.WithSecretKey(testSecret), clerkapi.WithBaseURL("/v1")}, false},
		{"ftp base URL", []clerkapi.Option{clerkapi.WithSecretKey(testSecret), clerkapi.WithBaseURL("ftp://x/v1")}, false},
		// Clerk answers 404 outside /v1, as for a missing session: every
		// job would be dead-lettered as permanent.
		{"base URL without /v1", []clerkapi.Option{clerkapi.WithSecretKey(testSecret), clerkapi.WithBaseURL("http://127.0.0.1:8090")}, false},
		{"base URL of a proxy, ending in /v1", []clerkapi.Option{clerkapi.WithSecretKey(testSecret), clerkapi.WithBaseURL("https://proxy.internal/clerk/v1/")}, true},
		{"nil http client", []clerkapi.Option{clerkapi.WithSecretKey(testSecret), clerkapi.WithHTTPClient(nil)}, false},
		{"bad API version", []clerkapi.Option{clerkapi.WithSecretKey(testSecret), clerkapi.WithAPIVersion("latest")}, false},
		{"API version", []clerkapi.Option{clerkapi.WithSecretKey(testSecret), clerkapi.WithAPIVersion("2025-04-10")}, true},
		// A production key goes over the network only with TLS.
		{"live key over http", []clerkapi.Option{clerkapi.WithSecretKey(liveSecret), clerkapi.WithBaseURL("http://clerk-emulator:8090/v1")}, false},
		{"live key over http to an IP", []clerkapi.Option{clerkapi.WithSecretKey(liveSecret), clerkapi.WithBaseURL("http://10.0.0.7/v1")}, false},
		{"live key over http to this machine", []clerkapi.Option{clerkapi.WithSecretKey(liveSecret), clerkapi.WithBaseURL("http://127.0.0.1:8443/v1")}, true},
		{"live key over http to localhost", []clerkapi.Option{clerkapi.WithSecretKey(liveSecret), clerkapi.WithBaseURL("http://localhost:8443/v1")}, true},
		{"live key over http to ::1", []clerkapi.Option{clerkapi.WithSecretKey(liveSecret), clerkapi.WithBaseURL("http://[::1]:8443/v1")}, true},
		{"live key over https", []clerkapi.Option{clerkapi.WithSecretKey(liveSecret), clerkapi.WithBaseURL("https://proxy.internal/v1")}, true},
		{"test key over http", []clerkapi.Option{clerkapi.WithSecretKey(testSecret), clerkapi.WithBaseURL("http://clerk-emulator:8090/v1")}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := clerkapi.New(tc.opts...)
			if (err == nil) != tc.ok || (c != nil) != tc.ok {
				t.Errorf("New: %v %v", c, err)
			}
			if err != nil {
				noSecret(t, "New error", err.Error())
			}
		})
	}
}

func TestHeadersSent(t *testing.T) {
	e := newEnv(t)
	id := e.emu.CreateSessions("user_a", 1)[0]
	// The emulator rejects unknown versions, so a 200 proves the header
	// arrived; a bogus one proves it is not ignored.
	for _, tc := range []struct {
		version string
		ok      bool
	}{{"2025-04-10", true}, {"2026-05-12", true}, {"2001-01-01", false}} {
		c := e.client(clerkapi.WithAPIVersion(tc.version), clerkapi.WithUserAgent("tests/1"))
		_, err := c.GetSession(context.Background(), id)
		if (err == nil) != tc.ok {
			t.Errorf("version %s: %v", tc.version, err)
		}
	}
}
