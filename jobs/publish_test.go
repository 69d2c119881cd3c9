package jobs

import (
	"errors"
	"regexp"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestNewMessage(t *testing.T) {
	a := &RevokeArgs{Common: Common{JobID: "revoke-sess_1-7"}, SessionID: "sess_1"}
	m, err := NewMessage(Subjects{}, a)
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != "sessions.revoke" {
		t.Errorf("Subject = %q", m.Subject)
	}
	if got := m.Header.Get(jetstream.MsgIDHeader); got != "revoke-sess_1-7" {
		t.Errorf("%s = %q, want the job id", jetstream.MsgIDHeader, got)
	}
	if got, want := string(m.Data), `{"job_id":"revoke-sess_1-7","session_id":"sess_1"}`; got != want {
		t.Errorf("Data = %s, want %s", got, want)
	}
	back, err := Decode(OpRevoke, m.Data)
	if err != nil || back.(*RevokeArgs).SessionID != "sess_1" {
		t.Errorf("the message body does not decode: %v", err)
	}

	// Custom prefix, token subject.
	m, err = NewMessage(Subjects{Prefix: "acme.prod"}, &TokenArgs{Common: Common{JobID: "t1", ReplyTo: "_INBOX.x"}, SessionID: "sess_1"})
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != "acme.prod.token.request" {
		t.Errorf("Subject = %q, want acme.prod.token.request", m.Subject)
	}
}

var nuidPattern = regexp.MustCompile(`^[A-Za-z0-9]{22}$`)

func TestNewMessageGeneratesJobID(t *testing.T) {
	seen := map[string]bool{}
	for range 3 {
		a := &GetArgs{SessionID: "sess_1"}
		m, err := NewMessage(Subjects{}, a)
		if err != nil {
			t.Fatal(err)
		}
		id := a.JobID
		if !nuidPattern.MatchString(id) {
			t.Fatalf("generated job id %q", id)
		}
		if seen[id] {
			t.Errorf("job id %q generated twice", id)
		}
		seen[id] = true
		if got := m.Header.Get(jetstream.MsgIDHeader); got != id {
			t.Errorf("%s = %q, want the generated id %q written into the args", jetstream.MsgIDHeader, got, id)
		}
		back, err := Decode(OpGet, m.Data)
		if err != nil {
			t.Fatal(err)
		}
		if back.CommonFields().JobID != id {
			t.Errorf("body job_id = %q, want %q", back.CommonFields().JobID, id)
		}
		// Building it again keeps the id: a retry is the same message.
		m2, err := NewMessage(Subjects{}, a)
		if err != nil || m2.Header.Get(jetstream.MsgIDHeader) != id || string(m2.Data) != string(m.Data) {
			t.Errorf("second NewMessage of the same job differs: %v %q", err, m2.Data)
		}
	}
}

func TestNewMessageRefusesInvalidJobs(t *testing.T) {
	for _, a := range []Args{
		&RevokeArgs{SessionID: "sess_1/../x"},
		&RevokeArgs{},
		&TokenArgs{SessionID: "sess_1"},
		&RefreshArgs{SessionID: "sess_1", ExpiredToken: "e", RefreshToken: "r", RequestOrigin: "o"},
		&ListArgs{},
		&RevokeArgs{Common: Common{JobID: "has space"}, SessionID: "sess_1"},
	} {
		m, err := NewMessage(Subjects{}, a)
		if m != nil || !errors.Is(err, ErrInvalid) {
			t.Errorf("NewMessage(%#v) = %v, %v; want nil and an invalid-job error", a, m, err)
		}
	}
}

func TestPublishDeduplicates(t *testing.T) {
	js := startJetStream(t)
	top := DefaultTopology()
	ensureTopology(t, js, top)
	ctx := testContext(t)

	a := &RevokeArgs{Common: Common{JobID: "revoke-once"}, SessionID: "sess_1"}
	ack, err := Publish(ctx, js, top.Subjects, a)
	if err != nil {
		t.Fatal(err)
	}
	if ack.Stream != top.JobsStream || ack.Sequence != 1 || ack.Duplicate {
		t.Errorf("first publish: %+v", ack)
	}
	ack2, err := Publish(ctx, js, top.Subjects, a)
	if err != nil {
		t.Fatal(err)
	}
	if !ack2.Duplicate || ack2.Sequence != ack.Sequence {
		t.Errorf("second publish of the same job: %+v, want Duplicate of sequence %d", ack2, ack.Sequence)
	}
	if n := streamMsgs(t, js, top.JobsStream); n != 1 {
		t.Errorf("jobs stream holds %d messages, want 1", n)
	}

	// A job without an id gets one on its first publish, so publishing the
	// same value again (a retry) is deduplicated too.
	b := &GetArgs{SessionID: "sess_2"}
	ack, err = Publish(ctx, js, top.Subjects, b)
	if err != nil {
		t.Fatal(err)
	}
	if b.JobID == "" {
		t.Fatal("Publish did not write the generated job id into the args")
	}
	ack2, err = Publish(ctx, js, top.Subjects, b)
	if err != nil {
		t.Fatal(err)
	}
	if ack.Duplicate || !ack2.Duplicate || ack2.Sequence != ack.Sequence {
		t.Errorf("retry of a job without an id: first %+v, second %+v", ack, ack2)
	}
	// A different job with the same content is a different job.
	ack3, err := Publish(ctx, js, top.Subjects, &GetArgs{SessionID: "sess_2"})
	if err != nil || ack3.Duplicate {
		t.Errorf("a new job with the same body: %+v, %v", ack3, err)
	}
	if n := streamMsgs(t, js, top.JobsStream); n != 3 {
		t.Errorf("jobs stream holds %d messages, want 3", n)
	}

	// What is stored is the job, with its id in the body and the header.
	s, err := js.Stream(ctx, top.JobsStream)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := s.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if raw.Subject != "sessions.revoke" || raw.Header.Get(jetstream.MsgIDHeader) != "revoke-once" ||
		string(raw.Data) != `{"job_id":"revoke-once","session_id":"sess_1"}` {
		t.Errorf("stored message: %s %v %s", raw.Subject, raw.Header, raw.Data)
	}
}

func TestPublishNeverSendsInvalidJobs(t *testing.T) {
	js := startJetStream(t)
	top := DefaultTopology()
	ensureTopology(t, js, top)
	ctx := testContext(t)
	for _, a := range []Args{
		&RevokeArgs{SessionID: "sess_1/../x"},
		&TokenArgs{SessionID: "sess_1"},
		&ListArgs{UserID: "user_1", Limit: 0, Offset: -1},
		&RevokeAllArgs{UserID: "user_1", ExceptSessionIDs: []string{"sess_a", "sess_a"}},
	} {
		ack, err := Publish(ctx, js, top.Subjects, a)
		var ie *InvalidError
		if ack != nil || !errors.As(err, &ie) {
			t.Errorf("Publish(%#v) = %+v, %v; want an *InvalidError", a, ack, err)
		}
	}
	if n := streamMsgs(t, js, top.JobsStream); n != 0 {
		t.Errorf("jobs stream holds %d messages after invalid publishes, want 0", n)
	}
}

// Without a stream to take it, Publish fails and names the job.
func TestPublishWithoutStream(t *testing.T) {
	js := startJetStream(t)
	_, err := Publish(testContext(t), js, Subjects{}, &RevokeArgs{Common: Common{JobID: "j-lost"}, SessionID: "sess_1"})
	if err == nil {
		t.Fatal("Publish with no jobs stream succeeded")
	}
	if !errors.Is(err, jetstream.ErrNoStreamResponse) {
		t.Errorf("err = %v, want it to wrap ErrNoStreamResponse", err)
	}
	for _, s := range []string{"revoke", "j-lost", "sessions.revoke"} {
		if !regexp.MustCompile(regexp.QuoteMeta(s)).MatchString(err.Error()) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
}

// TestPublishJobIDReusedIsAnError: "publish revoke-all --user A --job-id
// incident-77" then "--user B --job-id incident-77" once said "is a
// duplicate, not queued again" and exited 0, user B's sessions left active.
// A publish deduplicated against a different job is an error; the same job
// published twice stays the harmless duplicate — while it waits in the
// stream, and after it ran (its record says what it was).
func TestPublishJobIDReusedIsAnError(t *testing.T) {
	js := startJetStream(t)
	ctx := testContext(t)
	top := DefaultTopology()
	ensureTopology(t, js, top)
	a := func(user string) *RevokeAllArgs {
		return &RevokeAllArgs{Common: Common{JobID: "incident-77"}, UserID: user}
	}
	first, err := Publish(ctx, js, top.Subjects, a("user_A"))
	if err != nil {
		t.Fatal(err)
	}
	if ack, err := Publish(ctx, js, top.Subjects, a("user_A")); err != nil || !ack.Duplicate {
		t.Fatalf("same job again: %v (ack %+v); want the harmless duplicate", err, ack)
	}
	_, err = Publish(ctx, js, top.Subjects, a("user_B"))
	var de *DuplicateError
	if !errors.Is(err, ErrJobIDReused) || !errors.As(err, &de) || de.Seq != first.Sequence {
		t.Fatalf("another job under the same id: %v; want ErrJobIDReused naming sequence %d", err, first.Sequence)
	}

	// The job runs: it leaves the stream, its record stays.
	s, err := js.Stream(ctx, top.JobsStream)
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewMessage(top.Subjects, a("user_A"))
	if err != nil {
		t.Fatal(err)
	}
	key := RecordKey{Op: OpRevokeAll, JobID: "incident-77", Gen: Generation(s.CachedInfo().Created), Seq: first.Sequence}
	rec := nats.NewMsg(top.Subjects.Result(key))
	rec.Header.Set(HeaderJobDigest, Digest(m.Subject, m.Data))
	rec.Data = []byte(`{}`)
	if _, err := js.PublishMsg(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteMsg(ctx, first.Sequence); err != nil {
		t.Fatal(err)
	}
	if _, err := Publish(ctx, js, top.Subjects, a("user_A")); err != nil {
		t.Errorf("same job after it ran: %v; want the harmless duplicate", err)
	}
	if _, err := Publish(ctx, js, top.Subjects, a("user_B")); !errors.Is(err, ErrJobIDReused) {
		t.Errorf("another job after the first ran: %v; want ErrJobIDReused", err)
	}

	// Another publisher (another tenant, say) set the id by hand, and its
	// job ran: nothing here can say what it was. That is no success: this
	// job may not have been queued.
	taken := &nats.Msg{Subject: "sessions.tenant.svc_b.revoke", Header: nats.Header{jetstream.MsgIDHeader: {"offboard-42"}}, Data: []byte(`{"session_id":"sess_b"}`)}
	ack, err := js.PublishMsg(ctx, taken)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteMsg(ctx, ack.Sequence); err != nil {
		t.Fatal(err)
	}
	ack, err = Publish(ctx, js, top.Subjects, &RevokeArgs{Common: Common{JobID: "offboard-42"}, SessionID: "sess_a"})
	if !errors.Is(err, ErrDuplicateUnverified) || ack == nil || !ack.Duplicate {
		t.Errorf("a job id taken by a job that cannot be compared: %v (ack %+v); want ErrDuplicateUnverified with the acknowledgement", err, ack)
	}
}

// Tenants publish under their own Nats-Msg-Id namespace: two tenants'
// "incident-77" are two jobs. Within a tenant the same job requested again
// from another inbox (reply_to) is the same job; a different one is not.
func TestPublishTenantsAndReplyTo(t *testing.T) {
	js := startJetStream(t)
	ctx := testContext(t)
	top := DefaultTopology()
	ensureTopology(t, js, top)
	job := func(user, replyTo string) *RevokeAllArgs {
		return &RevokeAllArgs{Common: Common{JobID: "incident-77", ReplyTo: replyTo}, UserID: user}
	}
	a, b := top.Subjects, top.Subjects
	a.Tenant, b.Tenant = "svc_a", "svc_b"
	ackA, err := Publish(ctx, js, a, job("user_A", "_INBOX.svc_a.1"))
	if err != nil || ackA.Duplicate {
		t.Fatalf("svc_a: %v, %+v", err, ackA)
	}
	ackB, err := Publish(ctx, js, b, job("user_B", "_INBOX.svc_b.1"))
	if err != nil || ackB.Duplicate || ackB.Sequence == ackA.Sequence {
		t.Fatalf("svc_b's incident-77 after svc_a's: %v, %+v; want a job of its own", err, ackB)
	}
	if ack, err := Publish(ctx, js, a, job("user_A", "_INBOX.svc_a.2")); err != nil || !ack.Duplicate {
		t.Fatalf("svc_a's job again from another inbox: %v, %+v; want the harmless duplicate", err, ack)
	}
	if _, err := Publish(ctx, js, a, job("user_C", "_INBOX.svc_a.2")); !errors.Is(err, ErrJobIDReused) {
		t.Fatalf("svc_a's incident-77 for another user: %v; want ErrJobIDReused", err)
	}
	m, err := NewMessage(a, job("user_A", ""))
	if err != nil || m.Header.Get(jetstream.MsgIDHeader) != "svc_a:incident-77" || m.Subject != "sessions.tenant.svc_a.revoke_all" {
		t.Fatalf("message %v %v: %v", m.Subject, m.Header, err)
	}
}

func TestDigestIgnoresReplyTo(t *testing.T) {
	d := Digest("sessions.revoke", []byte(`{"job_id":"j","session_id":"sess_1","reply_to":"_INBOX.a"}`))
	for body, same := range map[string]bool{
		`{"reply_to":"_INBOX.b","session_id":"sess_1","job_id":"j"}`: true,
		`{ "job_id": "j", "session_id": "sess_1" }`:                  true,
		`{"job_id":"j","session_id":"sess_2","reply_to":"_INBOX.a"}`: false,
		`not json`: false,
	} {
		if got := Digest("sessions.revoke", []byte(body)) == d; got != same {
			t.Errorf("Digest(%s) equal: %v, want %v", body, got, same)
		}
	}
	if Digest("sessions.get", []byte(`{"job_id":"j","session_id":"sess_1"}`)) == d {
		t.Error("another subject has the same digest")
	}
}
