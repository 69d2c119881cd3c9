package dlq_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/dlq"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestReplayTakenIdKeepsTheLetter: a replay that JetStream acknowledges as
// a duplicate was taken for the same replay run again, and its dead letter
// deleted. A publisher who stored another job under the replay's message
// id first (it is made of the queue's creation time, the letter's sequence
// and its replay count) made the replayed job vanish: never queued, its
// dead letter gone. The stored job is now compared with the replayed one,
// and the letter kept unless they are the same job.
func TestReplayTakenIdKeepsTheLetter(t *testing.T) {
	e := newEnv(t)
	seq := e.seed(t, letter{op: jobs.OpRevoke, class: jobs.ClassExhausted, jobID: "real"})[0]
	m := nats.NewMsg(e.topo.Subjects.Job(jobs.OpRevoke))
	m.Data = []byte(testenv.JobBody(jobs.OpRevoke, "decoy"))
	m.Header.Set(jetstream.MsgIDHeader, dlq.ReplayMsgID(e.created(t), seq, 1))
	if _, err := e.js.PublishMsg(t.Context(), m); err != nil {
		t.Fatal(err)
	}

	rep, err := e.q.Replay(t.Context(), []uint64{seq})
	if err == nil || rep.Replayed != 0 || rep.Failed != 1 {
		t.Fatalf("replay over a taken id: %+v, %v; want it failed", rep, err)
	}
	if !errors.Is(err, jobs.ErrJobIDReused) || len(rep.Problems) != 1 || !strings.Contains(rep.Problems[0].Reason, "the dead letter is kept") {
		t.Errorf("error %q, problems %+v; want the error to match jobs.ErrJobIDReused and the reason to say the dead letter is kept", err, rep.Problems)
	}
	if left := e.dlqSeqs(t); !slices.Equal(left, []uint64{seq}) {
		t.Fatalf("dead letters left: %v; want %d kept", left, seq)
	}
}

// TestReplayFailureHidesASecretInTheSubject: a letter's subject names a
// tenant that is a secret key (a publisher's mistake, kept by the worker as
// the job's subject). The replay's report cleared it, but a republish that
// failed quoted the subject as stored, and the error reaches the
// operator's terminal and the console.
func TestReplayFailureHidesASecretInTheSubject(t *testing.T) {
	e := newEnv(t)
	secret := "sk_" + "live_" + strings.Repeat("Ab3", 12)
	seq := e.seed(t, letter{op: jobs.OpRevoke, class: jobs.ClassExhausted, jobID: "j1",
		subject: e.topo.Subjects.TenantJob(secret, jobs.OpRevoke),
		stored:  e.topo.Subjects.DeadLetter(jobs.RecordKey{Tenant: secret, Op: jobs.OpRevoke, JobID: "j1", Gen: "seed", Seq: 1}),
	})[0]
	if err := e.js.DeleteStream(t.Context(), e.topo.JobsStream); err != nil {
		t.Fatal(err)
	}
	rep, err := e.q.Replay(t.Context(), []uint64{seq})
	if err == nil || rep.Failed != 1 || len(rep.Problems) != 1 {
		t.Fatalf("replay with no jobs stream: %+v, %v; want it failed", rep, err)
	}
	for _, shown := range []string{err.Error(), rep.Problems[0].Reason, fmt.Sprintf("%+v", rep)} {
		if strings.Contains(shown, secret) {
			t.Errorf("the secret in the subject is shown: %s", shown)
		}
	}
}

