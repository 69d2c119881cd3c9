package schemas_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"

	"github.com/clerkjobs/clerkjobs/jobs"
	"github.com/clerkjobs/clerkjobs/schemas"
)

const (
	base    = "https://github.com/clerkjobs/clerkjobs/schemas/"
	draft   = "https://json-schema.org/draft/2020-12/schema"
	minJSON = 9 // every schema file there is, at least: 7 jobs, common, result
)

func files(t *testing.T) []string {
	t.Helper()
	fs, err := fs.Glob(schemas.FS, "*.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) < minJSON {
		t.Fatalf("schemas.FS holds %d schema files (%v), want at least %d", len(fs), fs, minJSON)
	}
	return fs
}

func load(t *testing.T, f string) any {
	t.Helper()
	b, err := schemas.FS.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s is not JSON: %v", f, err)
	}
	return doc
}

// compiler has every schema file as a resource, so $refs between them
// resolve offline; formats are asserted, not just annotations.
func compiler(t *testing.T) *jsonschema.Compiler {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	for _, f := range files(t) {
		if err := c.AddResource(base+f, load(t, f)); err != nil {
			t.Fatalf("add %s: %v", f, err)
		}
	}
	return c
}

func compile(t *testing.T, f string) *jsonschema.Schema {
	t.Helper()
	s, err := compiler(t).Compile(base + f)
	if err != nil {
		t.Fatalf("compile %s: %v", f, err)
	}
	return s
}

func TestSchemasAreDraft202012AndCompile(t *testing.T) {
	meta, err := jsonschema.NewCompiler().Compile(draft)
	if err != nil {
		t.Fatalf("compile the 2020-12 metaschema: %v", err)
	}
	c := compiler(t)
	for _, f := range files(t) {
		t.Run(f, func(t *testing.T) {
			doc := load(t, f)
			obj, ok := doc.(map[string]any)
			if !ok {
				t.Fatalf("%s is not a JSON object", f)
			}
			if obj["$schema"] != draft {
				t.Errorf("$schema = %v, want %s", obj["$schema"], draft)
			}
			if obj["$id"] != base+f {
				t.Errorf("$id = %v, want %s", obj["$id"], base+f)
			}
			if title, _ := obj["title"].(string); title == "" {
				t.Error("no title")
			}
			if err := meta.Validate(doc); err != nil {
				t.Errorf("not a valid 2020-12 schema: %v", err)
			}
			if _, err := c.Compile(base + f); err != nil {
				t.Errorf("does not compile: %v", err)
			}
			var unknown []string
			walkSchema(obj, "#", func(path, key string) { unknown = append(unknown, path+"/"+key) })
			if len(unknown) > 0 {
				t.Errorf("keywords that are not JSON Schema 2020-12 (a typo is silently ignored by validators): %v", unknown)
			}
		})
	}
}

// keywords of JSON Schema 2020-12 (core, applicator, unevaluated,
// validation, meta-data, format, content).
var keywords = map[string]bool{}

func init() {
	for _, k := range strings.Fields(`$schema $id $ref $dynamicRef $anchor $dynamicAnchor $vocabulary $comment $defs
		allOf anyOf oneOf not if then else dependentSchemas prefixItems items contains properties patternProperties
		additionalProperties propertyNames unevaluatedItems unevaluatedProperties
		type enum const multipleOf maximum exclusiveMaximum minimum exclusiveMinimum maxLength minLength pattern
		maxItems minItems uniqueItems maxContains minContains maxProperties minProperties required dependentRequired
		title description default deprecated readOnly writeOnly examples format
		contentEncoding contentMediaType contentSchema`) {
		keywords[k] = true
	}
}

// walkSchema calls bad for every key of a schema object that is not a
// keyword, descending into every subschema.
func walkSchema(s any, path string, bad func(path, key string)) {
	obj, ok := s.(map[string]any)
	if !ok {
		return // boolean schema
	}
	for k, v := range obj {
		if !keywords[k] {
			bad(path, k)
			continue
		}
		switch k {
		case "$defs", "properties", "patternProperties", "dependentSchemas":
			m, _ := v.(map[string]any)
			for name, sub := range m {
				walkSchema(sub, path+"/"+k+"/"+name, bad)
			}
		case "allOf", "anyOf", "oneOf", "prefixItems":
			a, _ := v.([]any)
			for i, sub := range a {
				walkSchema(sub, fmt.Sprintf("%s/%s/%d", path, k, i), bad)
			}
		case "not", "if", "then", "else", "items", "contains", "additionalProperties", "propertyNames",
			"unevaluatedItems", "unevaluatedProperties", "contentSchema":
			walkSchema(v, path+"/"+k, bad)
		}
	}
}

