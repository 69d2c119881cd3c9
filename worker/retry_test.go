package worker

import (
	"context"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/handlers"
	"github.com/clerkjobs/clerkjobs/internal/clock"
	"github.com/clerkjobs/clerkjobs/internal/ratebudget"
)

// fakeClock advances only when the code under test sleeps.
type fakeClock struct {
	now    time.Time
	sleeps []time.Duration
}

func (c *fakeClock) Now() time.Time { return c.now }

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.sleeps = append(c.sleeps, d)
	c.now = c.now.Add(d)
	return nil
}

// failing answers with errs in order, then succeeds.
func failing(errs ...error) (handlerFunc, *int) {
	calls := 0
	return func(ctx context.Context, j *job) (handlers.Answer, error) {
		calls++
		if calls <= len(errs) {
			return handlers.Answer{}, errs[calls-1]
		}
		return handlers.Answer{Result: []byte(`{}`)}, nil
	}, &calls
}

var (
	err503 = &clerkapi.Error{Op: "RevokeSession", StatusCode: 503}
	err404 = &clerkapi.Error{Op: "RevokeSession", StatusCode: 404, Errors: []clerkapi.ErrorDetail{{Code: "resource_not_found"}}}
	err401 = &clerkapi.Error{Op: "RevokeSession", StatusCode: 401, Errors: []clerkapi.ErrorDetail{{Code: "clerk_key_invalid"}}}
)

func policy() RetryPolicy {
	return RetryPolicy{Initial: 100 * time.Millisecond, Max: time.Second, Multiplier: 2, Jitter: 0,
		DeliveryBudget: 10 * time.Second, NakDelay: 5 * time.Second, NakDelayMax: 30 * time.Second}
}

func TestRetryBacksOffExponentiallyUpToMax(t *testing.T) {
	clk := &fakeClock{now: time.Unix(0, 0)}
	h, calls := failing(err503, err503, err503, err503, err503, err503)
	j := &job{}
	out, err := retry(policy(), clk, nil)(h)(context.Background(), j)
	if err != nil || out.Result == nil {
		t.Fatalf("got %v, want success after 6 retries", err)
	}
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i := range want {
		want[i] *= time.Millisecond
	}
	if len(clk.sleeps) != len(want) {
		t.Fatalf("sleeps %v, want %v", clk.sleeps, want)
	}
	for i := range want {
		if clk.sleeps[i] != want[i] {
			t.Errorf("sleep %d = %s, want %s", i, clk.sleeps[i], want[i])
		}
	}
	if *calls != 7 || j.Attempts != 7 || len(j.Failures) != 6 {
		t.Errorf("calls %d attempts %d failures %d; want 7, 7, 6", *calls, j.Attempts, len(j.Failures))
	}
}

func TestRetryStopsWhenTheDeliveryBudgetIsSpent(t *testing.T) {
	clk := &fakeClock{now: time.Unix(0, 0)}
	p := policy()
	p.DeliveryBudget = 2 * time.Second
	errs := make([]error, 100)
	for i := range errs {
		errs[i] = err503
	}
	h, calls := failing(errs...)
	_, err := retry(p, clk, nil)(h)(context.Background(), &job{})
	if !errors.Is(err, err503) {
		t.Fatalf("err = %v, want the 503 back once the budget is spent", err)
	}
	var slept time.Duration
	for _, s := range clk.sleeps {
		slept += s
	}
	if slept > p.DeliveryBudget+p.Max || *calls < 3 {
		t.Errorf("slept %s over %d calls; want about the %s budget", slept, *calls, p.DeliveryBudget)
	}
}

func TestRetryHonoursRetryAfter(t *testing.T) {
	clk := &fakeClock{now: time.Unix(0, 0)}
	limited := &clerkapi.Error{Op: "RevokeSession", StatusCode: 429, RetryAfter: 3 * time.Second}
	h, _ := failing(limited)
	if _, err := retry(policy(), clk, nil)(h)(context.Background(), &job{}); err != nil {
		t.Fatal(err)
	}
	if len(clk.sleeps) != 1 || clk.sleeps[0] != 3*time.Second {
		t.Errorf("sleeps %v, want [3s] (Retry-After beats the 100ms backoff)", clk.sleeps)
	}
}

