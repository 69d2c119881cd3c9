package emulator_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
)

// TestConcurrentClients hammers one emulator from many goroutines through
// the typed client (run with -race) and checks that the state adds up.
func TestConcurrentClients(t *testing.T) {
	srv := emulator.NewServer(emulator.WithSigningKey(testKey()))
	defer srv.Close()
	e := srv.Emulator
	c, err := clerkapi.New(clerkapi.WithBaseURL(srv.URL), clerkapi.WithSecretKey(emulator.DefaultSecretKey))
	if err != nil {
		t.Fatal(err)
	}
	users := e.Seed(8, 25)
	var sessions []string
	for _, u := range users {
		sessions = append(sessions, e.UserSessionIDs(u)...)
	}
	ctx := context.Background()
	var revokes200 atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 1000)
	for w := range 16 {
		wg.Go(func() {
			for i := w % 8; i < len(sessions); i += 8 { // every session twice, by two workers
				id := sessions[i]
				if _, err := c.RevokeSession(ctx, id); err != nil {
					errs <- fmt.Errorf("revoke %s: %w", id, err)
					continue
				}
				revokes200.Add(1)
				if _, err := c.GetSession(ctx, id); err != nil {
					errs <- err
				}
				if _, err := c.ListSessions(ctx, clerkapi.ListParams{UserID: users[i%len(users)], Paginated: true}); err != nil {
					errs <- err
				}
			}
			e.SetFaults(emulator.Faults{}) // concurrent control calls too
			e.CreateSessions(users[w%len(users)], 1)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	total := 0
	for _, id := range sessions {
		if s, _ := e.Session(id); s.Status != clerkapi.StatusRevoked {
			t.Errorf("%s is %s", id, s.Status)
		}
		total += e.RevokeCount(id)
	}
	if int64(total) != revokes200.Load() || total != 2*len(sessions) {
		t.Errorf("RevokeCount sum %d, 200 answers %d, want %d", total, revokes200.Load(), 2*len(sessions))
	}
	if got := len(e.Calls()); got != 3*2*len(sessions) {
		t.Errorf("%d calls logged, want %d", got, 3*2*len(sessions))
	}
	for _, u := range users {
		list, err := c.ListSessions(ctx, clerkapi.ListParams{UserID: u, Status: clerkapi.StatusRevoked, Paginated: true})
		if err != nil || list.TotalCount != 25 {
			t.Errorf("user %s: revoked total %v %v", u, list, err)
		}
	}
}

// TestLargeUser checks that a user with 10,000 sessions pages correctly and
// quickly.
func TestLargeUser(t *testing.T) {
	h := start(t)
	user := h.emu.CreateUser()
	begin := time.Now()
	ids := h.emu.CreateSessions(user, 10_000)
	if d := time.Since(begin); d > 5*time.Second {
		t.Errorf("creating 10,000 sessions took %v", d)
	}
	s0, _ := h.emu.Session(ids[0])
	s1, _ := h.emu.Session(ids[len(ids)-1])
	if now := time.Now().UnixMilli(); s1.CreatedAt > now+1 || s1.CreatedAt-s0.CreatedAt != 9_999 {
		t.Errorf("created_at span %d..%d (now %d): want strictly increasing and not in the future", s0.CreatedAt, s1.CreatedAt, now)
	}
	for i := 0; i < 10_000; i += 2500 {
		_ = h.emu.SetSessionStatus(ids[i], clerkapi.StatusEnded)
	}
	a := h.do("GET", "/v1/sessions?user_id="+user+"&limit=10&offset=9990&paginated=true", "")
	var page clerkapi.SessionList
	if err := json.Unmarshal(a.body, &page); err != nil || page.TotalCount != 10_000 || len(page.Data) != 10 {
		t.Fatalf("last page: %d total %d len %d", a.status, page.TotalCount, len(page.Data))
	}
	if page.Data[9].ID != ids[0] || page.Data[0].ID != ids[9] {
		t.Errorf("last page is not the 10 oldest, newest first")
	}
	a = h.do("GET", "/v1/sessions?user_id="+user+"&status=ended&paginated=true", "")
	_ = json.Unmarshal(a.body, &page)
	if page.TotalCount != 4 || len(page.Data) != 4 || page.Data[0].ID != ids[7500] {
		t.Errorf("ended: total %d, %v", page.TotalCount, ids4(page.Data))
	}
	a = h.do("GET", "/v1/sessions?user_id="+user+"&status=active&limit=500&paginated=true", "")
	_ = json.Unmarshal(a.body, &page)
	if page.TotalCount != 9_996 || len(page.Data) != 500 {
		t.Errorf("active: total %d len %d", page.TotalCount, len(page.Data))
	}
}

func ids4(ss []clerkapi.Session) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.ID)
	}
	return out
}

