package emulator_test

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/clerkjobs/clerkjobs/clerkapi"
)

// TestCleanUpSession: Clerk's description of GetSessionList says old and
// inactive sessions are cleaned up and no longer listed. A cleaned-up
// session leaves every listing and total_count, the sessions after it
// move up a place (so a client paging by offset skips one), and only an
// inactive session can be cleaned up.
func TestCleanUpSession(t *testing.T) {
	h := start(t)
	user := h.emu.CreateUser()
	created := h.emu.CreateSessions(user, 5) // newest first: 4 3 2 1 0
	gone := created[3]
	if err := h.emu.SetSessionStatus(gone, clerkapi.StatusEnded); err != nil {
		t.Fatal(err)
	}
	goneSession, _ := h.emu.Session(gone)
	before := h.do("GET", "/v1/sessions?user_id="+user+"&limit=2&offset=2&paginated=true", "")
	if err := h.emu.CleanUpSession(gone); err != nil {
		t.Fatal(err)
	}

	list := func(query string) ([]string, int64) {
		t.Helper()
		a := h.do("GET", "/v1/sessions?"+query+"&paginated=true", "")
		if a.status != 200 {
			t.Fatalf("%s: status %d: %s", query, a.status, a.body)
		}
		var page clerkapi.SessionList
		if err := json.Unmarshal(a.body, &page); err != nil {
			t.Fatal(err)
		}
		return ids(page.Data), page.TotalCount
	}
	tests := []struct {
		name, query string
		want        []string
		total       int
	}{
		{"by user", "user_id=" + user, []string{created[4], created[2], created[1], created[0]}, 4},
		{"the page after it moves up", "user_id=" + user + "&limit=2&offset=2", []string{created[1], created[0]}, 4},
		{"by its status", "user_id=" + user + "&status=ended", []string{}, 0},
		{"active ones stay", "user_id=" + user + "&status=active", []string{created[4], created[2], created[1], created[0]}, 4},
		{"by its client", "client_id=" + goneSession.ClientID, []string{}, 0},
		{"by its client and user", "client_id=" + goneSession.ClientID + "&user_id=" + user, []string{}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, total := list(tc.query)
			if !slices.Equal(got, tc.want) || total != int64(tc.total) {
				t.Errorf("listed %v (total_count %d), want %v (%d)", got, total, tc.want, tc.total)
			}
		})
	}
	var page clerkapi.SessionList
	if err := json.Unmarshal(before.body, &page); err != nil || !slices.Equal(ids(page.Data), []string{created[2], created[1]}) {
		t.Errorf("before the clean-up the same page was %s, want [%s %s]", before.body, created[2], created[1])
	}
	if got := h.emu.UserSessionIDs(user); slices.Contains(got, gone) {
		t.Errorf("UserSessionIDs %v still holds the cleaned-up session", got)
	}
	if a := h.do("GET", "/v1/sessions/"+gone, ""); a.status != 200 {
		t.Errorf("GetSession of the cleaned-up session: %d %s; want 200 as before", a.status, a.body)
	}

	// Its status may still change among inactive ones, and the counts
	// behind total_count stay right.
	if err := h.emu.SetSessionStatus(gone, clerkapi.StatusExpired); err != nil {
		t.Errorf("SetSessionStatus(expired) of a cleaned-up session: %v", err)
	}
	if got, total := list("user_id=" + user + "&status=expired"); len(got) != 0 || total != 0 {
		t.Errorf("status=expired lists %v (total_count %d) after a cleaned-up session became expired", got, total)
	}
	if err := h.emu.SetSessionStatus(gone, clerkapi.StatusActive); err == nil {
		t.Error("a cleaned-up session became active again, listed nowhere")
	}
	if err := h.emu.CleanUpSession(gone); err != nil {
		t.Errorf("cleaning up twice: %v", err)
	}
	for _, id := range []string{created[4], "sess_unknown"} {
		if err := h.emu.CleanUpSession(id); err == nil {
			t.Errorf("CleanUpSession(%s) of an active or unknown session: no error", id)
		}
	}
	if got, _ := list("user_id=" + user); len(got) != 4 {
		t.Errorf("after the refused clean-ups the user lists %v, want 4 sessions", got)
	}
}

// TestCleanUpSessionControlAPI: POST /_emulator/sessions/{id}/clean_up
// does what CleanUpSession does, and refuses what it refuses.
func TestCleanUpSessionControlAPI(t *testing.T) {
	h := start(t)
	user := h.emu.CreateUser()
	ids := h.emu.CreateSessions(user, 2)
	if err := h.emu.SetSessionStatus(ids[0], clerkapi.StatusRevoked); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		method, path, body string
		status             int
		code               string
	}{
		{"POST", "/_emulator/sessions/" + ids[1] + "/clean_up", "", 422, "form_param_value_invalid"}, // active
		{"POST", "/_emulator/sessions/sess_nope/clean_up", "", 404, "resource_not_found"},
		{"GET", "/_emulator/sessions/" + ids[0] + "/clean_up", "", 405, "method_not_allowed"},
		{"POST", "/_emulator/sessions/" + ids[0] + "/clean_up", "", 200, ""},
		{"PUT", "/_emulator/sessions/" + ids[0] + "/status", `{"status":"active"}`, 422, "form_param_value_invalid"},
		{"PUT", "/_emulator/sessions/" + ids[0] + "/status", `{"status":"ended"}`, 200, ""},
	}
	for _, tc := range tests {
		a := h.do(tc.method, tc.path, tc.body, hdr{"Authorization", ""})
		if a.status != tc.status || (tc.code != "" && a.code(t) != tc.code) {
			t.Errorf("%s %s %s: got %d %s, want %d %s", tc.method, tc.path, tc.body, a.status, a.body, tc.status, tc.code)
		}
	}
	if got := h.emu.UserSessionIDs(user); !slices.Equal(got, []string{ids[1]}) {
		t.Errorf("after the clean-up the user's listed sessions are %v, want [%s]", got, ids[1])
	}
	if s, _ := h.emu.Session(ids[0]); s.Status != clerkapi.StatusEnded {
		t.Errorf("cleaned-up session is %s, want ended", s.Status)
	}
}
