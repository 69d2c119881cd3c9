package jobs

import (
	"cmp"
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/clerkjobs/clerkjobs/internal/redact"
)

// DefaultPrefix is the first token of every subject.
const DefaultPrefix = "sessions"

// Subjects maps jobs and their records to NATS subjects under a prefix
// (DefaultPrefix unless configured). The zero value uses DefaultPrefix.
//
// A job is published on <prefix>.<op> (<prefix>.token.request for tokens),
// or, by a service that the NATS server confines to its own subjects, on
// <prefix>.tenant.<tenant>.<op>: the tenant then comes from the subject, which
// the service cannot choose (see deploy/README.md). A job's one terminal
// record is stored on
//
//	<prefix>.results.<tenant>.<op>.<id key>.<generation>.<sequence>
//	<prefix>.dlq.<tenant>.<op>.<id key>.<generation>.<sequence>
//
// where <tenant> is "_" for jobs outside any tenant, <id key> names the job
// id (IDKey), and <generation>.<sequence> name the job's message in the
// jobs stream (Generation, the stream sequence). The streams keep one
// message per subject and refuse a second one, so a job can never be
// recorded twice.
type Subjects struct {
	Prefix string
	// Tenant, when set, is the tenant a publisher publishes as: Job then
	// names the tenant's subjects. The worker's Subjects have none: it takes
	// the jobs of every tenant.
	Tenant string
}

// NoTenant is the tenant token of records of jobs published outside any
// tenant.
const NoTenant = "_"

// tenantToken introduces a tenant in a job subject.
const tenantToken = "tenant"

func (s Subjects) prefix() string { return cmp.Or(s.Prefix, DefaultPrefix) }

// opTokens is an op's part of a job subject.
func opTokens(o Op) string {
	if o == OpToken {
		return "token.request"
	}
	return string(o)
}

// Job is the subject jobs of type o are published to: the tenant's, when
// s has one.
func (s Subjects) Job(o Op) string { return s.TenantJob(s.Tenant, o) }

// TenantJob is the subject a tenant's jobs of type o are published to, or
// outside any tenant when tenant is "".
func (s Subjects) TenantJob(tenant string, o Op) string {
	if tenant == "" {
		return s.prefix() + "." + opTokens(o)
	}
	return s.prefix() + "." + tenantToken + "." + tenant + "." + opTokens(o)
}

// JobFilters are the subjects the jobs stream captures. They take every
// two-token subject under the prefix, and three-token ones under
// <prefix>.token, and the same under <prefix>.tenant.<tenant>, so that a job
// sent to a mistyped subject is kept and dead-lettered as invalid instead of
// vanishing; they never overlap the results and dead-letter subjects.
func (s Subjects) JobFilters() []string {
	p := s.prefix()
	return []string{p + ".*", p + ".token.*", p + "." + tenantToken + ".*.*", p + "." + tenantToken + ".*.token.*"}
}

// ParseJob splits a job subject into its tenant ("" outside any tenant)
// and op (OpUnknown when no job type owns the subject). A tenant token that
// is not a valid tenant name (CheckTenant) is returned as it is, so the
// caller can say what is wrong with it.
func (s Subjects) ParseJob(subject string) (tenant string, o Op) {
	rest, ok := strings.CutPrefix(subject, s.prefix()+".")
	if !ok {
		return "", OpUnknown
	}
	if t, ok := strings.CutPrefix(rest, tenantToken+"."); ok {
		i := strings.IndexByte(t, '.')
		if i < 0 {
			return "", OpUnknown
		}
		tenant, rest = t[:i], t[i+1:]
	}
	if i := slices.IndexFunc(AllOps(), func(o Op) bool { return opTokens(o) == rest }); i >= 0 {
		return tenant, AllOps()[i]
	}
	return tenant, OpUnknown
}

// OpOf returns the op a job subject belongs to, or OpUnknown.
func (s Subjects) OpOf(subject string) Op {
	_, o := s.ParseJob(subject)
	return o
}

// MaxTenantLen bounds a tenant name.
const MaxTenantLen = 32

