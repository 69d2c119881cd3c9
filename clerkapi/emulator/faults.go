package emulator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"math"
	"net/http"
	"strconv"
	"time"
)

// Faults are the failures the emulator injects into Clerk API calls (the
// /v1 paths; the control API never fails on purpose). The zero value injects
// nothing. Set them with WithFaults, SetFaults or PUT /_emulator/faults.
//
// Each API call first waits Latency plus a uniformly random extra delay in
// [0, Jitter), then may be dropped (DropRate), then goes through the normal
// checks (RejectKey, authentication, rate limit, API version), may be
// answered with a 5xx (ErrorRate), is handled, and finally its answer may be
// replaced by a gateway's (GatewayErrorRate) or lost (DropAfterRate).
type Faults struct {
	// ErrorRate is the fraction (0..1) of authenticated calls answered 500,
	// 502 or 503 (chosen uniformly) with a Clerk errors body, without being
	// handled.
	ErrorRate float64
	// GatewayErrorRate is the fraction (0..1) of calls whose answer a
	// gateway in front of Clerk replaces with 502 or 504 (chosen uniformly)
	// and a page of its own: text/html, not Clerk's errors body, echoing
	// the request line, with a Via header naming GatewayVia. The call is
	// handled first (its effects happen, and RevokeCount counts them), as
	// when the gateway passed it on and gave up waiting for the answer:
	// the case that leaves a createSession or RefreshSession unconfirmed
	// (see clerkapi.ErrUnconfirmed), and that a client must never show
	// the body of.
	GatewayErrorRate float64
	// DropRate is the fraction (0..1) of calls whose connection is closed
	// without an answer, before anything is handled: the client sees a
	// network error (EOF / connection reset). Go's http.Transport may
	// silently resend an idempotent request (GET) dropped on a reused
	// connection; the call log then shows both attempts.
	DropRate float64
	// DropAfterRate is the fraction (0..1) of calls that are handled (their
	// effects happen, and RevokeCount counts them) but whose answer is lost:
	// the connection is closed instead. This is the case that makes blind
	// retries of non-idempotent calls dangerous.
	DropAfterRate float64
	// Latency is added to every call.
	Latency time.Duration
	// Jitter is the upper bound of a uniformly random extra delay.
	Jitter time.Duration
	// RejectKey makes every call fail with 401 clerk_key_invalid, as if the
	// secret key had been revoked in the Clerk dashboard.
	RejectKey bool
}

// Validate reports the first field out of range: rates must lie in 0..1
// and durations must not be negative.
func (f Faults) Validate() error {
	for _, r := range []struct {
		name string
		v    float64
	}{{"error_rate", f.ErrorRate}, {"gateway_error_rate", f.GatewayErrorRate}, {"drop_rate", f.DropRate}, {"drop_after_rate", f.DropAfterRate}} {
		if math.IsNaN(r.v) || r.v < 0 || r.v > 1 {
			return fmt.Errorf("%s %v is not between 0 and 1", r.name, r.v)
		}
	}
	if f.Latency < 0 {
		return fmt.Errorf("latency %v is negative", f.Latency)
	}
	if f.Jitter < 0 {
		return fmt.Errorf("jitter %v is negative", f.Jitter)
	}
	return nil
}

// clamped brings every field into range, so that Go callers of SetFaults
// cannot put the emulator in an undefined state.
func (f Faults) clamped() Faults {
	clamp := func(v float64) float64 {
		if math.IsNaN(v) || v < 0 {
			return 0
		}
		return math.Min(v, 1)
	}
	f.ErrorRate, f.DropRate, f.DropAfterRate = clamp(f.ErrorRate), clamp(f.DropRate), clamp(f.DropAfterRate)
	f.GatewayErrorRate = clamp(f.GatewayErrorRate)
	f.Latency, f.Jitter = max(f.Latency, 0), max(f.Jitter, 0)
	return f
}

// faultsJSON is the wire form of Faults: durations are strings such as
// "150ms".
type faultsJSON struct {
	ErrorRate        float64 `json:"error_rate"`
	GatewayErrorRate float64 `json:"gateway_error_rate"`
	DropRate         float64 `json:"drop_rate"`
	DropAfterRate    float64 `json:"drop_after_rate"`
	Latency          string  `json:"latency"`
	Jitter           string  `json:"jitter"`
	RejectKey        bool    `json:"reject_key"`
}

// MarshalJSON writes durations as strings ("150ms").
func (f Faults) MarshalJSON() ([]byte, error) {
	return json.Marshal(faultsJSON{
		ErrorRate: f.ErrorRate, GatewayErrorRate: f.GatewayErrorRate, DropRate: f.DropRate, DropAfterRate: f.DropAfterRate,
		Latency: f.Latency.String(), Jitter: f.Jitter.String(), RejectKey: f.RejectKey,
	})
}

// UnmarshalJSON reads the form MarshalJSON writes. Absent fields are zero;
// unknown fields are an error, so that a typo does not silently disable a
// fault. It does not range-check: call Validate.
func (f *Faults) UnmarshalJSON(b []byte) error {
	var w faultsJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after the faults object")
	}
	out := Faults{ErrorRate: w.ErrorRate, GatewayErrorRate: w.GatewayErrorRate, DropRate: w.DropRate,
		DropAfterRate: w.DropAfterRate, RejectKey: w.RejectKey}
	var err error
	if out.Latency, err = parseDuration("latency", w.Latency); err != nil {
		return err
	}
	if out.Jitter, err = parseDuration("jitter", w.Jitter); err != nil {
		return err
	}
	*f = out
	return nil
}

func parseDuration(name, s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%s %q is not a duration such as \"150ms\"", name, s)
	}
	return d, nil
}

// GatewayVia is the Via header of a GatewayErrorRate answer: the gateway
// that made it, as a proxy names itself (RFC 9110, section 7.6.3).
const GatewayVia = "1.1 clerk-emulator-gateway"

// gatewayPage is a gateway's own answer to r: status (502 or 504) and an
// HTML page that, as many do, echoes the request line.
func gatewayPage(r *http.Request, status int) reply {
	title := strconv.Itoa(status) + " " + http.StatusText(status)
	page := "<html><head><title>" + title + "</title></head><body><h1>" + title + "</h1>" +
		"<p>The upstream server did not answer " + html.EscapeString(r.Method+" "+r.URL.RequestURI()) + " in time.</p>" +
		"<hr><address>clerk-emulator-gateway</address></body></html>\n"
	return reply{status: status, html: []byte(page), header: http.Header{"Via": {GatewayVia}}, fault: "gateway"}
}
