package clerkapi_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/clerkjobs/clerkjobs/clerkapi"
)

// TestActorOfASessionNotImpersonatedIsNil: Clerk sends "actor": null for
// every session that is not an impersonation. Decoded into a map, that was
// a nil actor; kept as JSON it became the four bytes "null", so that
// s.Actor != nil, the way a caller tells an impersonation, held for every
// session. It is nil again, and still written as null.
func TestActorOfASessionNotImpersonatedIsNil(t *testing.T) {
	e := newEnv(t)
	id := e.emu.CreateSessions(e.emu.CreateUser(), 1)[0]
	s, err := e.c.GetSession(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if s.Actor != nil {
		t.Errorf("actor %q of a session that is not an impersonation; want nil", s.Actor)
	}
	list, err := e.c.ListSessions(context.Background(), clerkapi.ListParams{UserID: s.UserID})
	if err != nil {
		t.Fatal(err)
	}
	for _, ls := range list.Data {
		if ls.Actor != nil {
			t.Errorf("listed session %s: actor %q; want nil", ls.ID, ls.Actor)
		}
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"actor":null`) {
		t.Errorf("encoded session %s; want \"actor\":null in it", b)
	}
}