// TestRetryAfterOfAFailureStaysInTheBudget: only a 429's Retry-After is a
// wait outside the delivery's budget. A 503 asking for 5 minutes was
// waited out like a 429, up to 50 times: one delivery held for hours, its
// budget (15 s by default) ignored; one asking for less than the backoff
// cut the backoff short.
func TestRetryAfterOfAFailureStaysInTheBudget(t *testing.T) {
	for _, tc := range []struct {
		name       string
		retryAfter time.Duration
		want       []time.Duration // the waits, then the 503 comes back
	}{
		{"longer than the budget", 5 * time.Minute, []time.Duration{5 * time.Minute}},
		{"shorter than the backoff", 10 * time.Millisecond, []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := &fakeClock{now: time.Unix(0, 0)}
			p := policy()
			p.DeliveryBudget = 2 * time.Second
			unavailable := &clerkapi.Error{Op: "RevokeSession", StatusCode: 503, RetryAfter: tc.retryAfter}
			errs := make([]error, 100)
			for i := range errs {
				errs[i] = unavailable
			}
			h, _ := failing(errs...)
			if _, err := retry(p, clk, nil)(h)(context.Background(), &job{}); !errors.Is(err, unavailable) {
				t.Fatalf("err = %v, want the 503 back once the budget is spent", err)
			}
			if !slices.Equal(clk.sleeps, tc.want) {
				t.Errorf("waits %v, want %v", clk.sleeps, tc.want)
			}
		})
	}
}

// TestLongRetryAfterPausesForTheMaxPause: a 429 whose Retry-After is over
// a day (or "1e9" seconds, or a date years ahead) pauses every call for the
// budget's max pause, and the delivery waits that long before it calls
// again, no longer. Such a Retry-After was discarded as garbage: the pause
// was the 1 s of a 429 without one, and the delivery retried after its
// backoff, into the same storm; a day's Retry-After held the delivery a
// day.
func TestLongRetryAfterPausesForTheMaxPause(t *testing.T) {
	for _, retryAfter := range []string{"1e9", "86401", "86400", "Wed, 21 Oct 2099 07:28:00 GMT"} {
		t.Run(retryAfter, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Retry-After", retryAfter)
				w.WriteHeader(http.StatusTooManyRequests)
			}))
			defer srv.Close()
			c, err := clerkapi.New(clerkapi.WithBaseURL(srv.URL+"/v1"), clerkapi.WithSecretKey("sk_"+"test_retryafter"))
			if err != nil {
				t.Fatal(err)
			}
			g := newGate(c, newMetrics())
			b, err := ratebudget.NewLocal(RateLimit{})
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			g.budget.Store(b)
			clk := &fakeClock{now: time.Unix(0, 0)}
			calls := 0
			err = policy().do(context.Background(), clk, func() error {
				if calls++; calls > 1 {
					return nil // the budget's pause is not the fake clock's: the second call is not made
				}
				_, err := g.RevokeSession(context.Background(), "sess_abc")
				return err
			}, func(error, time.Duration) {})
			if err != nil {
				t.Fatal(err)
			}
			if d := time.Until(b.PausedUntil()); d < ratebudget.DefaultMaxPause-time.Minute || d > ratebudget.DefaultMaxPause {
				t.Errorf("every call paused for %v, want the max pause %v", d.Round(time.Second), ratebudget.DefaultMaxPause)
			}
			if len(clk.sleeps) != 1 || clk.sleeps[0] != ratebudget.DefaultMaxPause {
				t.Errorf("the delivery slept %v, want [%v]", clk.sleeps, ratebudget.DefaultMaxPause)
			}
		})
	}
}

func TestRetryPassesOtherClassesThrough(t *testing.T) {
	for _, e := range []error{err404, err401, clerkapi.ErrInvalidInput} {
		clk := &fakeClock{now: time.Unix(0, 0)}
		h, calls := failing(e)
		_, err := retry(policy(), clk, nil)(h)(context.Background(), &job{})
		if !errors.Is(err, e) || *calls != 1 || len(clk.sleeps) != 0 {
			t.Errorf("%v: err %v after %d calls and %d sleeps; want it back at once", e, err, *calls, len(clk.sleeps))
		}
	}
}

func TestRetryZeroBudgetMeansOneAttempt(t *testing.T) {
	p := policy()
	p.DeliveryBudget = 0
	h, calls := failing(err503)
	if _, err := retry(p, &fakeClock{}, nil)(h)(context.Background(), &job{}); !errors.Is(err, err503) || *calls != 1 {
		t.Errorf("err %v after %d calls; want one attempt", err, *calls)
	}
}

func TestNakDelayDoublesPerDeliveryUpToMax(t *testing.T) {
	p := policy()
	for delivery, want := range map[int]time.Duration{1: 5 * time.Second, 2: 10 * time.Second, 3: 20 * time.Second, 4: 30 * time.Second, 9: 30 * time.Second} {
		if got := p.nakDelay(delivery); got != want {
			t.Errorf("nakDelay(%d) = %s, want %s", delivery, got, want)
		}
	}
	p.Jitter = 0.5
	for i := 0; i < 100; i++ {
		if d := p.nakDelay(2); d < 5*time.Second || d > 15*time.Second {
			t.Fatalf("nakDelay(2) with jitter 0.5 = %s, outside 5s..15s", d)
		}
	}
}