// TestLogsCarryNoSecrets runs calls with good and bad keys and faults
// through a debug logger and checks that no key, refresh token or JWT
// reaches the log or the formatted emulator.
func TestLogsCarryNoSecrets(t *testing.T) {
	const key = "sk_test_LogSecret0123456789abcdef"
	var buf safeBuffer
	srv := emulator.NewServer(emulator.WithSecretKeys(key), emulator.WithSigningKey(testKey()),
		emulator.WithLogger(zerolog.New(&buf).Level(zerolog.DebugLevel)))
	defer srv.Close()
	e := srv.Emulator
	id := e.CreateSessions("user_a", 1)[0]
	c, _ := clerkapi.New(clerkapi.WithBaseURL(srv.URL), clerkapi.WithSecretKey(key))
	bad, _ := clerkapi.New(clerkapi.WithBaseURL(srv.URL), clerkapi.WithSecretKey("sk_test_WrongSecret987"))
	ctx := context.Background()
	tok, err := c.CreateSessionToken(ctx, id, clerkapi.TokenParams{})
	if err != nil {
		t.Fatal(err)
	}
	_, _ = c.RefreshSession(ctx, id, clerkapi.RefreshParams{ExpiredToken: tok.JWT, RefreshToken: e.RefreshToken(id), RequestOrigin: "https://x"})
	_, _ = bad.GetSession(ctx, id)
	e.SetFaults(emulator.Faults{ErrorRate: 1})
	_, _ = c.RevokeSession(ctx, id)
	e.SetRateLimit(1, time.Minute)
	e.SetFaults(emulator.Faults{})
	_, _ = c.GetSession(ctx, id)
	_, _ = c.GetSession(ctx, id)
	out := buf.String()
	if !strings.Contains(out, `"op":"GetSession"`) || !strings.Contains(out, `"status":429`) {
		t.Fatalf("log lacks the calls:\n%s", out)
	}
	printed := out + fmt.Sprintf("%v %+v %#v %v %+v", e, e, e, srv, srv)
	for _, secret := range []string{key, "sk_test_WrongSecret987", "LogSecret", tok.JWT, e.RefreshToken(id)} {
		if strings.Contains(printed, secret) {
			t.Errorf("secret %.12s… appears in the log or formatted values", secret)
		}
	}
}

type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// The benchmarks call the handler directly (no network) to measure the
// emulator itself; BenchmarkHTTPParallel includes the HTTP stack.

func benchRequest(method, target string) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	r.Header.Set("Authorization", "Bearer "+emulator.DefaultSecretKey)
	r.Header.Set("Clerk-API-Version", "2026-05-12")
	return r
}

func BenchmarkGetSession(b *testing.B) {
	e := emulator.New()
	id := e.CreateSessions("user_a", 1)[0]
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			w := httptest.NewRecorder()
			e.ServeHTTP(w, benchRequest("GET", "/v1/sessions/"+id))
			if w.Code != 200 {
				b.Fatal(w.Code)
			}
		}
	})
}

func BenchmarkListLargeUser(b *testing.B) {
	e := emulator.New()
	user := e.CreateUser()
	e.CreateSessions(user, 10_000)
	for _, q := range []string{"limit=10", "limit=10&offset=9000&paginated=true", "status=active&limit=100&paginated=true"} {
		b.Run(q, func(b *testing.B) {
			for b.Loop() {
				w := httptest.NewRecorder()
				e.ServeHTTP(w, benchRequest("GET", "/v1/sessions?user_id="+user+"&"+q))
				if w.Code != 200 {
					b.Fatal(w.Code)
				}
			}
		})
	}
}

func BenchmarkRevoke(b *testing.B) {
	e := emulator.New(emulator.WithCallLogLimit(10_000))
	user := e.CreateUser()
	ids := e.CreateSessions(user, 10_000)
	var n atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := ids[int(n.Add(1))%len(ids)]
			w := httptest.NewRecorder()
			e.ServeHTTP(w, benchRequest("POST", "/v1/sessions/"+id+"/revoke"))
			if w.Code != 200 {
				b.Fatal(w.Code)
			}
		}
	})
}

func BenchmarkHTTPParallel(b *testing.B) {
	srv := emulator.NewServer(emulator.WithCallLogLimit(10_000))
	defer srv.Close()
	id := srv.Emulator.CreateSessions("user_a", 1)[0]
	c, _ := clerkapi.New(clerkapi.WithBaseURL(srv.URL), clerkapi.WithSecretKey(emulator.DefaultSecretKey),
		clerkapi.WithHTTPClient(&http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}))
	ctx := context.Background()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.GetSession(ctx, id); err != nil {
				b.Fatal(err)
			}
		}
	})
}
