// Package spectest checks HTTP exchanges against Clerk's OpenAPI
// description (bapi 2026-05-12) with kin-openapi. It is imported by tests
// only.
//
// The description is the file shared/clerk/bapi-2026-05-12.yml, looked up
// in the working directory and its parents (the repository clone has
// shared/ beside it), or the file named by $CLERK_OPENAPI_SPEC. When it is
// missing, tests that need it are skipped, unless $CI is set: then they
// fail, so that CI cannot silently stop checking.
//
// The file is loaded once per test binary.
//
// # Known deviations
//
// These answers of the emulator (and of Clerk, as far as is known) differ
// from the description and are checked differently:
//
//   - GetSessionList with paginated=true answers {"data":[…],"total_count":N}
//     (what the official SDKs expect); the description only has the bare
//     array. Each element of data is checked against the Session schema.
//   - Error statuses the description does not list for an operation (405,
//     409, 413, 415, 429, 5xx from injected faults, 400/422 from the token
//     operations, 404 from LockUser and UnlockUser
//     for an unknown user, 403 user_locked from createSession for a locked
//     user) are not rejected; their bodies are checked against the
//     ClerkErrors schema like every error body.
//     RefreshSession is the exception: only the statuses its description
//     lists (400, 401) and those any path may answer (405, 413, 415, 429,
//     5xx) are accepted, because clients act on that list (Clerk's SDKs
//     fall back to the handshake flow on its 401).
//   - A 502 or 504 with the Via header of the emulator's gateway fault
//     (Faults.GatewayErrorRate, Via "1.1 clerk-emulator-gateway") is a
//     gateway's answer, not Clerk's: its body is not checked. Any other
//     status with that header is reported.
//   - GetJWKS requires the secret key on Clerk although the operation lists
//     no 401; a 401 body is checked against ClerkErrors.
package spectest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/clerkjobs/clerkjobs/internal/text"
	"io"
	"maps"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// FileName is the description's path below the directory that holds
// shared/.
const FileName = "shared/clerk/bapi-2026-05-12.yml"

// clerkHost is the server in the description; requests are matched as if
// sent to it.
const clerkHost = "api.clerk.com"

// Spec is a loaded description with a router over its paths.
type Spec struct {
	doc    *openapi3.T
	router routers.Router
}

// Find returns the description's path, or an error saying where it was
// looked for.
func Find() (string, error) {
	if p := os.Getenv("CLERK_OPENAPI_SPEC"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("CLERK_OPENAPI_SPEC=%s: %w", p, err)
		}
		return p, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, FileName)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("%s not found in the working directory or its parents (set CLERK_OPENAPI_SPEC)", FileName)
		}
		dir = parent
	}
}

var load = sync.OnceValues(func() (*Spec, error) {
	p, err := Find()
	if err != nil {
		return nil, errMissing{err}
	}
	doc, err := openapi3.NewLoader().LoadFromFile(p)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", p, err)
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("route %s: %w", p, err)
	}
	return &Spec{doc: doc, router: router}, nil
})

type errMissing struct{ error }

// Load returns the description. A missing file skips the test (fails it
// when $CI is set); a file that does not load fails it.
func Load(tb testing.TB) *Spec {
	tb.Helper()
	s, err := load()
	switch {
	case errors.As(err, new(errMissing)) && os.Getenv("CI") == "":
		tb.Skipf("Clerk OpenAPI description unavailable, spec validation skipped: %v", err)
	case err != nil:
		tb.Fatalf("Clerk OpenAPI description: %v", err)
	}
	return s
}

// Optional is Load for tests whose main subject is not the description: it
// returns nil (and logs why) instead of skipping when the file is missing
// outside CI. Transport on a nil *Spec validates nothing.
func Optional(tb testing.TB) *Spec {
	tb.Helper()
	if _, err := load(); errors.As(err, new(errMissing)) && os.Getenv("CI") == "" {
		tb.Logf("spec validation off: %v", err)
		return nil
	}
	return Load(tb)
}

