package publishcli_test

import (
	"strings"
	"testing"

	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestStatusHidesASecretClass: status counts the dead letters by their
// class, as their Dlq-Class header names it, of every tenant; a class the
// worker never writes (a letter stored some other way) was printed as
// stored, in the table's header and in the JSON's keys.
func TestStatusHidesASecretClass(t *testing.T) {
	h := newHarness(t)
	secret := "sk_" + "live_" + strings.Repeat("Zq7", 12)
	h.seed(t, letter{op: jobs.OpRevoke, class: jobs.ErrorClass(secret), tenant: "acme"})
	for _, args := range [][]string{{"status"}, {"status", "--json"}, {"--tenant", "other", "status"}} {
		r := h.run(t, args...)
		if strings.Contains(strings.ToLower(r.stdout+r.stderr), strings.ToLower(secret)) {
			t.Errorf("%v shows the class's secret:\n%v", args, r)
		}
		if !strings.Contains(r.stdout, "[REDACTED]") {
			t.Errorf("%v does not count the letter under a cleared class:\n%v", args, r)
		}
	}
}