// CheckTenant reports whether name can be a tenant: 1 to 32 letters, digits,
// '_' and '-', starting with a letter or digit, not shaped like a secret (a
// Clerk key fits the pattern). A tenant is a token of every record subject
// of its jobs and goes into headers, log lines and spans, where nothing
// redacts it; the error describes such a name without repeating it.
func CheckTenant(name string) error {
	if redact.Looks(name) {
		return fmt.Errorf("tenant of %d characters is shaped like a secret (a Clerk key): a tenant is stored in record subjects, headers and log lines, so name the service (svc_a) and keep credentials out of subjects", len(name))
	}
	return checkName("tenant", name, MaxTenantLen, "letters, digits, '_' and '-' (not first)", func(i int, c byte) bool {
		return alnum(c) || (i > 0 && (c == '_' || c == '-'))
	})
}

// MaxJobIDLen bounds a job id, whether it comes from the body's job_id or
// the Nats-Msg-Id header: it ends up in record subjects, keys, headers and
// log lines.
const MaxJobIDLen = 128

// CheckJobID reports whether id can be a job id: 1 to 128 characters of
// A-Z a-z 0-9 . _ : @ / - (schemas/common.json says the same for job_id),
// not shaped like a secret (redact.Looks: a Clerk secret or restricted key,
// a JWT). A job id is stored as it is in record subjects, Dlq-Job-Id,
// results and log lines, where nothing redacts it, and a key or a short JWT
// fits the pattern; the error describes such an id without repeating it.
//
// A URL with a password or token in it (nats://user:password@host) fits the
// pattern too, and is refused alike.
func CheckJobID(id string) error {
	if secretShaped(id) {
		return fmt.Errorf("job id of %d characters is shaped like a secret (a Clerk key, a JWT, a URL with a password): a job id is stored in record subjects, headers and log lines, so name the job (incident-77, offboard-42) and keep credentials out of its id", len(id))
	}
	return checkName("job id", id, MaxJobIDLen, "letters, digits and . _ : @ / -", func(_ int, c byte) bool {
		return alnum(c) || strings.IndexByte("._:@/-", c) >= 0
	})
}

// checkName reports whether s is 1 to maxLen bytes, each one ok at its place;
// the error names the value as what and says which characters are allowed.
func checkName(what, s string, maxLen int, allowed string, ok func(i int, c byte) bool) error {
	if s == "" || len(s) > maxLen {
		return fmt.Errorf("%s %s: must be 1 to %d characters", what, quoteBounded(s), maxLen)
	}
	for i := 0; i < len(s); i++ {
		if !ok(i, s[i]) {
			return fmt.Errorf("%s %s: only %s are allowed", what, quoteBounded(s), allowed)
		}
	}
	return nil
}

func alnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' }

// quoteBounded quotes a value from a message for an error message.
func quoteBounded(s string) string { return quoted(s, 64, "(%d characters)") }

// RecordKey names the one terminal record (result or dead letter) a job
// may have.
type RecordKey struct {
	// Tenant is the job's tenant, "" outside any tenant.
	Tenant string
	Op     Op
	// JobID is the job's id; its IDKey goes into the subject.
	JobID string
	// Gen and Seq name the job's message in the jobs stream: Gen is
	// Generation of the stream's creation time, so that a recreated stream,
	// whose sequences start again at 1, never meets its predecessor's
	// records.
	Gen string
	Seq uint64
}

// Result is the subject of k's result.
func (s Subjects) Result(k RecordKey) string { return s.record("results", k) }

// DeadLetter is the subject of k's dead letter.
func (s Subjects) DeadLetter(k RecordKey) string { return s.record("dlq", k) }

func (s Subjects) record(kind string, k RecordKey) string {
	return s.prefix() + "." + kind + "." + cmp.Or(k.Tenant, NoTenant) + "." + string(k.Op) + "." + IDKey(k.JobID) + "." + k.Gen + "." + strconv.FormatUint(k.Seq, 10)
}

// IDKey is a job id as one subject token: the id itself when it holds no
// '.' and is at most 64 characters, else "~" and a hash of it (ids never
// contain '~').
func IDKey(jobID string) string {
	if len(jobID) <= 64 && jobID != "" && !strings.ContainsAny(jobID, ".*> \t") {
		return jobID
	}
	sum := sha256.Sum256([]byte(jobID))
	return "~" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:15]))
}

