package console

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/rs/zerolog"

	"github.com/clerkjobs/clerkjobs/dlq"
	"github.com/clerkjobs/clerkjobs/internal/natsconn"
	"github.com/clerkjobs/clerkjobs/internal/text"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// contentSecurityPolicy allows scripts, styles and fetches from the
// console itself only: no inline script or style, no other origin, no
// framing.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// pageSize is the list's page length unless ?n= asks for another (at most
// maxPageSize).
const (
	pageSize    = 100
	maxPageSize = 500
)

type ctxKey struct{}

// who is the authenticated user of a request ("" without credentials).
func who(r *http.Request) string {
	s, _ := r.Context().Value(ctxKey{}).(string)
	return s
}

// admitted reports whether authenticate let the request through (as a
// user, or for a loopback host name without credentials).
func admitted(r *http.Request) bool {
	_, ok := r.Context().Value(ctxKey{}).(string)
	return ok
}

// Handler is the console's HTTP handler: security headers, then the host
// check (without credentials) or authentication, then the cross-origin
// check of state-changing requests, then the pages.
func (c *Console) Handler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(assets, "assets/static")
	fileServer := http.FileServerFS(static)
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		fileServer.ServeHTTP(w, r)
	})))
	mux.HandleFunc("GET /{$}", c.overview)
	mux.HandleFunc("GET /dlq", c.list)
	mux.HandleFunc("GET /dlq/{seq}", c.entry)
	mux.HandleFunc("POST /dlq/plan", c.planDLQ)
	mux.HandleFunc("GET /plans/{id}", c.showPlan)
	mux.HandleFunc("POST /plans/{id}/run", c.runPlan)
	mux.HandleFunc("GET /actions", c.actions)
	mux.HandleFunc("GET /tasks/{id}", c.showTask)
	mux.HandleFunc("POST /tasks/{id}/stop", c.stopTask)
	mux.HandleFunc("POST /tasks/{id}/continue", c.continueTask)
	mux.HandleFunc("GET /revoke-all", c.revokeAllForm)
	mux.HandleFunc("POST /revoke-all/plan", c.planRevokeAll)
	mux.HandleFunc("GET /login", c.loginForm)
	mux.HandleFunc("POST /login", c.login)
	mux.HandleFunc("POST /logout", c.logout)

	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.refusal(r).Str("origin", loggable(r.Header.Get("Origin"))).Str("sec_fetch_site", loggable(r.Header.Get("Sec-Fetch-Site"))).
			Msg("console: refused a cross-origin request")
		c.fail(w, r, http.StatusForbidden, errCrossSite)
	}))
	return c.secure(c.sameSite(c.authenticate(cop.Handler(mux))))
}

// Limits on what a request may ask of the console: every page walks the
// whole index under its read lock, so an unbounded filter (a megabyte of
// job ids) would let any caller take the console's CPU.
const (
	maxQuery        = 64 << 10 // bytes of a URL query
	maxForm         = 1 << 20  // bytes of a form
	maxFilterValues = 1000     // values of all filter fields, or sequences selected
)

// errCrossSite answers a request another web site made.
var errCrossSite = errors.New("refused: this request came from another site (cross-origin). Use the console's own pages: open its address yourself")

// sameSite refuses what another site's page makes a browser send
// (Fetch Metadata: Sec-Fetch-Site cross-site): an image, a script, a
// frame or a fetch pointed at the console would otherwise be served, many
// at a time and unseen, and could load it without credentials, as
// loopback is all it checks then. A top-level navigation (GET, a whole
// page) is let through, so that a link to the console pasted anywhere
// opens it: one page, in sight, its filter bounded like any other.
// Clients that send no Fetch Metadata (curl, scripts) are not browsers run
// by another site and are served.
func (c *Console) sameSite(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		page := (r.Method == http.MethodGet || r.Method == http.MethodHead) &&
			r.Header.Get("Sec-Fetch-Mode") == "navigate" && r.Header.Get("Sec-Fetch-Dest") == "document"
		if r.Header.Get("Sec-Fetch-Site") == "cross-site" && !page {
			c.refusal(r).Str("sec_fetch_mode", loggable(r.Header.Get("Sec-Fetch-Mode"))).Msg("console: refused a cross-origin request")
			c.fail(w, r, http.StatusForbidden, errCrossSite)
			return
		}
		if len(r.URL.RawQuery) > maxQuery {
			c.fail(w, r, http.StatusBadRequest, fmt.Errorf("the query is %d bytes, more than the %d the console accepts: filter on fewer values", len(r.URL.RawQuery), maxQuery))
			return
		}
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, maxForm)
		}
		next.ServeHTTP(w, r)
	})
}

// secure sets the headers every answer carries.
func (c *Console) secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		// A window the console's pages open, or that opens them, gets
		// no handle on the other (window.opener).
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cache-Control", "no-store")
		if r.TLS != nil {
			// Only over HTTPS the console serves itself: sent over plain
			// HTTP a browser ignores it, and behind a TLS proxy the
			// proxy's host is the proxy's to decide.
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		next.ServeHTTP(w, r)
	})
}

