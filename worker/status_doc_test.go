package worker

import (
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// TestStatusAndEndpointsAreInDocs: the status JSON (on /readyz and the
// micro service's status endpoint) and the HTTP routes are read by
// monitoring and by operators' scripts; docs/worker.md lists them. Every
// JSON member of Status, BudgetStatus and StreamStatus, and every route
// Handler registers, must be there.
func TestStatusAndEndpointsAreInDocs(t *testing.T) {
	b, err := os.ReadFile("../docs/worker.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, typ := range []reflect.Type{reflect.TypeFor[Status](), reflect.TypeFor[BudgetStatus](), reflect.TypeFor[StreamStatus]()} {
		for f := range typ.Fields() {
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name != "" && name != "-" && !strings.Contains(doc, "`"+name+"`") {
				t.Errorf("%s.%s (%q) is not in docs/worker.md's Status", typ.Name(), f.Name, name)
			}
		}
	}
	src, err := os.ReadFile("service.go")
	if err != nil {
		t.Fatal(err)
	}
	routes := regexp.MustCompile(`mux\.Handle(?:Func)?\("([A-Z]+ /[^"]*)"`).FindAllStringSubmatch(string(src), -1)
	if len(routes) < 3 {
		t.Fatalf("found %d routes in service.go, want every one", len(routes))
	}
	for _, m := range routes {
		if !strings.Contains(doc, "`"+m[1]+"`") {
			t.Errorf("route %s is not in docs/worker.md", m[1])
		}
	}
}
