package jobs

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/clerkjobs/clerkjobs/internal/redact"
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
	tests := []struct {
		prefix, tenant string
		ops            map[Op]string // job subject
	}{
		{"", "", map[Op]string{
			OpList: "sessions.list", OpCreate: "sessions.create", OpGet: "sessions.get", OpRefresh: "sessions.refresh",
			OpRevoke: "sessions.revoke", OpToken: "sessions.token.request", OpRevokeAll: "sessions.revoke_all",
		}},
		{DefaultPrefix, "svc_a", map[Op]string{
			OpRevoke: "sessions.tenant.svc_a.revoke", OpToken: "sessions.tenant.svc_a.token.request",
		}},
		{"acme.prod", "", map[Op]string{
			OpList: "acme.prod.list", OpToken: "acme.prod.token.request", OpRevokeAll: "acme.prod.revoke_all",
		}},
		{"acme.prod", "b-2", map[Op]string{OpRevokeAll: "acme.prod.tenant.b-2.revoke_all"}},
	}
	for _, tt := range tests {
		s := Subjects{Prefix: tt.prefix}
		for o, job := range tt.ops {
			if got := s.TenantJob(tt.tenant, o); got != job {
				t.Errorf("prefix %q: TenantJob(%q, %s) = %q, want %q", tt.prefix, tt.tenant, o, got, job)
			}
			if tenant, op := s.ParseJob(job); tenant != tt.tenant || op != o {
				t.Errorf("prefix %q: ParseJob(%q) = %q, %q; want %q, %q", tt.prefix, job, tenant, op, tt.tenant, o)
			}
			k := RecordKey{Tenant: tt.tenant, Op: o, JobID: "job-1", Gen: "t3abcd", Seq: 42}
			tenantTok := tt.tenant
			if tenantTok == "" {
				tenantTok = NoTenant
			}
			wantResult := s.prefix() + ".results." + tenantTok + "." + string(o) + ".job-1.t3abcd.42"
			if got := s.Result(k); got != wantResult {
				t.Errorf("Result(%+v) = %q, want %q", k, got, wantResult)
			}
			if got := s.DeadLetter(k); got != strings.Replace(wantResult, ".results.", ".dlq.", 1) {
				t.Errorf("DeadLetter(%+v) = %q", k, got)
			}
			for _, subj := range []string{job, s.Result(k), s.DeadLetter(k)} {
				if !s.Owns(subj) {
					t.Errorf("prefix %q: Owns(%q) = false", tt.prefix, subj)
				}
			}
			r, ok := s.ParseResult(s.Result(k))
			want := RecordSubject{Tenant: tt.tenant, Op: o, IDKey: "job-1", Gen: "t3abcd", Seq: 42}
			if !ok || r != want {
				t.Errorf("ParseResult(%q) = %+v, %v; want %+v", s.Result(k), r, ok, want)
			}
			if got := s.OpOfDeadLetter(s.DeadLetter(k)); got != o {
				t.Errorf("OpOfDeadLetter(%q) = %q", s.DeadLetter(k), got)
			}
			if _, ok := s.ParseDeadLetter(s.Result(k)); ok {
				t.Errorf("ParseDeadLetter accepts the result subject %q", s.Result(k))
			}
			// Records stored before records had a subject each.
			if r, ok := s.ParseDeadLetter(s.prefix() + ".dlq." + string(o)); !ok || !r.Legacy || r.Op != o {
				t.Errorf("legacy dead-letter subject of %s: %+v, %v", o, r, ok)
			}
			for _, f := range s.ResultsOf(o) {
				if !MatchSubject(f, s.Result(k)) && !MatchSubject(f, s.prefix()+".results."+string(o)) {
					t.Errorf("ResultsOf(%s) filter %q matches neither form", o, f)
				}
			}
		}
	}
}

func TestIDKey(t *testing.T) {
	long := strings.Repeat("x", 65)
	for id, want := range map[string]string{
		"job-1": "job-1", "incident-42/sess_abc": "incident-42/sess_abc", "a:b@c": "a:b@c",
	} {
		if got := IDKey(id); got != want {
			t.Errorf("IDKey(%q) = %q, want %q", id, got, want)
		}
	}
	for _, id := range []string{"a.b", long, "v1.2.3"} {
		got := IDKey(id)
		if !strings.HasPrefix(got, "~") || len(got) > 32 || strings.ContainsAny(got, ".*> ") {
			t.Errorf("IDKey(%q) = %q: want a bounded hash token", id, got)
		}
		if IDKey(id) != got || IDKey(id+"x") == got {
			t.Errorf("IDKey(%q) is not a stable hash", id)
		}
	}
}

func TestCheckJobIDAndTenant(t *testing.T) {
	for _, id := range []string{"a", "seq-1", "incident-77", "x/y:z@w.v_u", strings.Repeat("a", MaxJobIDLen)} {
		if err := CheckJobID(id); err != nil {
			t.Errorf("CheckJobID(%q) = %v", id, err)
		}
	}
	for _, id := range []string{"", strings.Repeat("x", 3000), "a b", "a\x00", "a\x1b[2J", "é", "a*", "a>b"} {
		err := CheckJobID(id)
		if err == nil {
			t.Errorf("CheckJobID(%q) = nil", id)
			continue
		}
		if len(err.Error()) > 200 {
			t.Errorf("CheckJobID error is %d bytes: the value must not be echoed whole", len(err.Error()))
		}
	}
	for _, name := range []string{"svc_a", "b", "B-2", strings.Repeat("t", MaxTenantLen)} {
		if err := CheckTenant(name); err != nil {
			t.Errorf("CheckTenant(%q) = %v", name, err)
		}
	}
	for _, name := range []string{"", "_", "-a", "a.b", "a b", strings.Repeat("t", MaxTenantLen+1), "a*"} {
		if err := CheckTenant(name); err == nil {
			t.Errorf("CheckTenant(%q) = nil", name)
		}
	}
}

