package clerkapi_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/clerkapi"
)

// TestRefreshHeaderStringsAreSentAsLists: Clerk reads a refresh's
// request_headers as lists of values per header (Record<string, string[]>,
// as its backend SDK sends them) and refuses a bare string, the way a job
// most often writes a header ({"User-Agent": "…"}). The emulator accepted
// any object, so such jobs passed every test and failed against Clerk.
// Strings now go as one-element lists; the caller's map is left as it was.
func TestRefreshHeaderStringsAreSentAsLists(t *testing.T) {
	e := newEnv(t)
	id := e.emu.CreateSessions(e.emu.CreateUser(), 1)[0]
	headers := map[string]any{"User-Agent": "Mozilla/5.0", "Accept": []any{"text/html", "application/json"}}
	before := map[string]any{"User-Agent": "Mozilla/5.0", "Accept": []any{"text/html", "application/json"}}
	res, err := e.c.RefreshSession(context.Background(), id, clerkapi.RefreshParams{
		ExpiredToken: e.emu.SessionToken(id, -time.Minute), RefreshToken: e.emu.RefreshToken(id),
		RequestOrigin: "https://app.example.com", RequestHeaders: headers,
	})
	if err != nil {
		t.Fatalf("refresh with a header written as a string: %v", err)
	}
	if res.Token == nil || res.Token.JWT == "" {
		t.Errorf("answer %+v: want a token", res)
	}
	if !reflect.DeepEqual(headers, before) {
		t.Errorf("the caller's headers were changed: %v", headers)
	}
}
