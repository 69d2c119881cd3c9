package console

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/clerkjobs/clerkjobs/dlq"
	"github.com/clerkjobs/clerkjobs/internal/redact"
	"github.com/clerkjobs/clerkjobs/internal/text"
	"github.com/clerkjobs/clerkjobs/jobs"
)

//go:embed assets
var assets embed.FS

// pages are the parsed templates by name, one per page, each with the
// layout.
type pages map[string]*template.Template

var funcs = template.FuncMap{
	"num":  func(n any) string { return text.GroupDigits(fmt.Sprint(n)) },
	"ago":  ago,
	"when": func(t time.Time) string { return t.Local().Format("2006-01-02 15:04:05") },
	"iso":  func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"dash": dash,
	"dur": func(d time.Duration) string {
		if d < time.Second {
			return d.Round(time.Millisecond).String()
		}
		return d.Round(100 * time.Millisecond).String()
	},
	"span": func(a, b time.Time) time.Duration {
		if b.IsZero() {
			b = time.Now()
		}
		return b.Sub(a)
	},
	"plural": func(n int, one, many string) string {
		if n == 1 {
			many = one
		}
		return text.GroupDigits(strconv.Itoa(n)) + " " + many
	},
	"link": link,
	// query builds a URL query from name, value pairs.
	"query": func(kv ...string) url.Values {
		q := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			q.Add(kv[i], kv[i+1])
		}
		return q
	},
	// dict passes several values to a sub-template.
	"dict": func(kv ...any) map[string]any {
		m := map[string]any{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[fmt.Sprint(kv[i])] = kv[i+1]
		}
		return m
	},
	"add":     func(a, b int) int { return a + b },
	"sub":     func(a, b int) int { return a - b },
	"min":     func(a, b int) int { return min(a, b) },
	"ops":     func() []jobs.Op { return append(jobs.AllOps(), jobs.OpUnknown) },
	"classes": jobs.ErrorClasses,
}

func loadPages() (pages, error) {
	layout, err := template.New("layout.html").Funcs(funcs).ParseFS(assets, "assets/templates/layout.html", "assets/templates/partials.html")
	if err != nil {
		return nil, fmt.Errorf("console templates: %w", err)
	}
	names, err := fs.Glob(assets, "assets/templates/*.html")
	if err != nil {
		return nil, err
	}
	p := pages{}
	for _, n := range names {
		base := strings.TrimSuffix(path.Base(n), ".html")
		if base == "layout" || base == "partials" {
			continue
		}
		t, err := template.Must(layout.Clone()).ParseFS(assets, n)
		if err != nil {
			return nil, fmt.Errorf("console template %s: %w", n, err)
		}
		p[base] = t
	}
	return p, nil
}

// render executes page into a buffer first, so a template error never
// sends half a page.
func (p pages) render(name string, data any) ([]byte, error) {
	t, ok := p[name]
	if !ok {
		return nil, fmt.Errorf("no page %q", name)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout.html", data); err != nil {
		return nil, fmt.Errorf("render %s: %w", name, err)
	}
	return buf.Bytes(), nil
}

// link builds a same-site URL with a query; html/template escapes it for
// the attribute, and url.Values for the URL.
func link(path string, q url.Values) template.URL {
	if len(q) == 0 {
		return template.URL(path) //nolint:gosec // a path of ours, no data
	}
	return template.URL(path + "?" + q.Encode()) //nolint:gosec // encoded by url.Values
}

// List is the dead-letter list a plan's selection came from, with its
// filter. (Query is encoded already: written into an href as it is,
// html/template would escape its = and & again, and the list would show
// every dead letter.)
func (p *plan) List() template.URL {
	q, _ := url.ParseQuery(p.Query)
	return link("/dlq", q)
}

// dash shows an empty or zero value as a dash.
func dash(v any) string {
	s := fmt.Sprint(v)
	if s == "" || s == "0" {
		return "–"
	}
	return s
}