// Generation is the token that tells a jobs stream from an earlier one of
// the same name: its creation time in seconds, base 36.
func Generation(created time.Time) string { return strconv.FormatInt(created.Unix(), 36) }

// RecordSubject is what a record subject says.
type RecordSubject struct {
	Tenant string // "" outside any tenant
	Op     Op
	IDKey  string
	Gen    string
	Seq    uint64
	// Legacy: a record stored before records had a subject each
	// (<prefix>.results.<op>, <prefix>.dlq.<op>): only Op is known.
	Legacy bool
}

// ParseResult reads a result subject; ok is false for a subject that is
// not one.
func (s Subjects) ParseResult(subject string) (RecordSubject, bool) {
	return s.parseRecord("results", subject)
}

// ParseDeadLetter reads a dead-letter subject; ok is false for a subject
// that is not one.
func (s Subjects) ParseDeadLetter(subject string) (RecordSubject, bool) {
	return s.parseRecord("dlq", subject)
}

// ResultBeside is the subject of the result of the job whose dead letter
// is on deadLetter; ok is false when deadLetter is no job's dead-letter
// subject.
func (s Subjects) ResultBeside(deadLetter string) (string, bool) {
	if r, ok := s.ParseDeadLetter(deadLetter); !ok || r.Legacy {
		return "", false
	}
	return s.prefix() + ".results." + strings.TrimPrefix(deadLetter, s.prefix()+".dlq."), true
}

func (s Subjects) parseRecord(kind, subject string) (RecordSubject, bool) {
	rest, ok := strings.CutPrefix(subject, s.prefix()+"."+kind+".")
	if !ok {
		return RecordSubject{}, false
	}
	t := strings.Split(rest, ".")
	if len(t) == 1 && Op(t[0]).Valid() {
		return RecordSubject{Op: Op(t[0]), Legacy: true}, true
	}
	if len(t) != 5 {
		return RecordSubject{}, false
	}
	seq, err := strconv.ParseUint(t[4], 10, 64)
	if err != nil {
		return RecordSubject{}, false
	}
	r := RecordSubject{Tenant: t[0], Op: Op(t[1]), IDKey: t[2], Gen: t[3], Seq: seq}
	if r.Tenant == NoTenant {
		r.Tenant = ""
	}
	if !r.Op.Valid() && r.Op != OpUnknown {
		return RecordSubject{}, false
	}
	return r, true
}

// OpOfDeadLetter returns the op of a dead-letter subject, or OpUnknown.
func (s Subjects) OpOfDeadLetter(subject string) Op {
	r, _ := s.ParseDeadLetter(subject) // the zero RecordSubject when it is not one
	return cmp.Or(r.Op, OpUnknown)
}

// ResultFilter is the subject filter of the results stream.
func (s Subjects) ResultFilter() string { return s.prefix() + ".results.>" }

// DeadLetterFilter is the subject filter of the dead-letter stream.
func (s Subjects) DeadLetterFilter() string { return s.prefix() + ".dlq.>" }

// ResultsOf are the filters that select the results of op o, of every
// tenant (with the legacy subject).
func (s Subjects) ResultsOf(o Op) []string { return s.recordsOf("results", o) }

// DeadLettersOf are the filters that select the dead letters of op o, of
// every tenant (with the legacy subject), or only of s.Tenant's jobs when
// it is set.
func (s Subjects) DeadLettersOf(o Op) []string {
	if s.Tenant != "" {
		return []string{s.prefix() + ".dlq." + s.Tenant + "." + string(o) + ".>"}
	}
	return s.recordsOf("dlq", o)
}

// DeadLetterScope is the filter of the dead letters s sees: every one
// (DeadLetterFilter), or only those of s.Tenant's jobs when it is set.
func (s Subjects) DeadLetterScope() string {
	if s.Tenant != "" {
		return s.prefix() + ".dlq." + s.Tenant + ".>"
	}
	return s.DeadLetterFilter()
}

func (s Subjects) recordsOf(kind string, o Op) []string {
	p := s.prefix() + "." + kind + "."
	return []string{p + "*." + string(o) + ".>", p + string(o)}
}

