package console

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/clerkjobs/clerkjobs/dlq"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// fill indexes n dead letters with sequences 1..n: ops and classes in
// turn, one a minute from base.
func fill(x *index, n int, base time.Time) {
	ops := []jobs.Op{jobs.OpRevoke, jobs.OpGet, jobs.OpToken}
	classes := jobs.ErrorClasses()
	for i := 1; i <= n; i++ {
		x.add(dlq.Entry{
			Seq: uint64(i), Op: ops[i%len(ops)], Time: base.Add(time.Duration(i) * time.Minute),
			DeadLetter: jobs.DeadLetter{JobID: fmt.Sprintf("job-%d", i), Error: jobs.ErrorInfo{Class: classes[i%len(classes)], Message: "boom"}},
		})
	}
}

func TestIndexPages(t *testing.T) {
	base := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	x := newIndex(nil)
	fill(x, 250, base)
	x.remove(10, 20, 30) // replayed meanwhile

	tests := []struct {
		name string
		f    dlq.Filter
		size int
	}{
		{"everything", dlq.Filter{}, 247},
		{"one class", dlq.Filter{Classes: []jobs.ErrorClass{jobs.ClassExhausted}}, 61},
		{"op and class", dlq.Filter{Ops: []jobs.Op{jobs.OpGet}, Classes: []jobs.ErrorClass{jobs.ClassPermanent, jobs.ClassInvalid}}, 42},
		{"a time window", dlq.Filter{Since: base.Add(100 * time.Minute), Until: base.Add(150 * time.Minute)}, 50},
		{"a job id", dlq.Filter{JobIDs: []string{"job-77"}}, 1},
		{"a removed job id", dlq.Filter{JobIDs: []string{"job-20"}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want []uint64 // newest first
			for i := len(x.rows) - 1; i >= 0; i-- {
				if r := x.rows[i]; !r.gone && tt.f.Match(r.entry()) {
					want = append(want, r.Seq)
				}
			}
			if len(want) != tt.size {
				t.Fatalf("the filter matches %d, the test expects %d", len(want), tt.size)
			}
			for _, n := range []int{1, 7, 100, 500} {
				// Older and older pages, then back to the newest.
				var got []uint64
				var p page
				for cursor, pages := uint64(0), 0; ; pages++ {
					p = x.page(tt.f, cursor, 0, n)
					if p.Matching != len(want) {
						t.Fatalf("n=%d: Matching %d, want %d", n, p.Matching, len(want))
					}
					for _, r := range p.Rows {
						got = append(got, r.Seq)
					}
					if p.Older == 0 {
						break
					}
					if p.Older != p.Rows[len(p.Rows)-1].Seq || pages > len(want) {
						t.Fatalf("n=%d: older cursor %d after %v", n, p.Older, got)
					}
					cursor = p.Older
				}
				if !slices.Equal(got, want) {
					t.Fatalf("n=%d: paging older gave %v, want %v", n, got, want)
				}
				var back []uint64
				for pages := 0; len(p.Rows) > 0; pages++ {
					back = append(slices.Clone(rowsSeqs(p.Rows)), back...)
					if p.Newer == 0 || pages > len(want) {
						break
					}
					p = x.page(tt.f, 0, p.Newer, n)
				}
				if !slices.Equal(back, want) {
					t.Fatalf("n=%d: paging newer gave %v, want %v", n, back, want)
				}
			}
		})
	}
}

func rowsSeqs(rows []row) []uint64 {
	out := make([]uint64, len(rows))
	for i, r := range rows {
		out[i] = r.Seq
	}
	return out
}

func TestIndexCountsAndSelection(t *testing.T) {
	x := newIndex(nil)
	fill(x, 12, time.Now())
	st := x.stats()
	if st.Entries != 12 || st.ByOp[jobs.OpRevoke] != 4 || st.ByClass[jobs.ClassInvalid] != 3 || st.ByOpClass[jobs.OpGet][jobs.ClassPermanent] != 1 {
		t.Fatalf("stats %+v", st)
	}
	x.remove(4, 8, 12, 99) // 4, 8, 12: the invalid ones; 99: never there
	st = x.stats()
	if st.Entries != 9 || st.ByClass[jobs.ClassInvalid] != 0 || len(st.ByOpClass[jobs.OpRevoke]) != 3 || st.ByOpClass[jobs.OpRevoke][jobs.ClassInvalid] != 0 {
		t.Fatalf("stats after removals %+v", st)
	}
	seqs, kinds := x.selection(dlq.Filter{Classes: []jobs.ErrorClass{jobs.ClassPermanent}})
	if !slices.Equal(seqs, []uint64{1, 5, 9}) || kinds["get/permanent"] != 1 || kinds["token/permanent"] != 1 || kinds["revoke/permanent"] != 1 {
		t.Fatalf("selection %v %v", seqs, kinds)
	}
	// Compaction keeps what is left and finds it.
	y := newIndex(nil)
	fill(y, 5000, time.Now())
	var drop []uint64
	for s := uint64(1); s <= 4000; s++ {
		drop = append(drop, s)
	}
	y.remove(drop...)
	if len(y.rows) != 1000 || !has(y, 4001) || has(y, 4000) || y.stats().Entries != 1000 {
		t.Fatalf("after compaction: %d rows, has 4001 %v", len(y.rows), has(y, 4001))
	}
}