func TestRetryPolicyValidate(t *testing.T) {
	for name, edit := range map[string]func(*RetryPolicy){
		"backoff initial": func(p *RetryPolicy) { p.Initial = 0 },
		"backoff max":     func(p *RetryPolicy) { p.Max = p.Initial / 2 },
		"multiplier":      func(p *RetryPolicy) { p.Multiplier = 0.5 },
		"jitter":          func(p *RetryPolicy) { p.Jitter = 2 },
		"retry budget":    func(p *RetryPolicy) { p.DeliveryBudget = -1 },
		"nak delay 0":     func(p *RetryPolicy) { p.NakDelay = 0 },
		"nak delay max":   func(p *RetryPolicy) { p.NakDelayMax = p.NakDelay / 2 },
		// Randomized by ±jitter, a longer wait overflows a time.Duration.
		"backoff max overflowing once jittered": func(p *RetryPolicy) { p.Max = 1708032 * time.Hour },
		// JetStream keeps the redelivery time as int64 Unix nanoseconds.
		"nak delay max past 2262": func(p *RetryPolicy) { p.NakDelayMax = time.Until(time.Unix(0, math.MaxInt64))/3*2 + time.Hour },
	} {
		p := DefaultRetryPolicy()
		edit(&p)
		if err := p.Validate(); err == nil {
			t.Errorf("%s: invalid policy accepted", name)
		}
	}
	if err := DefaultRetryPolicy().Validate(); err != nil {
		t.Errorf("default policy: %v", err)
	}
}

// TestLongestAcceptedWaitsStayPositive: at the ceilings Validate allows,
// the randomized backoff and nak delay still fit a time.Duration; past
// them a wait came out negative, retrying or redelivering at once.
func TestLongestAcceptedWaitsStayPositive(t *testing.T) {
	p := DefaultRetryPolicy()
	p.DeliveryBudget = math.MaxInt64 // else the first long wait ends the delivery's retries
	// The ceilings with the default jitter, 0.5: a wait of up to 1.5 times
	// them fits a time.Duration, and ends before 2262.
	last := time.Unix(0, math.MaxInt64)
	p.Initial, p.Max = 1708031*time.Hour, 1708031*time.Hour
	p.NakDelay = (time.Until(last) / 3 * 2).Truncate(time.Hour)
	p.NakDelayMax = p.NakDelay
	if err := p.Validate(); err != nil {
		t.Fatalf("Validate() = %v, want the ceilings accepted", err)
	}
	b := p.newBackOff(clock.Real{})
	for range 1000 {
		if d := b.NextBackOff(); d <= 0 {
			t.Fatalf("backoff %s at backoff max %s: want a positive wait", d, p.Max)
		}
		if d := p.nakDelay(1); d <= 0 || time.Now().Add(d).After(last) {
			t.Fatalf("nak delay %s at nak delay max %s: want a positive delay JetStream can keep", d, p.NakDelayMax)
		}
	}
}

func TestGatePausesEveryCallerForRetryAfter(t *testing.T) {
	g := newGate(nil, newMetrics())
	b, err := ratebudget.NewLocal(RateLimit{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	g.budget.Store(b)
	g.observe("revoke", time.Now(), &clerkapi.Error{StatusCode: 429, RetryAfter: 300 * time.Millisecond})
	start := time.Now()
	if err := g.wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited < 250*time.Millisecond {
		t.Errorf("another caller waited %s after a 429 with Retry-After 300ms", waited)
	}
	ctx, cancel := context.WithCancel(context.Background())
	g.observe("revoke", time.Now(), &clerkapi.Error{StatusCode: 429, RetryAfter: time.Hour})
	cancel()
	if err := g.wait(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("wait during a pause with a cancelled context = %v", err)
	}
}

// TestRetryPolicyRefusesNaN: a NaN multiplier or jitter passed Validate
// (every comparison with NaN is false), and the backoff it made was
// garbage: a NaN converted to a duration is negative, so a failing Clerk
// call was retried at once, again and again, until the delivery's budget
// ran out, with no backoff at all.
func TestRetryPolicyRefusesNaN(t *testing.T) {
	for name, edit := range map[string]func(*RetryPolicy){
		"multiplier": func(p *RetryPolicy) { p.Multiplier = math.NaN() },
		"jitter":     func(p *RetryPolicy) { p.Jitter = math.NaN() },
	} {
		p := DefaultRetryPolicy()
		edit(&p)
		if err := p.Validate(); err == nil || !strings.Contains(err.Error(), "backoff "+name) {
			t.Errorf("%s NaN: Validate() = %v, want an error naming backoff %s", name, err, name)
		}
	}
}
