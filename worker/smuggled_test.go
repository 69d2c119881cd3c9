package worker_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// Secrets in these tests are written in pieces, so that no secret scanner
// mistakes a test for a leak.
var (
	smuggledJWT = "eyJ" + "hbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyXzEifQ.c2lnbmF0dXJlc2lnbmF0dXJl"
	smuggledKey = "sk_" + "live_" + "abcdefghijklmnopqrstuvwxyz0123456789ABCD"
	urlPassword = "Hunter2" + "UrlPassw0rd"
)

// lettersBySeq parses every dead letter, keyed by the job's stream sequence,
// with the message as stored.
func lettersBySeq(t *testing.T, env *testenv.Env) map[uint64]*jetstream.RawStreamMsg {
	t.Helper()
	out := map[uint64]*jetstream.RawStreamMsg{}
	for _, m := range env.StreamMsgs(t, env.Topology.DeadLetterStream) {
		dl, err := jobs.ParseDeadLetter(m.Header)
		if err != nil {
			t.Fatalf("dead letter %s: %v", m.Subject, err)
		}
		out[dl.StreamSeq] = m
	}
	return out
}

// holds reports where in a stored message a secret is: its subject, a
// header, or its body ("" if nowhere).
func holds(m *jetstream.RawStreamMsg, secret string) string {
	if strings.Contains(m.Subject, secret) {
		return "subject"
	}
	for k, vs := range m.Header {
		for _, v := range vs {
			if strings.Contains(v, secret) {
				return "header " + k
			}
		}
	}
	if strings.Contains(string(m.Data), secret) {
		return "body"
	}
	return ""
}

// TestDuplicateNamesCannotHideSecrets: a member name given twice once hid
// its other value from the dead letter's redaction, which read the body
// through a map: {"session_id":"<JWT>","session_id":"sess_missing"} ran as
// a revoke of sess_missing, Clerk answered 404, and the dead letter stored
// the JWT byte for byte with Dlq-Redacted empty. Such a body is an invalid
// job now (it never reaches Clerk), and every value of it is judged: the
// dead letter keeps no secret, and its Dlq-Redacted names the field.
func TestDuplicateNamesCannotHideSecrets(t *testing.T) {
	tests := []struct {
		name, subject, body string
		secret              string
		field               string // Dlq-Field
		redacted            string // Dlq-Redacted
	}{
		{"JWT in the first of two session_id", "sessions.revoke", `{"session_id":"` + smuggledJWT + `","session_id":"sess_missing"}`, smuggledJWT, "/session_id", "session_id"},
		{"JWT in the last of two session_id", "sessions.revoke", `{"session_id":"sess_missing","session_id":"` + smuggledJWT + `"}`, smuggledJWT, "/session_id", "session_id"},
		{"key in the first of two job_id", "sessions.get", `{"session_id":"sess_missing","job_id":"` + smuggledKey + `","job_id":"x"}`, smuggledKey, "/job_id", "job_id"},
		{"JWT in a name given twice, nested", "sessions.revoke", `{"session_id":"sess_missing","x":{"a":"` + smuggledJWT + `","a":"b"}}`, smuggledJWT, "/x/a", "x"},
		{"URL password in the first of two session_id", "sessions.revoke", `{"session_id":"nats://alice:` + urlPassword + `@nats-internal:4222","session_id":"sess_missing"}`, urlPassword, "/session_id", "session_id"},
	}
	env := testenv.New(t)
	env.StartWorker(t)
	seqs := make([]uint64, len(tests))
	for i, tt := range tests {
		seqs[i] = publishMsg(t, env, tt.subject, nil, tt.body).Sequence
	}
	testenv.Eventually(t, 20*time.Second, "every job dead-lettered", func() bool {
		return env.StreamCount(t, env.Topology.DeadLetterStream) == uint64(len(tests))
	})
	letters := lettersBySeq(t, env)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := letters[seqs[i]]
			if m == nil {
				t.Fatalf("no dead letter for stream seq %d", seqs[i])
			}
			if where := holds(m, tt.secret); where != "" {
				t.Errorf("the dead letter's %s holds the secret: %s", where, m.Data)
			}
			dl, _ := jobs.ParseDeadLetter(m.Header)
			if dl.Error.Class != jobs.ClassInvalid || dl.Error.Field != tt.field || !strings.Contains(dl.Error.Message, "more than once") {
				t.Errorf("class %s, field %q, error %q; want invalid, %q, a member given more than once", dl.Error.Class, dl.Error.Field, dl.Error.Message, tt.field)
			}
			if !slices.Equal(dl.Redacted, []string{tt.redacted}) || dl.Replayable() {
				t.Errorf("Dlq-Redacted = %q, want [%s], not replayable", dl.Redacted, tt.redacted)
			}
			if want := fmt.Sprintf("seq-%d", seqs[i]); dl.JobID != want {
				t.Errorf("recorded as %q, want %q", dl.JobID, want)
			}
		})
	}
	if n := len(env.Results(t)); n != 0 {
		t.Errorf("%d results: a job with a member given twice ran", n)
	}
	for _, s := range []string{smuggledJWT, smuggledKey, urlPassword} {
		if strings.Contains(env.Logs.String(), s) {
			t.Errorf("the worker's log holds a secret")
		}
	}
}