// TestIndexFollowsTheStream: the index reads the dead-letter stream, takes
// new entries as they are stored, and drops the ones deleted by anyone
// else (here: directly in the stream, as `publish dlq replay` in another
// shell would).
func TestIndexFollowsTheStream(t *testing.T) {
	env := testenv.New(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	subj := env.Topology.Subjects
	store := func(i int, class jobs.ErrorClass) uint64 {
		d := jobs.DeadLetter{Subject: subj.Job(jobs.OpRevoke), JobID: fmt.Sprintf("j%d", i), Op: jobs.OpRevoke, Error: jobs.ErrorInfo{Class: class, Message: "boom"}}
		m := nats.NewMsg(subj.DeadLetter(jobs.RecordKey{Op: jobs.OpRevoke, JobID: d.JobID, Gen: "g", Seq: uint64(i + 1)}))
		m.Header, m.Data = d.Header(), []byte(testenv.JobBody(jobs.OpRevoke, d.JobID))
		ack, err := env.JS.PublishMsg(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		return ack.Sequence
	}
	var seqs []uint64
	for i := range 40 {
		seqs = append(seqs, store(i, jobs.ClassExhausted))
	}
	stream, err := env.JS.Stream(ctx, env.Topology.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	x := newIndex(nil)
	f := &follower{x: x, stream: stream, topo: env.Topology, every: 50 * time.Millisecond}
	go func() { _ = f.run(ctx) }()
	entries := func() int { return x.stats().Entries }
	testenv.Eventually(t, 10*time.Second, "40 indexed", func() bool { return x.stats().Ready && entries() == 40 })

	for i := range 10 {
		seqs = append(seqs, store(40+i, jobs.ClassPermanent))
	}
	testenv.Eventually(t, 10*time.Second, "50 indexed", func() bool { return entries() == 50 })
	if n := x.stats().ByClass[jobs.ClassPermanent]; n != 10 {
		t.Fatalf("%d permanent", n)
	}

	// Deleted elsewhere: the first three (the stream's first sequence
	// moves), three in the middle, the newest.
	for _, s := range []uint64{seqs[0], seqs[1], seqs[2], seqs[20], seqs[21], seqs[30], seqs[49]} {
		if err := stream.DeleteMsg(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, 10*time.Second, "43 left", func() bool { return entries() == 43 })
	for _, s := range []uint64{seqs[0], seqs[20], seqs[49]} {
		if has(x, s) {
			t.Errorf("%d is still indexed", s)
		}
	}
	// Everything purged: the index empties.
	if err := stream.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "none left", func() bool { return entries() == 0 })
	store(99, jobs.ClassInvalid)
	testenv.Eventually(t, 10*time.Second, "a new one", func() bool { return entries() == 1 && x.stats().ByClass[jobs.ClassInvalid] == 1 })
}

// has reports whether seq is in the queue as far as x knows.
func has(x *index, seq uint64) bool {
	_, ok := x.row(seq)
	return ok
}

// TestActivityCountsEachResultOnce: the results follower starts again
// after an error (the console's keep runs it anew: NATS unreachable for a
// while), reading the last window from its start; a success it counted
// before is not counted again, and the chart does not double.
func TestActivityCountsEachResultOnce(t *testing.T) {
	env := testenv.New(t)
	subj := env.Topology.Subjects
	store := func(i int) {
		t.Helper()
		m := nats.NewMsg(subj.Result(jobs.RecordKey{Op: jobs.OpRevoke, JobID: fmt.Sprintf("r-%d", i), Gen: "g", Seq: uint64(i + 1)}))
		m.Data = []byte(`{}`)
		if _, err := env.JS.PublishMsg(t.Context(), m); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		store(i)
	}
	a := newActivity()
	counted := func() int { return a.view(time.Now()).Succeeded[jobs.OpRevoke] }
	for round, want := range []int{3, 4} {
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- followResults(ctx, env.JS, env.Topology, a) }()
		if round == 1 {
			store(3) // stored while it follows again: counted
		}
		testenv.Eventually(t, 10*time.Second, "the results are counted", func() bool { return counted() >= want })
		time.Sleep(300 * time.Millisecond) // any result read again arrives meanwhile
		cancel()
		<-done
		if n := counted(); n != want {
			t.Fatalf("round %d: %d successes counted, want %d", round+1, n, want)
		}
	}
}
