package publishcli

import (
	"cmp"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/clerkjobs/clerkjobs/internal/natsconn"
	"github.com/clerkjobs/clerkjobs/internal/text"
)

// refusals records the permission violations the NATS server reports on
// the connection. A request the server refuses is simply not delivered:
// the client sees a timeout ("context deadline exceeded"), or no answer at
// all, and the violation arrives apart, as an asynchronous error. Putting
// the two together says what really happened.
type refusals struct {
	mu   sync.Mutex
	seen []refusal
}

// refusal is one violation: the server refused to let this client
// publish to, or subscribe to, subject.
type refusal struct {
	subscribe bool
	subject   string
}

// violation matches the server's text, e.g. `Permissions Violation for
// Publish to "$JS.API.CONSUMER.LIST.SESSION_JOBS"`.
var violation = regexp.MustCompile(`(?i)permissions violation for (publish|subscription) to "([^"]*)"`)

// record is the connection's error handler.
func (r *refusals) record(_ *nats.Conn, _ *nats.Subscription, err error) { r.add(err) }

func (r *refusals) add(err error) {
	if err == nil || !errors.Is(err, nats.ErrPermissionViolation) {
		return
	}
	m := violation.FindStringSubmatch(err.Error())
	if m == nil {
		return
	}
	v := refusal{subscribe: strings.EqualFold(m[1], "subscription"), subject: m[2]}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !slices.Contains(r.seen, v) {
		r.seen = append(r.seen, v)
	}
}

// list returns the refusals so far. It first makes a round trip to the
// server, so that a violation caused by anything sent before has arrived
// (the client records the last one as it reads it; the handler may run a
// little later).
func (r *refusals) list(nc *nats.Conn) []refusal {
	if nc != nil && nc.IsConnected() {
		_ = nc.FlushTimeout(2 * time.Second) // a broken connection has its own error
		r.add(nc.LastError())
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.seen)
}

// inboxPrefix is the prefix of this connection's reply subjects.
func (a *app) inboxPrefix() string {
	return strings.TrimSuffix(cmp.Or(a.conn.InboxPrefix, nats.InboxPrefix), ".")
}

// describe says what a refusal means and what to do.
func (a *app) describe(v refusal) string {
	who := "this NATS user"
	if a.conn.User != "" {
		who = fmt.Sprintf("the NATS user %s", text.Terminal(a.conn.User))
	}
	subject := text.Terminal(v.subject)
	if v.subscribe && strings.HasPrefix(v.subject, a.inboxPrefix()+".") {
		return fmt.Sprintf("The server refused %s the subscription to its reply inbox %s (permissions violation), so JetStream's acknowledgements and any result cannot reach it. "+
			"A user allowed only its own inboxes needs --%s (%s) set to them, e.g. _INBOX.svc_a (see deploy/nats/accounts.conf)",
			who, subject, natsconn.FlagInboxPrefix, natsconn.EnvOf(natsconn.FlagInboxPrefix))
	}
	verb := "publishing to"
	if v.subscribe {
		verb = "subscribing to"
	}
	return fmt.Sprintf("The server refused %s %s %s (permissions violation), so that request got no answer: grant it to the user (deploy/nats/accounts.conf shows what each command needs) or connect as a user who has it",
		who, verb, subject)
}

// explain adds to err (nil: nothing to explain) what the server refused
// during this run, unless err says so already: names the subject and the
// violation. Naming the subject alone is not saying so ("JetStream did not
// acknowledge job … on sessions.revoke" of a job the server refused).
func (a *app) explain(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	said := strings.Contains(strings.ToLower(msg), "permissions violation")
	var notes []string
	for _, v := range a.refusals.list(a.nc) {
		if !said || !strings.Contains(msg, text.Terminal(v.subject)) {
			notes = append(notes, a.describe(v))
		}
	}
	if len(notes) == 0 {
		return err
	}
	return fmt.Errorf("%w\n%s", err, strings.Join(notes, "\n"))
}