// TestOtherTenantsLetterIsNotNamed: a queue scoped to one tenant is asked
// for a sequence that holds another tenant's dead letter. It answered "no
// such dead letter", and quoted the letter's subject: the other tenant's
// name and job id.
func TestOtherTenantsLetterIsNotNamed(t *testing.T) {
	e := newEnv(t)
	seq := e.seed(t, letter{op: jobs.OpRevoke, class: jobs.ClassExhausted, jobID: "offboard-ceo",
		subject: e.topo.Subjects.TenantJob("globex", jobs.OpRevoke),
		stored:  e.topo.Subjects.DeadLetter(jobs.RecordKey{Tenant: "globex", Op: jobs.OpRevoke, JobID: "offboard-ceo", Gen: "seed", Seq: 1}),
	})[0]
	topo := e.topo
	topo.Subjects.Tenant = "acme"
	q, err := dlq.Open(t.Context(), e.js, topo)
	if err != nil {
		t.Fatal(err)
	}
	_, err = q.Get(t.Context(), seq)
	if !errors.Is(err, dlq.ErrNotFound) {
		t.Fatalf("acme's queue read globex's letter: %v; want dlq.ErrNotFound", err)
	}
	if strings.Contains(err.Error(), "globex") || strings.Contains(err.Error(), "offboard-ceo") {
		t.Errorf("acme's queue names globex's letter: %v", err)
	}
}

// TestOtherTenantsLetterIsNotTold: a queue scoped to one tenant, asked for
// a sequence that holds another tenant's dead letter, said it was "not
// under" its scope, and for a sequence that holds nothing, that it was
// "replayed or purged already, or never there": the difference told the
// tenant which sequences hold other tenants' letters, and so when they
// fail. Both now read alike, as `dlq purge` says them.
func TestOtherTenantsLetterIsNotTold(t *testing.T) {
	e := newEnv(t)
	seqs := e.seed(t,
		letter{op: jobs.OpRevoke, class: jobs.ClassExhausted, jobID: "j1",
			subject: e.topo.Subjects.TenantJob("globex", jobs.OpRevoke),
			stored:  e.topo.Subjects.DeadLetter(jobs.RecordKey{Tenant: "globex", Op: jobs.OpRevoke, JobID: "j1", Gen: "seed", Seq: 1}),
		},
		letter{op: jobs.OpRevoke, class: jobs.ClassExhausted, jobID: "j2",
			subject: e.topo.Subjects.TenantJob("globex", jobs.OpRevoke),
			stored:  e.topo.Subjects.DeadLetter(jobs.RecordKey{Tenant: "globex", Op: jobs.OpRevoke, JobID: "j2", Gen: "seed", Seq: 2}),
		})
	if _, err := e.q.Purge(t.Context(), seqs[1:]); err != nil {
		t.Fatal(err)
	}
	topo := e.topo
	topo.Subjects.Tenant = "acme"
	q, err := dlq.Open(t.Context(), e.js, topo)
	if err != nil {
		t.Fatal(err)
	}
	said := map[string]string{}
	for _, tc := range []struct {
		name string
		seq  uint64
	}{
		{"another tenant's", seqs[0]},
		{"purged", seqs[1]},
		{"never stored", seqs[1] + 100},
	} {
		_, err := q.Get(t.Context(), tc.seq)
		if !errors.Is(err, dlq.ErrNotFound) {
			t.Fatalf("%s letter: %v; want dlq.ErrNotFound", tc.name, err)
		}
		said[tc.name] = strings.Replace(err.Error(), fmt.Sprint(tc.seq), "N", 1)
	}
	if said["another tenant's"] != said["purged"] || said["purged"] != said["never stored"] {
		t.Errorf("acme's queue tells another tenant's letter from none:\n%q", said)
	}
}

// TestReplayReportBoundsAForgedSubject: a letter written by hand names an
// original subject of 4,000 bytes. The replay's report (shown by publish,
// logged, and on the console) carried it whole; the reason beside it was
// already bounded.
func TestReplayReportBoundsAForgedSubject(t *testing.T) {
	e := newEnv(t)
	seq := e.seed(t, letter{op: jobs.OpRevoke, class: jobs.ClassExhausted, jobID: "j1",
		subject: e.topo.Subjects.Job(jobs.OpRevoke) + "." + strings.Repeat("x", 4000)})[0]
	rep, _ := e.q.Replay(t.Context(), []uint64{seq})
	if len(rep.Problems) != 1 {
		t.Fatalf("replay of a forged subject: %+v; want one problem", rep)
	}
	if n := len(rep.Problems[0].Subject); n > 200 {
		t.Errorf("the report's subject is %d bytes; want it bounded", n)
	}
}