func TestWalkSchemaFindsTypos(t *testing.T) {
	var doc any
	if err := json.Unmarshal([]byte(`{"type":"object","properties":{"a":{"type":"integer","minimun":1}},
		"anyOf":[{"require":["a"]}],"$defs":{"x":{"items":{"maxLenght":3}}},"examples":[{"minimun":1}]}`), &doc); err != nil {
		t.Fatal(err)
	}
	var got []string
	walkSchema(doc, "#", func(path, key string) { got = append(got, path+"/"+key) })
	sort.Strings(got)
	want := []string{"#/$defs/x/items/maxLenght", "#/anyOf/0/require", "#/properties/a/minimun"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("walkSchema found %v, want %v", got, want)
	}
}

func TestSchemaExamplesValidate(t *testing.T) {
	total := 0
	for _, f := range files(t) {
		obj, _ := load(t, f).(map[string]any)
		examples, _ := obj["examples"].([]any)
		if len(examples) == 0 {
			continue
		}
		sch := compile(t, f)
		for i, ex := range examples {
			total++
			if err := sch.Validate(ex); err != nil {
				t.Errorf("%s: example %d does not validate: %v", f, i, err)
			}
		}
	}
	if total < 6 {
		t.Errorf("only %d examples in all schemas", total)
	}
}

// Each job schema's examples are jobs the worker accepts, decoding to the
// schema's op.
func TestJobSchemaExamplesDecode(t *testing.T) {
	for _, o := range jobs.AllOps() {
		obj, _ := load(t, jobs.SchemaFile(o)).(map[string]any)
		examples, _ := obj["examples"].([]any)
		for i, ex := range examples {
			b, err := json.Marshal(ex)
			if err != nil {
				t.Fatal(err)
			}
			a, err := jobs.Decode(o, b)
			if err != nil {
				t.Errorf("%s example %d: %v", jobs.SchemaFile(o), i, err)
			} else if a.Op() != o {
				t.Errorf("%s example %d decoded as %s", jobs.SchemaFile(o), i, a.Op())
			}
		}
	}
}

