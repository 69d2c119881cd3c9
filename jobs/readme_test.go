package jobs

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestREADMEStatesTheBodyLimit: the largest job body is part of the
// contract (a larger one is refused by publishers and dead-lettered by the
// worker); the README states it, and the limit the jobs stream enforces.
func TestREADMEStatesTheBodyLimit(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := strings.Join(strings.Fields(string(b)), " ") // as rendered: line breaks are spaces
	body := fmt.Sprintf("at most %d KiB (`jobs.MaxJobBytes`)", MaxJobBytes>>10)
	stream := fmt.Sprintf("more than %d KiB, headers included", DefaultTopology().JobsStreamConfig().MaxMsgSize>>10)
	for _, want := range []string{body, stream} {
		if !strings.Contains(readme, want) {
			t.Errorf("the README does not say %q", want)
		}
	}
}

// TestHeadersAreInTheREADME: the headers on records and dead letters are
// read by operators, the console and other languages' services. Every
// Header constant of this package must be named in the README, so that a
// new one is written down where readers look for it.
func TestHeadersAreInTheREADME(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	pkgs, err := parser.ParseDir(token.NewFileSet(), ".", func(fi fs.FileInfo) bool {
		return !strings.HasSuffix(fi.Name(), "_test.go")
	}, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range pkgs {
		for _, f := range p.Files {
			for _, d := range f.Decls {
				g, ok := d.(*ast.GenDecl)
				if !ok || g.Tok != token.CONST {
					continue
				}
				for _, s := range g.Specs {
					vs := s.(*ast.ValueSpec)
					for i, name := range vs.Names {
						if !strings.HasPrefix(name.Name, "Header") || i >= len(vs.Values) {
							continue
						}
						lit, ok := vs.Values[i].(*ast.BasicLit)
						if !ok || lit.Kind != token.STRING {
							continue
						}
						v, _ := strconv.Unquote(lit.Value)
						n++
						if !strings.Contains(readme, "`"+v+"`") {
							t.Errorf("header %s (jobs.%s) is not in the README", v, name.Name)
						}
					}
				}
			}
		}
	}
	if n < 20 {
		t.Fatalf("found %d Header constants, want every one", n)
	}
}

// TestResultFieldsAreTheREADMEs: the README's Results paragraph lists the
// members of a result as schemas/result.json has them, "?" after those a
// result may leave out. A member added to or dropped from the schema must
// be added to or dropped from the list.
func TestResultFieldsAreTheREADMEs(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := strings.Join(strings.Fields(string(b)), " ")
	_, after, ok := strings.Cut(readme, "### Results (`schemas/result.json`) `{")
	if !ok {
		t.Fatal("README: no Results paragraph starting with the field list")
	}
	list, _, _ := strings.Cut(after, "}`")
	s, err := os.ReadFile("../schemas/result.json")
	if err != nil {
		t.Fatal(err)
	}
	var schema struct {
		Properties map[string]json.RawMessage `json:"properties"`
		Required   []string                   `json:"required"`
	}
	if err := json.Unmarshal(s, &schema); err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for f := range strings.SplitSeq(list, ",") {
		name, _, _ := strings.Cut(strings.TrimSpace(f), ":")
		optional := strings.HasSuffix(name, "?")
		name = strings.TrimSuffix(name, "?")
		listed[name] = true
		if _, ok := schema.Properties[name]; !ok {
			t.Errorf("the README lists %q, which schemas/result.json does not have", name)
		}
		if optional && slices.Contains(schema.Required, name) {
			t.Errorf("the README marks %q optional, which schemas/result.json requires", name)
		}
	}
	for name := range schema.Properties {
		if !listed[name] {
			t.Errorf("schemas/result.json has %q, which the README's Results list does not", name)
		}
	}
}

// TestJobBodiesAreTheREADMEs: the README's table of jobs gives each
// type's members as its schema has them, the required ones in bold (for
// list, one of two). job_id and reply_to, which every job may carry, are
// said once below the table.
func TestJobBodiesAreTheREADMEs(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `sessions\\.([a-z_.]+)` \\| ([^|]*) \\|")
	bold := regexp.MustCompile(`\*\*([^*]*)\*\*`)
	name := regexp.MustCompile("`([a-z_]+)`")
	rows := row.FindAllStringSubmatch(string(b), -1)
	if len(rows) != len(AllOps()) {
		t.Fatalf("the README's table of jobs has %d rows, want one per op (%d)", len(rows), len(AllOps()))
	}
	for _, r := range rows {
		op := strings.TrimSuffix(r[1], ".request")
		s, err := os.ReadFile("../schemas/" + op + ".json")
		if err != nil {
			t.Errorf("sessions.%s: %v", r[1], err)
			continue
		}
		var schema struct {
			Properties map[string]json.RawMessage `json:"properties"`
			Required   []string                   `json:"required"`
			AnyOf      []struct {
				Required []string `json:"required"`
			} `json:"anyOf"`
		}
		if err := json.Unmarshal(s, &schema); err != nil {
			t.Fatal(err)
		}
		required := slices.Clone(schema.Required)
		for _, a := range schema.AnyOf {
			required = append(required, a.Required...)
		}
		var doc, docRequired []string
		for _, m := range name.FindAllStringSubmatch(r[2], -1) {
			doc = append(doc, m[1])
		}
		for _, bm := range bold.FindAllStringSubmatch(r[2], -1) {
			for _, m := range name.FindAllStringSubmatch(bm[1], -1) {
				docRequired = append(docRequired, m[1])
			}
		}
		slices.Sort(required)
		slices.Sort(docRequired)
		if !slices.Equal(required, docRequired) {
			t.Errorf("sessions.%s: the README has %v in bold, schemas/%s.json requires %v", r[1], docRequired, op, required)
		}
		for p := range schema.Properties {
			if p != "job_id" && p != "reply_to" && !slices.Contains(doc, p) {
				t.Errorf("sessions.%s: schemas/%s.json has %q, which the README's table does not", r[1], op, p)
			}
		}
		for _, p := range doc {
			if _, ok := schema.Properties[p]; !ok {
				t.Errorf("sessions.%s: the README names %q, which schemas/%s.json does not have", r[1], p, op)
			}
		}
	}
}

// TestSubjectsAreTheREADMEs: the subjects and the default stream names are
// what publishers in any language and operators' filters are written
// against. Each subject the code builds, with its variable tokens written
// as the README's placeholders, and each default name must be in the
// README.
func TestSubjectsAreTheREADMEs(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	s := DefaultTopology().Subjects
	template := strings.NewReplacer("T1", "<tenant>", "opx", "<op>", "J1", "<id key>", "G1", "<generation>", "77", "<seq>").Replace
	k := RecordKey{Tenant: "T1", Op: "opx", JobID: "J1", Gen: "G1", Seq: 77}
	want := []string{
		template(s.TenantJob("", "opx")), template(s.TenantJob("T1", "opx")),
		template(s.Result(k)), template(s.DeadLetter(k)),
		template(s.JobResults("T1", "J1", 0)),
	}
	for _, o := range AllOps() {
		want = append(want, s.Job(o))
	}
	for _, f := range s.JobFilters()[:2] {
		want = append(want, f)
	}
	for _, w := range want {
		if !strings.Contains(readme, "`"+w+"`") {
			t.Errorf("the README does not name the subject `%s`", w)
		}
	}
	d := DefaultTopology()
	for _, name := range []string{d.JobsStream, d.ResultsStream, d.DeadLetterStream, d.ProgressBucket, d.RateBucket, d.Consumer} {
		if !strings.Contains(readme, "`"+name+"`") {
			t.Errorf("the README does not name the default stream, bucket or consumer `%s`", name)
		}
	}
}
