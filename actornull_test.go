package clerkjobs_test

import (
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/clerkjobstest"
)

// TestRevocationOfASessionNotImpersonatedHasNoActor: the stored result
// says "actor": null for a session that is not an impersonation, which
// decoded into Session.Actor (JSON kept as it came) as the bytes "null":
// rev.Session.Actor != nil held for every revoked session, as if each were
// an impersonation. It is nil, as when the actor was a map.
func TestRevocationOfASessionNotImpersonatedHasNoActor(t *testing.T) {
	env := clerkjobstest.New(t)
	emu := env.Clerk.Emulator
	id := emu.CreateSessions(emu.CreateUser(), 1)[0]
	rev, err := env.Client.RevokeSession(testContext(t, 30*time.Second), id, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rev.Session.ID != id || rev.Session.Actor != nil {
		t.Errorf("revoked session %s with actor %q; want %s with a nil actor", rev.Session.ID, rev.Session.Actor, id)
	}
}
