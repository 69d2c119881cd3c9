package worker_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestRefreshSecretInAnotherFieldIsNeverStored: a refresh job's own token
// pasted where it does not belong is shaped like nothing. In reply_to, the
// error refusing the subject quoted it, and the worker cleared that error
// of shapes only, not of the job's secrets, in Dlq-Error, the history and
// the log; swapped with session_id, the schema's error quoted it and the
// dead letter kept it as a harmless field.
func TestRefreshSecretInAnotherFieldIsNeverStored(t *testing.T) {
	env := testenv.New(t)
	env.StartWorker(t)
	const rt = "opaqueRefreshElsewhere0123456789"
	bodies := []string{
		`{"job_id":"rt-in-reply","reply_to":"elsewhere.` + rt + `","session_id":"sess_1","expired_token":"e","refresh_token":"` + rt + `","request_origin":"https://a.example"}`,
		`{"job_id":"rt-swapped","reply_to":"_INBOX.x","session_id":"` + rt + `","expired_token":"e","refresh_token":"sess_1","request_origin":"https://a.example"}`,
	}
	for _, b := range bodies {
		publishMsg(t, env, env.Topology.Subjects.Job(jobs.OpRefresh), nil, b)
	}
	testenv.Eventually(t, 10*time.Second, "both jobs dead-lettered", func() bool { return len(deadLetters(t, env)) == len(bodies) })
	var all strings.Builder
	for _, m := range env.StreamMsgs(t, env.Topology.DeadLetterStream) {
		fmt.Fprintf(&all, "%v %s\n", m.Header, m.Data)
	}
	all.WriteString(env.Logs.String())
	if strings.Contains(all.String(), "opaqueRefresh") {
		t.Errorf("the refresh token is stored or logged: %s", all.String())
	}
}
