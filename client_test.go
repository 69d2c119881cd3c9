package clerkjobs_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/baggage"

	"github.com/clerkjobs/clerkjobs"
	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/clerkjobstest"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
	"github.com/clerkjobs/clerkjobs/worker"
)

func testContext(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// newClient is another client on the Env's server, with a connection of
// its own (a second process of the service, or another service).
func newClient(t *testing.T, env *clerkjobstest.Env, opts ...clerkjobs.Option) *clerkjobs.Client {
	t.Helper()
	nc, err := nats.Connect(env.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	c, err := clerkjobs.NewClient(nc, append([]clerkjobs.Option{clerkjobs.WithTopology(env.Topology)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestShortcuts(t *testing.T) {
	env := clerkjobstest.New(t,
		clerkjobstest.WithEmulator(emulator.WithTemplate("hasura", map[string]any{"role": "admin"}, time.Minute)),
		clerkjobstest.WithWorkerConfig(func(c *worker.Config) { c.Bulk.ReportEvery = 10 * time.Millisecond }))
	emu := env.Clerk.Emulator
	user := emu.CreateUser()
	ids := emu.CreateSessions(user, 4)
	ctx := testContext(t, 60*time.Second)
	c := env.Client

	rev, err := c.RevokeSession(ctx, ids[0], &clerkjobs.RevokeOptions{JobID: "offboard-" + ids[0]})
	if err != nil || rev.JobID != "offboard-"+ids[0] || rev.Session.ID != ids[0] || rev.Session.Status != clerkapi.StatusRevoked || rev.AlreadyRevoked {
		t.Fatalf("RevokeSession = %+v, %v", rev, err)
	}
	if s, _ := emu.Session(ids[0]); s.Status != clerkapi.StatusRevoked {
		t.Fatalf("session is %s after RevokeSession", s.Status)
	}
	// Revoking it again succeeds (Clerk, as the emulator, answers with the
	// session unchanged).
	rev, err = c.RevokeSession(ctx, ids[0], nil)
	if err != nil || rev.Session.Status != clerkapi.StatusRevoked {
		t.Fatalf("revoking again = %+v, %v; want the revoked session", rev, err)
	}

	// The options reach Clerk: a plain session token (the emulator's
	// 60 s) is a JWT too.
	for _, tc := range []struct {
		opts     *clerkjobs.TokenOptions
		lifetime int64
		role     string // the template's claim
	}{
		{nil, 60, ""},
		{&clerkjobs.TokenOptions{Template: "hasura", ExpiresIn: 2 * time.Minute}, 120, "admin"},
	} {
		tok, err := c.SessionToken(ctx, ids[1], tc.opts)
		if err != nil || strings.Count(tok.JWT(), ".") != 2 {
			t.Fatalf("SessionToken(%+v) = %v, %v; want a JWT", tc.opts, tok, err)
		}
		if got := testenv.JWTClaims(t, tok.JWT()); got.Exp-got.Iat != tc.lifetime || got.Role != tc.role {
			t.Errorf("SessionToken(%+v): lifetime %d s, role %q; want %d s, %q", tc.opts, got.Exp-got.Iat, got.Role, tc.lifetime, tc.role)
		}
	}

	// revoke_all: progress updates interleaved with the work, then the
	// summary; the latency makes the job last long enough to report.
	emu.SetFaults(emulator.Faults{Latency: 5 * time.Millisecond})
	bulkUser := emu.CreateUser()
	bulk := emu.CreateSessions(bulkUser, 200)
	var progress []jobs.Progress
	sum, err := c.RevokeAll(ctx, bulkUser, &clerkjobs.RevokeAllOptions{JobID: "takeover-1", Except: bulk[:2]}, func(p jobs.Progress) {
		progress = append(progress, p)
	})
	if err != nil || sum.Revoked != 198 || sum.Excepted != 2 || sum.UserID != bulkUser {
		t.Fatalf("RevokeAll = %+v, %v", sum, err)
	}
	if len(progress) == 0 {
		t.Fatal("no progress update reached the callback")
	}
	for i, p := range progress {
		if p.JobID != "takeover-1" || p.Outcome != jobs.InProgress || (i > 0 && p.Done < progress[i-1].Done) {
			t.Fatalf("progress update %d: %+v", i, p)
		}
	}
	for _, id := range bulk[2:] {
		if s, _ := emu.Session(id); s.Status != clerkapi.StatusRevoked {
			t.Fatalf("session %s is %s after RevokeAll", id, s.Status)
		}
	}
}

func TestInvalidJobIsRefusedBeforePublishing(t *testing.T) {
	env := clerkjobstest.New(t)
	ctx := testContext(t, 15*time.Second)
	_, err := env.Client.SessionToken(ctx, "sess_1/../x", nil)
	var invalid *jobs.InvalidError
	if !errors.Is(err, jobs.ErrInvalid) || !errors.As(err, &invalid) || invalid.Field != "/session_id" {
		t.Fatalf("SessionToken(bad id) = %v; want an invalid /session_id", err)
	}
	_, err = env.Client.SessionToken(ctx, "sess_1", &clerkjobs.TokenOptions{ExpiresIn: 1500 * time.Millisecond})
	if !errors.As(err, &invalid) || invalid.Field != "/expires_in_seconds" {
		t.Fatalf("SessionToken(1.5s) = %v; want an invalid /expires_in_seconds", err)
	}
	_, err = env.Client.Request(ctx, &jobs.RevokeArgs{SessionID: "sess_1", Common: jobs.Common{ReplyTo: "_INBOX.mine"}})
	if !errors.As(err, &invalid) || invalid.Field != "/reply_to" {
		t.Fatalf("Request with a reply_to = %v; want an invalid /reply_to", err)
	}
	s, _ := env.JetStream.Stream(ctx, env.Topology.JobsStream)
	if info, _ := s.Info(ctx); info.State.LastSeq != 0 {
		t.Fatalf("%d jobs were published", info.State.LastSeq)
	}
}

// TestSecretShapedJobIDIsRefusedBeforePublishing: a job id shaped like a
// secret fits the job id pattern, and the worker would have stored it in
// record subjects, headers and logs. The client refuses it before
// publishing, as an invalid /job_id whose error does not repeat it.
func TestSecretShapedJobIDIsRefusedBeforePublishing(t *testing.T) {
	key := "sk_" + "live_" + "abcdefghijklmnopqrstuvwxyz0123456789ABCD"
	jwt := "eyJ" + "hbGc.eyJz.c2lnbmF0dXJl"
	env := clerkjobstest.New(t)
	ctx := testContext(t, 15*time.Second)
	tests := []struct {
		name string
		id   string
		call func(id string) error
	}{
		{"Submit", key, func(id string) error {
			_, err := env.Client.Submit(ctx, &jobs.RevokeArgs{SessionID: "sess_1", Common: jobs.Common{JobID: id}})
			return err
		}},
		{"Request", jwt, func(id string) error {
			_, err := env.Client.Request(ctx, &jobs.GetArgs{SessionID: "sess_1", Common: jobs.Common{JobID: id}})
			return err
		}},
		{"RevokeSession", key, func(id string) error {
			_, err := env.Client.RevokeSession(ctx, "sess_1", &clerkjobs.RevokeOptions{JobID: id})
			return err
		}},
		{"Wait", jwt, func(id string) error {
			_, err := env.Client.Wait(ctx, id)
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call(tt.id)
			var invalid *jobs.InvalidError
			if !errors.Is(err, jobs.ErrInvalid) || !errors.As(err, &invalid) || invalid.Field != "/job_id" {
				t.Fatalf("err = %v; want an invalid /job_id", err)
			}
			if strings.Contains(err.Error(), tt.id) || !strings.Contains(err.Error(), "shaped like a secret") {
				t.Errorf("err = %v; want it to say why without the id", err)
			}
		})
	}
	s, _ := env.JetStream.Stream(ctx, env.Topology.JobsStream)
	if info, _ := s.Info(ctx); info.State.LastSeq != 0 {
		t.Fatalf("%d jobs were published", info.State.LastSeq)
	}
}

// A failure is a *JobError whose class says what to do, with Clerk's
// answer and the dead letter's sequence.
func TestFailures(t *testing.T) {
	env := clerkjobstest.New(t)
	emu := env.Clerk.Emulator
	ids := emu.CreateSessions(emu.CreateUser(), 2)
	ctx := testContext(t, 30*time.Second)

	emu.FailSession(ids[0], 404)
	_, err := env.Client.RevokeSession(ctx, ids[0], &clerkjobs.RevokeOptions{JobID: "gone-1"})
	var failed *clerkjobs.JobError
	if !errors.As(err, &failed) || !errors.Is(err, clerkjobs.ErrJobFailed) {
		t.Fatalf("revoke of a missing session = %v; want a *JobError", err)
	}
	if failed.Class != jobs.ClassPermanent || failed.Temporary() || failed.HTTPStatus != 404 || failed.ClerkCode == "" ||
		failed.JobID != "gone-1" || failed.Op != jobs.OpRevoke || failed.DeadLetterSeq == 0 || failed.Result == nil {
		t.Fatalf("JobError %+v", failed)
	}
	for _, want := range []string{"revoke job gone-1 failed (permanent)", "HTTP 404", "dead letter"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	dl, err := env.JetStream.Stream(ctx, env.Topology.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	m, err := dl.GetMsg(ctx, failed.DeadLetterSeq)
	if err != nil || m.Header.Get(jobs.HeaderJobID) != "gone-1" {
		t.Fatalf("dead letter %d: %v, %v", failed.DeadLetterSeq, m, err)
	}

	// Clerk failing for longer than the delivery budget: exhausted, which a
	// replay may cure.
	emu.SetFaults(emulator.Faults{ErrorRate: 1})
	_, err = env.Client.RevokeSession(ctx, ids[1], nil)
	if !errors.As(err, &failed) || failed.Class != jobs.ClassExhausted || !failed.Temporary() {
		t.Fatalf("revoke while Clerk fails = %v; want an exhausted *JobError", err)
	}
}

// A job the worker refuses never answers its inbox (its reply_to is the
// reason): Request finds its dead letter when the wait ends.
func TestInvalidToTheWorkerIsFoundInTheDeadLetters(t *testing.T) {
	env := clerkjobstest.New(t,
		clerkjobstest.WithWorkerConfig(func(c *worker.Config) { c.ReplyPrefixes = []string{"_INBOX.elsewhere."} }),
		clerkjobstest.WithClient(clerkjobs.WithTimeout(5*time.Second)))
	id := env.Clerk.Emulator.CreateSessions(env.Clerk.Emulator.CreateUser(), 1)[0]
	// t.Context has no deadline: the client's timeout (5s) bounds the wait.
	_, err := env.Client.SessionToken(t.Context(), id, nil)
	var failed *clerkjobs.JobError
	var invalid *jobs.InvalidError
	if !errors.As(err, &failed) || failed.Class != jobs.ClassInvalid || failed.Field != "/reply_to" || failed.DeadLetterSeq == 0 {
		t.Fatalf("token with a reply_to the worker refuses = %v; want an invalid *JobError", err)
	}
	if !errors.Is(err, jobs.ErrInvalid) || !errors.As(err, &invalid) || invalid.Field != "/reply_to" {
		t.Errorf("errors.As(%v, *jobs.InvalidError) = %+v", err, invalid)
	}
	if n := len(env.Clerk.Emulator.Calls()); n != 0 {
		t.Errorf("%d Clerk calls for a job refused before it ran", n)
	}
}

// A job published again under the same id is the same job when only its
// inbox differs: its answer went to the first request, so Request waits
// for its record. Another job under the same id is refused, never dropped.
func TestDuplicates(t *testing.T) {
	env := clerkjobstest.New(t, clerkjobstest.WithoutWorker())
	emu := env.Clerk.Emulator
	user := emu.CreateUser()
	ids := emu.CreateSessions(user, 2)
	ctx := testContext(t, 30*time.Second)
	c := env.Client

	first, err := c.Submit(ctx, &jobs.RevokeArgs{Common: jobs.Common{JobID: "incident-7"}, SessionID: ids[0]})
	if err != nil || first.Duplicate || first.Seq == 0 {
		t.Fatalf("Submit = %+v, %v", first, err)
	}
	again, err := c.Submit(ctx, &jobs.RevokeArgs{Common: jobs.Common{JobID: "incident-7"}, SessionID: ids[0]})
	if err != nil || !again.Duplicate || again.Seq != first.Seq {
		t.Fatalf("the same job again = %+v, %v; want the harmless duplicate of seq %d", again, err, first.Seq)
	}
	_, err = c.Submit(ctx, &jobs.RevokeArgs{Common: jobs.Common{JobID: "incident-7"}, SessionID: ids[1]})
	var de *jobs.DuplicateError
	if !errors.Is(err, jobs.ErrJobIDReused) || !errors.As(err, &de) || de.Seq != first.Seq {
		t.Fatalf("another job under the same id = %v; want ErrJobIDReused naming seq %d", err, first.Seq)
	}
	if _, err := c.Request(ctx, &jobs.RevokeArgs{Common: jobs.Common{JobID: "incident-7"}, SessionID: ids[1]}); !errors.Is(err, jobs.ErrJobIDReused) {
		t.Fatalf("Request of another job under the same id = %v; want ErrJobIDReused", err)
	}

	// The same job requested again (from a new inbox) while it waits: the
	// answer comes from its record once the worker ran it.
	var submitted clerkjobs.Submitted
	type outcome struct {
		r   *clerkjobs.Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		r, err := c.Request(ctx, &jobs.RevokeArgs{Common: jobs.Common{JobID: "incident-7"}, SessionID: ids[0]},
			clerkjobs.OnSubmitted(func(s clerkjobs.Submitted) { submitted = s }))
		done <- outcome{r, err}
	}()
	env.StartWorker(t)
	o := <-done
	if o.err != nil || o.r.JobID != "incident-7" || o.r.Outcome != jobs.Succeeded || o.r.StreamSeq != first.Seq || !submitted.Duplicate {
		t.Fatalf("Request of the same job = %+v, %v (submitted %+v)", o.r, o.err, submitted)
	}
	// After it ran, the stored job is gone from the work queue: its record
	// still tells the same job from another.
	if _, err := c.Submit(ctx, &jobs.RevokeArgs{Common: jobs.Common{JobID: "incident-7"}, SessionID: ids[0]}); err != nil {
		t.Errorf("the same job after it ran = %v; want the harmless duplicate", err)
	}
	if _, err := c.Submit(ctx, &jobs.RevokeArgs{Common: jobs.Common{JobID: "incident-7"}, SessionID: ids[1]}); !errors.Is(err, jobs.ErrJobIDReused) {
		t.Errorf("another job after the first ran = %v; want ErrJobIDReused", err)
	}
	if s, _ := emu.Session(ids[1]); s.Status != clerkapi.StatusActive {
		t.Errorf("the refused job ran: session %s is %s", ids[1], s.Status)
	}

	// A token's secret went to the first request: asking again under its id
	// says so rather than return a result without it.
	if _, err := c.SessionToken(ctx, ids[1], &clerkjobs.TokenOptions{JobID: "tok-1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SessionToken(ctx, ids[1], &clerkjobs.TokenOptions{JobID: "tok-1"}); !errors.Is(err, clerkjobs.ErrSecretDeliveredElsewhere) {
		t.Errorf("the same token job again = %v; want ErrSecretDeliveredElsewhere", err)
	}
}

// What else arrives on the inbox (not JSON, another job's answer, an
// update of a kind the client does not know) is skipped; progress updates
// go to the callback; the answer is returned.
func TestStraysOnTheInbox(t *testing.T) {
	env := clerkjobstest.New(t, clerkjobstest.WithoutWorker())
	emu := env.Clerk.Emulator
	id := emu.CreateSessions(emu.CreateUser(), 1)[0]
	ctx := testContext(t, 30*time.Second)

	var mu sync.Mutex
	var progress []jobs.Progress
	type outcome struct {
		r   *clerkjobs.Result
		err error
	}
	submitted := make(chan clerkjobs.Submitted, 1)
	done := make(chan outcome, 1)
	go func() {
		r, err := env.Client.Request(ctx, &jobs.RevokeArgs{Common: jobs.Common{JobID: "mine"}, SessionID: id},
			clerkjobs.OnSubmitted(func(s clerkjobs.Submitted) { submitted <- s }),
			clerkjobs.OnProgress(func(p jobs.Progress) { mu.Lock(); progress = append(progress, p); mu.Unlock() }))
		done <- outcome{r, err}
	}()
	s := <-submitted
	// The job waits in the stream (no worker yet): its reply_to is the
	// client's inbox.
	stream, err := env.JetStream.Stream(ctx, env.Topology.JobsStream)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := stream.GetMsg(ctx, s.Seq)
	if err != nil {
		t.Fatal(err)
	}
	var job jobs.RevokeArgs
	if err := json.Unmarshal(stored.Data, &job); err != nil || !strings.HasPrefix(job.ReplyTo, "_INBOX.") {
		t.Fatalf("stored job %s", stored.Data)
	}
	strays := []string{
		`not json at all`,
		`{"job_id":"other","op":"revoke","outcome":"succeeded","finished_at":"2026-01-01T00:00:00Z","duration_ms":1}`,
		`{"job_id":"mine","op":"revoke","outcome":"queued"}`,
		`{"job_id":"mine","op":"revoke","outcome":"in_progress","progress":{"user_id":"u","revoked":1,"already_gone":0,"failed":0,"excepted":0,"passes":1},"total":2,"done":1}`,
	}
	for _, m := range strays {
		if err := env.Conn.Publish(job.ReplyTo, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	if err := env.Conn.Flush(); err != nil {
		t.Fatal(err)
	}
	env.StartWorker(t)
	o := <-done
	if o.err != nil || o.r.JobID != "mine" || o.r.Outcome != jobs.Succeeded || o.r.Worker == "" {
		t.Fatalf("Request = %+v, %v; want the worker's answer", o.r, o.err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(progress) != 1 || progress[0].Done != 1 || progress[0].Total != 2 {
		t.Errorf("progress %+v; want the one update for this job", progress)
	}
}

// A service that restarted while waiting finds out what happened with
// Wait: a result, a failure, or nothing yet.
func TestWaitAfterARestart(t *testing.T) {
	env := clerkjobstest.New(t, clerkjobstest.WithoutWorker())
	emu := env.Clerk.Emulator
	ids := emu.CreateSessions(emu.CreateUser(), 2)
	emu.FailSession(ids[1], 404)
	ctx := testContext(t, 30*time.Second)

	before := newClient(t, env)
	for i, id := range ids {
		if _, err := before.Submit(ctx, &jobs.RevokeArgs{Common: jobs.Common{JobID: fmt.Sprintf("job-%d", i)}, SessionID: id}); err != nil {
			t.Fatal(err)
		}
	}
	// The process dies; a new one starts while the worker has not run the
	// jobs yet: Wait waits for them.
	after := newClient(t, env)
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	_, err := after.Wait(short, "job-0")
	var nr *clerkjobs.NoResultError
	if !errors.Is(err, clerkjobs.ErrNoResult) || !errors.As(err, &nr) || nr.JobID != "job-0" || nr.Submitted != nil {
		t.Fatalf("Wait before the job ran = %v; want ErrNoResult", err)
	}
	env.StartWorker(t)
	r, err := after.Wait(ctx, "job-0")
	if err != nil || r.Outcome != jobs.Succeeded || r.JobID != "job-0" || r.Op != jobs.OpRevoke {
		t.Fatalf("Wait(job-0) = %+v, %v", r, err)
	}
	var sess clerkapi.Session
	if err := json.Unmarshal(r.Result, &sess); err != nil || sess.ID != ids[0] {
		t.Errorf("Wait(job-0) answer %s", r.Result)
	}
	_, err = after.Wait(ctx, "job-1")
	var failed *clerkjobs.JobError
	if !errors.As(err, &failed) || failed.Class != jobs.ClassPermanent || failed.HTTPStatus != 404 || failed.DeadLetterSeq == 0 {
		t.Fatalf("Wait(job-1) = %v; want the permanent failure with its dead letter", err)
	}
	if _, err := after.Wait(ctx, "has space"); !errors.Is(err, jobs.ErrInvalid) {
		t.Errorf("Wait(bad id) = %v; want ErrInvalid", err)
	}
}

// Two tenants: jobs on their own subjects, answers under their own inbox
// prefix, and the same job id used by both is two jobs.
func TestTenants(t *testing.T) {
	env := clerkjobstest.New(t)
	emu := env.Clerk.Emulator
	a, b := emu.CreateUser(), emu.CreateUser()
	emu.CreateSessions(a, 2)
	emu.CreateSessions(b, 2)
	ctx := testContext(t, 30*time.Second)
	ca := newClient(t, env, clerkjobs.WithTenant("svc_a"))
	cb := newClient(t, env, clerkjobs.WithTenant("svc_b"))

	var subjects []string
	for _, x := range []struct {
		c    *clerkjobs.Client
		user string
	}{{ca, a}, {cb, b}} {
		r, err := x.c.Request(ctx, &jobs.RevokeAllArgs{Common: jobs.Common{JobID: "incident-77"}, UserID: x.user},
			clerkjobs.OnSubmitted(func(s clerkjobs.Submitted) { subjects = append(subjects, s.Subject) }))
		if err != nil || r.Outcome != jobs.Succeeded {
			t.Fatalf("revoke_all incident-77 of %s = %+v, %v", x.user, r, err)
		}
		for _, s := range emu.UserSessionIDs(x.user) {
			if st, _ := emu.Session(s); st.Status != clerkapi.StatusRevoked {
				t.Errorf("session %s of %s is %s", s, x.user, st.Status)
			}
		}
	}
	if want := []string{"sessions.tenant.svc_a.revoke_all", "sessions.tenant.svc_b.revoke_all"}; fmt.Sprint(subjects) != fmt.Sprint(want) {
		t.Errorf("published on %v, want %v", subjects, want)
	}
	// Each tenant's Wait finds its own record.
	for tenant, c := range map[string]*clerkjobs.Client{"svc_a": ca, "svc_b": cb} {
		r, err := c.Wait(ctx, "incident-77")
		if err != nil || r.Tenant != tenant {
			t.Errorf("%s: Wait = %+v, %v", tenant, r, err)
		}
	}
	// The answers came to inboxes under _INBOX.<tenant>: the worker
	// answers a tenant's job nowhere else.
	if c, err := clerkjobs.NewClient(env.Conn, clerkjobs.WithTenant("svc_a")); err != nil || c.Topology().Subjects.Tenant != "svc_a" {
		t.Errorf("NewClient(WithTenant) = %v", err)
	}
}

// TestTenantInboxOutsideTheTenantIsRefused: the worker answers a tenant's
// job only under <reply prefix><tenant>., and dead-letters as invalid a
// job whose reply_to is elsewhere. A client of tenant svc_a with
// WithInboxPrefix("_INBOX.svc_b") published every Request with such a
// reply_to: each one was dead-lettered, and the caller waited its whole
// timeout before hearing why. Now Request and NewReplies refuse such an
// inbox before anything is published, saying which option to fix.
func TestTenantInboxOutsideTheTenantIsRefused(t *testing.T) {
	env := clerkjobstest.New(t)
	emu := env.Clerk.Emulator
	sess := emu.CreateSessions(emu.CreateUser(), 1)[0]
	ctx := testContext(t, 30*time.Second)
	for _, prefix := range []string{"_INBOX.svc_b", "_INBOX", "svc_a_inbox"} {
		t.Run(prefix, func(t *testing.T) {
			c := newClient(t, env, clerkjobs.WithTenant("svc_a"), clerkjobs.WithInboxPrefix(prefix))
			start := time.Now()
			_, err := c.RevokeSession(ctx, sess, &clerkjobs.RevokeOptions{JobID: "wrong-inbox"})
			var invalid *jobs.InvalidError
			if !errors.As(err, &invalid) || invalid.Field != "/reply_to" || !strings.Contains(err.Error(), "WithInboxPrefix") {
				t.Fatalf("RevokeSession with inboxes under %s = %v after %s; want an invalid /reply_to naming WithInboxPrefix", prefix, err, time.Since(start).Round(time.Millisecond))
			}
			if _, err := c.NewReplies(ctx); !errors.Is(err, jobs.ErrInvalid) {
				t.Errorf("NewReplies with inboxes under %s = %v; want it refused", prefix, err)
			}
		})
	}
	s, _ := env.JetStream.Stream(ctx, env.Topology.JobsStream)
	if info, _ := s.Info(ctx); info.State.LastSeq != 0 {
		t.Fatalf("%d jobs were published", info.State.LastSeq)
	}
	// The tenant's own inboxes, under any prefix, work.
	c := newClient(t, env, clerkjobs.WithTenant("svc_a"), clerkjobs.WithInboxPrefix("_R.svc_a.x"), clerkjobs.WithTimeout(time.Second))
	if _, err := c.NewReplies(ctx); err != nil {
		t.Errorf("NewReplies under _R.svc_a.x = %v", err)
	}
}

func TestUnavailable(t *testing.T) {
	env := clerkjobstest.New(t, clerkjobstest.WithoutWorker())
	ctx := testContext(t, 15*time.Second)
	// A prefix no stream captures.
	c := newClient(t, env, clerkjobs.WithSubjectPrefix("elsewhere"))
	_, err := c.Submit(ctx, &jobs.RevokeArgs{SessionID: "sess_1"})
	if !errors.Is(err, clerkjobs.ErrUnavailable) || !errors.Is(err, jetstream.ErrNoStreamResponse) || !strings.Contains(err.Error(), "elsewhere.revoke") {
		t.Errorf("Submit without a stream = %v; want ErrUnavailable naming the subject", err)
	}
	// A closed connection.
	nc, err := nats.Connect(env.URL)
	if err != nil {
		t.Fatal(err)
	}
	closed, err := clerkjobs.NewClient(nc)
	if err != nil {
		t.Fatal(err)
	}
	nc.Close()
	if _, err := closed.RevokeSession(ctx, "sess_1", nil); !errors.Is(err, clerkjobs.ErrUnavailable) {
		t.Errorf("RevokeSession on a closed connection = %v; want ErrUnavailable", err)
	}
	if _, err := closed.Wait(ctx, "job-1"); !errors.Is(err, clerkjobs.ErrNoResult) || !errors.Is(err, clerkjobs.ErrUnavailable) {
		t.Errorf("Wait on a closed connection = %v; want no result because NATS is unavailable", err)
	}
}

func TestNewClientRefusesBadOptions(t *testing.T) {
	env := clerkjobstest.New(t, clerkjobstest.WithoutWorker())
	for _, tt := range []struct {
		name string
		opts []clerkjobs.Option
		want string
	}{
		{"tenant", []clerkjobs.Option{clerkjobs.WithTenant("svc a")}, "tenant"},
		{"prefix", []clerkjobs.Option{clerkjobs.WithSubjectPrefix("a.*")}, "subject prefix"},
		{"inbox under the jobs prefix", []clerkjobs.Option{clerkjobs.WithInboxPrefix("sessions.inbox")}, "inbox prefix"},
		{"inbox with a wildcard", []clerkjobs.Option{clerkjobs.WithInboxPrefix("_INBOX.>")}, "inbox prefix"},
		// Its inboxes would pass 255 characters, and every Request failed
		// on a /reply_to its caller never set.
		{"inbox prefix too long", []clerkjobs.Option{clerkjobs.WithInboxPrefix("_INBOX." + strings.Repeat("a", 226))}, "inbox prefix of 233 characters"},
		{"timeout", []clerkjobs.Option{clerkjobs.WithTimeout(0)}, "timeout"},
		{"publish timeout", []clerkjobs.Option{clerkjobs.WithPublishTimeout(-time.Second)}, "publish timeout"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := clerkjobs.NewClient(env.Conn, tt.opts...); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewClient = %v; want an error about the %s", err, tt.want)
			}
		})
	}
	if _, err := clerkjobs.NewClient(nil); err == nil {
		t.Error("NewClient(nil) succeeded")
	}
}

// TestSubmitRefusedByMaxPayloadIsNotUnavailable: a job larger than the
// connection takes in one message (max_payload) is never sent. Submit
// said "NATS unavailable … it may or may not be stored: publishing it
// again with the same job id is safe", for a job refused every time.
// Its advice was to raise the server's max_payload, also for a tenant,
// whose account's max_payload is the jobs stream's own limit (deploy/nats):
// raising it would only have the stream refuse the job. A job (a body
// near jobs.MaxJobBytes, 7.5 KiB of trace baggage) over that limit too is
// sent over a max_payload below it and over one equal to it: raising
// max_payload was advised below it, and the job, refused again, said
// raising it would not help. One within the limit is told to raise it.
func TestSubmitRefusedByMaxPayloadIsNotUnavailable(t *testing.T) {
	b := bigBaggage(t)
	for _, tc := range []struct {
		name, maxPayload string
		pad              int  // the job's body, about
		baggage          bool // 7.5 KiB more in its headers
		want, not        []string
	}{
		{"below the jobs stream's limit, a job within it", "16KB", 20000, false,
			[]string{"max_payload 16384 bytes", fmt.Sprintf("max message size (%d bytes", jobs.MaxJobMessageBytes), fmt.Sprintf("raise max_payload (the server's, or the account's) to %d", jobs.MaxJobMessageBytes)}, nil},
		{"below the jobs stream's limit, a job over it too", "16KB", jobs.MaxJobBytes - 300, true,
			[]string{"max_payload 16384 bytes", fmt.Sprintf("max message size (%d bytes", jobs.MaxJobMessageBytes), "would not help", "less trace baggage"}, []string{"raise max_payload"}},
		{"a tenant's: the jobs stream's limit", fmt.Sprint(jobs.MaxJobMessageBytes), jobs.MaxJobBytes - 300, true,
			[]string{fmt.Sprintf("max_payload %d bytes", jobs.MaxJobMessageBytes), "would not help", "less trace baggage"}, []string{"raise max_payload", "raise the server's max_payload"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nc := testenv.ConnectWithMaxPayload(t, tc.maxPayload)
			c, err := clerkjobs.NewClient(nc)
			if err != nil {
				t.Fatal(err)
			}
			a := &jobs.RefreshArgs{Common: jobs.Common{ReplyTo: "_INBOX.x"}, SessionID: "sess_1", ExpiredToken: "e", RefreshToken: "r", RequestOrigin: "o",
				RequestHeaders: map[string]any{"X-Pad": strings.Repeat("p", tc.pad)}}
			ctx := testContext(t, 30*time.Second)
			if tc.baggage {
				ctx = baggage.ContextWithBaggage(ctx, b)
			}
			_, err = c.Submit(ctx, a)
			if err == nil || errors.Is(err, clerkjobs.ErrUnavailable) || !errors.Is(err, jobs.ErrInvalid) || !strings.Contains(err.Error(), "not sent") {
				t.Fatalf("Submit of a job over max_payload = %v; want it said not sent, jobs.ErrInvalid and not ErrUnavailable", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Submit = %v\nwant it to say %q", err, w)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(err.Error(), n) {
					t.Errorf("Submit = %v\nwant it not to say %q", err, n)
				}
			}
		})
	}
}

// TestInboxPrefixOverridesTheConnections: a client's inboxes are under
// WithInboxPrefix when it is given, whatever the connection's own prefix:
// a connection's prefix too long for a reply_to was refused beside one
// that would never be used.
func TestInboxPrefixOverridesTheConnections(t *testing.T) {
	env := clerkjobstest.New(t, clerkjobstest.WithoutWorker())
	long := "_INBOX." + strings.Repeat("a", 240)
	nc, err := nats.Connect(env.Conn.ConnectedUrl(), nats.CustomInboxPrefix(long))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := clerkjobs.NewClient(nc, clerkjobs.WithInboxPrefix("_INBOX.svc")); err != nil {
		t.Errorf("NewClient with a usable inbox prefix on a connection whose own is too long: %v", err)
	}
	if _, err := clerkjobs.NewClient(nc); err == nil || !strings.Contains(err.Error(), "inbox prefix of 247 characters") {
		t.Errorf("NewClient on a connection whose inbox prefix is too long = %v; want it refused", err)
	}
}

const attackerJWT = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhdHRhY2tlciJ9.forged"

// TestForgedAnswersAreIgnored: anyone who may publish to the requester's
// inbox once made RevokeSession report success from an answer saying op
// get, tenant svc_b, stream_seq 4242, and SessionToken return an
// attacker's JWT from an answer saying op revoke: only the job id was
// checked. Now an answer must match the job's op, the client's tenant and
// the sequence JetStream gave the job; the forgeries are ignored, the wait
// goes on, and the real worker's answer is returned.
func TestForgedAnswersAreIgnored(t *testing.T) {
	env := clerkjobstest.New(t, clerkjobstest.WithoutWorker())
	emu := env.Clerk.Emulator
	user := emu.CreateUser()
	sess := emu.CreateSessions(user, 6)
	ctx := testContext(t, 60*time.Second)

	// forge is the answer a forger sends, given the job as stored (its
	// stream sequence is in plain sight of whoever reads the stream).
	type forge func(id string, seq uint64) string
	session := func(id string) string {
		return `{"object":"session","id":"` + id + `","status":"revoked","user_id":"` + user + `"}`
	}
	answer := func(jobID, op, tenant string, seq uint64, result, secret string) string {
		b, _ := json.Marshal(map[string]any{"job_id": jobID, "op": op, "tenant": tenant, "outcome": "succeeded", "stream_seq": seq,
			"finished_at": time.Now(), "duration_ms": 1, "attempts": 1, "deliveries": 1, "worker": "forger",
			"result": json.RawMessage(result), "secret": json.RawMessage(secret)})
		return string(b)
	}
	tokenSecret := `{"object":"token","jwt":"` + attackerJWT + `"}`
	cases := []struct {
		name  string
		op    jobs.Op
		forge forge
	}{
		{"revoke answered as a get", jobs.OpRevoke, func(id string, seq uint64) string {
			return answer(id, "get", "", seq, session(sess[0]), "null")
		}},
		{"revoke answered for another tenant", jobs.OpRevoke, func(id string, seq uint64) string {
			return answer(id, "revoke", "svc_b", seq, session(sess[1]), "null")
		}},
		{"revoke answered with another sequence", jobs.OpRevoke, func(id string, seq uint64) string {
			return answer(id, "revoke", "", 4242, session(sess[2]), "null")
		}},
		{"token answered as a revoke", jobs.OpToken, func(id string, seq uint64) string {
			return answer(id, "revoke", "", seq, "null", tokenSecret)
		}},
		{"token answered with another sequence", jobs.OpToken, func(id string, seq uint64) string {
			return answer(id, "token", "", seq+1000, "null", tokenSecret)
		}},
	}
	type outcome struct {
		revoked *clerkjobs.Revocation
		token   clerkjobs.Token
		err     error
	}
	done := make([]chan outcome, len(cases))
	for i, tc := range cases {
		done[i] = make(chan outcome, 1)
		jobID := fmt.Sprintf("forged-%d", i)
		go func() {
			var o outcome
			switch tc.op {
			case jobs.OpRevoke:
				o.revoked, o.err = env.Client.RevokeSession(ctx, sess[i], &clerkjobs.RevokeOptions{JobID: jobID})
			default:
				o.token, o.err = env.Client.SessionToken(ctx, sess[i], &clerkjobs.TokenOptions{JobID: jobID})
			}
			done[i] <- o
		}()
	}
	// The forger reads each job's inbox and sequence from the stream (no
	// worker yet: the jobs wait there) and answers first.
	stream, err := env.JetStream.Stream(ctx, env.Topology.JobsStream)
	if err != nil {
		t.Fatal(err)
	}
	for i, tc := range cases {
		jobID := fmt.Sprintf("forged-%d", i)
		replyTo, seq := storedJob(ctx, t, stream, jobID)
		if err := env.Conn.Publish(replyTo, []byte(tc.forge(jobID, seq))); err != nil {
			t.Fatal(err)
		}
	}
	if err := env.Conn.Flush(); err != nil {
		t.Fatal(err)
	}
	// Nothing forged ends a wait.
	time.Sleep(200 * time.Millisecond)
	for i, tc := range cases {
		select {
		case o := <-done[i]:
			t.Fatalf("%s: returned before the worker answered: %+v", tc.name, o)
		default:
		}
	}
	env.StartWorker(t)
	for i, tc := range cases {
		o := <-done[i]
		switch {
		case o.err != nil:
			t.Errorf("%s: %v", tc.name, o.err)
		case tc.op == jobs.OpRevoke && (o.revoked.Session.ID != sess[i] || o.revoked.Session.Status != clerkapi.StatusRevoked):
			t.Errorf("%s: %+v, want the worker's answer about %s", tc.name, o.revoked, sess[i])
		case tc.op == jobs.OpToken && (o.token.JWT() == attackerJWT || !strings.HasPrefix(o.token.JWT(), "eyJ")):
			t.Errorf("%s: the forger's token was returned", tc.name)
		}
	}
	if got, _ := emu.Session(sess[0]); got.Status != clerkapi.StatusRevoked {
		t.Errorf("session %s is %s: the revoke the forger reported done did not run", sess[0], got.Status)
	}
}

// storedJob waits for the job jobID in the jobs stream and returns its
// reply_to and sequence.
func storedJob(ctx context.Context, t *testing.T, stream jetstream.Stream, jobID string) (string, uint64) {
	t.Helper()
	for {
		info, err := stream.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for s := info.State.FirstSeq; s <= info.State.LastSeq && s > 0; s++ {
			m, err := stream.GetMsg(ctx, s)
			if err != nil {
				continue
			}
			var c jobs.Common
			if json.Unmarshal(m.Data, &c) == nil && c.JobID == jobID {
				return c.ReplyTo, s
			}
		}
		if ctx.Err() != nil {
			t.Fatal(ctx.Err())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestJobErrorIsRedacted: a failure's message, from the worker's answer
// (which may quote Clerk, or a proxy that echoed the request), went into
// JobError.Error and so into callers' logs: a "Bearer sk_live_..." and a
// JWT were seen there. Now nothing shaped like a secret is left in the
// error's text nor in its fields, JobError.Result (the failure as the
// worker reported it, which kept the texts as they came) included.
func TestJobErrorIsRedacted(t *testing.T) {
	env := clerkjobstest.New(t, clerkjobstest.WithoutWorker())
	ctx := testContext(t, 30*time.Second)
	stream, err := env.JetStream.Stream(ctx, env.Topology.JobsStream)
	if err != nil {
		t.Fatal(err)
	}
	for i, tc := range []struct{ name, text, secret string }{
		{"jwt", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyXzEifQ.c2lnbmF0dXJlLXBhcnQ", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyXzEifQ"},
		{"live key", "sk_" + "live_0123456789abcdefABCDEF", "sk_" + "live_0123456789abcdef"},
		{"test key", "sk_test_0123456789abcdefABCDEF", "sk_test_0123456789abcdef"},
		{"bearer key", "Bearer sk_" + "live_0123456789abcdefABCDEF", "0123456789abcdef"},
		{"bearer token", "Bearer abcdefghijklmnopqrstuvwxyz0123456789", "abcdefghijklmnopqrstuvwxyz0123456789"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			jobID := fmt.Sprintf("leak-%d", i)
			errc := make(chan error, 1)
			go func() {
				_, err := env.Client.RevokeSession(ctx, "sess_1", &clerkjobs.RevokeOptions{JobID: jobID})
				errc <- err
			}()
			replyTo, seq := storedJob(ctx, t, stream, jobID)
			msg := "proxy echoed Authorization: " + tc.text
			b, _ := json.Marshal(jobs.Result{JobID: jobID, Op: jobs.OpRevoke, Outcome: jobs.Failed, StreamSeq: seq, FinishedAt: time.Now(),
				Error: &jobs.ErrorInfo{Class: jobs.ClassPermanent, Message: msg, HTTPStatus: 502, ClerkCode: "proxy", ClerkMessage: msg}})
			if err := env.Conn.Publish(replyTo, b); err != nil {
				t.Fatal(err)
			}
			err := <-errc
			var je *clerkjobs.JobError
			if !errors.As(err, &je) {
				t.Fatalf("RevokeSession: %v, want a *JobError", err)
			}
			asJSON, _ := json.Marshal(je) // a structured logger's rendering
			for name, s := range map[string]string{"Error()": err.Error(), "Message": je.Message, "ClerkMessage": je.ClerkMessage,
				"Result.Error.Message": je.Result.Error.Message, "Result.Error.ClerkMessage": je.Result.Error.ClerkMessage, "as JSON": string(asJSON)} {
				if strings.Contains(s, tc.secret) || !strings.Contains(s, "[REDACTED]") {
					t.Errorf("%s = %q: the secret is not redacted", name, s)
				}
			}
		})
	}
}

// TestRequestReportsIgnoredAnswers: a request that times out after
// ignoring a forged answer says so, by count, without repeating what the
// forgery said: an operator learns that something other than a worker
// publishes to the inbox.
func TestRequestReportsIgnoredAnswers(t *testing.T) {
	env := clerkjobstest.New(t, clerkjobstest.WithoutWorker())
	sess := env.Clerk.Emulator.CreateSessions(env.Clerk.Emulator.CreateUser(), 1)[0]
	ctx := testContext(t, 30*time.Second)
	type outcome struct {
		token clerkjobs.Token
		err   error
	}
	done := make(chan outcome, 1)
	go func() {
		wctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		tok, err := env.Client.SessionToken(wctx, sess, &clerkjobs.TokenOptions{JobID: "ignored-1"})
		done <- outcome{tok, err}
	}()
	stream, err := env.JetStream.Stream(ctx, env.Topology.JobsStream)
	if err != nil {
		t.Fatal(err)
	}
	replyTo, seq := storedJob(ctx, t, stream, "ignored-1")
	forged := `{"job_id":"ignored-1","op":"token","tenant":"","outcome":"succeeded","stream_seq":` + fmt.Sprint(seq+1) +
		`,"secret":{"object":"token","jwt":"` + attackerJWT + `"}}`
	for _, m := range []string{forged, "not json"} {
		if err := env.Conn.Publish(replyTo, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	o := <-done
	var nr *clerkjobs.NoResultError
	if !errors.As(o.err, &nr) || o.token.JWT() != "" {
		t.Fatalf("want a NoResultError and no token, got %+v, %v", o.token, o.err)
	}
	if nr.Ignored != 2 || !strings.Contains(o.err.Error(), "2 other message(s) on its reply inbox ignored") {
		t.Errorf("Ignored %d, error %q: want 2, said", nr.Ignored, o.err)
	}
	if strings.Contains(o.err.Error(), attackerJWT) || strings.Contains(o.err.Error(), "not json") {
		t.Errorf("the error repeats what an ignored message said: %q", o.err)
	}
}

// TestFloodedReplyInbox: whoever may publish to a reply inbox cannot make
// the requester hold without bound what it sends. The inbox keeps 64 MiB
// and 65,536 messages unread at most and drops the rest, counted; an answer
// dropped so is lost, but the job's record is not, and Next reads on past
// the drop.
func TestFloodedReplyInbox(t *testing.T) {
	env := clerkjobstest.New(t, clerkjobstest.WithoutWorker())
	sess := env.Clerk.Emulator.CreateSessions(env.Clerk.Emulator.CreateUser(), 1)[0]
	ctx := testContext(t, 60*time.Second)
	rep, err := env.Client.NewReplies(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer rep.Close()
	s, err := env.Client.Submit(ctx, &jobs.RevokeArgs{Common: jobs.Common{JobID: "flooded-1", ReplyTo: rep.Subject()}, SessionID: sess})
	if err != nil {
		t.Fatal(err)
	}
	// flood sends n messages of size bytes that nobody reads, and returns
	// how many the inbox has dropped once they have all arrived (once the
	// count stops moving).
	flood := func(n, size int) int {
		for range n {
			if err := env.Conn.Publish(rep.Subject(), make([]byte, size)); err != nil {
				t.Fatal(err)
			}
		}
		if err := env.Conn.Flush(); err != nil {
			t.Fatal(err)
		}
		dropped := 0
		for stable := 0; dropped == 0 || stable < 30; stable++ {
			if ctx.Err() != nil {
				t.Fatalf("the inbox took %d messages of %d bytes unread and dropped nothing", n, size)
			}
			if d := rep.Dropped(); d != dropped {
				dropped, stable = d, 0
			}
			time.Sleep(10 * time.Millisecond)
		}
		return dropped
	}
	const big, small = 100, 65_536
	if d := flood(big, 1_000_000); d < 33 || d > 40 {
		t.Fatalf("%d of 100 MB dropped; want the 33 or so beyond 64 MiB", d)
	}
	before := flood(small, 1) // full by count too: nothing more fits
	env.StartWorker(t)
	res, err := env.Client.WaitSubmitted(ctx, s)
	if err != nil || res.Outcome != jobs.Succeeded {
		t.Fatalf("the job's record: %+v, %v; want it succeeded", res, err)
	}
	for rep.Dropped() == before { // the answer comes just after the record
		if ctx.Err() != nil {
			t.Fatalf("the answer was not dropped: %d dropped", rep.Dropped())
		}
		time.Sleep(10 * time.Millisecond)
	}
	nctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	got, err := rep.Next(nctx, func(id string) (clerkjobs.Expect, bool) {
		return clerkjobs.Expect{Op: jobs.OpRevoke, Seq: s.Seq}, id == s.JobID
	}, nil)
	if !errors.Is(err, clerkjobs.ErrNoResult) {
		t.Fatalf("Next on the flooded inbox: %+v, %v; want ErrNoResult, its answer dropped with the flood", got, err)
	}
	if held := rep.Ignored(); held > small || rep.Dropped()+held != big+small+1 {
		t.Errorf("%d messages held and read, %d dropped; want at most %d held and all %d counted", held, rep.Dropped(), small, big+small+1)
	}
}

// TestLostSecretAnswer: a token job whose answer never came, but whose
// record says it succeeded, is ErrSecretLost: its token existed only in
// that answer. It is not the secret of an earlier request of the same job
// (ErrSecretDeliveredElsewhere), which would send the caller looking for a
// request that never was.
func TestLostSecretAnswer(t *testing.T) {
	env := clerkjobstest.New(t, clerkjobstest.WithoutWorker())
	sess := env.Clerk.Emulator.CreateSessions(env.Clerk.Emulator.CreateUser(), 1)[0]
	ctx := testContext(t, 30*time.Second)
	done := make(chan error, 1)
	go func() {
		wctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		_, err := env.Client.SessionToken(wctx, sess, &clerkjobs.TokenOptions{JobID: "lost-1"})
		done <- err
	}()
	stream, err := env.JetStream.Stream(ctx, env.Topology.JobsStream)
	if err != nil {
		t.Fatal(err)
	}
	_, seq := storedJob(ctx, t, stream, "lost-1")
	// What a worker stores before it answers; the answer is then lost.
	rec, err := json.Marshal(jobs.Result{JobID: "lost-1", Op: jobs.OpToken, Outcome: jobs.Succeeded, StreamSeq: seq, SecretDelivered: true, FinishedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	job, err := stream.GetMsg(ctx, seq)
	if err != nil {
		t.Fatal(err)
	}
	m := nats.NewMsg(env.Topology.Subjects.Result(jobs.RecordKey{Op: jobs.OpToken, JobID: "lost-1", Gen: jobs.Generation(stream.CachedInfo().Created), Seq: seq}))
	m.Header.Set(jobs.HeaderJobDigest, jobs.Digest(job.Subject, job.Data))
	m.Data = rec
	if _, err := env.JetStream.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
	err = <-done
	if !errors.Is(err, clerkjobs.ErrSecretLost) || errors.Is(err, clerkjobs.ErrSecretDeliveredElsewhere) {
		t.Fatalf("SessionToken: %v; want ErrSecretLost", err)
	}
	if !strings.Contains(err.Error(), "lost-1") || !strings.Contains(err.Error(), "another job id") {
		t.Errorf("the error does not name the job or say what to do: %q", err)
	}
}

// TestAnswerLostInAReconnectIsFoundAtOnce: the worker sends an answer once;
// one sent while the requester's connection was down is lost. Request
// looked for the job's record only at its deadline, so a caller waited the
// whole timeout (30 s by default) for a job done long before, and one that
// gave up first (cancelled, no deadline of its own) got no result at all.
// After a reconnect the record is looked up at once: a token job's lost
// answer is then said to be lost at once too.
func TestAnswerLostInAReconnectIsFoundAtOnce(t *testing.T) {
	for _, op := range []jobs.Op{jobs.OpRevoke, jobs.OpToken} {
		t.Run(string(op), func(t *testing.T) {
			env := clerkjobstest.New(t)
			emu := env.Clerk.Emulator
			id := emu.CreateSessions(emu.CreateUser(), 1)[0]
			// The job takes a second at Clerk, so its answer comes after
			// the requester left; the requester comes back once the answer
			// has gone by (seen on another connection), not after a fixed
			// wait that a loaded machine's Clerk call could outlast.
			emu.SetFaults(emulator.Faults{Latency: time.Second})
			jobID := "reconnect-" + string(op)
			answered := make(chan struct{})
			var once sync.Once
			watch, err := env.Conn.Subscribe("_INBOX.>", func(m *nats.Msg) {
				if bytes.Contains(m.Data, []byte(`"job_id":"`+jobID+`"`)) && bytes.Contains(m.Data, []byte(`"outcome"`)) {
					once.Do(func() { close(answered) })
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = watch.Unsubscribe() })
			if err := env.Conn.Flush(); err != nil {
				t.Fatal(err)
			}
			backAfterTheAnswer := nats.CustomReconnectDelay(func(int) time.Duration {
				select {
				case <-answered:
				case <-time.After(30 * time.Second):
				}
				return 0
			})
			nc, err := nats.Connect(env.URL, backAfterTheAnswer, nats.MaxReconnects(-1))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(nc.Close)
			c, err := clerkjobs.NewClient(nc, clerkjobs.WithTopology(env.Topology), clerkjobs.WithTimeout(time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			cid, err := nc.GetClientID()
			if err != nil {
				t.Fatal(err)
			}
			// The caller gives up after 15 s: no deadline, so no last look.
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			giveUp := time.AfterFunc(15*time.Second, cancel)
			defer giveUp.Stop()
			var args jobs.Args = &jobs.RevokeArgs{SessionID: id, Common: jobs.Common{JobID: jobID}}
			if op == jobs.OpToken {
				args = &jobs.TokenArgs{SessionID: id, Common: jobs.Common{JobID: jobID}}
			}
			res, err := c.Request(ctx, args, clerkjobs.OnSubmitted(func(clerkjobs.Submitted) {
				if err := env.NATS.DisconnectClientByID(cid); err != nil {
					t.Error(err)
				}
			}))
			switch {
			case op == jobs.OpToken && !errors.Is(err, clerkjobs.ErrSecretLost):
				t.Fatalf("Request = %+v, %v; want ErrSecretLost, found after the reconnect", res, err)
			case op == jobs.OpRevoke && (err != nil || res.Outcome != jobs.Succeeded):
				t.Fatalf("Request = %+v, %v; want the job's result, found after the reconnect", res, err)
			}
		})
	}
}

// TestConnectionLostWhileWaiting: once JetStream has stored the job, a
// connection closed for good (a NATS server gone for longer than the
// client's reconnects) ended Request with ErrUnavailable, "read the reply
// inbox: connection closed", which the errors say of a job that may not
// have been published, without the job's id and sequence. The job was
// accepted and may still run: Request now says so, a *NoResultError
// (ErrNoResult, with Submitted) whose cause is ErrUnavailable.
func TestConnectionLostWhileWaiting(t *testing.T) {
	env := clerkjobstest.New(t, clerkjobstest.WithoutWorker())
	nc, err := nats.Connect(env.URL, nats.MaxReconnects(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	c, err := clerkjobs.NewClient(nc, clerkjobs.WithTopology(env.Topology))
	if err != nil {
		t.Fatal(err)
	}
	cid, err := nc.GetClientID()
	if err != nil {
		t.Fatal(err)
	}
	ctx := testContext(t, 30*time.Second)
	_, err = c.Request(ctx, &jobs.RevokeArgs{SessionID: "sess_1", Common: jobs.Common{JobID: "lost-conn-2"}}, clerkjobs.OnSubmitted(func(clerkjobs.Submitted) {
		if err := env.NATS.DisconnectClientByID(cid); err != nil {
			t.Error(err)
		}
	}))
	var nr *clerkjobs.NoResultError
	if !errors.As(err, &nr) || nr.Submitted == nil || nr.Submitted.Seq == 0 || nr.JobID != "lost-conn-2" || !errors.Is(err, clerkjobs.ErrUnavailable) {
		t.Fatalf("Request whose connection closed while it waited = %v; want no result for the accepted job, NATS unavailable", err)
	}
	if !strings.Contains(err.Error(), "was accepted") {
		t.Errorf("the error does not say the job was accepted: %q", err)
	}
}

// TestDuplicateOfAJobGoneWithoutARecord: a job deleted from the jobs
// stream before it ran (an operator's purge) leaves no record. Publishing
// a job under its id within the deduplication window is then not queued:
// Submit says so at once (ErrDuplicateUnverified), but Request waited its
// whole timeout for a record that cannot come and then said no result,
// "may still run", of a job that will never run. It now returns the
// duplicate's error at once, as Submit does.
func TestDuplicateOfAJobGoneWithoutARecord(t *testing.T) {
	env := clerkjobstest.New(t, clerkjobstest.WithoutWorker())
	ctx := testContext(t, 30*time.Second)
	s, err := env.Client.Submit(ctx, &jobs.RevokeArgs{SessionID: "sess_1", Common: jobs.Common{JobID: "purged-1"}})
	if err != nil {
		t.Fatal(err)
	}
	stream, err := env.JetStream.Stream(ctx, env.Topology.JobsStream)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.DeleteMsg(ctx, s.Seq); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Client.Submit(ctx, &jobs.RevokeArgs{SessionID: "sess_1", Common: jobs.Common{JobID: "purged-1"}}); !errors.Is(err, jobs.ErrDuplicateUnverified) {
		t.Fatalf("Submit = %v; want ErrDuplicateUnverified", err)
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	start := time.Now()
	_, err = env.Client.Request(rctx, &jobs.RevokeArgs{SessionID: "sess_1", Common: jobs.Common{JobID: "purged-1"}})
	if !errors.Is(err, jobs.ErrDuplicateUnverified) || errors.Is(err, clerkjobs.ErrNoResult) || time.Since(start) > 3*time.Second {
		t.Fatalf("Request = %v after %s; want ErrDuplicateUnverified at once", err, time.Since(start).Round(time.Millisecond))
	}
	if !strings.Contains(err.Error(), "this job was not queued") {
		t.Errorf("the error does not say the job was not queued: %q", err)
	}
}

// TestRevokeAllIsWaitedForWhileItGetsOn: the client's timeout (here 1.5 s)
// starts again each time a revoke_all has handled more sessions, so a job
// longer than the timeout that keeps getting on is waited for to its end;
// one that stops getting on is given up after the timeout, though the
// worker still sends a report every 200 ms.
func TestRevokeAllIsWaitedForWhileItGetsOn(t *testing.T) {
	env := clerkjobstest.New(t,
		clerkjobstest.WithClient(clerkjobs.WithTimeout(1500*time.Millisecond)),
		clerkjobstest.WithWorkerConfig(func(c *worker.Config) {
			c.Bulk.Concurrency, c.Bulk.ReportEvery = 1, 200*time.Millisecond
		}))
	emu := env.Clerk.Emulator
	user := emu.CreateUser()
	emu.CreateSessions(user, 30)
	emu.SetFaults(emulator.Faults{Latency: 100 * time.Millisecond}) // about 3 s in all
	start := time.Now()
	sum, err := env.Client.RevokeAll(t.Context(), user, nil, nil)
	if err != nil || sum.Revoked != 30 {
		t.Fatalf("RevokeAll = %+v, %v after %s; want the 30 sessions revoked", sum, err, time.Since(start).Round(time.Millisecond))
	}

	stuck := emu.CreateUser()
	emu.CreateSessions(stuck, 3)
	emu.SetFaults(emulator.Faults{Latency: time.Minute}) // the list call never ends in time
	start = time.Now()
	_, err = env.Client.RevokeAll(t.Context(), stuck, nil, nil)
	if !errors.Is(err, clerkjobs.ErrNoResult) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("RevokeAll of a job that does not get on = %v after %s; want ErrNoResult and context.DeadlineExceeded", err, time.Since(start).Round(time.Millisecond))
	}
	emu.SetFaults(emulator.Faults{})
}

// A job published by hand (nats pub) with a usable job_id and a mistake
// elsewhere in its body was dead-lettered as seq-<n>: its answer named
// seq-<n>, and Wait for its job id waited out its timeout beside the dead
// letter. Such a job is recorded under its job id; one whose job_id itself
// is unusable, or given twice, stays seq-<n>.
func TestWaitFindsAnInvalidJobUnderItsJobID(t *testing.T) {
	env := clerkjobstest.New(t)
	ctx := testContext(t, 60*time.Second)
	tests := []struct {
		name, subject, body string
		field               string
		recordedAs          string // "" for seq-<n>
	}{
		{"unknown field", "sessions.revoke", `{"job_id":"bad-1","session_id":"sess_1","sesion_id":"sess_2"}`, "/sesion_id", "bad-1"},
		{"session_id not a session id", "sessions.revoke", `{"job_id":"bad-2","session_id":"user_1"}`, "/session_id", "bad-2"},
		{"limit as a string", "sessions.list", `{"job_id":"bad-3","user_id":"user_1","limit":"10"}`, "/limit", "bad-3"},
		{"required field missing", "sessions.get", `{"job_id":"bad-4"}`, "/session_id", "bad-4"},
		{"job_id given twice", "sessions.revoke", `{"job_id":"bad-5","job_id":"bad-6","session_id":"sess_1"}`, "/job_id", ""},
		{"job_id unusable", "sessions.revoke", `{"job_id":"bad 7","session_id":"sess_1"}`, "/job_id", ""},
		{"a member given twice elsewhere", "sessions.revoke", `{"job_id":"bad-8","session_id":"sess_1","session_id":"sess_2"}`, "/session_id", ""},
	}
	seqs := make([]uint64, len(tests))
	for i, tt := range tests {
		ack, err := env.JetStream.Publish(ctx, tt.subject, []byte(tt.body))
		if err != nil {
			t.Fatal(err)
		}
		seqs[i] = ack.Sequence
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := tt.recordedAs
			if id == "" {
				id = fmt.Sprintf("seq-%d", seqs[i])
			}
			wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			_, err := env.Client.Wait(wctx, id)
			var je *clerkjobs.JobError
			if !errors.As(err, &je) {
				t.Fatalf("Wait(%q) = %v; want the *JobError of its dead letter", id, err)
			}
			if je.JobID != id || je.Class != jobs.ClassInvalid || je.Field != tt.field || je.Result.StreamSeq != seqs[i] {
				t.Errorf("Wait(%q): job %q, class %s, field %q, stream seq %d; want %q, invalid, %q, %d",
					id, je.JobID, je.Class, je.Field, je.Result.StreamSeq, id, tt.field, seqs[i])
			}
			// As the worker's Decode said it, once: the reason is not the
			// whole message again ("invalid revoke job: /x: invalid revoke
			// job: /x: …").
			var invalid *jobs.InvalidError
			if !errors.As(err, &invalid) || invalid.Field != tt.field || strings.Count(invalid.Error(), "invalid ") != strings.Count(je.Message, "invalid ") {
				t.Errorf("errors.As(*jobs.InvalidError) = %v; want the dead letter's message %q, said once", invalid, je.Message)
			}
		})
	}
}

// The longest inbox prefix NewClient takes still makes inboxes a job may
// name as its reply_to.
func TestLongestInboxPrefixIsAnswered(t *testing.T) {
	env := clerkjobstest.New(t)
	sess := env.Clerk.Emulator.CreateSessions(env.Clerk.Emulator.CreateUser(), 1)[0]
	c := newClient(t, env, clerkjobs.WithInboxPrefix("_INBOX."+strings.Repeat("a", 225)))
	if rev, err := c.RevokeSession(testContext(t, 30*time.Second), sess, nil); err != nil || rev.Session.Status != clerkapi.StatusRevoked {
		t.Fatalf("RevokeSession with inboxes under a prefix of 232 characters = %+v, %v", rev, err)
	}
}

// A job whose body passes jobs.MaxJobBytes can still be refused by the
// jobs stream once the client's headers are added: the trace baggage of
// the caller's context (up to 8 KiB) does not fit the stream's 4 KiB of
// room for headers. Submit said "NATS unavailable … it may or may not be
// stored: publishing it again with the same job id is safe", for a job
// that was not stored and would be refused each time.
func TestSubmitRefusedForItsSizeIsNotUnavailable(t *testing.T) {
	env := clerkjobstest.New(t, clerkjobstest.WithoutWorker())
	ctx := testContext(t, 30*time.Second)
	b := bigBaggage(t)
	a := &jobs.RefreshArgs{Common: jobs.Common{ReplyTo: "_INBOX.x"}, SessionID: "sess_1", ExpiredToken: "e", RefreshToken: "r", RequestOrigin: "o",
		RequestHeaders: map[string]any{"X-Pad": strings.Repeat("p", jobs.MaxJobBytes-300)}}
	_, err := env.Client.Submit(baggage.ContextWithBaggage(ctx, b), a)
	if err == nil || errors.Is(err, clerkjobs.ErrUnavailable) || !errors.Is(err, jobs.ErrInvalid) || strings.Contains(err.Error(), "may or may not") ||
		!strings.Contains(err.Error(), "not stored") || !strings.Contains(err.Error(), "baggage") {
		t.Fatalf("Submit = %v; want an error saying the job was not stored, for its size with its headers, not ErrUnavailable", err)
	}
	st, err := env.JetStream.Stream(ctx, env.Topology.JobsStream)
	if err != nil {
		t.Fatal(err)
	}
	if n := st.CachedInfo().State.Msgs; n != 0 {
		t.Errorf("%d jobs stored", n)
	}
}

// TestSubmitToAFullJobsStream: a job the full jobs stream refuses is said
// to be NOT stored, safe to publish again later, and the setting that
// raises the cap is named; it is retryable (ErrUnavailable), not invalid.
// It was "NATS unavailable … it may or may not be stored", with the
// server's bare "maximum bytes exceeded".
func TestSubmitToAFullJobsStream(t *testing.T) {
	top := clerkjobstest.Topology()
	top.JobsMaxBytes = 1 << 20
	env := clerkjobstest.New(t, clerkjobstest.WithoutWorker(), clerkjobstest.WithTopology(top))
	ctx := testContext(t, 30*time.Second)
	testenv.FillToMaxBytes(t, env.JetStream, top.Subjects.Job(jobs.OpRevoke))
	held := streamMsgs(ctx, t, env.JetStream, top.JobsStream)

	for name, c := range map[string]*clerkjobs.Client{"no tenant": env.Client, "tenant": newClient(t, env, clerkjobs.WithTenant("svc_a"))} {
		_, err := c.Submit(ctx, &jobs.RevokeArgs{SessionID: "sess_1", Common: jobs.Common{JobID: "full-1"}})
		if !errors.Is(err, clerkjobs.ErrUnavailable) || errors.Is(err, jobs.ErrInvalid) || !jobs.StreamFull(err) {
			t.Errorf("%s: Submit to a full jobs stream = %v; want ErrUnavailable (retryable), not jobs.ErrInvalid, and jobs.StreamFull", name, err)
			continue
		}
		for _, want := range []string{"jobs stream " + top.JobsStream + " is full", "NOT stored", "again later", "--jobs-max-bytes (WORKER_JOBS_MAX_BYTES"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: Submit to a full jobs stream = %q; want it to say %q", name, err, want)
			}
		}
		if strings.Contains(err.Error(), "may or may not") {
			t.Errorf("%s: %q: a job refused for a full stream was not stored, and the error should say so", name, err)
		}
	}
	if got := streamMsgs(ctx, t, env.JetStream, top.JobsStream); got != held {
		t.Errorf("the full jobs stream holds %d jobs after the refusals, want the %d it held", got, held)
	}
}

// streamMsgs is how many messages a stream holds.
func streamMsgs(ctx context.Context, t *testing.T, js jetstream.JetStream, name string) uint64 {
	t.Helper()
	s, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// bigBaggage is OpenTelemetry baggage of about 7.5 KiB (30 members of 250
// bytes): more than the jobs stream's 4 KiB of room for headers.
func bigBaggage(t *testing.T) baggage.Baggage {
	t.Helper()
	var members []baggage.Member
	for i := range 30 {
		m, err := baggage.NewMember(fmt.Sprintf("k%02d", i), strings.Repeat("v", 250))
		if err != nil {
			t.Fatal(err)
		}
		members = append(members, m)
	}
	b, err := baggage.New(members...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