func marshal(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func TestResultSchema(t *testing.T) {
	sch := compile(t, "result.json")
	at := time.Date(2026, 5, 6, 7, 8, 9, 123456789, time.FixedZone("", -7*3600))
	success := jobs.Result{
		JobID: "j-1", Op: jobs.OpRevoke, Outcome: jobs.Succeeded, Attempts: 1, Deliveries: 1, StreamSeq: 42,
		EnqueuedAt: at.Add(-time.Second), StartedAt: at, FinishedAt: at.Add(250 * time.Millisecond), DurationMS: 250.5,
		Worker: "w-1", Result: json.RawMessage(`{"object":"session","id":"sess_1","status":"revoked"}`), AlreadyRevoked: true,
	}
	tokenReply := jobs.Result{
		JobID: "j-2", Op: jobs.OpToken, Outcome: jobs.Succeeded, Attempts: 2, Deliveries: 1, FinishedAt: at,
		SecretDelivered: true, Secret: json.RawMessage(`{"object":"token","jwt":"eyJ..."}`),
	}
	failure := jobs.Result{
		JobID: "j-3", Op: jobs.OpGet, Outcome: jobs.Failed, Attempts: 4, Deliveries: 3, FinishedAt: at,
		Error: &jobs.ErrorInfo{Class: jobs.ClassPermanent, Message: "clerk: 404 resource_not_found", HTTPStatus: 404,
			ClerkCode: "resource_not_found", ClerkMessage: "not found", TraceID: "tr", Field: ""},
	}
	invalid := jobs.Result{
		JobID: "seq-7", Op: jobs.OpUnknown, Outcome: jobs.Failed, Deliveries: 1, FinishedAt: at,
		Error: &jobs.ErrorInfo{Class: jobs.ClassInvalid, Message: "invalid revoke job", Field: "/session_id"},
	}
	for name, r := range map[string]jobs.Result{"success": success, "token reply": tokenReply, "failure": failure, "invalid": invalid} {
		if err := sch.Validate(marshal(t, r)); err != nil {
			t.Errorf("%s: a marshalled jobs.Result does not validate: %v", name, err)
		}
	}
	for _, c := range jobs.ErrorClasses() {
		r := failure
		r.Error = &jobs.ErrorInfo{Class: c, Message: "m"}
		if err := sch.Validate(marshal(t, r)); err != nil {
			t.Errorf("class %s: %v", c, err)
		}
	}

	// A failure without its error is refused, and the error says so.
	noErr := failure
	noErr.Error = nil
	err := sch.Validate(marshal(t, noErr))
	if err == nil {
		t.Fatal("result.json accepts a failed result without error")
	}
	if !hasLeaf(err, func(k jsonschema.ErrorKind) bool {
		r, ok := k.(*kind.Required)
		return ok && len(r.Missing) == 1 && r.Missing[0] == "error"
	}) {
		t.Errorf("refusal of a failure without error does not say error is missing: %v", err)
	}

	// Other results it must refuse.
	bad := map[string]func(r *jobs.Result){
		"unknown outcome":   func(r *jobs.Result) { r.Outcome = "maybe" },
		"unknown op":        func(r *jobs.Result) { r.Op = "delete" },
		"no deliveries":     func(r *jobs.Result) { r.Deliveries = 0 },
		"negative attempts": func(r *jobs.Result) { r.Attempts = -1 },
		"negative duration": func(r *jobs.Result) { r.DurationMS = -1 },
		"unknown class":     func(r *jobs.Result) { r.Error = &jobs.ErrorInfo{Class: "transient", Message: "m"} },
		"secret not object": func(r *jobs.Result) { r.Secret = json.RawMessage(`"eyJ"`) },
	}
	for name, mutate := range bad {
		r := success
		mutate(&r)
		if err := sch.Validate(marshal(t, r)); err == nil {
			t.Errorf("%s: result.json accepts it", name)
		}
	}
	// finished_at is a date-time.
	doc := marshal(t, success).(map[string]any)
	doc["finished_at"] = "yesterday"
	if err := sch.Validate(doc); err == nil {
		t.Error("result.json accepts finished_at \"yesterday\"")
	}
	// The members the worker writes in every result, whatever the op and
	// outcome (jobs.Result's fields without omitempty): a reader may rely
	// on them, so a result without one is refused, saying which.
	for _, member := range []string{"job_id", "op", "outcome", "attempts", "deliveries", "finished_at", "duration_ms"} {
		doc := marshal(t, success).(map[string]any)
		delete(doc, member)
		err := sch.Validate(doc)
		if err == nil {
			t.Errorf("result.json accepts a result without %s", member)
			continue
		}
		if !hasLeaf(err, func(k jsonschema.ErrorKind) bool {
			r, ok := k.(*kind.Required)
			return ok && slices.Equal(r.Missing, []string{member})
		}) {
			t.Errorf("refusal of a result without %s does not say it is missing: %v", member, err)
		}
	}
}

func TestProgressSchema(t *testing.T) {
	sch := compile(t, "progress.json")
	p := jobs.Progress{JobID: "j-9", Op: jobs.OpRevokeAll, Outcome: jobs.InProgress, Total: 10, Done: 4, PagesRead: 2,
		Progress: jobs.RevokeAllSummary{UserID: "user_1", Revoked: 3, AlreadyGone: 1, Passes: 1}}
	if err := sch.Validate(marshal(t, p)); err != nil {
		t.Errorf("a marshalled jobs.Progress does not validate: %v", err)
	}
	p.Op = jobs.OpRevoke
	if err := sch.Validate(marshal(t, p)); err == nil {
		t.Error("progress.json accepts a progress update of a revoke job")
	}
}

func hasLeaf(err error, match func(jsonschema.ErrorKind) bool) bool {
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return false
	}
	var walk func(*jsonschema.ValidationError) bool
	walk = func(e *jsonschema.ValidationError) bool {
		if match(e.ErrorKind) {
			return true
		}
		for _, c := range e.Causes {
			if walk(c) {
				return true
			}
		}
		return false
	}
	return walk(ve)
}

// The metaschema check is not vacuous: broken schemas are refused.
func TestMetaschemaRefusesBrokenSchemas(t *testing.T) {
	meta, err := jsonschema.NewCompiler().Compile(draft)
	if err != nil {
		t.Fatal(err)
	}
	for _, src := range []string{
		`{"type":"strin"}`,
		`{"required":"session_id"}`,
		`{"properties":{"a":{"minLength":-1}}}`,
		`{"anyOf":{}}`,
		`{"$defs":{"x":{"pattern":7}}}`,
	} {
		doc, err := jsonschema.UnmarshalJSON(strings.NewReader(src))
		if err != nil {
			t.Fatal(err)
		}
		if err := meta.Validate(doc); err == nil {
			t.Errorf("the 2020-12 metaschema accepts %s", src)
		}
	}
}

func readPackageDoc() (string, error) {
	b, err := os.ReadFile("schemas.go")
	return string(b), err
}

// The package doc lists every schema file.
func TestPackageDocListsEverySchema(t *testing.T) {
	src, err := readPackageDoc()
	if err != nil {
		t.Skip(err)
	}
	for _, f := range files(t) {
		if f == "common.json" {
			continue
		}
		if !strings.Contains(src, f) {
			t.Errorf("the package doc does not list %s", f)
		}
	}
}