// Mode says what a Transport checks.
type Mode int

const (
	// Both checks requests and responses: for clients such as clerkapi that
	// should only ever send valid requests.
	Both Mode = iota
	// ResponsesOnly checks responses only: for tests that send invalid
	// requests on purpose.
	ResponsesOnly
)

// Transport returns a RoundTripper that sends through base (nil:
// http.DefaultTransport) and reports every exchange that violates the
// description with tb.Errorf. Exchanges on paths outside the description
// (the emulator's /_emulator control API) are not checked.
func (s *Spec) Transport(tb testing.TB, base http.RoundTripper, mode Mode) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	if s == nil {
		return base
	}
	return &transport{spec: s, tb: tb, base: base, mode: mode}
}

type transport struct {
	spec *Spec
	tb   testing.TB
	base http.RoundTripper
	mode Mode
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil && req.Body != http.NoBody {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		reqBody = b
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(b))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	}
	input, err := t.spec.route(req, reqBody)
	where := req.Method + " " + req.URL.Path
	switch {
	case err != nil && strings.HasPrefix(req.URL.Path, "/_emulator"):
		return t.base.RoundTrip(req)
	case err != nil && t.mode == Both:
		t.tb.Errorf("spec: %s: no operation in the description: %v", where, err)
	case err == nil:
		where += " (" + input.Route.Operation.OperationID + ")"
		if t.mode == Both {
			if err := openapi3filter.ValidateRequest(req.Context(), input); err != nil {
				t.tb.Errorf("spec: request %s violates the description: %v", where, err)
			}
		}
	}
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	// Read the whole answer and put it back for the caller.
	body, rerr := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	switch {
	case input == nil && (rerr != nil || resp.StatusCode < 400):
		// Whatever the path, an error answer must be a Clerk errors body.
		return resp, nil
	case input == nil:
		err = t.spec.checkErrorBody(resp.StatusCode, resp.Header, body)
	case rerr != nil:
		return nil, rerr // a truncated answer: the client must see the failure
	default:
		err = t.spec.CheckResponse(input, resp.StatusCode, resp.Header, body)
	}
	if err != nil {
		t.tb.Errorf("spec: answer %d to %s violates the description: %v\nbody: %s",
			resp.StatusCode, where, err, text.Truncate(string(body), 600))
	}
	return resp, nil
}

// route finds the operation of req as if it were sent to api.clerk.com.
func (s *Spec) route(req *http.Request, body []byte) (*openapi3filter.RequestValidationInput, error) {
	probe := req.Clone(context.Background())
	probe.URL.Scheme, probe.URL.Host, probe.Host = "https", clerkHost, clerkHost
	rt, params, err := s.router.FindRoute(probe)
	if err != nil {
		return nil, err
	}
	vreq := req.Clone(req.Context())
	vreq.Body = io.NopCloser(bytes.NewReader(body))
	return &openapi3filter.RequestValidationInput{
		Request:    vreq,
		PathParams: params,
		Route:      rt,
		Options: &openapi3filter.Options{
			AuthenticationFunc: bearerPresent,
			MultiError:         true,
		},
	}, nil
}

// bearerPresent checks the form of the bearer credential (not its value).
func bearerPresent(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	h := in.RequestValidationInput.Request.Header.Get("Authorization")
	if tok, ok := strings.CutPrefix(h, "Bearer "); !ok || strings.TrimSpace(tok) == "" {
		return errors.New(`no "Authorization: Bearer <key>" header`)
	}
	return nil
}

// CheckResponse validates one answer to the request described by input,
// applying the deviations in the package documentation.
func (s *Spec) CheckResponse(input *openapi3filter.RequestValidationInput, status int, header http.Header, body []byte) error {
	op := input.Route.Operation.OperationID
	if status >= 400 {
		if err := listedStatus(input.Route.Operation, status); err != nil {
			return err
		}
		return s.checkErrorBody(status, header, body)
	}
	if op == "GetSessionList" && input.Request.URL.Query().Get("paginated") == "true" {
		return s.checkPaginated(header, body)
	}
	return openapi3filter.ValidateResponse(input.Request.Context(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: input,
		Status:                 status,
		Header:                 header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	})
}

