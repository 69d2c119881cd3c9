package emulator_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
)

func TestErrorRate(t *testing.T) {
	h := start(t, emulator.WithFaults(emulator.Faults{ErrorRate: 1}), emulator.WithSeed(1))
	id := h.emu.CreateSessions("user_a", 1)[0]
	seen := map[int]bool{}
	codes := map[int]string{500: "internal_clerk_error", 502: "bad_gateway", 503: "service_unavailable"}
	for range 60 {
		a := h.do("POST", "/v1/sessions/"+id+"/revoke", "")
		want, ok := codes[a.status]
		if !ok {
			t.Fatalf("status %d, want 500, 502 or 503", a.status)
		}
		if a.code(t) != want {
			t.Errorf("status %d code %s, want %s", a.status, a.code(t), want)
		}
		seen[a.status] = true
	}
	if len(seen) != 3 {
		t.Errorf("statuses seen %v, want all of 500, 502, 503", seen)
	}
	if s, _ := h.emu.Session(id); s.Status != clerkapi.StatusActive || h.emu.RevokeCount(id) != 0 {
		t.Error("a faulted revoke was handled")
	}
	for _, c := range h.emu.Calls() {
		if c.Fault != "error" || c.Op != emulator.OpRevokeSession || c.SessionID != id {
			t.Fatalf("call %+v", c)
		}
	}
	// Unauthenticated calls are rejected before faults.
	if a := h.do("GET", "/v1/jwks", "", hdr{"Authorization", "Bearer wrong"}); a.status != 401 {
		t.Errorf("bad key under ErrorRate 1: %d", a.status)
	}
}

func TestErrorRateFraction(t *testing.T) {
	h := start(t, emulator.WithFaults(emulator.Faults{ErrorRate: 0.3}), emulator.WithSeed(42))
	user := h.emu.CreateUser()
	failed := 0
	const n = 400
	for range n {
		if h.do("GET", "/v1/sessions?user_id="+user, "").status >= 500 {
			failed++
		}
	}
	if got := float64(failed) / n; math.Abs(got-0.3) > 0.08 {
		t.Errorf("%d of %d failed (%.2f), want about 0.3", failed, n, got)
	}
}

func TestSeedIsDeterministic(t *testing.T) {
	run := func() []string {
		h := start(t, emulator.WithSeed(7), emulator.WithFaults(emulator.Faults{ErrorRate: 0.5}))
		user := h.emu.CreateUser()
		out := append([]string{user}, h.emu.CreateSessions(user, 3)...)
		for range 20 {
			a := h.do("GET", "/v1/sessions/"+out[1], "")
			out = append(out, http.StatusText(a.status))
		}
		return out
	}
	a, b := run(), run()
	if !slices.Equal(a, b) {
		t.Errorf("same seed, different runs:\n%v\n%v", a, b)
	}
	if !slices.Contains(a, "OK") || !slices.ContainsFunc(a, func(s string) bool {
		return strings.Contains(s, "Service") || strings.Contains(s, "Internal") || strings.Contains(s, "Gateway")
	}) {
		t.Errorf("ErrorRate 0.5 gave no mix: %v", a)
	}
}

func TestDropRate(t *testing.T) {
	h := start(t, emulator.WithFaults(emulator.Faults{DropRate: 1}))
	id := h.emu.CreateSessions("user_a", 1)[0]
	_, err := h.try("POST", "/v1/sessions/"+id+"/revoke", "")
	if err == nil {
		t.Fatal("dropped connection gave an answer")
	}
	if s, _ := h.emu.Session(id); s.Status != clerkapi.StatusActive {
		t.Error("a dropped revoke was handled")
	}
	calls := h.emu.Calls()
	if len(calls) == 0 || calls[0].Status != 0 || calls[0].Fault != "drop" {
		t.Errorf("calls %+v", calls)
	}
	h.emu.SetFaults(emulator.Faults{})
	if a := h.do("GET", "/v1/sessions/"+id, ""); a.status != 200 {
		t.Errorf("after clearing faults: %d", a.status)
	}
}