// authenticate admits a request. Without credentials only requests for a
// loopback host name are served: a web page whose DNS name was pointed at
// 127.0.0.1 (DNS rebinding) sends its own host name and is refused.
func (c *Console) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c.creds == nil {
			host, _, err := net.SplitHostPort(r.Host)
			if err != nil {
				host = r.Host
			}
			if !loopbackHost(host) {
				c.refusal(r).Str("host", loggable(r.Host)).Msg("console: refused a request for a host name that is not loopback")
				c.fail(w, r, http.StatusMisdirectedRequest, fmt.Errorf("refused: this console answers only for localhost or 127.0.0.1 without credentials, not for host %q", r.Host))
				return
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, "")))
			return
		}
		if strings.HasPrefix(r.URL.Path, "/static/") || r.URL.Path == "/login" {
			next.ServeHTTP(w, r)
			return
		}
		now, user := time.Now(), ""
		if r.Header.Get("Authorization") != "" {
			// Credentials to check: a guess, unless they match.
			if c.refuseLocked(w, r, now) {
				return
			}
			if user = c.creds.check(r); user != "" {
				c.failures.succeeded(clientAddr(r))
			} else if c.signInFailed(w, r, now) {
				return
			}
		}
		if user == "" && c.creds.token != nil && c.signIns.valid(r, now) {
			user = tokenUser
		}
		if user == "" {
			c.refusal(r).Msg("console: refused an unauthenticated request")
			if len(c.creds.users) > 0 {
				w.Header().Set("WWW-Authenticate", `Basic realm="clerkjobs console", charset="UTF-8"`)
			} else {
				w.Header().Add("WWW-Authenticate", `Bearer realm="clerkjobs console"`)
				if r.Method == http.MethodGet && strings.Contains(r.Header.Get("Accept"), "text/html") {
					http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
					return
				}
			}
			c.fail(w, r, http.StatusUnauthorized, errors.New("authentication required"))
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, user)))
	})
}

// refusal starts a warning about a request the console refuses. What it
// logs comes from whoever sent the request, before any sign-in: each field
// is bounded, so that anyone who reaches the port cannot write a megabyte
// (the largest header Go's server reads) into the logs per request.
func (c *Console) refusal(r *http.Request) *zerolog.Event {
	return c.log.Warn().Str("from", r.RemoteAddr).Str("method", loggable(r.Method)).Str("path", loggable(r.URL.Path))
}

// loggable bounds a value from a request for a log field.
func loggable(s string) string { return text.Line(s, 256) }

// logAction starts a log line about an action: who, from where.
func (c *Console) logAction(r *http.Request, msg string) *zerolog.Event {
	ev := c.log.Info().Str("from", r.RemoteAddr).Str("user", who(r))
	if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
		ev = ev.Str("forwarded_for", loggable(xff))
	}
	return ev.Str("event", msg)
}

// by describes who asked, for plans and tasks.
func by(r *http.Request) string {
	if u := who(r); u != "" {
		return u + " from " + r.RemoteAddr
	}
	return r.RemoteAddr
}

// frame is the layout's data. The NATS server and the subject prefix are
// for operators: a client that has not authenticated (the sign-in page, a
// refusal) is not told them, nor, without credentials, a page that asked
// for another host name (a DNS-rebinding page reads that refusal as its
// own).
func (c *Console) frame(r *http.Request, title, nav string, page any) frame {
	f := frame{Title: title, Nav: nav, Who: who(r), Now: time.Now(), Page: page}
	if admitted(r) && (c.creds == nil || f.Who != "") {
		f.Server, f.Prefix = natsconn.Redact(c.nc.ConnectedUrl()), c.topo.Subjects.Prefix
	}
	return f
}