// TestCheckJobIDRefusesSecretShapes: a Clerk key or a short JWT fits the
// job id pattern, and a job id is stored as it is in record subjects,
// Dlq-Job-Id, results and log lines. Such an id is refused, and the error
// says why without repeating it.
func TestCheckJobIDRefusesSecretShapes(t *testing.T) {
	tests := []struct {
		name   string
		id     string
		secret bool
	}{
		{"live secret key", "sk_" + "live_" + "abcdefghijklmnopqrstuvwxyz0123456789ABCD", true},
		{"test secret key", "sk_" + "test_abcd1234", true},
		{"restricted key", "rk_" + "live_abcd1234", true},
		{"key inside an id", "offboard-sk_" + "live_abcd1234-42", true},
		{"short JWT", "eyJ" + "hbGc.eyJz.c2ln", true},
		{"JWT without a signature", "eyJ" + "hbGciOiJub25lIn0.eyJzdWIiOiJ1In0.", true},
		{"JWT of 128 characters", "eyJ" + strings.Repeat("a", 60) + "." + strings.Repeat("b", 60) + ".sig", true},
		{"URL with a password", "nats://alice:" + "hunter2pw@nats.example:4222", true},
		{"URL with a token", "https://" + "tok3nValue@api.example", true},
		{"URL with a password inside an id", "offboard-42-nats://a:" + "pw@h", true},

		{"plain id", "incident-77", false},
		{"seq id", "seq-12", false},
		{"key prefix alone", "sk_" + "live_", false},
		{"key prefix, short", "sk_" + "live_abc", false},
		{"dashes, not a key", "sk-live-abcd1234", false},
		{"eyJ without dots", "eyJabcdefgh", false},
		{"revoke_all session letter", "offboard-42/sess_2abc", false},
		{"user at host", "deploy@host-7", false},
		{"URL without credentials", "https://tickets.example/INC-77", false},
		{"URL with an @ in its path", "https://tickets.example/@ops/INC-77", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckJobID(tt.id)
			if !tt.secret {
				if err != nil {
					t.Errorf("CheckJobID = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatal("CheckJobID = nil for a secret-shaped id")
			}
			msg := err.Error()
			if strings.Contains(msg, tt.id) || redact.Looks(msg) {
				t.Errorf("the error repeats the id: %s", msg)
			}
			if !strings.Contains(msg, "shaped like a secret") || !strings.Contains(msg, fmt.Sprintf("%d characters", len(tt.id))) {
				t.Errorf("the error does not say what is wrong: %s", msg)
			}
		})
	}
}

func TestCheckReplySubject(t *testing.T) {
	for _, s := range []string{"_INBOX.abc", "_INBOX.svc_a.x.y", "reply", "a-b.c_d"} {
		if err := CheckReplySubject(s); err != nil {
			t.Errorf("CheckReplySubject(%q) = %v", s, err)
		}
	}
	for _, s := range []string{"", "a..b", ".a", "a.", "a b", "a\tb", "a\x00b", "a\x7fb", "a\u00a0b", "a\u2028b", "caf\u00e9", "a.*", "a.>", "$SYS.x", strings.Repeat("a", MaxSubjectLen+1)} {
		if err := CheckReplySubject(s); err == nil {
			t.Errorf("CheckReplySubject(%q) = nil", s)
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
		{def, "sessions.dlq._.revoke.id.gen.notanumber"},
		{def, "sessions.dlq._.frobnicate.id.gen.1"},
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
		if got := MatchSubject(tc.filter, tc.subj); got != tc.want {
			t.Errorf("MatchSubject(%q, %q) = %v, want %v", tc.filter, tc.subj, got, tc.want)
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
			return slices.ContainsFunc(fs, func(f string) bool { return MatchSubject(f, subj) })
		}
		for _, o := range append(AllOps(), OpUnknown) {
			if o != OpUnknown && !matchesAny(s.Job(o), jobs) {
				t.Errorf("prefix %q: job subject %q is not captured by %v", prefix, s.Job(o), jobs)
			}
			if o != OpUnknown && !matchesAny(s.TenantJob("svc_a", o), jobs) {
				t.Errorf("prefix %q: tenant job subject %q is not captured by %v", prefix, s.TenantJob("svc_a", o), jobs)
			}
			for _, k := range []RecordKey{{Op: o, JobID: "j", Gen: "g", Seq: 1}, {Tenant: "svc_a", Op: o, JobID: "a.b", Gen: "g", Seq: 2}} {
				if !MatchSubject(s.ResultFilter(), s.Result(k)) || matchesAny(s.Result(k), jobs) || MatchSubject(s.DeadLetterFilter(), s.Result(k)) {
					t.Errorf("prefix %q: result subject %q is not only on the results stream", prefix, s.Result(k))
				}
				if !MatchSubject(s.DeadLetterFilter(), s.DeadLetter(k)) || matchesAny(s.DeadLetter(k), jobs) || MatchSubject(s.ResultFilter(), s.DeadLetter(k)) {
					t.Errorf("prefix %q: dead-letter subject %q is not only on the dead-letter stream", prefix, s.DeadLetter(k))
				}
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
