package clerkapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// TestRouteOfAnUnlistedOperation: an operation added without a case in
// route still gets a span whose name and url.template hold no id.
func TestRouteOfAnUnlistedOperation(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	c, err := New(WithSecretKey("sk_test_x"), WithBaseURL(srv.URL+"/v1"), WithTracerProvider(tp))
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		"/users/user_2abc/sessions":        "GET /v1/users/{id}/sessions",
		"/organizations/org_9/memberships": "GET /v1/organizations/{id}/memberships",
		"/jwks":                            "GET /v1/jwks",
	} {
		exp.Reset()
		if _, err := c.do(context.Background(), "SomeNewOperation", http.MethodGet, path, nil, nil); err == nil {
			t.Fatalf("%s: the 404 was not an error", path)
		}
		spans := exp.GetSpans()
		if len(spans) != 1 || spans[0].Name != want {
			t.Errorf("%s: spans %v, want one named %q", path, spans, want)
		}
	}
}
