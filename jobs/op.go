package jobs

import (
	"fmt"
	"strings"
)

// Op names a job type. It is the last part of the job's subject (token
// jobs use "token.request") and of its result and dead-letter subjects.
type Op string

// The job types.
const (
	OpList      Op = "list"
	OpCreate    Op = "create"
	OpGet       Op = "get"
	OpRefresh   Op = "refresh"
	OpRevoke    Op = "revoke"
	OpToken     Op = "token"
	OpRevokeAll Op = "revoke_all"
	// OpUnknown is the op of a message on a subject no job type owns.
	OpUnknown Op = "unknown"
)

// AllOps lists every job type, in a stable order.
func AllOps() []Op {
	return []Op{OpList, OpCreate, OpGet, OpRefresh, OpRevoke, OpToken, OpRevokeAll}
}

// Valid reports whether o is a job type.
func (o Op) Valid() bool {
	for _, v := range AllOps() {
		if o == v {
			return true
		}
	}
	return false
}

// ParseOp reads an op name as users type it ("revoke", "token", "revoke-all").
func ParseOp(s string) (Op, error) {
	o := Op(strings.ReplaceAll(strings.TrimSpace(s), "-", "_"))
	if o == "token.request" {
		o = OpToken
	}
	if !o.Valid() {
		return "", fmt.Errorf("unknown op %q: want one of %s", s, opList())
	}
	return o, nil
}

func opList() string {
	s := make([]string, 0, 7)
	for _, o := range AllOps() {
		s = append(s, string(o))
	}
	return strings.Join(s, ", ")
}

// DefaultPrefix is the first token of every subject.
const DefaultPrefix = "sessions"

// Subjects maps ops to NATS subjects under a prefix (DefaultPrefix unless
// configured). The zero value uses DefaultPrefix.
type Subjects struct {
	Prefix string
}

func (s Subjects) prefix() string {
	if s.Prefix == "" {
		return DefaultPrefix
	}
	return s.Prefix
}

// Job is the subject jobs of type o are published to.
func (s Subjects) Job(o Op) string {
	if o == OpToken {
		return s.prefix() + ".token.request"
	}
	return s.prefix() + "." + string(o)
}

// Result is the subject results of op o are stored on.
func (s Subjects) Result(o Op) string { return s.prefix() + ".results." + string(o) }

// DeadLetter is the subject dead letters of op o are stored on.
func (s Subjects) DeadLetter(o Op) string { return s.prefix() + ".dlq." + string(o) }

// JobFilters are the subjects the jobs stream captures. They take every
// two-token subject under the prefix, and three-token ones under
// <prefix>.token, so that a job sent to a mistyped subject is kept and
// dead-lettered as invalid instead of vanishing; they never overlap the
// results and dead-letter subjects.
func (s Subjects) JobFilters() []string {
	return []string{s.prefix() + ".*", s.prefix() + ".token.*"}
}

// ResultFilter is the subject filter of the results stream.
func (s Subjects) ResultFilter() string { return s.prefix() + ".results.>" }

// DeadLetterFilter is the subject filter of the dead-letter stream.
func (s Subjects) DeadLetterFilter() string { return s.prefix() + ".dlq.>" }

// OpOf returns the op a job subject belongs to, or OpUnknown.
func (s Subjects) OpOf(subject string) Op {
	for _, o := range AllOps() {
		if s.Job(o) == subject {
			return o
		}
	}
	return OpUnknown
}

// OpOfDeadLetter returns the op of a dead-letter subject, or OpUnknown.
func (s Subjects) OpOfDeadLetter(subject string) Op {
	rest, ok := strings.CutPrefix(subject, s.prefix()+".dlq.")
	if !ok || !Op(rest).Valid() {
		return OpUnknown
	}
	return Op(rest)
}

// Owns reports whether subject falls under the prefix. The worker refuses
// such a subject as a reply_to: answers sent there could be stored in a
// stream.
func (s Subjects) Owns(subject string) bool {
	return subject == s.prefix() || strings.HasPrefix(subject, s.prefix()+".")
}

// Validate checks that the prefix is a usable subject prefix.
func (s Subjects) Validate() error {
	p := s.prefix()
	if strings.ContainsAny(p, " \t\r\n*>") || strings.HasPrefix(p, ".") || strings.HasSuffix(p, ".") || strings.Contains(p, "..") || strings.HasPrefix(p, "$") {
		return fmt.Errorf("subject prefix %q: must be one or more dot-separated tokens without spaces, wildcards or a leading $", p)
	}
	return nil
}

// WorkerService is the NATS micro service every worker registers, so that
// `publish status` (or `nats micro ls`) can count the workers running.
const WorkerService = "clerkjobs-worker"