func TestDropAfterRate(t *testing.T) {
	h := start(t, emulator.WithFaults(emulator.Faults{DropAfterRate: 1}))
	id := h.emu.CreateSessions("user_a", 1)[0]
	if _, err := h.try("POST", "/v1/sessions/"+id+"/revoke", ""); err == nil {
		t.Fatal("lost answer arrived")
	}
	if s, _ := h.emu.Session(id); s.Status != clerkapi.StatusRevoked {
		t.Error("the revoke whose answer was lost did not happen")
	}
	if n := h.emu.RevokeCount(id); n != 1 {
		t.Errorf("RevokeCount %d, want 1", n)
	}
	calls := h.emu.Calls()
	if len(calls) != 1 || calls[0].Status != 200 || calls[0].Fault != "drop_after" {
		t.Errorf("calls %+v", calls)
	}
}

func TestLatency(t *testing.T) {
	h := start(t, emulator.WithLatency(150*time.Millisecond, 50*time.Millisecond))
	user := h.emu.CreateUser()
	begin := time.Now()
	if a := h.do("GET", "/v1/sessions?user_id="+user, ""); a.status != 200 {
		t.Fatal(a.status)
	}
	if d := time.Since(begin); d < 150*time.Millisecond {
		t.Errorf("answered in %v, want at least 150ms", d)
	}
	if c := h.emu.Calls()[0]; c.Duration < 150*time.Millisecond || c.Duration >= 5*time.Second {
		t.Errorf("logged duration %v", c.Duration)
	}
	if f := h.emu.Faults(); f.Latency != 150*time.Millisecond || f.Jitter != 50*time.Millisecond {
		t.Errorf("Faults() %+v", f)
	}
}

func TestLatencyClientGivesUp(t *testing.T) {
	h := start(t, emulator.WithLatency(10*time.Second, 0))
	user := h.emu.CreateUser()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", h.srv.URL+"/sessions?user_id="+user, nil)
	req.Header.Set("Authorization", "Bearer "+emulator.DefaultSecretKey)
	_, err := h.hc.Do(req)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want deadline exceeded", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if calls := h.emu.Calls(); len(calls) == 1 {
			if calls[0].Status != emulator.StatusClientClosedRequest || calls[0].Fault != "canceled" {
				t.Errorf("call %+v", calls[0])
			}
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Error("the abandoned call was not logged")
}

func TestRejectKey(t *testing.T) {
	h := start(t, emulator.WithFaults(emulator.Faults{RejectKey: true}))
	id := h.emu.CreateSessions("user_a", 1)[0]
	for _, p := range []string{"/v1/jwks", "/v1/sessions/" + id} {
		if a := h.do("GET", p, ""); a.status != 401 || a.code(t) != "clerk_key_invalid" {
			t.Errorf("%s: %d %s", p, a.status, a.body)
		}
	}
	if c := h.emu.Calls()[0]; c.Fault != "reject_key" || c.Status != 401 {
		t.Errorf("call %+v", c)
	}
}

