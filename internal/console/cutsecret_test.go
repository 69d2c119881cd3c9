package console_test

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestCutValueHidesItsSecret: the index keeps a dead letter's code, class
// and job id cut short (64 and 128 bytes), and the pages cleared them of
// secret shapes only then: a JWT cut before its second dot is no longer
// shaped like one, and its header and claims were shown.
func TestCutValueHidesItsSecret(t *testing.T) {
	// Header and claims of a JWT, long enough to be cut in its payload.
	jwt := "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9." + strings.Repeat("eyJzdWIiOiJ1c2VyXzEyMyJ9", 8) + ".c2lnbmF0dXJlc2lnbmF0dXJl"
	for _, tc := range []struct {
		name   string
		header string
	}{
		{"code", jobs.HeaderClerkCode},
		{"class", jobs.HeaderClass},
		{"job id", jobs.HeaderJobID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := testenv.New(t)
			m := deadLetter(env.Topology.Subjects, jobs.OpRevoke, jobs.ClassExhausted, "cut-1", `{"job_id":"cut-1","session_id":"sess_1"}`, time.Now())
			m.Header.Set(tc.header, jwt)
			seed(t, env.JS, 1, func(int) *nats.Msg { return m })
			con := startConsole(t, env.NATSURL)
			con.waitIndexed(t, 20*time.Second)
			for _, p := range []string{"/dlq", "/"} {
				_, body := con.get(t, p)
				if strings.Contains(body, jwt[:40]) {
					t.Errorf("%s shows the JWT's header and claims (%s cut short)", p, tc.name)
				}
			}
		})
	}
}
