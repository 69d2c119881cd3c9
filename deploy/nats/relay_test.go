package nats_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
	"github.com/clerkjobs/clerkjobs/worker"
)

// ops may not publish a token job outside tenants (its reply_to could be
// ops' own inbox). It may publish other jobs, and an invalid one is
// dead-lettered with its body byte for byte: a get job carrying a token
// job's fields. NATS permissions never check a reply subject, and
// JetStream publishes its answers in the streams' account, where the jobs
// stream captures them: ops asking for that dead letter by direct get with
// the reply subject sessions.token.request, or creating a push consumer on
// the dead-letter stream delivering there, would have the letter's body
// stored as a token job and the token sent to ops' inbox. What stops the
// direct get (and a pull consumer's next message, sent to any reply
// subject alike) is the header every record is stored with
// (Nats-Expected-Stream: the record stream), which JetStream hands back
// with the letter, and which the jobs stream then refuses: without it the
// direct get mints a token for ops. A push consumer's deliveries are not
// stored by the jobs stream in this server version, header or not; the
// test keeps it so.
func TestOpsCannotRelayADeadLetterIntoATokenJob(t *testing.T) {
	pw := testenv.DeployPasswords(t)
	s := testenv.StartConfiguredServer(t, "server.conf")
	url := s.ClientURL()
	emu := emulator.NewServer()
	t.Cleanup(emu.Close)
	sess := emu.Emulator.UserSessionIDs(emu.Emulator.Seed(1, 1)[0])[0]
	clerk, err := clerkapi.New(clerkapi.WithSecretKey(emulator.DefaultSecretKey), clerkapi.WithBaseURL(emu.URL))
	if err != nil {
		t.Fatal(err)
	}
	wk := connect(t, url, "worker", pw["worker"], "")
	logs := &testenv.SyncBuffer{}
	cfg := workerConfig(logs)
	w, err := worker.New(wk.nc, clerk, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("worker Run: %v", err)
		}
		if t.Failed() {
			t.Logf("worker log:\n%s", logs.String())
		}
	})
	testenv.Eventually(t, 10*time.Second, "worker ready", func() bool { return w.Ready() == nil })
	subj := cfg.Topology.Subjects
	ops := connect(t, url, "ops", pw["ops"], "_INBOX.ops")
	tokenJobs := subj.TenantJob("", jobs.OpToken)

	for _, relay := range []string{"dg", "push"} {
		t.Run(relay, func(t *testing.T) {
			inbox := "_INBOX.ops.mint-" + relay
			mint, err := ops.nc.SubscribeSync(inbox)
			if err != nil {
				t.Fatal(err)
			}
			defer mint.Unsubscribe()
			// A get job with a field only token jobs have: dead-lettered
			// invalid, as it is. Its answer, the refusal, comes first.
			jobID := "relay-" + relay
			m := nats.NewMsg(subj.TenantJob("", jobs.OpGet))
			m.Data = []byte(`{"job_id":"` + jobID + `","session_id":"` + sess + `","reply_to":"` + inbox + `","expires_in_seconds":60}`)
			if _, err := ops.js.PublishMsg(ctxT(t), m); err != nil {
				t.Fatalf("ops publishes a get job: %v", err)
			}
			if _, err := mint.NextMsg(10 * time.Second); err != nil {
				t.Fatalf("the get job's answer: %v", err)
			}
			dlq, err := ops.js.Stream(ctxT(t), cfg.Topology.DeadLetterStream)
			if err != nil {
				t.Fatal(err)
			}
			var letter *jetstream.RawStreamMsg
			testenv.Eventually(t, 10*time.Second, "the dead letter", func() bool {
				letter, err = dlq.GetLastMsgForSubject(ctxT(t), subj.JobDeadLetters("", jobID, 0))
				return err == nil
			})
			calls := len(emu.Emulator.Calls())
			switch relay {
			case "dg":
				if err := ops.nc.PublishRequest("$JS.API.DIRECT.GET."+cfg.Topology.DeadLetterStream+"."+letter.Subject, tokenJobs, nil); err != nil {
					t.Fatal(err)
				}
			case "push":
				legacy, err := ops.nc.JetStream()
				if err != nil {
					t.Fatal(err)
				}
				if _, err := legacy.AddConsumer(cfg.Topology.DeadLetterStream, &nats.ConsumerConfig{
					Name: "relay", DeliverSubject: tokenJobs, FilterSubject: letter.Subject, AckPolicy: nats.AckNonePolicy,
				}); err != nil {
					t.Fatalf("ops creates a push consumer on the dead letters: %v", err)
				}
			}
			if got, err := mint.NextMsg(3 * time.Second); err == nil {
				t.Errorf("ops' inbox received an answer of %d bytes to a token job it never published: a dead letter relayed into the jobs stream", len(got.Data))
			}
			if n := len(emu.Emulator.Calls()) - calls; n != 0 {
				t.Errorf("%d Clerk calls after ops relayed a dead letter", n)
			}
		})
	}
}
