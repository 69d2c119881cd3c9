package jobs

import (
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestParseOp(t *testing.T) {
	tests := []struct {
		in   string
		want Op
	}{
		{"list", OpList}, {"create", OpCreate}, {"get", OpGet}, {"refresh", OpRefresh},
		{"revoke", OpRevoke}, {"token", OpToken}, {"revoke_all", OpRevokeAll},
		{"revoke-all", OpRevokeAll},
		{"token.request", OpToken},
		{"  revoke\n", OpRevoke},
	}
	for _, tt := range tests {
		got, err := ParseOp(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseOp(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, o := range AllOps() {
		if got, err := ParseOp(string(o)); err != nil || got != o {
			t.Errorf("ParseOp(%q) = %q, %v", o, got, err)
		}
	}
	for _, in := range []string{"", "unknown", "Revoke", "revokeall", "sessions.revoke", "token.reply", "results", "dlq", "*", ">"} {
		got, err := ParseOp(in)
		if err == nil {
			t.Errorf("ParseOp(%q) = %q, want an error", in, got)
			continue
		}
		if got != "" {
			t.Errorf("ParseOp(%q) returned %q with its error", in, got)
		}
		// The error lists what would have been accepted.
		for _, o := range AllOps() {
			if !strings.Contains(err.Error(), string(o)) {
				t.Errorf("ParseOp(%q) error %q does not list %s", in, err, o)
			}
		}
	}
}

func TestSubjects(t *testing.T) {
	type want struct{ job, result, dlq string }
	tests := []struct {
		prefix string
		ops    map[Op]want
	}{
		{"", map[Op]want{
			OpList:      {"sessions.list", "sessions.results.list", "sessions.dlq.list"},
			OpCreate:    {"sessions.create", "sessions.results.create", "sessions.dlq.create"},
			OpGet:       {"sessions.get", "sessions.results.get", "sessions.dlq.get"},
			OpRefresh:   {"sessions.refresh", "sessions.results.refresh", "sessions.dlq.refresh"},
			OpRevoke:    {"sessions.revoke", "sessions.results.revoke", "sessions.dlq.revoke"},
			OpToken:     {"sessions.token.request", "sessions.results.token", "sessions.dlq.token"},
			OpRevokeAll: {"sessions.revoke_all", "sessions.results.revoke_all", "sessions.dlq.revoke_all"},
		}},
		{DefaultPrefix, map[Op]want{
			OpRevoke: {"sessions.revoke", "sessions.results.revoke", "sessions.dlq.revoke"},
			OpToken:  {"sessions.token.request", "sessions.results.token", "sessions.dlq.token"},
		}},
		{"acme.prod", map[Op]want{
			OpList:      {"acme.prod.list", "acme.prod.results.list", "acme.prod.dlq.list"},
			OpRevoke:    {"acme.prod.revoke", "acme.prod.results.revoke", "acme.prod.dlq.revoke"},
			OpToken:     {"acme.prod.token.request", "acme.prod.results.token", "acme.prod.dlq.token"},
			OpRevokeAll: {"acme.prod.revoke_all", "acme.prod.results.revoke_all", "acme.prod.dlq.revoke_all"},
		}},
	}
	for _, tt := range tests {
		s := Subjects{Prefix: tt.prefix}
		for o, w := range tt.ops {
			if got := s.Job(o); got != w.job {
				t.Errorf("prefix %q: Job(%s) = %q, want %q", tt.prefix, o, got, w.job)
			}
			if got := s.Result(o); got != w.result {
				t.Errorf("prefix %q: Result(%s) = %q, want %q", tt.prefix, o, got, w.result)
			}
			if got := s.DeadLetter(o); got != w.dlq {
				t.Errorf("prefix %q: DeadLetter(%s) = %q, want %q", tt.prefix, o, got, w.dlq)
			}
			if got := s.OpOf(w.job); got != o {
				t.Errorf("prefix %q: OpOf(%q) = %q, want %q", tt.prefix, w.job, got, o)
			}
			if got := s.OpOfDeadLetter(w.dlq); got != o {
				t.Errorf("prefix %q: OpOfDeadLetter(%q) = %q, want %q", tt.prefix, w.dlq, got, o)
			}
			for _, subj := range []string{w.job, w.result, w.dlq} {
				if !s.Owns(subj) {
					t.Errorf("prefix %q: Owns(%q) = false", tt.prefix, subj)
				}
			}
		}
	}
}

func TestOpOfRejectsForeignSubjects(t *testing.T) {
	def, custom := Subjects{}, Subjects{Prefix: "acme.prod"}
	for _, tc := range []struct {
		s    Subjects
		subj string
	}{
		{def, "sessions.token"},
		{def, "sessions.token.reply"},
		{def, "sessions.revoke_al"},
		{def, "sessions.unknown"},
		{def, "sessions.results.revoke"},
		{def, "sessions.dlq.revoke"},
		{def, "sessions.revoke.x"},
		{def, "other.revoke"},
		{def, "sessions"},
		{def, ""},
		{def, "acme.prod.revoke"},
		{custom, "sessions.revoke"},
		{custom, "acme.revoke"},
		{custom, "acme.prod.token"},
	} {
		if got := tc.s.OpOf(tc.subj); got != OpUnknown {
			t.Errorf("prefix %q: OpOf(%q) = %q, want unknown", tc.s.Prefix, tc.subj, got)
		}
	}
	for _, tc := range []struct {
		s    Subjects
		subj string
	}{
		{def, "sessions.dlq.unknown"},
		{def, "sessions.dlq."},
		{def, "sessions.dlq"},
		{def, "sessions.dlq.revoke.x"},
		{def, "sessions.dlq.token.request"},
		{def, "sessions.results.revoke"},
		{def, "sessions.revoke"},
		{def, "acme.prod.dlq.revoke"},
		{custom, "sessions.dlq.revoke"},
		{custom, "acme.dlq.revoke"},
	} {
		if got := tc.s.OpOfDeadLetter(tc.subj); got != OpUnknown {
			t.Errorf("prefix %q: OpOfDeadLetter(%q) = %q, want unknown", tc.s.Prefix, tc.subj, got)
		}
	}
	if got := def.DeadLetter(OpUnknown); got != "sessions.dlq.unknown" {
		t.Errorf("DeadLetter(unknown) = %q", got)
	}
}

func TestOwns(t *testing.T) {
	for _, tc := range []struct {
		prefix, subj string
		want         bool
	}{
		{"", "sessions", true},
		{"", "sessions.revoke", true},
		{"", "sessions.results.x.y", true},
		{"", "_INBOX.abc", false},
		{"", "sessionsx", false},
		{"", "sessionsx.revoke", false},
		{"", "session", false},
		{"", "x.sessions.revoke", false},
		{"", "", false},
		{"acme.prod", "acme.prod", true},
		{"acme.prod", "acme.prod.anything", true},
		{"acme.prod", "acme", false},
		{"acme.prod", "acme.production.revoke", false},
		{"acme.prod", "sessions.revoke", false},
	} {
		if got := (Subjects{Prefix: tc.prefix}).Owns(tc.subj); got != tc.want {
			t.Errorf("prefix %q: Owns(%q) = %v, want %v", tc.prefix, tc.subj, got, tc.want)
		}
	}
}

func TestSubjectsValidate(t *testing.T) {
	for _, p := range []string{"", "sessions", "acme.prod", "a", "a-b_c.d1", "_x"} {
		if err := (Subjects{Prefix: p}).Validate(); err != nil {
			t.Errorf("Validate(prefix %q) = %v, want nil", p, err)
		}
	}
	for _, p := range []string{"a b", "a\tb", "a\nb", "a\rb", "a.*", "*", ">", "a.>", "a*", ".a", "a.", ".", "a..b", "$SYS", "$JS.API", " "} {
		err := (Subjects{Prefix: p}).Validate()
		if err == nil {
			t.Errorf("Validate(prefix %q) = nil, want an error", p)
			continue
		}
		if !strings.Contains(err.Error(), "prefix") || !strings.Contains(err.Error(), strconv.Quote(p)) {
			t.Errorf("Validate(prefix %q) = %q: does not name the prefix", p, err)
		}
	}
}

// subjectMatches reports whether a NATS subject filter matches a literal
// subject: "*" matches exactly one token, ">" one or more trailing tokens.
func subjectMatches(filter, subject string) bool {
	f, s := strings.Split(filter, "."), strings.Split(subject, ".")
	for i, ft := range f {
		if ft == ">" {
			return len(s) > i
		}
		if i >= len(s) {
			return false
		}
		if ft != "*" && ft != s[i] {
			return false
		}
	}
	return len(f) == len(s)
}

// filtersOverlap reports whether some subject matches both filters.
func filtersOverlap(a, b string) bool {
	x, y := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; ; i++ {
		switch {
		case i == len(x) && i == len(y):
			return true
		case i == len(x) || i == len(y):
			return false
		case x[i] == ">" || y[i] == ">":
			return true // each side still has at least this one token
		case x[i] == "*" || y[i] == "*" || x[i] == y[i]:
			continue
		default:
			return false
		}
	}
}

func TestSubjectMatcher(t *testing.T) {
	for _, tc := range []struct {
		filter, subj string
		want         bool
	}{
		{"a.b", "a.b", true},
		{"a.b", "a.c", false},
		{"a.b", "a.b.c", false},
		{"a.*", "a.b", true},
		{"a.*", "a", false},
		{"a.*", "a.b.c", false},
		{"a.*.c", "a.b.c", true},
		{"a.*.c", "a.b.d", false},
		{"a.>", "a", false},
		{"a.>", "a.b", true},
		{"a.>", "a.b.c.d", true},
		{">", "a", true},
		{"*", "a.b", false},
	} {
		if got := subjectMatches(tc.filter, tc.subj); got != tc.want {
			t.Errorf("subjectMatches(%q, %q) = %v, want %v", tc.filter, tc.subj, got, tc.want)
		}
	}
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"a.*", "a.>", true},
		{"a.*", "a.b.>", false},
		{"a.*", "a.b", true},
		{"a.*", "a.b.c", false},
		{"a.*.*", "a.b.>", true},
		{"a.token.*", "a.results.>", false},
		{"a.*.x", "a.b.>", true},
		{"a.>", "b.>", false},
		{"*.b", "a.*", true},
		{"a", "a.>", false},
	} {
		if got := filtersOverlap(tc.a, tc.b); got != tc.want {
			t.Errorf("filtersOverlap(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
		if got := filtersOverlap(tc.b, tc.a); got != tc.want {
			t.Errorf("filtersOverlap(%q, %q) = %v, want %v", tc.b, tc.a, got, tc.want)
		}
	}
}

// The jobs stream captures every job subject and nothing on the results
// or dead-letter subjects; the three streams' filters are disjoint.
func TestJobFiltersNeverOverlapTerminalSubjects(t *testing.T) {
	for _, prefix := range []string{"", DefaultPrefix, "acme", "acme.prod", "token", "results", "dlq", "a.token"} {
		s := Subjects{Prefix: prefix}
		if err := s.Validate(); err != nil {
			t.Fatalf("prefix %q: %v", prefix, err)
		}
		jobs := s.JobFilters()
		if len(jobs) == 0 {
			t.Fatalf("prefix %q: no job filters", prefix)
		}
		for _, jf := range jobs {
			for _, tf := range []string{s.ResultFilter(), s.DeadLetterFilter()} {
				if filtersOverlap(jf, tf) {
					t.Errorf("prefix %q: job filter %q overlaps %q", prefix, jf, tf)
				}
			}
		}
		if filtersOverlap(s.ResultFilter(), s.DeadLetterFilter()) {
			t.Errorf("prefix %q: result and dead-letter filters overlap", prefix)
		}
		matchesAny := func(subj string, fs []string) bool {
			return slices.ContainsFunc(fs, func(f string) bool { return subjectMatches(f, subj) })
		}
		for _, o := range append(AllOps(), OpUnknown) {
			if o != OpUnknown && !matchesAny(s.Job(o), jobs) {
				t.Errorf("prefix %q: job subject %q is not captured by %v", prefix, s.Job(o), jobs)
			}
			if !subjectMatches(s.ResultFilter(), s.Result(o)) || matchesAny(s.Result(o), jobs) || subjectMatches(s.DeadLetterFilter(), s.Result(o)) {
				t.Errorf("prefix %q: result subject %q is not only on the results stream", prefix, s.Result(o))
			}
			if !subjectMatches(s.DeadLetterFilter(), s.DeadLetter(o)) || matchesAny(s.DeadLetter(o), jobs) || subjectMatches(s.ResultFilter(), s.DeadLetter(o)) {
				t.Errorf("prefix %q: dead-letter subject %q is not only on the dead-letter stream", prefix, s.DeadLetter(o))
			}
		}
		// A mistyped job subject is still captured, so it is dead-lettered
		// instead of vanishing.
		for _, typo := range []string{s.prefix() + ".revok", s.prefix() + ".token.requets"} {
			if !matchesAny(typo, jobs) {
				t.Errorf("prefix %q: mistyped subject %q is not captured", prefix, typo)
			}
			if s.OpOf(typo) != OpUnknown {
				t.Errorf("prefix %q: OpOf(%q) = %q", prefix, typo, s.OpOf(typo))
			}
		}
		for _, f := range append(slices.Clone(jobs), s.ResultFilter(), s.DeadLetterFilter()) {
			if !s.Owns(strings.NewReplacer("*", "x", ">", "x").Replace(f)) {
				t.Errorf("prefix %q: filter %q is outside the prefix", prefix, f)
			}
		}
	}
}
