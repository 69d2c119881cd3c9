package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/clerkjobs/clerkjobs/jobs"
)

// replies decides where a job's answer may go, and sends it there. An
// answer can hold a token: it goes only to a subject the requester can read
// and nothing stores, so before a job runs its reply_to must be
//
//   - a publishable subject of printable ASCII, outside the jobs prefix and
//     the system subjects;
//   - under an allowed reply prefix (Config.ReplyPrefixes, "_INBOX." by
//     default), and for a tenant's job under <prefix><tenant>., so that a
//     service hears only its own answers;
//   - a subject the worker's NATS user may publish to (else the answer would
//     be refused by the server after the token was minted);
//   - captured by no JetStream stream (else the answer would be stored).
//
// A job whose reply_to fails is dead-lettered as invalid before anything is
// asked of Clerk.
type replies struct {
	nc       *nats.Conn
	js       jetstream.JetStream
	subjects jobs.Subjects
	prefixes []string
	// perms are the publish permissions of the worker's NATS user, nil when
	// unknown (then the server's refusal is the only check).
	perms atomic.Pointer[subjectPermission]
}

// subjectPermission is the server's allow and deny lists of one direction.
type subjectPermission struct {
	Allow []string `json:"allow,omitempty"`
	Deny  []string `json:"deny,omitempty"`
}

// loadPermissions asks the server what the worker's user may publish to
// ($SYS.REQ.USER.INFO, answered for every user). Without an answer the
// check is skipped.
func (r *replies) loadPermissions(ctx context.Context, log zerolog.Logger) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	m, err := r.nc.RequestWithContext(ctx, "$SYS.REQ.USER.INFO", nil)
	if err != nil {
		log.Info().Err(err).Msg("cannot read this NATS user's permissions; replies are checked by the server only")
		return
	}
	var resp struct {
		Data struct {
			Permissions *struct {
				Publish *subjectPermission `json:"publish"`
			} `json:"permissions"`
		} `json:"data"`
	}
	if err := json.Unmarshal(m.Data, &resp); err != nil {
		log.Info().Err(err).Msg("unreadable user info; replies are checked by the server only")
		return
	}
	p := &subjectPermission{} // no permissions: everything allowed
	if resp.Data.Permissions != nil && resp.Data.Permissions.Publish != nil {
		p = resp.Data.Permissions.Publish
	}
	r.perms.Store(p)
}

// errReplyLookup: whether a stream captures a reply subject could not be
// found out; the job is tried again later, not judged.
var errReplyLookup = errors.New("cannot check the reply subject")

// check says why subject cannot receive the answer of a job of tenant, as
// an *jobs.InvalidError, or errReplyLookup when it could not find out.
func (r *replies) check(ctx context.Context, o jobs.Op, tenant, subject string) error {
	invalid := func(format string, a ...any) error {
		return &jobs.InvalidError{Op: o, Field: "/reply_to", Reason: fmt.Sprintf(format, a...)}
	}
	if err := jobs.CheckReplySubject(subject); err != nil {
		return invalid("%v", err)
	}
	if r.subjects.Owns(subject) {
		return invalid("%q is under the jobs prefix, where answers could be stored; use a private inbox such as _INBOX.<id>", subject)
	}
	if allowed := r.allowed(tenant); !slices.ContainsFunc(allowed, func(p string) bool { return strings.HasPrefix(subject, p) }) {
		return invalid("%q does not start with an allowed reply prefix (%s)", subject, strings.Join(allowed, ", "))
	}
	if p := r.perms.Load(); p != nil && !p.permits(subject) {
		return invalid("the worker's NATS user may not publish to %q, so the answer could not be delivered; use an inbox under the reply prefix its permissions allow", subject)
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	stream, err := r.js.StreamNameBySubject(cctx, subject)
	switch {
	case err == nil:
		return invalid("stream %s captures %q, so the answer would be stored there; use a private inbox that no stream captures", stream, subject)
	case errors.Is(err, jetstream.ErrStreamNotFound):
		return nil
	default:
		return fmt.Errorf("%w %q: %v", errReplyLookup, subject, err)
	}
}

// allowed are the reply prefixes a job of tenant may use.
func (r *replies) allowed(tenant string) []string {
	if tenant == "" {
		return r.prefixes
	}
	out := make([]string, len(r.prefixes))
	for i, p := range r.prefixes {
		out[i] = p + tenant + "."
	}
	return out
}

// send publishes an answer to a reply subject over core NATS. With confirm
// (an answer holding a secret) it waits until the server has processed the
// publish and fails if the server refused it.
func (r *replies) send(m *nats.Msg, confirm bool) error {
	subject := m.Subject
	// The connection keeps its last error until another comes: one that
	// was there before this reply (an earlier refusal of the same subject)
	// is not this reply's.
	before := r.nc.LastError()
	if err := r.nc.PublishMsg(m); err != nil {
		return fmt.Errorf("reply to %s: %w", subject, err)
	}
	if !confirm {
		return nil
	}
	if err := r.nc.FlushTimeout(5 * time.Second); err != nil {
		return fmt.Errorf("reply to %s: not confirmed: %w", subject, err)
	}
	// The server reports a refused publish before it answers the flush.
	if err := r.nc.LastError(); err != nil && err != before && strings.Contains(err.Error(), `"`+subject+`"`) {
		return fmt.Errorf("reply to %s: refused: %w", subject, err)
	}
	return nil
}

// permits applies NATS' publish permission rules: when there is an allow
// list the subject must match one entry, and it must match no deny entry.
func (p *subjectPermission) permits(subject string) bool {
	if len(p.Allow) > 0 && !slices.ContainsFunc(p.Allow, func(f string) bool { return jobs.MatchSubject(f, subject) }) {
		return false
	}
	return !slices.ContainsFunc(p.Deny, func(f string) bool { return jobs.MatchSubject(f, subject) })
}
