package worker_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestRevokeAllRevokesNoOtherUsersSession: a Clerk (or a proxy, or an API
// version) that does not apply the user_id filter lists sessions of other
// users. revoke_all revoked whatever the listing held: another user's
// session went with the user's. A listed session of another user now
// fails the listing, and nothing of it is revoked.
func TestRevokeAllRevokesNoOtherUsersSession(t *testing.T) {
	env := testenv.New(t)
	emu := env.Clerk.Emulator
	user := emu.CreateUser()
	emu.CreateSessions(user, 2)
	other := emu.CreateSessions(emu.CreateUser(), 1)[0]
	c := env.ClerkThrough(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/sessions") {
			rec := httptest.NewRecorder()
			emu.ServeHTTP(rec, r)
			var page clerkapi.SessionList
			if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			if r.URL.Query().Get("offset") == "" {
				s, _ := emu.Session(other)
				page.Data = append(page.Data, s)
				page.TotalCount++
			}
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(page)
			return
		}
		emu.ServeHTTP(w, r)
	}))
	cfg := env.WorkerConfig()
	bulkWorker(&cfg)
	cfg.Retry.DeliveryBudget = 0
	cfg.Topology.MaxDeliver = 1
	env.StartWorkerWith(t, c, cfg)
	r, sum, _ := revokeAll(t, env, &jobs.RevokeAllArgs{UserID: user})
	if s, _ := emu.Session(other); s.Status != clerkapi.StatusActive {
		t.Errorf("another user's session is %s after the job (outcome %s, summary %+v)", s.Status, r.Outcome, sum)
	}
	if r.Outcome == jobs.Succeeded {
		t.Errorf("the job succeeded on a listing that is not the user's: %+v", sum)
	}
}
