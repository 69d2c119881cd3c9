package jobs

import (
	"fmt"
	"slices"
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
func (o Op) Valid() bool { return slices.Contains(AllOps(), o) }

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
