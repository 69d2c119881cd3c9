package flatschema_test

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"reflect"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/clerkjobs/clerkjobs/jobs"
	"github.com/clerkjobs/clerkjobs/jobs/internal/flatschema"
	"github.com/clerkjobs/clerkjobs/schemas"
)

// fixture holds, per op, the fast decoder (built from the embedded
// schemas as jobs builds it), the full validator, and the Go type.
type fixture struct {
	fast map[jobs.Op]*flatschema.Decoder
	full map[jobs.Op]*jsonschema.Schema
	typ  map[jobs.Op]reflect.Type
}

func load(t testing.TB) fixture {
	t.Helper()
	f := fixture{fast: map[jobs.Op]*flatschema.Decoder{}, full: map[jobs.Op]*jsonschema.Schema{}, typ: map[jobs.Op]reflect.Type{}}
	c := jsonschema.NewCompiler()
	files, err := fs.Glob(schemas.FS, "*.json")
	if err != nil {
		t.Fatal(err)
	}
	const base = "https://github.com/clerkjobs/clerkjobs/schemas/"
	docs := map[string]map[string]any{}
	for _, name := range files {
		b, _ := schemas.FS.ReadFile(name)
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.AddResource(base+name, doc); err != nil {
			t.Fatal(err)
		}
		var plain map[string]any
		if err := json.Unmarshal(b, &plain); err != nil {
			t.Fatal(err)
		}
		docs[name] = plain
	}
	defs := map[string]map[string]any{"common.json": docs["common.json"]["$defs"].(map[string]any)}
	for _, o := range jobs.AllOps() {
		s, err := c.Compile(base + jobs.SchemaFile(o))
		if err != nil {
			t.Fatal(err)
		}
		f.full[o] = s
		f.typ[o] = reflect.TypeOf(argsOf[o]).Elem()
		if d, ok := flatschema.New(docs[jobs.SchemaFile(o)], defs, f.typ[o]); ok {
			f.fast[o] = d
		}
	}
	return f
}

var argsOf = map[jobs.Op]jobs.Args{
	jobs.OpList: &jobs.ListArgs{}, jobs.OpCreate: &jobs.CreateArgs{}, jobs.OpGet: &jobs.GetArgs{}, jobs.OpRefresh: &jobs.RefreshArgs{},
	jobs.OpRevoke: &jobs.RevokeArgs{}, jobs.OpToken: &jobs.TokenArgs{}, jobs.OpRevokeAll: &jobs.RevokeAllArgs{},
}

// full is the reference: JSON Schema validation, then encoding/json.
func (f fixture) full1(o jobs.Op, data []byte) (any, bool) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil || f.full[o].Validate(doc) != nil {
		return nil, false
	}
	v := reflect.New(f.typ[o]).Interface()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if dec.Decode(v) != nil {
		return nil, false
	}
	return v, true
}

// check: whatever the fast decoder accepts, the full path accepts, with
// the same value.
func (f fixture) check(t *testing.T, o jobs.Op, data []byte) (fast bool) {
	t.Helper()
	d := f.fast[o]
	if d == nil {
		return false
	}
	got := reflect.New(f.typ[o]).Interface()
	if !d.Decode(data, got) {
		return false
	}
	want, ok := f.full1(o, data)
	if !ok {
		t.Fatalf("%s: fast path accepted %q, which the schema refuses", o, data)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s: %q decoded as %+v, want %+v", o, data, got, want)
	}
	return true
}

func TestFastDecodersExistForTheCommonJobs(t *testing.T) {
	f := load(t)
	for _, o := range []jobs.Op{jobs.OpRevoke, jobs.OpGet, jobs.OpCreate, jobs.OpToken, jobs.OpRevokeAll} {
		if f.fast[o] == nil {
			t.Errorf("no fast decoder for %s", o)
		}
	}
	if f.fast[jobs.OpList] != nil {
		t.Errorf("list's schema (anyOf) is outside the subset, yet has a fast decoder")
	}
}