// show renders page name in its frame. A live page reloads itself every
// refresh: the overview, and pages of actions still running.
func (c *Console) show(w http.ResponseWriter, r *http.Request, name, title, nav string, page any, live bool) {
	f := c.frame(r, title, nav, page)
	if live {
		f.Refresh = c.refresh
	}
	b, err := c.pages.render(name, f)
	if err != nil {
		c.log.Error().Err(err).Msg("console: render")
		http.Error(w, "the console could not render this page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(b)
}

// fail shows an error page: what went wrong and, in the message, what to
// do.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, status int, err error) {
	f := c.frame(r, http.StatusText(status), "", struct {
		Status  int
		Message string
	}{status, err.Error()})
	b, rerr := c.pages.render("error", f)
	if rerr != nil {
		http.Error(w, err.Error(), status)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// ---- overview

type overviewPage struct {
	Snap       snapshot
	Ops        []jobs.Op
	DLQ        indexStats
	Classes    []jobs.ErrorClass
	Activity   activityView
	Chart      chart
	InProgress inProgress
	ResultsErr error
	// Other counts, per op and in all, the dead letters of no class or of
	// one not in Classes (stored without the worker's headers), so that
	// the columns add up to the totals.
	Other      map[jobs.Op]int
	OtherTotal int
}

func (c *Console) overview(w http.ResponseWriter, r *http.Request) {
	p := overviewPage{Snap: c.poll.get(), DLQ: c.index.stats(), Classes: jobs.ErrorClasses()}
	p.Other, p.OtherTotal = map[jobs.Op]int{}, p.DLQ.Entries
	for _, cl := range p.Classes {
		p.OtherTotal -= p.DLQ.ByClass[cl]
	}
	for op, n := range p.DLQ.ByOp {
		for _, cl := range p.Classes {
			n -= p.DLQ.ByOpClass[op][cl]
		}
		p.Other[op] = n
	}
	p.Activity = c.act.view(time.Now())
	p.Chart = drawChart(p.Activity)
	p.InProgress = c.inProgress()
	c.mu.Lock()
	p.ResultsErr = c.resErr
	c.mu.Unlock()
	for _, op := range append(jobs.AllOps(), jobs.OpUnknown) {
		if op.Valid() || p.Snap.Jobs[op] > 0 || p.DLQ.ByOp[op] > 0 || p.Activity.Succeeded[op] > 0 || p.Activity.Dead[op] > 0 {
			p.Ops = append(p.Ops, op)
		}
	}
	c.show(w, r, "overview", "Overview", "overview", p, true)
}

// inProgress is what the "bulk" partial shows: the revoke_all jobs with
// progress saved, and those of them this console submitted and still
// follows, by job id.
type inProgress struct {
	Bulk []bulkJob
	Err  error
	// Followed jobs' progress reports say how many sessions there are in
	// all, which the progress bucket does not. One the console stopped
	// following (Stop, or the follow failed) goes on in the workers, and
	// its last report no longer moves: the bucket's count is shown for it.
	Followed map[string]taskView
}

func (c *Console) inProgress() inProgress {
	p := inProgress{Followed: map[string]taskView{}}
	for _, t := range c.reg.recent() {
		if t.Kind != actRevokeAll || !t.running() {
			continue
		}
		v := t.view()
		if _, ok := p.Followed[v.Plan.RevokeAll.JobID]; !ok {
			p.Followed[v.Plan.RevokeAll.JobID] = v
		}
	}
	p.Bulk, p.Err = c.bulk.list(time.Now(), c.topo.ProgressTTL)
	return p
}

// ---- dead letters

// filterFields are the list's filter fields, named like the flags of
// `publish dlq list`.
var filterFields = []string{"op", "class", "code", "since", "until", "job-id"}

func splitList(vals []string) []string {
	var out []string
	for _, v := range vals {
		for p := range strings.SplitSeq(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// filterQuery keeps the filter fields of v that are set.
func filterQuery(v url.Values) url.Values {
	q := url.Values{}
	for _, k := range filterFields {
		for _, s := range v[k] {
			if s = strings.TrimSpace(s); s != "" {
				q.Add(k, s)
			}
		}
	}
	return q
}

// errTooMany is a filter with more values than maxFilterValues.
var errTooMany = fmt.Errorf("the filter has more than %d values: filter on fewer (by class, code or time), or act on the dead letters in parts", maxFilterValues)

func (c *Console) filterOf(v url.Values) (dlq.Filter, error) {
	spec := FilterSpec{
		Ops: splitList(v["op"]), Classes: splitList(v["class"]), Codes: splitList(v["code"]), JobIDs: splitList(v["job-id"]),
		Since: strings.TrimSpace(v.Get("since")), Until: strings.TrimSpace(v.Get("until")),
	}
	if len(spec.Ops)+len(spec.Classes)+len(spec.Codes)+len(spec.JobIDs) > maxFilterValues {
		return dlq.Filter{}, errTooMany
	}
	return c.parse(spec, time.Now())
}

// describe says what a filter query selects, for people.
func describe(q url.Values) string {
	if len(q) == 0 {
		return "every dead letter"
	}
	var parts []string
	for _, k := range filterFields {
		if vs := q[k]; len(vs) > 0 {
			parts = append(parts, k+"="+strings.Join(vs, ","))
		}
	}
	return "all matching " + strings.Join(parts, " ")
}

type listPage struct {
	Query    url.Values
	Form     map[string]string
	FilterOn bool
	Err      string
	Page     page
	Total    int
	Ready    bool
	IndexErr error
	N        int
	Newer    url.Values
	Older    url.Values
}

func (c *Console) list(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	q := filterQuery(v)
	p := listPage{Query: q, Form: map[string]string{}, FilterOn: len(q) > 0, N: pageSize}
	for _, k := range filterFields {
		p.Form[k] = strings.Join(q[k], ",")
	}
	if s := v.Get("n"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			c.fail(w, r, http.StatusBadRequest, fmt.Errorf("page length n=%q: want a positive number (at most %d are shown)", s, maxPageSize))
			return
		}
		p.N = min(n, maxPageSize)
	}
	// The cursors: a sequence of the page next to the one asked for. One
	// that does not parse is refused: shown the newest page instead, the
	// operator would take it for the one asked for.
	var cursors [2]uint64
	for i, k := range []string{"before", "after"} {
		if s := v.Get(k); s != "" {
			n, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				c.fail(w, r, http.StatusBadRequest, fmt.Errorf("%s=%q: want a dead-letter sequence (digits only), as the list's newer and older links carry", k, s))
				return
			}
			cursors[i] = n
		}
	}
	st := c.index.stats()
	p.Total, p.Ready, p.IndexErr = st.Entries, st.Ready, st.Err
	f, err := c.filterOf(q)
	if errors.Is(err, errTooMany) {
		c.fail(w, r, http.StatusBadRequest, err)
		return
	}
	if err != nil {
		p.Err = err.Error()
	} else {
		p.Page = c.index.page(f, cursors[0], cursors[1], p.N)
		for i := range p.Page.Rows {
			p.Page.Rows[i] = safeRow(p.Page.Rows[i])
		}
		cursor := func(k string, seq uint64) url.Values {
			if seq == 0 {
				return nil
			}
			l := filterQuery(q)
			if p.N != pageSize {
				l.Set("n", strconv.Itoa(p.N))
			}
			l.Set(k, strconv.FormatUint(seq, 10))
			return l
		}
		p.Newer, p.Older = cursor("after", p.Page.Newer), cursor("before", p.Page.Older)
	}
	c.show(w, r, "list", "Dead letters", "dlq", p, !p.Ready)
}

type entryPage struct {
	E          dlq.Entry // made safe to show: safeEntry
	Stored     int64     // when it was stored, Unix nanoseconds: binds an action to it
	Headers    []headerView
	Payload    payloadView
	Replayable bool
	Why        string
}

func (c *Console) entry(w http.ResponseWriter, r *http.Request) {
	seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 64)
	if err != nil || seq == 0 {
		c.fail(w, r, http.StatusBadRequest, fmt.Errorf("%q is not a dead-letter sequence (a positive number, as the list shows)", r.PathValue("seq")))
		return
	}
	q, e, err := c.letter(r.Context(), seq)
	if errors.Is(err, dlq.ErrNotFound) {
		c.fail(w, r, http.StatusNotFound, err)
		return
	}
	if err != nil {
		c.fail(w, r, http.StatusServiceUnavailable, err)
		return
	}
	p := entryPage{E: safeEntry(e), Stored: e.Time.UnixNano(), Headers: safeHeaders(e.Header), Payload: safePayload(e), Replayable: true}
	err = q.CheckReplay(e) // the rule dlq replay applies
	if err == nil {
		if rerr := q.CheckResult(r.Context(), e); errors.Is(rerr, dlq.ErrNotReplayable) {
			err = rerr
		}
	}
	if err != nil {
		// It quotes header values and the payload's decoding error.
		p.Replayable, p.Why = false, scrub(err.Error())
	}
	c.show(w, r, "entry", fmt.Sprintf("Dead letter %d", seq), "dlq", p, false)
}

// letter reads the dead letter at seq.
func (c *Console) letter(ctx context.Context, seq uint64) (*dlq.Queue, dlq.Entry, error) {
	q, err := c.dlq(ctx)
	if err != nil {
		return nil, dlq.Entry{}, err
	}
	e, err := q.Get(ctx, seq)
	return q, e, err
}

// planDLQ makes a replay or purge plan from the list or an entry page.
func (c *Console) planDLQ(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		c.fail(w, r, http.StatusBadRequest, err)
		return
	}
	kind := actionKind(r.PostForm.Get("action"))
	if kind != actReplay && kind != actPurge {
		c.fail(w, r, http.StatusBadRequest, fmt.Errorf("action %q: want replay or purge", kind))
		return
	}
	p := &plan{Kind: kind, Created: time.Now(), By: by(r), Kinds: map[string]int{}}
	switch scope := r.PostForm.Get("scope"); scope {
	case "one", "selected":
		if n := len(r.PostForm["seq"]); n > maxFilterValues {
			c.fail(w, r, http.StatusBadRequest, fmt.Errorf("%d dead letters selected, more than %d: use “all matching” with a filter instead", n, maxFilterValues))
			return
		}
		// A page sends "seq@stored": the sequence and the storage time
		// (Unix nanoseconds) of the letter it showed, so the plan binds to
		// that letter even if the index moved on since the page was drawn.
		shown := map[uint64]int64{}
		for _, s := range r.PostForm["seq"] {
			num, at, hasAt := strings.Cut(s, "@")
			seq, err := strconv.ParseUint(num, 10, 64)
			var stored int64
			if err == nil && hasAt {
				stored, err = strconv.ParseInt(at, 10, 64)
			}
			if err != nil || seq == 0 {
				c.fail(w, r, http.StatusBadRequest, fmt.Errorf("%q is not a dead-letter sequence (a positive number, optionally @ its storage time in Unix nanoseconds)", s))
				return
			}
			if hasAt {
				shown[seq] = stored
			}
			p.Seqs = append(p.Seqs, seq)
		}
		slices.Sort(p.Seqs)
		p.Seqs = slices.Compact(p.Seqs)
		if len(p.Seqs) == 0 {
			c.fail(w, r, http.StatusBadRequest, errors.New("no dead letter selected: tick the ones to "+string(kind)+" first"))
			return
		}
		p.Seen = c.index.bind(p.Seqs)
		for seq, at := range shown {
			if id, ok := p.Seen[seq]; ok && id.At != at {
				c.fail(w, r, http.StatusConflict, fmt.Errorf("dead letter %d is not the one your page showed any more (the dead-letter stream was recreated?): nothing planned; reload the list and choose again", seq))
				return
			}
		}
		// A letter the page showed and the index has not read yet (the
		// entry page reads the stream: the console may still be reading
		// a large queue, or the letter just arrived) is read here, and
		// bound if it is the one shown.
		unread := map[uint64]dlq.Entry{}
		for seq, at := range shown {
			if _, ok := p.Seen[seq]; ok {
				continue
			}
			_, e, err := c.letter(r.Context(), seq)
			switch {
			case errors.Is(err, dlq.ErrNotFound):
				continue
			case err != nil:
				c.fail(w, r, http.StatusServiceUnavailable, err)
				return
			case e.Time.UnixNano() != at:
				c.fail(w, r, http.StatusConflict, fmt.Errorf("dead letter %d is not the one your page showed any more (the dead-letter stream was recreated?): nothing planned; reload the list and choose again", seq))
				return
			}
			p.Seen[seq], unread[seq] = seenOf(e), e
		}
		for _, seq := range p.Seqs {
			if row, ok := c.index.row(seq); ok {
				p.Kinds[kindOf(row.Op, row.Class)]++
			} else if e, ok := unread[seq]; ok {
				p.Kinds[kindOf(jobs.Op(cut(string(e.Op), maxCode)), jobs.ErrorClass(cut(string(e.DeadLetter.Error.Class), maxCode)))]++
			} else {
				p.Kinds["not in the queue (replayed or purged already?)"]++
			}
		}
		p.Scope = fmt.Sprintf("%d selected", len(p.Seqs))
		if len(p.Seqs) == 1 {
			p.Scope = fmt.Sprintf("dead letter %d", p.Seqs[0])
		}
	case "matching":
		q := filterQuery(r.PostForm)
		f, err := c.filterOf(q)
		if err != nil {
			c.fail(w, r, http.StatusBadRequest, err)
			return
		}
		if st := c.index.stats(); !st.Ready {
			c.fail(w, r, http.StatusServiceUnavailable, errors.New("the console is still reading the dead-letter queue, so the selection would be incomplete: try again in a moment"))
			return
		}
		p.Seqs, p.Kinds = c.index.selection(f)
		p.Seen = c.index.bind(p.Seqs)
		p.Query, p.Scope = q.Encode(), scrub(describe(q))
		if len(p.Seqs) == 0 {
			c.fail(w, r, http.StatusBadRequest, errors.New("no dead letters match: nothing to "+string(kind)))
			return
		}
	default:
		c.fail(w, r, http.StatusBadRequest, fmt.Errorf("scope %q: want one, selected or matching", scope))
		return
	}
	c.propose(w, r, p)
}

// propose keeps a replay or purge plan for its confirmation (a replay's
// only once its dry run started), logs it and shows its page.
func (c *Console) propose(w http.ResponseWriter, r *http.Request, p *plan) {
	if p.Kind == actReplay {
		t := newTask(actReplay, p, true)
		if err := c.reg.start(c.taskContext(), t, func(ctx context.Context) error { return c.runTask(ctx, t) }); err != nil {
			c.fail(w, r, http.StatusTooManyRequests, fmt.Errorf("nothing planned: %w", err))
			return
		}
		p.mu.Lock()
		p.check = t
		p.mu.Unlock()
	}
	c.reg.addPlan(p)
	c.logAction(r, "plan").Str("action", string(p.Kind)).Str("scope", loggable(p.Scope)).Int("count", len(p.Seqs)).Str("plan", p.ID).Msg("console: action planned, awaiting confirmation")
	http.Redirect(w, r, "/plans/"+p.ID, http.StatusSeeOther)
}

type planPage struct {
	P     *plan
	Check *taskView
	Kinds []kindCount
}

type kindCount struct {
	Kind string
	N    int
}

func sortedKinds(m map[string]int) []kindCount {
	out := make([]kindCount, 0, len(m))
	for k, n := range m {
		out = append(out, kindCount{scrub(k), n}) // op/class from headers
	}
	slices.SortFunc(out, func(a, b kindCount) int { return strings.Compare(a.Kind, b.Kind) })
	return out
}

// planOf finds the plan the request names, or answers 404.
func (c *Console) planOf(w http.ResponseWriter, r *http.Request) *plan {
	p := c.reg.plan(r.PathValue("id"))
	if p == nil {
		c.fail(w, r, http.StatusNotFound, errors.New("no such plan (the console forgets plans when it restarts): choose the dead letters again"))
	}
	return p
}

// taskOf finds the action the request names, or answers 404.
func (c *Console) taskOf(w http.ResponseWriter, r *http.Request) *task {
	t := c.reg.task(r.PathValue("id"))
	if t == nil {
		c.fail(w, r, http.StatusNotFound, errors.New("no such action (the console forgets them when it restarts)"))
	}
	return t
}

func (c *Console) showPlan(w http.ResponseWriter, r *http.Request) {
	p := c.planOf(w, r)
	if p == nil {
		return
	}
	check, run := p.tasks()
	if run != nil {
		http.Redirect(w, r, "/tasks/"+run.ID, http.StatusSeeOther)
		return
	}
	pp := planPage{P: p, Kinds: sortedKinds(p.Kinds)}
	if check != nil {
		v := check.view()
		pp.Check = &v
	}
	c.show(w, r, "plan", "Confirm", "actions", &pp, pp.Check != nil && pp.Check.State == taskRunning)
}

func (c *Console) runPlan(w http.ResponseWriter, r *http.Request) {
	p := c.planOf(w, r)
	if p == nil {
		return
	}
	if err := r.ParseForm(); err != nil {
		c.fail(w, r, http.StatusBadRequest, err)
		return
	}
	t := newTask(p.Kind, p, false)
	if p.Kind == actReplay {
		check, _ := p.tasks()
		state := taskRunning
		if check != nil {
			state = check.view().State
		}
		switch state {
		case taskDone:
		case taskRunning:
			c.fail(w, r, http.StatusConflict, errors.New("the dry run has not finished: wait for it, then confirm"))
			return
		case taskStopped:
			c.fail(w, r, http.StatusConflict, errDryRunStopped)
			return
		default:
			c.fail(w, r, http.StatusConflict, errors.New("the dry run failed, so this replay cannot be confirmed: nothing was replayed; see why on this plan's page, then choose the dead letters again"))
			return
		}
		rate, err := dlq.ParseRate(strings.TrimSpace(r.PostForm.Get("rate")))
		if err != nil {
			c.fail(w, r, http.StatusBadRequest, fmt.Errorf("rate %w, or nothing for no limit", err))
			return
		}
		t.Rate = rate
	}
	if prev, fresh := p.claim(t); !fresh {
		http.Redirect(w, r, "/tasks/"+prev.ID, http.StatusSeeOther)
		return
	}
	ev := c.logAction(r, "start").Str("action", string(p.Kind)).Str("scope", loggable(p.Scope)).Str("plan", p.ID)
	if p.Kind != actRevokeAll {
		ev = ev.Int("count", len(p.Seqs))
	}
	if t.Rate > 0 {
		ev = ev.Float64("rate", t.Rate)
	}
	if p.RevokeAll != nil {
		ev = ev.Str("user_id", p.RevokeAll.UserID).Int("except", len(p.RevokeAll.ExceptSessionIDs)).Str("job_id", p.RevokeAll.JobID)
	}
	// The task waits for its confirmation to be logged, so that the log
	// says "confirmed" before "done", and never for an action refused.
	logged := make(chan struct{})
	err := c.reg.start(c.taskContext(), t, func(ctx context.Context) error {
		<-logged
		err := c.runTask(ctx, t)
		c.logDone(r, t, err)
		return err
	})
	if err != nil {
		p.release(t)
		c.logAction(r, "refuse").Str("action", string(p.Kind)).Str("plan", p.ID).Msg("console: action not started: too many actions running")
		c.fail(w, r, http.StatusTooManyRequests, fmt.Errorf("not started: %w", err))
		return
	}
	ev.Msg("console: action confirmed")
	close(logged)
	http.Redirect(w, r, "/tasks/"+t.ID, http.StatusSeeOther)
}

// runTask carries out a confirmed plan, or a replay plan's dry run.
func (c *Console) runTask(ctx context.Context, t *task) error {
	p := t.Plan
	if p.Kind == actRevokeAll {
		return t.revokeAll(ctx, c.client)
	}
	q, err := c.dlq(ctx)
	if err != nil {
		return err
	}
	switch p.Kind {
	case actReplay:
		opts := []dlq.Option{dlq.WithRate(t.Rate), dlq.WithExpect(p.expect), dlq.WithProgress(func(o dlq.EntryReport) {
			t.step()
			if o.Status == dlq.StatusReplayed {
				c.index.remove(o.Seq)
			}
		})}
		if t.DryRun {
			opts = append(opts, dlq.WithDryRun())
		}
		rep, err := q.Replay(ctx, p.Seqs, opts...)
		rep.Problems = fewProblems(rep.Problems)
		t.mu.Lock()
		t.Replay = &rep
		t.mu.Unlock()
		return err
	case actPurge:
		// A sequence expect refuses holds another letter, which stays
		// listed; the others are purged, or gone already.
		refused := map[uint64]bool{}
		expect := func(e dlq.Entry) error {
			err := p.expect(e)
			refused[e.Seq] = err != nil // the library calls expect and progress in turn
			return err
		}
		rep, err := q.Purge(ctx, p.Seqs, dlq.WithExpect(expect), dlq.WithProgress(func(o dlq.EntryReport) {
			t.step()
			if !refused[o.Seq] && o.Status != dlq.StatusFailed {
				c.index.remove(o.Seq)
			}
		}))
		rep.Problems = fewProblems(rep.Problems)
		t.mu.Lock()
		t.Purge = &rep
		t.mu.Unlock()
		return err
	}
	return fmt.Errorf("unknown action %q", p.Kind)
}

// maxProblems is how many of an action's problems (letters skipped or
// failed) it keeps: the ones its pages list. The report's counts say how
// many there were in all.
const maxProblems = 100

// fewProblems keeps the first maxProblems problems, scrubbed for the
// pages (they quote dead letters and errors), in an array of their own: an
// action over 100,000 letters that cannot be replayed would otherwise keep
// a reason per letter for as long as the console keeps it.
func fewProblems(p []dlq.EntryReport) []dlq.EntryReport {
	return safeReports(p[:min(len(p), maxProblems)])
}

// logDone logs how a task ended, with its counts.
func (c *Console) logDone(r *http.Request, t *task, err error) {
	v := t.view()
	ev := c.logAction(r, "finish").Str("action", string(t.Kind)).Str("scope", loggable(t.Plan.Scope)).Str("plan", t.Plan.ID).
		Dur("took", time.Since(v.Started))
	if err != nil {
		ev = ev.AnErr("error", err)
	}
	if v.Replay != nil {
		ev = ev.Int("replayed", v.Replay.Replayed).Int("duplicates", v.Replay.Duplicates).Int("skipped", v.Replay.Skipped).
			Int("failed", v.Replay.Failed).Int("not_attempted", v.Replay.NotAttempted)
	}
	if v.Purge != nil {
		ev = ev.Int("purged", v.Purge.Purged).Int("not_found", v.Purge.NotFound).Int("skipped", v.Purge.Skipped).Int("failed", v.Purge.Failed).Int("not_attempted", v.Purge.NotAttempted)
	}
	if s := v.Bulk.Summary; s != nil {
		ev = ev.Int("revoked", s.Revoked).Int("already_gone", s.AlreadyGone).Int("failed", s.Failed)
	}
	ev.Msg("console: action finished")
}

type actionsPage struct {
	Tasks []taskView
}

func (c *Console) actions(w http.ResponseWriter, r *http.Request) {
	var p actionsPage
	running := false
	for _, t := range c.reg.recent() {
		v := t.view()
		p.Tasks = append(p.Tasks, v)
		running = running || v.State == taskRunning
	}
	c.show(w, r, "actions", "Actions", "actions", p, running)
}

func (c *Console) showTask(w http.ResponseWriter, r *http.Request) {
	t := c.taskOf(w, r)
	if t == nil {
		return
	}
	v := t.view()
	c.show(w, r, "task", "Action", "actions", v, v.State == taskRunning)
}

func (c *Console) stopTask(w http.ResponseWriter, r *http.Request) {
	t := c.taskOf(w, r)
	if t == nil {
		return
	}
	// One that ended already has nothing to stop, and nothing to log as
	// stopped.
	if t.running() {
		t.stop()
		c.logAction(r, "stop").Str("action", string(t.Kind)).Str("scope", loggable(t.Plan.Scope)).Str("plan", t.Plan.ID).Int("done", t.view().Done).Msg("console: action stopped")
	}
	http.Redirect(w, r, "/tasks/"+t.ID, http.StatusSeeOther)
}

// continueTask plans again what a stopped or failed replay or purge left:
// its dead letters still in the queue.
func (c *Console) continueTask(w http.ResponseWriter, r *http.Request) {
	t := c.taskOf(w, r)
	if t == nil {
		return
	}
	v := t.view()
	if v.State == taskRunning || (t.Kind != actReplay && t.Kind != actPurge) {
		c.fail(w, r, http.StatusConflict, errors.New("only a replay or purge that stopped can be continued"))
		return
	}
	old := t.Plan
	p := &plan{Kind: old.Kind, Created: time.Now(), By: by(r), Query: old.Query, Kinds: map[string]int{}, Scope: "what is left of: " + strings.TrimPrefix(old.Scope, "what is left of: ")}
	p.Seen = map[uint64]seen{}
	for _, seq := range old.Seqs {
		// Only the letters the first plan chose: a sequence now naming
		// another letter is left out.
		if row, ok := c.index.row(seq); ok && old.Seen[seq] == row.seen() {
			p.Seqs = append(p.Seqs, seq)
			p.Seen[seq] = row.seen()
			p.Kinds[kindOf(row.Op, row.Class)]++
		}
	}
	if len(p.Seqs) == 0 {
		c.fail(w, r, http.StatusBadRequest, errors.New("none of its dead letters is left in the queue: nothing to continue"))
		return
	}
	c.propose(w, r, p)
}

// ---- revoke_all

type revokeAllPage struct {
	UserID, Except string
	Lock           bool
	Err            string
	InProgress     inProgress
}

// showRevokeAll shows the revoke_all form p with the jobs in progress.
func (c *Console) showRevokeAll(w http.ResponseWriter, r *http.Request, p revokeAllPage) {
	p.InProgress = c.inProgress()
	c.show(w, r, "revokeall", "Revoke all sessions of a user", "revoke-all", p, false)
}

func (c *Console) revokeAllForm(w http.ResponseWriter, r *http.Request) {
	c.showRevokeAll(w, r, revokeAllPage{UserID: r.URL.Query().Get("user")})
}

func (c *Console) planRevokeAll(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		c.fail(w, r, http.StatusBadRequest, err)
		return
	}
	args := jobs.RevokeAllArgs{UserID: strings.TrimSpace(r.PostForm.Get("user_id")), ExceptSessionIDs: splitList(r.PostForm["except"]),
		LockUser: r.PostForm.Get("lock_user") != ""}
	p := &plan{ID: newID(), Kind: actRevokeAll, Created: time.Now(), By: by(r)}
	// The job id comes from the plan: confirming twice (a double click, a
	// resent form) publishes the same Nats-Msg-Id, which the jobs stream
	// drops.
	args.JobID = "console-revoke-all-" + p.ID
	if err := jobs.Validate(&args); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		c.showRevokeAll(w, r, revokeAllPage{UserID: args.UserID, Except: strings.Join(args.ExceptSessionIDs, ","), Lock: args.LockUser, Err: err.Error()})
		return
	}
	p.RevokeAll, p.Scope = &args, "every session of "+args.UserID
	c.reg.addPlan(p)
	c.logAction(r, "plan").Str("action", string(actRevokeAll)).Str("user_id", args.UserID).Int("except", len(args.ExceptSessionIDs)).Bool("lock_user", args.LockUser).Str("plan", p.ID).Msg("console: action planned, awaiting confirmation")
	http.Redirect(w, r, "/plans/"+p.ID, http.StatusSeeOther)
}