func TestRateLimit(t *testing.T) {
	clock := newFakeClock()
	h := start(t, emulator.WithClock(clock.Now), emulator.WithRateLimit(2, 10*time.Second),
		emulator.WithSecretKeys("sk_test_a", "sk_test_b"))
	keyA, keyB := hdr{"Authorization", "Bearer sk_test_a"}, hdr{"Authorization", "Bearer sk_test_b"}
	get := func(k hdr) answer { return h.do("GET", "/v1/jwks", "", k) }
	steps := []struct {
		name       string
		advance    time.Duration
		key        hdr
		status     int
		retryAfter string
	}{
		{"first", 0, keyA, 200, ""},
		{"second", time.Second, keyA, 200, ""},
		{"third is limited: 9 s left", 0, keyA, 429, "9"},
		{"other key has its own window", 0, keyB, 200, ""},
		{"rounds up", 2500 * time.Millisecond, keyA, 429, "7"},
		{"at least 1", 6499 * time.Millisecond, keyA, 429, "1"},
		{"window over", time.Millisecond, keyA, 200, ""},
		{"new window counts again", 0, keyA, 200, ""},
		{"and limits again", 0, keyA, 429, "10"},
	}
	for _, s := range steps {
		clock.Add(s.advance)
		a := get(s.key)
		if a.status != s.status || a.header.Get("Retry-After") != s.retryAfter {
			t.Fatalf("%s: %d Retry-After %q, want %d %q", s.name, a.status, a.header.Get("Retry-After"), s.status, s.retryAfter)
		}
		if s.status == 429 && a.code(t) != "too_many_requests" {
			t.Errorf("%s: code %s", s.name, a.code(t))
		}
	}
	// Failed authentication does not use up the window.
	for range 5 {
		if a := h.do("GET", "/v1/jwks", "", hdr{"Authorization", "Bearer sk_test_wrong"}); a.status != 401 {
			t.Fatalf("bad key: %d", a.status)
		}
	}
	if n, w := h.emu.RateLimit(); n != 2 || w != 10*time.Second {
		t.Errorf("RateLimit() %d %v", n, w)
	}
	h.emu.SetRateLimit(0, 0)
	for range 5 {
		if a := get(keyA); a.status != 200 {
			t.Fatalf("limit disabled, still %d", a.status)
		}
	}
	if n, _ := h.emu.RateLimit(); n != 0 {
		t.Errorf("RateLimit() %d after disabling", n)
	}
	var limited int
	for _, c := range h.emu.Calls() {
		if c.Fault == "rate_limit" {
			limited++
			if c.Status != 429 {
				t.Errorf("call %+v", c)
			}
		}
	}
	if limited != 4 {
		t.Errorf("%d rate-limited calls logged, want 4", limited)
	}
}

func TestRateLimitSlidingWindow(t *testing.T) {
	clock := newFakeClock()
	h := start(t, emulator.WithClock(clock.Now), emulator.WithRateLimit(3, 10*time.Second),
		emulator.WithRateLimitMode(emulator.SlidingWindow))
	if m := h.emu.RateLimitMode(); m != emulator.SlidingWindow {
		t.Fatalf("RateLimitMode() %q", m)
	}
	get := func() answer { return h.do("GET", "/v1/jwks", "") }
	// Calls at 0 s, 4 s and 8 s fill the window; each one leaves it exactly
	// 10 s after it was accepted, not when a fixed window would end.
	steps := []struct {
		name       string
		advance    time.Duration
		status     int
		retryAfter string
	}{
		{"at 0s", 0, 200, ""},
		{"at 4s", 4 * time.Second, 200, ""},
		{"at 8s", 4 * time.Second, 200, ""},
		{"at 9s: full until the 0s call leaves at 10s", time.Second, 429, "1"},
		{"at 9.999s: still full", 999 * time.Millisecond, 429, "1"},
		{"at 10s: the 0s call left", time.Millisecond, 200, ""},
		{"at 10s again: full until the 4s call leaves at 14s", 0, 429, "4"},
		{"at 13.5s: rounds up", 3500 * time.Millisecond, 429, "1"},
		{"at 14s", 500 * time.Millisecond, 200, ""},
		{"at 30s: all left", 16 * time.Second, 200, ""},
		{"at 30s: second", 0, 200, ""},
		{"at 30s: third", 0, 200, ""},
		{"at 30s: fourth is limited for a whole window", 0, 429, "10"},
	}
	for _, s := range steps {
		clock.Add(s.advance)
		a := get()
		if a.status != s.status || a.header.Get("Retry-After") != s.retryAfter {
			t.Fatalf("%s: %d Retry-After %q, want %d %q", s.name, a.status, a.header.Get("Retry-After"), s.status, s.retryAfter)
		}
	}
}

