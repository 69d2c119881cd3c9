package console

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/dlq"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestSafeNext: after signing in the console goes back only to one of its
// own paths, never to another site however the address is spelled.
func TestSafeNext(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "/"},
		{"/", "/"},
		{"/dlq?class=exhausted&op=revoke", "/dlq?class=exhausted&op=revoke"},
		{"/dlq/42", "/dlq/42"},
		{"/tasks/abc#summary", "/tasks/abc#summary"},
		{"//evil.example", "/"},
		{"/\\evil.example", "/"},
		{"\\\\evil.example", "/"},
		{"/%09/evil.example", "/"},
		{"/\t/evil.example", "/"},
		{"/\n/evil.example", "/"},
		{"/%0a/evil.example", "/"},
		{"/%2F/evil.example", "/"},
		{"/%2f%2fevil.example", "/"},
		{"/%5C/evil.example", "/"},
		{"https://evil.example/", "/"},
		{"javascript:alert(1)", "/"},
		{"evil.example", "/"},
		{"/\x7f/evil.example", "/"},
		{"/%", "/"},
	} {
		if got := safeNext(tc.in); got != tc.want {
			t.Errorf("safeNext(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestMatcherAgreesWithFilter: the console's set-based matching selects
// exactly what dlq.Filter.Match does, as `publish dlq list` would.
func TestMatcherAgreesWithFilter(t *testing.T) {
	x := newIndex(nil)
	fill(x, 300, time.Now().Add(-time.Hour))
	for i := 301; i <= 320; i++ {
		x.add(dlq.Entry{Seq: uint64(i), Op: jobs.OpGet, Time: time.Now(), DeadLetter: jobs.DeadLetter{
			JobID: fmt.Sprintf("job-%d", i%10), Error: jobs.ErrorInfo{Class: jobs.ClassPermanent, ClerkCode: fmt.Sprintf("code-%d", i%3)},
		}})
	}
	for _, f := range []dlq.Filter{
		{},
		{JobIDs: []string{"job-1", "job-7", "job-299", "nope"}},
		{JobIDs: []string{"job-3"}, Ops: []jobs.Op{jobs.OpRevoke}},
		{ClerkCodes: []string{"code-1"}},
		{ClerkCodes: []string{"code-2"}, JobIDs: []string{"job-2", "job-5", "job-8"}},
		{Classes: []jobs.ErrorClass{jobs.ClassPermanent}, JobIDs: []string{"job-1", "job-2", "job-3", "job-4"}},
	} {
		got, _ := x.selection(f)
		var want []uint64
		for i := range x.rows {
			if f.Match(x.rows[i].entry()) {
				want = append(want, x.rows[i].Seq)
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("%+v: selected %v, want %v", f, got, want)
		}
	}
}

// TestIndexBoundsWhatItKeeps: a hostile dead letter's job id, code or
// class cannot make the index keep more than a valid one's length.
func TestIndexBoundsWhatItKeeps(t *testing.T) {
	huge := strings.Repeat("x", 1<<20)
	for _, tc := range []struct {
		name string
		d    jobs.DeadLetter
		got  func(r row) string
		max  int
	}{
		{"job id", jobs.DeadLetter{JobID: huge}, func(r row) string { return r.JobID }, jobs.MaxJobIDLen + len("…")},
		{"clerk code", jobs.DeadLetter{Error: jobs.ErrorInfo{ClerkCode: huge}}, func(r row) string { return r.Code }, maxCode + len("…")},
		{"class", jobs.DeadLetter{Error: jobs.ErrorInfo{Class: jobs.ErrorClass(huge)}}, func(r row) string { return string(r.Class) }, maxCode + len("…")},
		{"message", jobs.DeadLetter{Error: jobs.ErrorInfo{Message: huge}}, func(r row) string { return r.Message }, maxMessage + len("…")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := newIndex(nil)
			x.add(dlq.Entry{Seq: 1, Op: jobs.Op(huge), Time: time.Now(), DeadLetter: tc.d})
			r, ok := x.row(1)
			if !ok {
				t.Fatal("not indexed")
			}
			if n := len(tc.got(r)); n > tc.max {
				t.Errorf("kept %d bytes, want at most %d", n, tc.max)
			}
			if n := len(r.Op); n > maxCode+len("…") {
				t.Errorf("kept an op of %d bytes", n)
			}
		})
	}
}