// JobResults is the filter of the results of a job of tenant ("" outside
// any tenant) by its id, whatever its op: of the one stored at sequence
// seq of the jobs stream, or with seq 0 of every job that used the id (an
// id used again after the deduplication window, a job replayed with its
// job_id). The id key is in the subject, so a direct get of the last
// message on this filter finds the newest without a scan, and NATS
// permissions can confine a service to its own tenant's.
func (s Subjects) JobResults(tenant, jobID string, seq uint64) string {
	return s.jobRecords("results", tenant, jobID, "*", seq)
}

// JobDeadLetters is JobResults for dead letters.
func (s Subjects) JobDeadLetters(tenant, jobID string, seq uint64) string {
	return s.jobRecords("dlq", tenant, jobID, "*", seq)
}

// jobRecords is the filter of a job's records of kind, of any op, in
// stream generation gen ("*" for any).
func (s Subjects) jobRecords(kind, tenant, jobID, gen string, seq uint64) string {
	f := s.prefix() + "." + kind + "." + cmp.Or(tenant, NoTenant) + ".*." + IDKey(jobID) + "."
	if seq == 0 {
		return f + ">"
	}
	return f + gen + "." + strconv.FormatUint(seq, 10)
}

// TenantRecords are the filters of one tenant's records (results and dead
// letters), for NATS permissions that confine a service to its own.
func (s Subjects) TenantRecords(tenant string) []string {
	tenant = cmp.Or(tenant, NoTenant)
	return []string{s.prefix() + ".results." + tenant + ".>", s.prefix() + ".dlq." + tenant + ".>"}
}

// Owns reports whether subject falls under the prefix. The worker refuses
// such a subject as a reply_to: answers sent there could be stored in a
// stream.
func (s Subjects) Owns(subject string) bool {
	return subject == s.prefix() || strings.HasPrefix(subject, s.prefix()+".")
}

// Validate checks that the prefix is a usable subject prefix, and the
// tenant, if any, a usable tenant name.
func (s Subjects) Validate() error {
	p := s.prefix()
	if !validSubject(p) || strings.HasPrefix(p, "$") {
		return fmt.Errorf("subject prefix %q: must be one or more dot-separated tokens of printable ASCII without wildcards or a leading $", p)
	}
	if s.Tenant != "" {
		return CheckTenant(s.Tenant)
	}
	return nil
}

// validSubject reports whether s is a publishable subject of printable
// ASCII: tokens of '!' to '~' without '.', '*' or '>' (no spaces, control
// characters, DEL or non-ASCII: they can hide what a subject is).
func validSubject(s string) bool {
	if s == "" || len(s) > MaxSubjectLen {
		return false
	}
	tok := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '.':
			if tok == 0 {
				return false
			}
			tok = 0
		case c <= ' ' || c >= 0x7f || c == '*' || c == '>':
			return false
		default:
			tok++
		}
	}
	return tok > 0
}

// MaxSubjectLen bounds a reply subject (and the prefix).
const MaxSubjectLen = 255

// CheckReplySubject reports whether s can be a reply_to: a publishable
// subject of printable ASCII, not a system subject ($...), at most 255
// characters.
func CheckReplySubject(s string) error {
	switch {
	case !validSubject(s):
		return fmt.Errorf("%s is not a subject to publish to: dot-separated tokens of printable ASCII, no spaces, control characters or wildcards, at most %d characters", quoteBounded(s), MaxSubjectLen)
	case s[0] == '$':
		return fmt.Errorf("%s is a system subject", quoteBounded(s))
	}
	return nil
}

// MatchSubject reports whether a literal subject matches a NATS subject
// filter: "*" matches exactly one token, ">" one or more trailing tokens.
func MatchSubject(filter, subject string) bool {
	f, s := strings.Split(filter, "."), strings.Split(subject, ".")
	for i, ft := range f {
		switch {
		case ft == ">":
			return len(s) > i
		case i >= len(s):
			return false
		case ft != "*" && ft != s[i]:
			return false
		}
	}
	return len(f) == len(s)
}

// WorkerService is the NATS micro service every worker registers, so that
// `publish status` (or `nats micro ls`) can count the workers running.
const WorkerService = "clerkjobs-worker"