// anyPathStatus reports the error statuses any path may answer, whatever
// its operation lists: a wrong method, a body too large or not JSON, the
// rate limit, and server or gateway failures.
func anyPathStatus(status int) bool {
	switch status {
	case http.StatusMethodNotAllowed, http.StatusRequestEntityTooLarge,
		http.StatusUnsupportedMediaType, http.StatusTooManyRequests:
		return true
	}
	return status >= 500
}

// listedStatus checks an error status against the operation's listed
// responses (or anyPathStatus), for RefreshSession only: see the package
// documentation.
func listedStatus(op *openapi3.Operation, status int) error {
	if op.OperationID != "RefreshSession" || anyPathStatus(status) || op.Responses.Status(status) != nil {
		return nil
	}
	return fmt.Errorf("status %d is not one the description lists for %s (%s)",
		status, op.OperationID, strings.Join(slices.Sorted(maps.Keys(op.Responses.Map())), ", "))
}

func isJSON(header http.Header) error {
	mt, _, err := mime.ParseMediaType(header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return fmt.Errorf("Content-Type %q is not application/json", header.Get("Content-Type"))
	}
	return nil
}

// Schema returns a component schema by name, e.g. "Session".
func (s *Spec) Schema(name string) (*openapi3.Schema, error) {
	ref := s.doc.Components.Schemas[name]
	if ref == nil || ref.Value == nil {
		return nil, fmt.Errorf("no schema %q in the description", name)
	}
	return ref.Value, nil
}

// Validate checks a JSON document against a component schema.
func (s *Spec) Validate(schemaName string, body []byte) error {
	sc, err := s.Schema(schemaName)
	if err != nil {
		return err
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	return sc.VisitJSON(v, openapi3.MultiErrors())
}

// gatewayVia is the Via header of the emulator's gateway fault
// (emulator.GatewayVia; this package cannot import the emulator, whose
// tests import it).
const gatewayVia = "1.1 clerk-emulator-gateway"

func (s *Spec) checkErrorBody(status int, header http.Header, body []byte) error {
	if header.Get("Via") == gatewayVia {
		if status != http.StatusBadGateway && status != http.StatusGatewayTimeout {
			return fmt.Errorf("status %d carries the gateway fault's Via header, which only 502 and 504 may", status)
		}
		return nil // a gateway's own page, not Clerk's answer
	}
	if err := isJSON(header); err != nil {
		return err
	}
	if err := s.Validate("ClerkErrors", body); err != nil {
		return fmt.Errorf("error body: %w", err)
	}
	var eb struct {
		Errors []json.RawMessage `json:"errors"`
	}
	if err := json.Unmarshal(body, &eb); err != nil || len(eb.Errors) == 0 {
		return errors.New("error body has no errors")
	}
	return nil
}

func (s *Spec) checkPaginated(header http.Header, body []byte) error {
	if err := isJSON(header); err != nil {
		return err
	}
	var page struct {
		Data       []json.RawMessage `json:"data"`
		TotalCount *json.Number      `json:"total_count"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	dec.DisallowUnknownFields()
	if err := dec.Decode(&page); err != nil {
		return fmt.Errorf("paginated list: %w", err)
	}
	if page.Data == nil || page.TotalCount == nil {
		return errors.New("paginated list lacks data or total_count")
	}
	if _, err := page.TotalCount.Int64(); err != nil {
		return fmt.Errorf("total_count %s is not an integer", *page.TotalCount)
	}
	for i, item := range page.Data {
		if err := s.Validate("Session", item); err != nil {
			return fmt.Errorf("data[%d]: %w", i, err)
		}
	}
	return nil
}