// TestSecretShapedJobIDsAreNeverStored: a job id shaped like a secret (a
// Clerk key, a short JWT) fits the job id pattern, and once went as it was
// into the dead letter's subject, its Dlq-Job-Id header and the worker's
// log, from the body's job_id or from Nats-Msg-Id. Such a job is invalid
// now, before any Clerk call, and recorded as seq-<n>: the header is no
// fallback for a body id that cannot be used.
func TestSecretShapedJobIDsAreNeverStored(t *testing.T) {
	shortJWT := "eyJ" + "hbGc.eyJz.c2lnbmF0dXJl"
	testKey := "sk_" + "test_" + "abcdefghijklmnopqrstuvwxyz0123456789ABCD"
	env := testenv.New(t)
	emu := env.Clerk.Emulator
	live := emu.CreateSessions(emu.CreateUser(), 1)[0]
	tests := []struct {
		name, subject string
		header        nats.Header
		body          string
		secret        string
		field         string // Dlq-Field
	}{
		{"key as the body's job_id", "sessions.revoke", nil, `{"session_id":"sess_missing","job_id":"` + smuggledKey + `"}`, smuggledKey, "/job_id"},
		{"short JWT as the body's job_id", "sessions.get", nil, `{"session_id":"sess_missing","job_id":"` + shortJWT + `"}`, shortJWT, "/job_id"},
		{"key as job_id of a job that would succeed", "sessions.revoke", nil, `{"session_id":"` + live + `","job_id":"` + smuggledKey + `"}`, smuggledKey, "/job_id"},
		{"key as job_id, a usable header", "sessions.revoke", nats.Header{jetstream.MsgIDHeader: {"usable-1"}}, `{"session_id":"sess_missing","job_id":"` + smuggledKey + `"}`, smuggledKey, "/job_id"},
		{"key as job_id and header", "sessions.revoke", nats.Header{jetstream.MsgIDHeader: {smuggledKey}}, `{"session_id":"sess_missing","job_id":"` + smuggledKey + `"}`, smuggledKey, "/job_id"},
		// Another key: JetStream would drop a second message under the
		// same Nats-Msg-Id as a duplicate.
		{"key as Nats-Msg-Id", "sessions.revoke", nats.Header{jetstream.MsgIDHeader: {testKey}}, `{"session_id":"sess_missing"}`, testKey, ""},
		{"short JWT as a tenant's Nats-Msg-Id", "sessions.tenant.svc_a.revoke", nats.Header{jetstream.MsgIDHeader: {"svc_a:" + shortJWT}}, `{"session_id":"sess_missing"}`, shortJWT, ""},
	}
	env.StartWorker(t)
	seqs := make([]uint64, len(tests))
	for i, tt := range tests {
		seqs[i] = publishMsg(t, env, tt.subject, tt.header, tt.body).Sequence
	}
	waitRecords(t, env, len(tests))
	secrets := []string{smuggledKey, shortJWT, testKey}
	for _, m := range env.StreamMsgs(t, env.Topology.ResultsStream) {
		for _, s := range secrets {
			if where := holds(m, s); where != "" {
				t.Errorf("a result's %s holds a secret-shaped job id: subject %s", where, m.Subject)
			}
		}
	}
	letters := lettersBySeq(t, env)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := letters[seqs[i]]
			if m == nil {
				t.Fatalf("no dead letter for stream seq %d", seqs[i])
			}
			if where := holds(m, tt.secret); where != "" {
				t.Errorf("the dead letter's %s holds the job id: subject %s", where, m.Subject)
			}
			dl, _ := jobs.ParseDeadLetter(m.Header)
			if want := fmt.Sprintf("seq-%d", seqs[i]); dl.JobID != want || !strings.Contains(m.Subject, "."+want+".") {
				t.Errorf("recorded as %q on %s, want %q", dl.JobID, m.Subject, want)
			}
			if dl.Error.Class != jobs.ClassInvalid || dl.Error.Field != tt.field || !strings.Contains(dl.Error.Message, "shaped like a secret") {
				t.Errorf("class %s, field %q, error %q; want invalid, %q, shaped like a secret", dl.Error.Class, dl.Error.Field, dl.Error.Message, tt.field)
			}
		})
	}
	if n := len(env.Results(t)); n != 0 {
		t.Errorf("%d results: a job with a secret-shaped id ran", n)
	}
	if s, ok := emu.Session(live); !ok || s.Status != clerkapi.StatusActive {
		t.Errorf("session %s is %q; want it still active (the job never ran)", live, s.Status)
	}
	for _, s := range secrets {
		if strings.Contains(env.Logs.String(), s) {
			t.Errorf("the worker's log holds a secret-shaped job id")
		}
	}
}