// TestRateLimitModes runs the same pattern through both modes: one call
// opens a window, n-1 calls come just before it ends and n just after. A
// fixed window accepts all 2n, 2n-1 of them within one second; a sliding
// window accepts one more call after the end (the opening call has left),
// so no interval of the window's length holds more than n.
func TestRateLimitModes(t *testing.T) {
	const n = 5
	for _, tc := range []struct {
		mode     emulator.RateLimitMode
		accepted int
	}{
		{emulator.FixedWindow, 2 * n},
		{emulator.SlidingWindow, n + 1},
	} {
		t.Run(string(tc.mode), func(t *testing.T) {
			clock := newFakeClock()
			h := start(t, emulator.WithClock(clock.Now), emulator.WithRateLimit(n, 10*time.Second),
				emulator.WithRateLimitMode(tc.mode))
			accepted := 0
			burst := func(calls int) {
				for range calls {
					if h.do("GET", "/v1/jwks", "").status == 200 {
						accepted++
					}
				}
			}
			burst(1)
			clock.Add(9500 * time.Millisecond)
			burst(n - 1)
			clock.Add(time.Second) // 10.5 s: the fixed window ended at 10 s
			burst(n)
			if accepted != tc.accepted {
				t.Errorf("%d calls accepted, want %d", accepted, tc.accepted)
			}
		})
	}
}

func TestFailSession(t *testing.T) {
	h := start(t, emulator.WithTemplate("t", nil, 0))
	user := h.emu.CreateUser()
	ids := h.emu.CreateSessions(user, 2)
	bad, good := ids[0], ids[1]
	calls := []struct{ method, path, body string }{
		{"GET", "/v1/sessions/" + bad, ""},
		{"POST", "/v1/sessions/" + bad + "/revoke", ""},
		{"POST", "/v1/sessions/" + bad + "/tokens", ""},
		{"POST", "/v1/sessions/" + bad + "/tokens/t", ""},
		{"POST", "/v1/sessions/" + bad + "/refresh", `{"expired_token":"a","refresh_token":"b","request_origin":"c"}`},
	}
	for _, tc := range []struct {
		status int
		code   string
	}{
		{400, "malformed_request_parameters"}, {401, "authentication_invalid"}, {403, "authorization_invalid"},
		{404, "resource_not_found"}, {409, "resource_locked"}, {422, "form_param_value_invalid"},
		{429, "too_many_requests"}, {500, "internal_clerk_error"}, {502, "bad_gateway"},
		{503, "service_unavailable"}, {504, "gateway_timeout"}, {418, "emulated_failure"},
	} {
		h.emu.FailSession(bad, tc.status)
		for _, c := range calls {
			hh := h
			if strings.HasSuffix(c.path, "/refresh") {
				// Forced statuses RefreshSession never answers (it answers
				// 400 and 401 only): the spec check rightly flags them.
				hh = h.unchecked()
			}
			a := hh.do(c.method, c.path, c.body)
			if a.status != tc.status || a.code(t) != tc.code {
				t.Errorf("%d: %s %s: %d %s", tc.status, c.method, c.path, a.status, a.code(t))
			}
			if ra := a.header.Get("Retry-After"); (tc.status == 429 || tc.status == 503) != (ra == "1") {
				t.Errorf("%d: Retry-After %q", tc.status, ra)
			}
		}
	}
	if a := h.do("GET", "/v1/sessions/"+good, ""); a.status != 200 {
		t.Errorf("other session: %d", a.status)
	}
	if a := h.do("GET", "/v1/sessions?user_id="+user, ""); a.status != 200 || len(decodeSessions(t, a.body)) != 2 {
		t.Errorf("list is not a call about one session: %d", a.status)
	}
	if s, _ := h.emu.Session(bad); s.Status != clerkapi.StatusActive {
		t.Error("a failed revoke was handled")
	}
	h.emu.FailSession(bad, 0)
	if a := h.do("POST", "/v1/sessions/"+bad+"/revoke", ""); a.status != 200 {
		t.Errorf("after clearing: %d", a.status)
	}
	h.emu.FailSession("sess_does_not_exist", 503)
	if a := h.do("GET", "/v1/sessions/sess_does_not_exist", ""); a.status != 503 {
		t.Errorf("failure for an unknown session: %d", a.status)
	}
}

