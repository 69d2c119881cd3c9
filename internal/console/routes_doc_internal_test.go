package console

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestRoutesAreInDocs: the console's routes are what proxies, scripts and
// bookmarks use; docs/publish.md lists them. Every pattern Handler
// registers must be there, and every route listed there must be
// registered, so that neither a new page nor a removed one goes unsaid.
func TestRoutesAreInDocs(t *testing.T) {
	src, err := os.ReadFile("web.go")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("../../docs/publish.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	registered := map[string]bool{}
	for _, m := range regexp.MustCompile(`mux\.Handle(?:Func)?\("([A-Z]+ /[^"]*)"`).FindAllStringSubmatch(string(src), -1) {
		route := strings.ReplaceAll(m[1], "{$}", "") // "GET /{$}" is the page "GET /" alone
		registered[route] = true
		if !strings.Contains(doc, "`"+route+"`") {
			t.Errorf("route %s is not in docs/publish.md", route)
		}
	}
	if len(registered) < 10 {
		t.Fatalf("found %d routes in web.go, want every one: %v", len(registered), registered)
	}
	for _, m := range regexp.MustCompile("`((?:GET|POST) /[^`]*)`").FindAllStringSubmatch(doc, -1) {
		if !registered[m[1]] {
			t.Errorf("docs/publish.md names %s, which the console does not serve", m[1])
		}
	}
}