// ago says how long ago t was, in the largest unit that fits twice.
func ago(t time.Time) string {
	if t.IsZero() {
		return "–"
	}
	d := max(time.Since(t), 0)
	for _, u := range []struct {
		d    time.Duration
		name string
	}{{24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "min"}} {
		if d >= 2*u.d {
			return fmt.Sprintf("%d %s ago", d/u.d, u.name)
		}
	}
	return fmt.Sprintf("%d s ago", d/time.Second)
}

// frame is what the layout needs around every page.
type frame struct {
	Title   string
	Nav     string
	Refresh time.Duration // 0: the page does not refresh itself
	Who     string
	Server  string
	Prefix  string
	Now     time.Time
	Page    any
}

func (f frame) RefreshMillis() int64  { return f.Refresh.Milliseconds() }
func (f frame) RefreshSeconds() int64 { return max(1, int64(f.Refresh.Seconds())) }

// chart is the activity chart, drawn as SVG by the template.
type chart struct {
	W, H   int
	Bars   []chartBar
	Line   string // polyline points of jobs enqueued; "" when unknown
	Max    int
	Labels []chartLabel
}

type chartBar struct {
	X, W       float64
	OKY, OKH   float64
	BadY, BadH float64
	Title      string
}

type chartLabel struct {
	X    float64
	Text string
}

func drawChart(v activityView) chart {
	c := chart{W: 600, H: 140}
	const top, bottom = 8.0, 20.0
	plotH := float64(c.H) - top - bottom
	for _, s := range v.Slots {
		c.Max = max(c.Max, s.Succeeded+s.Dead, s.Enqueued)
	}
	scale := 0.0
	if c.Max > 0 {
		scale = plotH / float64(c.Max)
	}
	w := float64(c.W) / float64(len(v.Slots))
	var pts []string
	for i, s := range v.Slots {
		x := float64(i) * w
		okH, badH := float64(s.Succeeded)*scale, float64(s.Dead)*scale
		base := top + plotH
		title := fmt.Sprintf("%s–%s: %d succeeded, %d dead-lettered", s.Start.Local().Format("15:04:05"), s.Start.Add(slotWidth).Local().Format("15:04:05"), s.Succeeded, s.Dead)
		if s.Enqueued >= 0 {
			title += fmt.Sprintf(", %d enqueued", s.Enqueued)
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x+w/2, base-float64(s.Enqueued)*scale))
		}
		c.Bars = append(c.Bars, chartBar{X: x + 1, W: w - 2, OKY: base - okH, OKH: okH, BadY: base - okH - badH, BadH: badH, Title: title})
		if i%6 == 0 {
			c.Labels = append(c.Labels, chartLabel{X: x + 1, Text: s.Start.Local().Format("15:04")})
		}
	}
	if len(pts) > 1 {
		c.Line = strings.Join(pts, " ")
	}
	return c
}

// scrub hides what looks like a secret (internal/redact's shapes, and a
// URL's password: redact.All, as jobs.ShowHeader judges headers) in text
// that came from a dead letter or an action on one, and shows control and
// format characters (a bidirectional override, U+202E, that would show the
// operator reversed text) as escapes, as `publish dlq show` does. Pages
// never call it: the view-model constructors below do, for every
// letter-derived string (an action keeps its problems and its error
// scrubbed: fewProblems, task.finish), so that a template cannot forget
// one. The index keeps texts as they are (redacted only, see cut), so
// that filters match them.
func scrub(s string) string { return text.Terminal(redact.All(s)) }

// scrubLines is scrub for a text shown on several lines (a payload): its
// line breaks are kept.
func scrubLines(s string) string { return text.TerminalLines(redact.All(s)) }

// scrubError is an error's texts as a page shows them: see scrub.
func scrubError(e jobs.ErrorInfo) jobs.ErrorInfo { return e.MapText(scrub) }

// headerText is a text a dead letter's header named name gave (its error,
// its worker, a failure of its history) as a page shows it: hidden whole
// when jobs.ShowHeader judges it may hold a secret, as safeHeaders shows
// the header itself, so that a page never shows beside the headers table
// what the table hides; scrubbed otherwise.
func headerText(name, v string) string {
	if _, secret := jobs.ShowHeader(name, v); secret {
		return jobs.HiddenHeader(v)
	}
	return scrub(v)
}