func TestFastPathAcceptsTypicalBodiesOnly(t *testing.T) {
	f := load(t)
	accept := map[jobs.Op][]string{
		jobs.OpRevoke:    {`{"session_id":"sess_1"}`, ` { "job_id" : "a.b:c@d/e-1" , "session_id":"sess_2abc", "reply_to":"_INBOX.x.y" } ` + "\n"},
		jobs.OpGet:       {`{"session_id":"sess_Z9"}`},
		jobs.OpCreate:    {`{"user_id":"user_1","active_organization_id":"org_2"}`},
		jobs.OpToken:     {`{"session_id":"sess_1","reply_to":"_INBOX.1","template_name":"hasura-1_x"}`},
		jobs.OpRevokeAll: {`{"user_id":"user_1"}`},
	}
	for o, bodies := range accept {
		for _, b := range bodies {
			if !f.check(t, o, []byte(b)) {
				t.Errorf("%s: %s took the full path", o, b)
			}
		}
	}
	long := strings.Repeat("a", 129)
	refuse := map[jobs.Op][]string{
		jobs.OpRevoke: {
			`{}`, `[]`, `"sess_1"`, `null`, ``, `{"session_id":"sess_1"`, `{"session_id":"sess_1"}x`, `{"session_id":"sess_1"}{}`,
			`{"session_id":"user_1"}`, `{"session_id":"sess_"}`, `{"session_id":"sess_1 "}`, `{"session_id":"sess_` + long + `"}`,
			`{"session_id":"sess_1","session_id":"sess_2"}`, `{"session_id":"sess_1","extra":"x"}`, `{"Session_ID":"sess_1"}`,
			`{"session_id":"sess\u005f1"}`, `{"session_id":"sess_\u00e9"}`, "{\"session_id\":\"sess_1\t\"}", `{"session_id":null}`,
			`{"session_id":1}`, `{"session_id":"sess_1",}`, `{,"session_id":"sess_1"}`, `{"job_id":"","session_id":"sess_1"}`,
			`{"job_id":"` + long + `","session_id":"sess_1"}`, `{"job_id":"a b","session_id":"sess_1"}`, `{"reply_to":"a..b","session_id":"sess_1"}`,
			`{"reply_to":"a.*","session_id":"sess_1"}`, `{"job_id":"x"}`, "\xef\xbb\xbf{\"session_id\":\"sess_1\"}",
		},
		jobs.OpToken:     {`{"session_id":"sess_1"}`, `{"session_id":"sess_1","reply_to":"_INBOX.1","expires_in_seconds":60}`},
		jobs.OpRevokeAll: {`{"user_id":"user_1","except_session_ids":["sess_1"]}`},
	}
	for o, bodies := range refuse {
		for _, b := range bodies {
			if f.check(t, o, []byte(b)) {
				t.Errorf("%s: fast path accepted %q", o, b)
			}
		}
	}
}

func FuzzFastPathAgreesWithTheSchema(f *testing.F) {
	for _, s := range []string{`{"session_id":"sess_1"}`, `{"job_id":"j","session_id":"sess_2","reply_to":"_INBOX.a"}`,
		`{"user_id":"user_1"}`, `{"session_id":"sess_1","reply_to":"r","template_name":"t"}`, `{"session_id":"sess_1","x":"y"}`} {
		f.Add(s)
	}
	fx := load(f)
	f.Fuzz(func(t *testing.T, body string) {
		for _, o := range jobs.AllOps() {
			fx.check(t, o, []byte(body))
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	fx := load(b)
	data := []byte(`{"job_id":"bench-123456","session_id":"sess_2abcdefghijklmnopqrstuvwxyz0"}`)
	typ := fx.typ[jobs.OpRevoke]
	b.ReportAllocs()
	for b.Loop() {
		if !fx.fast[jobs.OpRevoke].Decode(data, reflect.New(typ).Interface()) {
			b.Fatal("full path")
		}
	}
}
