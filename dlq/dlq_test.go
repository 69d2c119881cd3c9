package dlq_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/clerkjobstest"
	"github.com/clerkjobs/clerkjobs/dlq"
	"github.com/clerkjobs/clerkjobs/internal/embedded"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// env is an embedded JetStream server with the default topology.
type env struct {
	nc   *nats.Conn
	js   jetstream.JetStream
	topo jobs.Topology
	q    *dlq.Queue
}

func newEnv(t *testing.T) *env {
	t.Helper()
	kit := clerkjobstest.New(t, clerkjobstest.WithoutWorker(), clerkjobstest.WithTopology(jobs.DefaultTopology()))
	q, err := dlq.Open(t.Context(), kit.JetStream, kit.Topology)
	if err != nil {
		t.Fatal(err)
	}
	return &env{nc: kit.Conn, js: kit.JetStream, topo: kit.Topology, q: q}
}

// letter describes a dead letter to seed.
type letter struct {
	op      jobs.Op
	class   jobs.ErrorClass
	code    string
	jobID   string
	body    string // default: a valid job of op
	replays int
	subject string            // the original subject; default: op's
	stored  string            // the letter's own subject; default: the worker's
	header  map[string]string // set after the worker's headers
}

// seed stores dead letters the way the worker does and returns their
// sequences.
func (e *env) seed(t *testing.T, letters ...letter) []uint64 {
	t.Helper()
	var seqs []uint64
	for _, l := range letters {
		body := l.body
		if body == "" {
			body = testenv.JobBody(l.op, l.jobID)
		}
		payload, redacted := jobs.Redact(l.op, []byte(body))
		now := time.Now()
		d := jobs.DeadLetter{
			Subject: e.topo.Subjects.Job(l.op), StreamSeq: 1, JobID: l.jobID, Op: l.op,
			Error:    jobs.ErrorInfo{Class: l.class, Message: "failed", ClerkCode: l.code, HTTPStatus: 503},
			Attempts: 3, Deliveries: 1, FirstFailure: now, LastFailure: now, Worker: "w1",
			History:  []jobs.Failure{{At: now, Error: "boom", Status: 503, Code: l.code}},
			Redacted: redacted, Replays: l.replays,
		}
		m := nats.NewMsg(e.topo.Subjects.DeadLetter(jobs.RecordKey{Op: l.op, JobID: l.jobID, Gen: "seed", Seq: uint64(time.Now().UnixNano())}))
		if l.stored != "" {
			m.Subject = l.stored
		}
		if l.subject != "" {
			d.Subject = l.subject
		}
		m.Header = d.Header()
		for k, v := range l.header {
			m.Header.Set(k, v)
		}
		m.Data = payload
		ack, err := e.js.PublishMsg(t.Context(), m)
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, ack.Sequence)
	}
	return seqs
}

// jobsMsgs returns every message in the jobs stream.
func (e *env) jobsMsgs(t *testing.T) []*jetstream.RawStreamMsg {
	t.Helper()
	return testenv.StreamMsgs(t, e.js, e.topo.JobsStream)
}