func TestCallLog(t *testing.T) {
	h := start(t)
	id := h.emu.CreateSessions("user_a", 1)[0]
	h.do("GET", "/v1/sessions/"+id, "")
	h.do("POST", "/v1/sessions/"+id+"/revoke", "")
	h.do("GET", "/v1/sessions/sess_nope", "")
	h.do("GET", "/v1/jwks", "", hdr{"Authorization", ""})
	h.do("GET", "/v1/nowhere", "")
	h.do("GET", "/_emulator/health", "") // not logged
	want := []emulator.Call{
		{Method: "GET", Path: "/v1/sessions/" + id, Status: 200, Op: emulator.OpGetSession, SessionID: id},
		{Method: "POST", Path: "/v1/sessions/" + id + "/revoke", Status: 200, Op: emulator.OpRevokeSession, SessionID: id},
		{Method: "GET", Path: "/v1/sessions/sess_nope", Status: 404, Op: emulator.OpGetSession, SessionID: "sess_nope"},
		{Method: "GET", Path: "/v1/jwks", Status: 401, Op: emulator.OpGetJWKS},
		{Method: "GET", Path: "/v1/nowhere", Status: 404},
	}
	got := h.emu.Calls()
	if len(got) != len(want) {
		t.Fatalf("%d calls, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		g := got[i]
		if g.Time.IsZero() || g.Duration <= 0 {
			t.Errorf("call %d lacks time or duration: %+v", i, g)
		}
		g.Time, g.Duration = time.Time{}, 0
		if g != want[i] {
			t.Errorf("call %d = %+v\nwant %+v", i, g, want[i])
		}
	}
	h.emu.ResetCalls()
	if n := len(h.emu.Calls()); n != 0 {
		t.Errorf("%d calls after ResetCalls", n)
	}
	if h.emu.RevokeCount(id) != 1 {
		t.Error("ResetCalls reset RevokeCount")
	}
}

func TestCallLogLimit(t *testing.T) {
	h := start(t, emulator.WithCallLogLimit(3))
	for _, p := range []string{"/v1/a", "/v1/b", "/v1/c", "/v1/d", "/v1/e"} {
		h.do("GET", p, "")
	}
	var paths []string
	for _, c := range h.emu.Calls() {
		paths = append(paths, c.Path)
	}
	if !slices.Equal(paths, []string{"/v1/c", "/v1/d", "/v1/e"}) {
		t.Errorf("kept %v, want the newest 3 oldest first", paths)
	}
}

// TestGatewayErrorRate: a gateway in front of Clerk passed the call on
// (it was handled) and answered 502 or 504 with its own page, which is not
// Clerk's errors body, over the control API too.
func TestGatewayErrorRate(t *testing.T) {
	h := start(t, emulator.WithSeed(3))
	id := h.emu.CreateSessions("user_a", 1)[0]
	if a := h.do("PUT", "/_emulator/faults", `{"gateway_error_rate":1}`); a.status != 200 || a.json(t)["gateway_error_rate"] != 1.0 {
		t.Fatalf("PUT faults: %d %s", a.status, a.body)
	}
	seen := map[int]bool{}
	for range 40 {
		a := h.do("POST", "/v1/sessions/"+id+"/revoke", "")
		if a.status != 502 && a.status != 504 {
			t.Fatalf("status %d, want 502 or 504", a.status)
		}
		seen[a.status] = true
		body := string(a.body)
		if ct := a.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") || a.header.Get("Via") != emulator.GatewayVia ||
			!strings.Contains(body, "<html>") || !strings.Contains(body, "POST /v1/sessions/"+id+"/revoke") {
			t.Fatalf("answer %q (Content-Type %q, Via %q), want the gateway's page echoing the request", body, ct, a.header.Get("Via"))
		}
		if a.header.Get("Clerk-Trace-Id") != "" || json.Valid(a.body) {
			t.Fatalf("the gateway's answer looks like Clerk's: %q", body)
		}
	}
	if len(seen) != 2 {
		t.Errorf("statuses seen %v, want both 502 and 504", seen)
	}
	if s, _ := h.emu.Session(id); s.Status != clerkapi.StatusRevoked || h.emu.RevokeCount(id) != 40 {
		t.Errorf("status %s, RevokeCount %d: want every revoke handled", s.Status, h.emu.RevokeCount(id))
	}
	for _, c := range h.emu.Calls() {
		if c.Fault != "gateway" || (c.Status != 502 && c.Status != 504) {
			t.Fatalf("call %+v", c)
		}
	}
}

func TestFaultsValidateAndJSON(t *testing.T) {
	tests := []struct {
		f  emulator.Faults
		ok bool
	}{
		{emulator.Faults{}, true},
		{emulator.Faults{ErrorRate: 1, GatewayErrorRate: 0.2, DropRate: 0.5, DropAfterRate: 0.1, Latency: time.Second, Jitter: time.Millisecond, RejectKey: true}, true},
		{emulator.Faults{GatewayErrorRate: 1.5}, false},
		{emulator.Faults{ErrorRate: 1.1}, false},
		{emulator.Faults{DropRate: -0.1}, false},
		{emulator.Faults{DropAfterRate: math.NaN()}, false},
		{emulator.Faults{Latency: -time.Second}, false},
		{emulator.Faults{Jitter: -1}, false},
	}
	for _, tc := range tests {
		if err := tc.f.Validate(); (err == nil) != tc.ok {
			t.Errorf("Validate(%+v) = %v", tc.f, err)
		}
	}
	f := tests[1].f
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"latency":"1s"`) || !strings.Contains(string(b), `"jitter":"1ms"`) {
		t.Errorf("durations not strings: %s", b)
	}
	var back emulator.Faults
	if err := json.Unmarshal(b, &back); err != nil || back != f {
		t.Errorf("round trip: %+v %v", back, err)
	}
	for _, bad := range []string{`{"latency":"soon"}`, `{"error_rat":0.5}`, `{"latency":5}`, `[]`} {
		if err := json.Unmarshal([]byte(bad), &back); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	// SetFaults clamps what Validate rejects.
	e := emulator.New()
	e.SetFaults(emulator.Faults{ErrorRate: 7, GatewayErrorRate: 2, DropRate: -1, Latency: -time.Second})
	if got := e.Faults(); got.ErrorRate != 1 || got.GatewayErrorRate != 1 || got.DropRate != 0 || got.Latency != 0 {
		t.Errorf("clamped %+v", got)
	}
}

func TestServerCloseEndsLatency(t *testing.T) {
	srv := emulator.NewServer(emulator.WithLatency(time.Minute, 0))
	done := make(chan error, 1)
	go func() {
		req, _ := http.NewRequest("GET", srv.URL+"/jwks", nil)
		req.Header.Set("Authorization", "Bearer "+emulator.DefaultSecretKey)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		done <- err
	}()
	time.Sleep(100 * time.Millisecond)
	begin := time.Now()
	srv.Close()
	if d := time.Since(begin); d > 3*time.Second {
		t.Errorf("Close took %v", d)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("request still pending after Close")
	}
	srv.Close() // twice is fine
}