// safeRow is a list row as a page may show it.
func safeRow(r row) row {
	r.JobID, r.Code, r.Message = scrub(r.JobID), scrub(r.Code), scrub(r.Message)
	r.Op, r.Class = jobs.Op(scrub(string(r.Op))), jobs.ErrorClass(scrub(string(r.Class)))
	return r
}

// safeEntry is a dead letter as the entry page may show it: every text
// its headers and subject gave scrubbed. The payload and the raw headers
// are shown through safePayload and safeHeaders instead.
func safeEntry(e dlq.Entry) dlq.Entry {
	d := e.DeadLetter
	e.Subject, e.Op = scrub(e.Subject), jobs.Op(scrub(string(e.Op)))
	// The texts its headers gave, each judged as the headers table judges
	// its header (headerText).
	d = d.MapHeaderTexts(headerText)
	if raw := e.Header.Get(jobs.HeaderRedacted); raw != "" {
		if _, secret := jobs.ShowHeader(jobs.HeaderRedacted, raw); secret {
			d.Redacted = []string{jobs.HiddenHeader(raw)}
		}
	}
	d.Redacted = slices.Clone(d.Redacted)
	for i := range d.Redacted {
		d.Redacted[i] = scrub(d.Redacted[i])
	}
	e.DeadLetter, e.Header, e.Payload = d, nil, nil
	if e.HeaderErr != nil {
		e.HeaderErr = errors.New(scrub(e.HeaderErr.Error()))
	}
	return e
}

// safeReports are an action's problems as a page may show them.
func safeReports(in []dlq.EntryReport) []dlq.EntryReport {
	out := slices.Clone(in)
	for i := range out {
		o := &out[i]
		o.JobID, o.Subject, o.Reason, o.Op = scrub(o.JobID), scrub(o.Subject), scrub(o.Reason), jobs.Op(scrub(string(o.Op)))
	}
	return out
}

// headerView is one header line of a dead letter, made safe to show.
type headerView struct {
	Name, Value string
	Hidden      bool
}

// safeHeaders lists h sorted by name; a value that may hold a secret, as
// jobs.ShowHeader judges it for every view of a dead letter (`publish dlq
// show` too), is replaced whole by its length (jobs.HiddenHeader, which
// also says when it was withheld unread for its length): the console shows
// none of it, not even what is left redacted in place. The worker never stores a
// secret in a header, so this only guards against one that got there some
// other way.
func safeHeaders(h nats.Header) []headerView {
	var out []headerView
	for name, vals := range h {
		for _, v := range vals {
			hv := headerView{Name: scrub(name)}
			if _, secret := jobs.ShowHeader(name, v); secret {
				hv.Value, hv.Hidden = jobs.HiddenHeader(v), true
			} else {
				hv.Value = text.Terminal(v)
			}
			out = append(out, hv)
		}
	}
	slices.SortStableFunc(out, func(a, b headerView) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// payloadView is a dead letter's body as the entry page shows it.
type payloadView struct {
	Text string
	Note string // why it is not shown
}

// safePayload shows the stored payload with the secret fields of its op
// redacted again (as strictly as a refresh job's when the op is unknown),
// indented when it is JSON. A body that cannot be redacted field by field
// and may hold a secret is not shown.
func safePayload(e dlq.Entry) payloadView {
	op := e.Op
	if !op.Valid() {
		op = jobs.OpRefresh
	}
	body, redacted := jobs.Redact(op, e.Payload)
	var v payloadView
	if slices.Contains(redacted, "body") {
		v.Note = "not shown: it is not JSON and may hold a secret"
		return v
	}
	// Fields that are not a job's secret ones may still hold one (a token
	// pasted into job_id): the text is scrubbed, indented or not.
	if out, ok := text.IndentJSON(body, "", "  ", text.IndentLimit(len(body))); ok {
		v.Text = scrubLines(string(out))
	} else if json.Valid(body) {
		// Nested too deep to indent within bounds (a hostile job's arrays
		// thousands deep): shown as stored.
		v.Text = scrubLines(string(body))
	} else if redact.Looks(string(body)) {
		v.Note = "not shown: it is not JSON and looks like it holds a secret"
	} else {
		v.Text = scrubLines(string(body))
	}
	return v
}