// created is when the dead-letter stream was created, which replay ids
// carry.
func (e *env) created(t *testing.T) time.Time {
	t.Helper()
	s, err := e.js.Stream(t.Context(), e.topo.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	return s.CachedInfo().Created
}

func (e *env) dlqSeqs(t *testing.T) []uint64 {
	t.Helper()
	entries, err := e.q.List(t.Context(), dlq.Filter{}, dlq.WithoutPayload())
	if err != nil {
		t.Fatal(err)
	}
	return dlq.Seqs(entries)
}

func TestFilters(t *testing.T) {
	e := newEnv(t)
	early := e.seed(t,
		letter{op: jobs.OpRevoke, class: jobs.ClassExhausted, code: "", jobID: "a1"},
		letter{op: jobs.OpRevoke, class: jobs.ClassPermanent, code: "resource_not_found", jobID: "a2"},
		letter{op: jobs.OpGet, class: jobs.ClassExhausted, code: "rate_limit_exceeded", jobID: "a3"},
	)
	time.Sleep(20 * time.Millisecond)
	mid := time.Now()
	time.Sleep(20 * time.Millisecond)
	late := e.seed(t,
		letter{op: jobs.OpToken, class: jobs.ClassMaxDeliveries, jobID: "b1"},
		letter{op: jobs.OpRefresh, class: jobs.ClassPermanent, code: "resource_not_found", jobID: "b2"},
		letter{op: jobs.OpRevoke, class: jobs.ClassExhausted, code: "rate_limit_exceeded", jobID: "b3"},
		letter{op: jobs.OpCreate, class: jobs.ClassInvalid, jobID: "b4", body: `{"user_id":42}`},
	)
	// A message on the dead-letter subjects without dead-letter headers is
	// listed too: nothing in the queue is hidden.
	if _, err := e.js.Publish(t.Context(), e.topo.Subjects.DeadLetter(jobs.RecordKey{Op: jobs.OpGet, JobID: "stray", Gen: "seed", Seq: 1}), []byte("stray")); err != nil {
		t.Fatal(err)
	}
	all := append(slices.Clone(early), late...)
	stray := all[len(all)-1] + 1
	all = append(all, stray)

	tests := []struct {
		name string
		f    dlq.Filter
		want []uint64
	}{
		{"all", dlq.Filter{}, all},
		{"op", dlq.Filter{Ops: []jobs.Op{jobs.OpRevoke}}, []uint64{early[0], early[1], late[2]}},
		{"ops", dlq.Filter{Ops: []jobs.Op{jobs.OpGet, jobs.OpToken}}, []uint64{early[2], late[0], stray}},
		{"class", dlq.Filter{Classes: []jobs.ErrorClass{jobs.ClassPermanent}}, []uint64{early[1], late[1]}},
		{"code", dlq.Filter{ClerkCodes: []string{"rate_limit_exceeded"}}, []uint64{early[2], late[2]}},
		{"op and class", dlq.Filter{Ops: []jobs.Op{jobs.OpRevoke}, Classes: []jobs.ErrorClass{jobs.ClassExhausted}}, []uint64{early[0], late[2]}},
		{"since", dlq.Filter{Since: mid}, append(slices.Clone(late), stray)},
		{"until", dlq.Filter{Until: mid}, early},
		{"since and class", dlq.Filter{Since: mid, Classes: []jobs.ErrorClass{jobs.ClassExhausted}}, []uint64{late[2]}},
		{"job ids", dlq.Filter{JobIDs: []string{"a2", "b4", "zz"}}, []uint64{early[1], late[3]}},
		{"seqs", dlq.Filter{Seqs: []uint64{late[1], early[0], 999, early[0]}}, []uint64{early[0], late[1]}},
		{"seqs and op", dlq.Filter{Seqs: []uint64{late[1], early[0]}, Ops: []jobs.Op{jobs.OpRevoke}}, []uint64{early[0]}},
		{"nothing", dlq.Filter{Ops: []jobs.Op{jobs.OpList}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, withPayload := range []bool{true, false} {
				var opts []dlq.Option
				if !withPayload {
					opts = append(opts, dlq.WithoutPayload())
				}
				got, err := e.q.List(t.Context(), tt.f, opts...)
				if err != nil {
					t.Fatal(err)
				}
				if gs := dlq.Seqs(got); !slices.Equal(gs, tt.want) {
					t.Fatalf("payload %v: got %v, want %v", withPayload, gs, tt.want)
				}
				for _, en := range got {
					if en.Size == 0 {
						t.Errorf("entry %d: size 0", en.Seq)
					}
					if withPayload == (en.Payload == nil) {
						t.Errorf("entry %d: payload %q with payload=%v", en.Seq, en.Payload, withPayload)
					}
				}
			}
		})
	}

	got, err := e.q.Get(t.Context(), late[1])
	if err != nil {
		t.Fatal(err)
	}
	if got.Op != jobs.OpRefresh || got.DeadLetter.JobID != "b2" || got.DeadLetter.Replayable() || len(got.DeadLetter.History) != 1 {
		t.Fatalf("Get(%d) = %+v", late[1], got)
	}
	if _, err := e.q.Get(t.Context(), 999); !errors.Is(err, dlq.ErrNotFound) {
		t.Fatalf("Get(999) error = %v, want ErrNotFound", err)
	}
	strayEntry, err := e.q.Get(t.Context(), stray)
	if err != nil || !errors.Is(strayEntry.HeaderErr, jobs.ErrNotDeadLetter) || strayEntry.Op != jobs.OpGet {
		t.Fatalf("Get(stray) = %+v, %v", strayEntry, err)
	}
}

func TestReplay(t *testing.T) {
	e := newEnv(t)
	// The original job of "r1" is still in the jobs stream's deduplication
	// window: a replay must not be swallowed as its duplicate.
	if _, err := jobs.Publish(t.Context(), e.js, e.topo.Subjects, &jobs.RevokeArgs{Common: jobs.Common{JobID: "r1"}, SessionID: "sess_1"}); err != nil {
		t.Fatal(err)
	}
	seqs := e.seed(t,
		letter{op: jobs.OpRevoke, class: jobs.ClassExhausted, jobID: "r1"},
		letter{op: jobs.OpToken, class: jobs.ClassExhausted, jobID: "r2", replays: 2},
		letter{op: jobs.OpRefresh, class: jobs.ClassExhausted, jobID: "r3"},                  // redacted
		letter{op: jobs.OpCreate, class: jobs.ClassInvalid, jobID: "r4", body: `{"user":1}`}, // invalid
	)

	// A dry run changes nothing.
	rep, err := e.q.Replay(t.Context(), seqs, dlq.WithDryRun())
	if err != nil || rep.Replayed != 2 || rep.Skipped != 2 || !rep.DryRun {
		t.Fatalf("dry run: %+v, %v", rep, err)
	}
	if n := len(e.jobsMsgs(t)); n != 1 {
		t.Fatalf("dry run: jobs stream has %d messages, want 1", n)
	}

	var progress []dlq.EntryReport
	rep, err = e.q.Replay(t.Context(), append(slices.Clone(seqs), 999), dlq.WithProgress(func(o dlq.EntryReport) { progress = append(progress, o) }))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Replayed != 2 || rep.Skipped != 3 || rep.Failed != 0 || rep.Duplicates != 0 || len(progress) != 5 {
		t.Fatalf("report %+v, %d progress calls", rep, len(progress))
	}
	reasons := map[uint64]string{}
	for _, p := range rep.Problems {
		reasons[p.Seq] = p.Reason
	}
	for seq, want := range map[uint64]string{seqs[2]: "redacted", seqs[3]: "not a valid create job", 999: "not in the dead-letter queue"} {
		if !contains(reasons[seq], want) {
			t.Errorf("entry %d: reason %q, want it to say %q", seq, reasons[seq], want)
		}
	}

	msgs := e.jobsMsgs(t)
	if len(msgs) != 3 {
		t.Fatalf("jobs stream has %d messages, want the original and 2 replays", len(msgs))
	}
	for i, want := range []struct {
		of      uint64
		replays int
		subject string
		jobID   string
	}{{seqs[0], 1, "sessions.revoke", "r1"}, {seqs[1], 3, "sessions.token.request", "r2"}} {
		m := msgs[i+1]
		if m.Subject != want.subject || m.Header.Get(jobs.HeaderReplayOf) != strconv.FormatUint(want.of, 10) ||
			m.Header.Get(jobs.HeaderReplays) != strconv.Itoa(want.replays) ||
			m.Header.Get(jetstream.MsgIDHeader) != dlq.ReplayMsgID(e.created(t), want.of, want.replays) {
			t.Errorf("replayed job %d: subject %s, headers %v", i, m.Subject, m.Header)
		}
		var body struct {
			JobID string `json:"job_id"`
		}
		if err := json.Unmarshal(m.Data, &body); err != nil || body.JobID != want.jobID {
			t.Errorf("replayed job %d: body %s", i, m.Data)
		}
	}
	if left := e.dlqSeqs(t); !slices.Equal(left, seqs[2:]) {
		t.Fatalf("dead letters left %v, want the skipped %v", left, seqs[2:])
	}
}

// TestReplayInterrupted stops a replay half-way, leaves one entry in the
// state a crash between the acknowledged republish and the delete would,
// and checks that a re-run replays every entry exactly once.
func TestReplayInterrupted(t *testing.T) {
	e := newEnv(t)
	const n, stopAfter = 20, 7
	var letters []letter
	for i := range n {
		letters = append(letters, letter{op: jobs.OpRevoke, class: jobs.ClassExhausted, jobID: fmt.Sprintf("j%d", i)})
	}
	seqs := e.seed(t, letters...)

	ctx, cancel := context.WithCancel(t.Context())
	done := 0
	rep, err := e.q.Replay(ctx, seqs, dlq.WithProgress(func(o dlq.EntryReport) {
		if done++; done == stopAfter {
			cancel()
		}
	}))
	if !errors.Is(err, context.Canceled) || rep.Replayed != stopAfter || rep.NotAttempted != n-stopAfter {
		t.Fatalf("interrupted replay: %+v, %v", rep, err)
	}

	// The crash: the next entry's job was republished and acknowledged,
	// the dead letter not deleted.
	crashed := seqs[stopAfter]
	en, err := e.q.Get(t.Context(), crashed)
	if err != nil {
		t.Fatal(err)
	}
	m := nats.NewMsg(en.DeadLetter.Subject)
	m.Data = en.Payload
	m.Header.Set(jetstream.MsgIDHeader, dlq.ReplayMsgID(e.created(t), crashed, 1))
	if _, err := e.js.PublishMsg(t.Context(), m); err != nil {
		t.Fatal(err)
	}

	// The re-run takes whatever is left in the queue.
	rep, err = e.q.Replay(t.Context(), e.dlqSeqs(t))
	if err != nil || rep.Replayed != n-stopAfter || rep.Duplicates != 1 {
		t.Fatalf("re-run: %+v, %v", rep, err)
	}
	if left := e.dlqSeqs(t); len(left) != 0 {
		t.Fatalf("dead letters left: %v", left)
	}
	count := map[string]int{}
	for _, m := range e.jobsMsgs(t) {
		var body struct {
			JobID string `json:"job_id"`
		}
		if err := json.Unmarshal(m.Data, &body); err != nil {
			t.Fatal(err)
		}
		count[body.JobID]++
	}
	if len(count) != n {
		t.Fatalf("jobs stream holds %d distinct jobs, want %d: %v", len(count), n, count)
	}
	for id, c := range count {
		if c != 1 {
			t.Errorf("job %s is in the jobs stream %d times", id, c)
		}
	}
}

// TestReplayPublishFails checks that a job the jobs stream refuses keeps
// its dead letter and stops the replay.
func TestReplayPublishFails(t *testing.T) {
	e := newEnv(t)
	seqs := e.seed(t,
		letter{op: jobs.OpRevoke, class: jobs.ClassExhausted, jobID: "x1"},
		letter{op: jobs.OpRevoke, class: jobs.ClassExhausted, jobID: "x2"},
		letter{op: jobs.OpRevoke, class: jobs.ClassExhausted, jobID: "x3"},
	)
	if err := e.js.DeleteStream(t.Context(), e.topo.JobsStream); err != nil {
		t.Fatal(err)
	}
	rep, err := e.q.Replay(t.Context(), seqs, dlq.WithTimeout(2*time.Second))
	if err == nil || rep.Failed != 1 || rep.NotAttempted != 2 || rep.Replayed != 0 {
		t.Fatalf("replay without a jobs stream: %+v, %v", rep, err)
	}
	if !contains(rep.Problems[0].Reason, "the dead letter is kept") {
		t.Errorf("reason %q", rep.Problems[0].Reason)
	}
	if left := e.dlqSeqs(t); !slices.Equal(left, seqs) {
		t.Fatalf("dead letters left %v, want all of %v", left, seqs)
	}
}

func TestReplayRate(t *testing.T) {
	e := newEnv(t)
	var letters []letter
	for i := range 6 {
		letters = append(letters, letter{op: jobs.OpGet, class: jobs.ClassExhausted, jobID: fmt.Sprintf("g%d", i)})
	}
	seqs := e.seed(t, letters...)
	start := time.Now()
	rep, err := e.q.Replay(t.Context(), seqs, dlq.WithRate(20))
	if err != nil || rep.Replayed != 6 {
		t.Fatalf("%+v, %v", rep, err)
	}
	// 6 jobs at 20/s with a burst of 1: at least 5 intervals of 50ms.
	if el := time.Since(start); el < 240*time.Millisecond {
		t.Fatalf("6 replays at 20/s took %s", el)
	}
}

func TestPurge(t *testing.T) {
	e := newEnv(t)
	seqs := e.seed(t,
		letter{op: jobs.OpRevoke, class: jobs.ClassPermanent, jobID: "p1"},
		letter{op: jobs.OpGet, class: jobs.ClassPermanent, jobID: "p2"},
		letter{op: jobs.OpRevoke, class: jobs.ClassExhausted, jobID: "p3"},
	)
	sel, err := e.q.List(t.Context(), dlq.Filter{Classes: []jobs.ErrorClass{jobs.ClassPermanent}})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := e.q.Purge(t.Context(), append(dlq.Seqs(sel), 999))
	if err != nil || rep.Purged != 2 || rep.NotFound != 1 {
		t.Fatalf("%+v, %v", rep, err)
	}
	if left := e.dlqSeqs(t); !slices.Equal(left, seqs[2:]) {
		t.Fatalf("left %v, want %v", left, seqs[2:])
	}
}

func TestStats(t *testing.T) {
	e := newEnv(t)
	e.seed(t,
		letter{op: jobs.OpRevoke, class: jobs.ClassPermanent},
		letter{op: jobs.OpRevoke, class: jobs.ClassExhausted},
		letter{op: jobs.OpRevoke, class: jobs.ClassExhausted},
		letter{op: jobs.OpToken, class: jobs.ClassMaxDeliveries},
	)
	st, err := e.q.Stats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.Entries != 4 || st.ByOp[jobs.OpRevoke] != 3 || st.ByOp[jobs.OpToken] != 1 ||
		st.ByClass[jobs.ClassExhausted] != 2 || st.ByOpClass[jobs.OpRevoke][jobs.ClassExhausted] != 2 ||
		st.Oldest.IsZero() || st.Newest.Before(st.Oldest) {
		t.Fatalf("stats %+v", st)
	}
}

// TestLargeQueue lists and counts a queue of many entries by headers.
func TestLargeQueue(t *testing.T) {
	if testing.Short() {
		t.Skip("seeds 20,000 dead letters")
	}
	e := newEnv(t)
	const n = 20000
	h := jobs.DeadLetter{Subject: "sessions.revoke", Op: jobs.OpRevoke, Error: jobs.ErrorInfo{Class: jobs.ClassExhausted, Message: "x"}}.Header()
	hp := jobs.DeadLetter{Subject: "sessions.get", Op: jobs.OpGet, Error: jobs.ErrorInfo{Class: jobs.ClassPermanent, Message: "x"}}.Header()
	for i := range n {
		m := &nats.Msg{Subject: e.topo.Subjects.DeadLetter(jobs.RecordKey{Op: jobs.OpRevoke, JobID: "j", Gen: "g", Seq: uint64(i + 1)}), Header: h, Data: []byte(`{"session_id":"sess_1"}`)}
		if i%10 == 0 {
			m = &nats.Msg{Subject: e.topo.Subjects.DeadLetter(jobs.RecordKey{Op: jobs.OpGet, JobID: "j", Gen: "g", Seq: uint64(i + 1)}), Header: hp, Data: []byte(`{"session_id":"sess_1"}`)}
		}
		if _, err := e.js.PublishMsgAsync(m); err != nil {
			t.Fatal(err)
		}
		// Settle in chunks, below the client's limit of pending acks.
		if i%1000 == 999 || i == n-1 {
			select {
			case <-e.js.PublishAsyncComplete():
			case <-time.After(time.Minute):
				t.Fatal("seeding timed out")
			}
		}
	}
	got := 0
	for en, err := range e.q.Entries(t.Context(), dlq.Filter{Classes: []jobs.ErrorClass{jobs.ClassPermanent}}, dlq.WithoutPayload()) {
		if err != nil {
			t.Fatal(err)
		}
		if en.Op != jobs.OpGet {
			t.Fatalf("entry %d: op %s", en.Seq, en.Op)
		}
		got++
	}
	if got != n/10 {
		t.Fatalf("got %d permanent entries, want %d", got, n/10)
	}
	st, err := e.q.Stats(t.Context())
	if err != nil || st.Entries != n || st.ByOp[jobs.OpRevoke] != n-n/10 {
		t.Fatalf("stats %+v, %v", st, err)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// TestCheckReplayIsReplaysRule: for every kind of dead letter, CheckReplay
// and Replay agree, with the same reason.
func TestCheckReplayIsReplaysRule(t *testing.T) {
	e := newEnv(t)
	long := strings.Repeat("x", jobs.MaxJobIDLen+1)
	cases := []struct {
		l    letter
		want string // "" when replayable, else a piece of the reason
	}{
		{letter{op: jobs.OpRevoke, class: jobs.ClassExhausted, jobID: "ok"}, ""},
		// A revoke_all's per-session dead letter, its id bounded by the
		// worker: replayable.
		{letter{op: jobs.OpRevoke, class: jobs.ClassPermanent, jobID: strings.Repeat("p", 80) + "-1a2b3c4d/sess_1",
			header: map[string]string{jobs.HeaderParentJob: strings.Repeat("p", 300)}}, ""},
		// One stored before ids were bounded: its body fails its schema.
		{letter{op: jobs.OpRevoke, class: jobs.ClassPermanent, jobID: long}, "not a valid revoke job (invalid revoke job: /job_id"},
		{letter{op: jobs.OpRefresh, class: jobs.ClassExhausted, jobID: "secret"}, "were redacted"},
		{letter{op: jobs.OpCreate, class: jobs.ClassInvalid, jobID: "bad", body: `{"user":1}`}, "not a valid create job"},
		{letter{op: jobs.OpRevoke, class: jobs.ClassInvalid, jobID: "where", subject: "sessions.revokee"}, "is not a job subject"},
		{letter{op: jobs.OpRevoke, class: jobs.ClassExhausted, jobID: "count", header: map[string]string{jobs.HeaderReplays: "many"}}, "not a count"},
		// Headers are whoever wrote the letter's: one naming another
		// tenant's or op's subject than the letter's own is not followed,
		// and no reason repeats a secret put in them.
		{letter{op: jobs.OpRevoke, class: jobs.ClassExhausted, jobID: "elsewhere", subject: "sessions.tenant.svc_b.revoke"}, "names another tenant or job type"},
		{letter{op: jobs.OpRevoke, class: jobs.ClassExhausted, jobID: "otherop", subject: "sessions.get"}, "names another tenant or job type"},
		{letter{op: jobs.OpRevoke, class: jobs.ClassExhausted, jobID: "secretcount", header: map[string]string{jobs.HeaderReplays: "sk_" + "live_SECRETabcdefghijklmnopqrstuvwxyz0123"}}, "not a count"},
		{letter{op: jobs.OpRevoke, class: jobs.ClassInvalid, jobID: "secretsubject", subject: "sessions.eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJTRUNSRVQifQ.SECRETsig"}, "is not a job subject"},
		// A key where the shown subject is cut: cut first, its start
		// ("sk_live_") no longer had a key's shape and was shown.
		{letter{op: jobs.OpRevoke, class: jobs.ClassInvalid, jobID: "cutsubject", subject: "sessions." + strings.Repeat("x", 99) + ".sk_" + "live_SECRETabcdefghijklmnop"}, "is not a job subject"},
		// A letter stored before records had a subject each
		// (<prefix>.dlq.<op>) is its op's, outside any tenant (tenants
		// came with the per-job subjects): its header may not name a
		// tenant or another op either. One on a subject the worker never
		// writes says nothing about where it came from.
		{letter{op: jobs.OpGet, class: jobs.ClassExhausted, jobID: "legacy", stored: "sessions.dlq.get"}, ""},
		{letter{op: jobs.OpRevoke, class: jobs.ClassExhausted, jobID: "legacytenant", stored: "sessions.dlq.revoke", subject: "sessions.tenant.svc_b.revoke"}, "names another tenant or job type"},
		{letter{op: jobs.OpRevoke, class: jobs.ClassExhausted, jobID: "legacyop", stored: "sessions.dlq.list", subject: "sessions.revoke"}, "names another tenant or job type"},
		{letter{op: jobs.OpRevoke, class: jobs.ClassExhausted, jobID: "nowhere", stored: "sessions.dlq.forged", subject: "sessions.tenant.svc_b.revoke"}, "is not a dead-letter subject"},
	}
	for _, c := range cases {
		seq := e.seed(t, c.l)[0]
		entry, err := e.q.Get(t.Context(), seq)
		if err != nil {
			t.Fatal(err)
		}
		check := e.q.CheckReplay(entry)
		rep, err := e.q.Replay(t.Context(), []uint64{seq}, dlq.WithDryRun())
		if err != nil {
			t.Fatal(err)
		}
		if check != nil && (contains(check.Error(), "SECRET") || contains(check.Error(), "sk_"+"live")) {
			t.Errorf("%s: the reason repeats a secret: %v", c.l.jobID, check)
		}
		switch {
		case c.want == "" && (check != nil || rep.Replayed != 1):
			t.Errorf("%s: CheckReplay = %v, dry run %+v; want both to replay it", c.l.jobID[:min(len(c.l.jobID), 20)], check, rep)
		case c.want != "" && (check == nil || !errors.Is(check, dlq.ErrNotReplayable) || !contains(check.Error(), c.want)):
			t.Errorf("%s: CheckReplay = %v, want a refusal saying %q", c.l.jobID[:min(len(c.l.jobID), 20)], check, c.want)
		case c.want != "" && (rep.Skipped != 1 || rep.Problems[0].Reason != check.Error()):
			t.Errorf("%s: dry run %+v, want it skipped for %q", c.l.jobID[:min(len(c.l.jobID), 20)], rep, check)
		}
	}
}

// TestExpectGuardsEachLetter: with WithExpect, Replay and Purge act only on
// the letters the check accepts, as read just before; the others are
// skipped with its reason and stay in the queue.
func TestExpectGuardsEachLetter(t *testing.T) {
	e := newEnv(t)
	seqs := e.seed(t, letter{op: jobs.OpRevoke, class: jobs.ClassExhausted, jobID: "keep"},
		letter{op: jobs.OpRevoke, class: jobs.ClassExhausted, jobID: "go"})
	onlyGo := dlq.WithExpect(func(en dlq.Entry) error {
		if en.DeadLetter.JobID != "go" {
			return errors.New("not the letter planned")
		}
		return nil
	})
	rep, err := e.q.Replay(t.Context(), seqs, onlyGo, dlq.WithDryRun())
	if err != nil || rep.Replayed != 1 || rep.Skipped != 1 || rep.Problems[0].Seq != seqs[0] || rep.Problems[0].Reason != "not the letter planned" {
		t.Fatalf("dry run %+v, %v; want the letter 'go' only", rep, err)
	}
	prep, err := e.q.Purge(t.Context(), seqs, onlyGo)
	if err != nil || prep.Purged != 1 || prep.Skipped != 1 || prep.NotFound != 0 || prep.Problems[0].Reason != "not the letter planned" {
		t.Fatalf("purge %+v, %v; want the letter 'go' only", prep, err)
	}
	if _, err := e.q.Get(t.Context(), seqs[0]); err != nil {
		t.Errorf("the refused letter is gone: %v", err)
	}
	if _, err := e.q.Get(t.Context(), seqs[1]); !errors.Is(err, dlq.ErrNotFound) {
		t.Errorf("the accepted letter is still there: %v", err)
	}
}

// TestReplayRefusedByJetStream: an error JetStream answers to the
// republish is said plainly, once.
func TestReplayRefusedByJetStream(t *testing.T) {
	e := newEnv(t)
	seqs := e.seed(t, letter{op: jobs.OpRevoke, class: jobs.ClassExhausted, jobID: "full"})
	testenv.FillStream(t, e.js, e.topo.JobsStream)
	if _, err := jobs.Publish(t.Context(), e.js, e.topo.Subjects, &jobs.RevokeArgs{Common: jobs.Common{JobID: "filler"}, SessionID: "sess_1"}); err != nil {
		t.Fatal(err)
	}
	rep, err := e.q.Replay(t.Context(), seqs)
	if err == nil || rep.Failed != 1 {
		t.Fatalf("replay into a full stream: %+v, %v", rep, err)
	}
	if r := rep.Problems[0].Reason; !contains(r, "maximum messages exceeded") || contains(r, "nats: nats:") {
		t.Errorf("reason %q: want JetStream's refusal, said once", r)
	}
	// A full jobs stream refused it: nothing was stored, and later will do.
	if r := rep.Problems[0].Reason; !contains(r, "jobs stream "+e.topo.JobsStream+" is full") || !contains(r, "not stored") || !contains(r, "dead letter is kept") || !contains(r, "--jobs-max-bytes") {
		t.Errorf("reason %q: want it to say the jobs stream is full, the job not stored, the letter kept, and the setting", r)
	}
	if _, err := e.q.Get(t.Context(), seqs[0]); err != nil {
		t.Errorf("the dead letter refused by the full jobs stream is gone: %v", err)
	}
}

// TestReplayRefusedForStorage: JetStream's storage full (here the
// server's max_file_store, used up by another stream) refuses the
// republish before the jobs stream's cap is reached. Replay said only
// "fix the cause"; it says, as for a full jobs stream, that the job was
// not stored and the letter is kept, and what to free or raise.
func TestReplayRefusedForStorage(t *testing.T) {
	srv, err := embedded.StartConnected(embedded.Options{StoreDir: t.TempDir(), MaxStore: 8<<20 + jobs.GivenUpMaxBytes})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	topo := jobs.DefaultTopology()
	topo.JobsMaxBytes, topo.ResultsMaxBytes, topo.DeadLetterMaxBytes = 1<<20, 1<<20, 1<<20 // reserved within the 8 MiB, the given-up stream's cap beside
	if _, err := topo.Ensure(t.Context(), srv.JetStream); err != nil {
		t.Fatal(err)
	}
	q, err := dlq.Open(t.Context(), srv.JetStream, topo)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{nc: srv.Conn, js: srv.JetStream, topo: topo, q: q}
	seqs := e.seed(t, letter{op: jobs.OpRevoke, class: jobs.ClassExhausted, jobID: "no-room"})
	if _, err := e.js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "OTHER", Subjects: []string{"other.>"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		_, err := e.js.Publish(t.Context(), "other.x", make([]byte, 60<<10))
		if jobs.StorageFull(err) {
			break
		}
		if err != nil || i > 1000 {
			t.Fatalf("filling the server's storage, message %d: %v", i, err)
		}
	}
	rep, err := e.q.Replay(t.Context(), seqs)
	if err == nil || rep.Failed != 1 {
		t.Fatalf("replay with JetStream's storage full: %+v, %v", rep, err)
	}
	r := rep.Problems[0].Reason
	for _, want := range []string{"storage is full", "not stored", "dead letter is kept", "max_file_store", "free or raise"} {
		if !contains(r, want) {
			t.Errorf("reason %q: want it to say %q", r, want)
		}
	}
	if _, err := e.q.Get(t.Context(), seqs[0]); err != nil {
		t.Errorf("the dead letter refused for want of storage is gone: %v", err)
	}
}

// TestParseRate: the forms people write give jobs per second; anything
// that would mean no limit (NaN, Inf) or a replay that never ends (a rate
// far below one an hour) is refused with what to write instead.
func TestParseRate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want float64
		err  string // part of the error; "": none
	}{
		{"", 0, ""},
		{"20", 20, ""},
		{"20/s", 20, ""},
		{"600/m", 10, ""},
		{"3600/h", 1, ""},
		{"1/h", 1.0 / 3600, ""},
		{"0", 0, "want a positive number"},
		{"-5", 0, "want a positive number"},
		{"fast", 0, "want a positive number"},
		{"NaN", 0, "want a positive number"},
		{"Inf", 0, "want a positive number"},
		{"+Inf/s", 0, "want a positive number"},
		{"1e-300", 0, "slower than one job an hour"},
		{"0.5/h", 0, "slower than one job an hour"},
		{"20/d", 0, "must be s, m or h"},
	} {
		got, err := dlq.ParseRate(tc.in)
		switch {
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("ParseRate(%q) = %g, %v; want %g", tc.in, got, err, tc.want)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("ParseRate(%q) = %g, %v; want an error saying %q", tc.in, got, err, tc.err)
		}
	}
}