// TestSecretInTheSubjectIsNeverStored: the jobs stream captures every
// sessions.* subject and every tenant token, so a Clerk key pasted where
// the op or the tenant belongs (sessions.<key>, sessions.tenant.<key>.revoke:
// a key fits the tenant pattern) reaches the worker. The job is
// dead-lettered as invalid, and neither the dead letter's subject, its
// headers (Dlq-Original-Subject) nor its body hold the key.
func TestSecretInTheSubjectIsNeverStored(t *testing.T) {
	tenantKey := "sk_" + "live_" + "TenantShaped0123456789"
	env := testenv.New(t)
	emu := env.Clerk.Emulator
	live := emu.CreateSessions(emu.CreateUser(), 1)[0]
	env.StartWorker(t)
	tests := []struct{ name, subject, secret string }{
		{"key as the op", env.Topology.Subjects.Prefix + "." + smuggledKey, smuggledKey},
		{"key as the tenant", env.Topology.Subjects.TenantJob(tenantKey, jobs.OpRevoke), tenantKey},
		// A NATS server's URL with its password, pasted as the op or the
		// tenant: the password is the secret (the URL holds no dot).
		{"URL password as the op", env.Topology.Subjects.Prefix + ".nats://alice:" + urlPassword + "@nats-internal:4222", urlPassword},
		{"URL password as the tenant", env.Topology.Subjects.TenantJob("nats://alice:"+urlPassword+"@nats-internal", jobs.OpRevoke), urlPassword},
	}
	seqs := make([]uint64, len(tests))
	for i, tt := range tests {
		seqs[i] = publishMsg(t, env, tt.subject, nil, `{"session_id":"`+live+`"}`).Sequence
	}
	waitRecords(t, env, len(tests))
	for _, m := range env.StreamMsgs(t, env.Topology.ResultsStream) {
		for _, tt := range tests {
			if where := holds(m, tt.secret); where != "" {
				t.Errorf("a result's %s holds the key of its job's subject: %s", where, m.Subject)
			}
		}
	}
	letters := lettersBySeq(t, env)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := letters[seqs[i]]
			if m == nil {
				t.Fatalf("no dead letter for stream seq %d", seqs[i])
			}
			if where := holds(m, tt.secret); where != "" {
				t.Errorf("the dead letter's %s holds the key of its job's subject", where)
			}
			if dl, _ := jobs.ParseDeadLetter(m.Header); dl.Error.Class != jobs.ClassInvalid {
				t.Errorf("class %s, want invalid", dl.Error.Class)
			}
		})
	}
	if s, ok := emu.Session(live); !ok || s.Status != clerkapi.StatusActive {
		t.Errorf("session %s is %q; want it still active (no job ran)", live, s.Status)
	}
	for _, tt := range tests {
		if strings.Contains(env.Logs.String(), tt.secret) {
			t.Errorf("the worker's log holds the key of a job's subject")
		}
	}
}

// waitRecords waits until the worker has recorded n jobs, as results or
// dead letters.
func waitRecords(t *testing.T, env *testenv.Env, n int) {
	t.Helper()
	testenv.Eventually(t, 20*time.Second, "every job recorded", func() bool {
		return env.StreamCount(t, env.Topology.DeadLetterStream)+env.StreamCount(t, env.Topology.ResultsStream) == uint64(n)
	})
}

// TestURLPasswordInReplyToIsNeverStored: a reply_to is a subject, and
// nats://alice:password@host is one (no dot, no wildcard). The dead
// letter's body had it redacted, but the error refusing it quoted it as it
// was: in the dead letter's Dlq-Error and Dlq-History, and the log.
func TestURLPasswordInReplyToIsNeverStored(t *testing.T) {
	env := testenv.New(t)
	env.StartWorker(t)
	seq := publishMsg(t, env, "sessions.revoke", nil, `{"session_id":"sess_1","reply_to":"nats://alice:`+urlPassword+`@nats-internal:4222"}`).Sequence
	testenv.Eventually(t, 20*time.Second, "the job dead-lettered", func() bool {
		return env.StreamCount(t, env.Topology.DeadLetterStream) == 1
	})
	m := lettersBySeq(t, env)[seq]
	if m == nil {
		t.Fatalf("no dead letter for stream seq %d", seq)
	}
	dl, _ := jobs.ParseDeadLetter(m.Header)
	if dl.Error.Class != jobs.ClassInvalid || dl.Error.Field != "/reply_to" {
		t.Errorf("class %s, field %q: want invalid, /reply_to (%s)", dl.Error.Class, dl.Error.Field, dl.Error.Message)
	}
	if where := holds(m, urlPassword); where != "" {
		t.Errorf("the dead letter's %s holds the URL's password", where)
	}
	for _, r := range env.StreamMsgs(t, env.Topology.ResultsStream) {
		if where := holds(r, urlPassword); where != "" {
			t.Errorf("a result's %s holds the URL's password", where)
		}
	}
	if strings.Contains(env.Logs.String(), urlPassword) {
		t.Errorf("the worker's log holds the URL's password")
	}
}