// ---- login (bearer token in a browser)

type loginPage struct {
	Next string
	Err  string
}

// safeNext returns s if it is a path of this console to go to after
// signing in, else "/": never another site. Browsers are lenient: they
// drop tabs and newlines ("/\t/evil.example" is "//evil.example"), read a
// backslash as a slash, and some decode percent escapes first, so a
// candidate with a control character or a backslash, raw or decoded, is
// refused rather than cleaned.
func safeNext(s string) string {
	bad := func(v string) bool {
		return strings.ContainsFunc(v, func(r rune) bool { return r == '\\' || unicode.IsControl(r) }) ||
			!strings.HasPrefix(v, "/") || strings.HasPrefix(v, "//")
	}
	if bad(s) {
		return "/"
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" || bad(u.Path) {
		return "/"
	}
	return s
}

func (c *Console) loginForm(w http.ResponseWriter, r *http.Request) {
	if c.creds == nil || c.creds.token == nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	c.show(w, r, "login", "Sign in", "", loginPage{Next: safeNext(r.URL.Query().Get("next"))}, false)
}

func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	if c.creds == nil || c.creds.token == nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	if err := r.ParseForm(); err != nil {
		c.fail(w, r, http.StatusBadRequest, err)
		return
	}
	next := safeNext(r.PostForm.Get("next"))
	now := time.Now()
	if c.refuseLocked(w, r, now) {
		return
	}
	if !c.creds.tokenMatches(r.PostForm.Get("token")) {
		c.log.Warn().Str("from", r.RemoteAddr).Msg("console: refused a sign-in with a wrong token")
		if c.signInFailed(w, r, now) {
			return
		}
		w.WriteHeader(http.StatusUnauthorized)
		c.show(w, r, "login", "Sign in", "", loginPage{Next: next, Err: "That is not the console's token."}, false)
		return
	}
	c.failures.succeeded(clientAddr(r))
	// The browser's earlier sign-in, if any, ends: its cookie, replaced
	// now, would otherwise stay good for its whole life to whoever copied
	// it.
	c.signIns.end(r)
	id, err := c.signIns.start(now)
	if err != nil {
		c.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: id, Path: "/", MaxAge: int(signInTTL / time.Second), HttpOnly: true, Secure: overHTTPS(r), SameSite: http.SameSiteStrictMode})
	c.logAction(r, "login").Msg("console: signed in with the token")
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// overHTTPS reports whether the browser sent r from an https page: the
// console's own TLS, or a TLS proxy in front of it, which the browser's
// Origin header names (CrossOriginProtection has checked it is the
// console's own page). The sign-in cookie is Secure then, so that the
// browser never sends it over plain HTTP to the console's host name.
func overHTTPS(r *http.Request) bool {
	return r.TLS != nil || strings.HasPrefix(strings.ToLower(r.Header.Get("Origin")), "https://")
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	c.signIns.end(r)
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: overHTTPS(r), SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}
