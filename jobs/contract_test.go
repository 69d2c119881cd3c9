package jobs

import (
	"encoding/json"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/schemas"
)

// fullArgs returns, for every op, an Args value with every field set to a
// valid non-zero value. TestFullArgsAreFull keeps it honest: a field added
// to a type must be added here too.
func fullArgs() map[Op]Args {
	c := Common{JobID: "job-42:a@b/c.d", ReplyTo: "_INBOX.abc.def"}
	return map[Op]Args{
		OpList: &ListArgs{Common: c, UserID: "user_1", ClientID: "client_2", Status: clerkapi.StatusActive,
			Limit: 500, Offset: 7, Paginated: true},
		OpCreate: &CreateArgs{Common: c, UserID: "user_1", ActiveOrganizationID: "org_9"},
		OpGet:    &GetArgs{Common: c, SessionID: "sess_1"},
		OpRefresh: &RefreshArgs{Common: c, SessionID: "sess_1", ExpiredToken: "eyJhbGciOi.x.y", RefreshToken: "rt_abc",
			RequestOrigin: "https://app.example.com",
			RequestHeaders: map[string]any{
				"User-Agent": []any{"Mozilla/5.0"},
				"Cookie":     "__client_uat=1",
				"X-Nested":   map[string]any{"a": []any{"b", "c"}, "t": true},
			},
			Format: "cookie", RequestOriginatingIP: "2001:db8::1"},
		OpRevoke:    &RevokeArgs{Common: c, SessionID: "sess_1"},
		OpToken:     &TokenArgs{Common: c, SessionID: "sess_1", TemplateName: "hasura_v2-x", ExpiresInSeconds: 3600},
		OpRevokeAll: &RevokeAllArgs{Common: c, UserID: "user_1", ExceptSessionIDs: []string{"sess_a", "sess_b"}, LockUser: true},
	}
}

func TestFullArgsAreFull(t *testing.T) {
	full := fullArgs()
	for _, o := range AllOps() {
		a, ok := full[o]
		if !ok {
			t.Errorf("fullArgs has no %s job", o)
			continue
		}
		if a.Op() != o {
			t.Errorf("fullArgs[%s].Op() = %s", o, a.Op())
		}
		if reflect.TypeOf(a) != reflect.TypeOf(newArgs(o)) {
			t.Errorf("fullArgs[%s] is %T, newArgs gives %T", o, a, newArgs(o))
		}
		var walk func(v reflect.Value, path string)
		walk = func(v reflect.Value, path string) {
			for i := 0; i < v.NumField(); i++ {
				f := v.Type().Field(i)
				fv := v.Field(i)
				if f.Anonymous && fv.Kind() == reflect.Struct {
					walk(fv, path+f.Name+".")
					continue
				}
				if fv.IsZero() {
					t.Errorf("fullArgs[%s].%s%s is zero: set it so the round trip covers it", o, path, f.Name)
				}
			}
		}
		walk(reflect.ValueOf(a).Elem(), "")
	}
}

// Every fully populated job survives Encode and Decode unchanged, and is
// valid: the Go type can express nothing the schema refuses.
func TestArgsRoundTrip(t *testing.T) {
	for o, a := range fullArgs() {
		t.Run(string(o), func(t *testing.T) {
			b, err := Encode(a)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			got, err := Decode(o, b)
			if err != nil {
				t.Fatalf("Decode(Encode(full %s job)): %v\nbody: %s", o, err, b)
			}
			if !reflect.DeepEqual(got, a) {
				t.Errorf("round trip changed the job\n got  %#v\n want %#v\n body %s", got, a, b)
			}
			if err := Validate(a); err != nil {
				t.Errorf("Validate(full %s job): %v", o, err)
			}
		})
	}
}

// The zero value of each job encodes only what the Go type cannot omit:
// fields that are not omitempty must be required by the schema, else a
// publisher leaving them out in Go sends "" where the schema wants the
// field absent.
func TestRequiredFieldsAreNotOmitted(t *testing.T) {
	for _, o := range AllOps() {
		sch := loadSchema(t, SchemaFile(o))
		required := map[string]bool{}
		for _, r := range sch.Required {
			required[r] = true
		}
		for _, f := range jsonFields(reflect.TypeOf(newArgs(o)).Elem()) {
			if !f.omitempty && !required[f.name] {
				t.Errorf("%s: Go field %s is always encoded but the schema does not require it", o, f.name)
			}
		}
		for r := range required {
			if !slices.ContainsFunc(jsonFields(reflect.TypeOf(newArgs(o)).Elem()), func(f jsonField) bool { return f.name == r }) {
				t.Errorf("%s: schema requires %s, which the Go type lacks", o, r)
			}
		}
	}
}

type schemaDoc struct {
	Properties map[string]json.RawMessage `json:"properties"`
	Required   []string                   `json:"required"`
}

func loadSchema(t *testing.T, file string) schemaDoc {
	t.Helper()
	b, err := schemas.FS.ReadFile(file)
	if err != nil {
		t.Fatalf("read schemas/%s: %v", file, err)
	}
	var d schemaDoc
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("schemas/%s: %v", file, err)
	}
	return d
}

type jsonField struct {
	name      string
	omitempty bool
}

// jsonFields lists the JSON names of a struct's fields as encoding/json
// sees them, embedded structs (Common) included.
func jsonFields(t reflect.Type) []jsonField {
	var out []jsonField
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			// encoding/json promotes the fields of an embedded struct,
			// exported or not.
			out = append(out, jsonFields(f.Type)...)
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		omit := slices.Contains(strings.Split(opts, ","), "omitempty") || slices.Contains(strings.Split(opts, ","), "omitzero")
		out = append(out, jsonField{name, omit})
	}
	return out
}

func names(fs []jsonField) []string {
	var s []string
	for _, f := range fs {
		s = append(s, f.name)
	}
	sort.Strings(s)
	return s
}

func keys(m map[string]json.RawMessage) []string {
	var s []string
	for k := range m {
		s = append(s, k)
	}
	sort.Strings(s)
	return s
}

// The schema's properties are exactly the JSON fields of the Go type: a
// field added to one and not the other fails here.
func TestSchemaPropertiesMatchGoFields(t *testing.T) {
	tests := []struct {
		file string
		typ  reflect.Type
		sub  string // a nested object's property, for result.json's error
	}{
		{SchemaFile(OpList), reflect.TypeFor[ListArgs](), ""},
		{SchemaFile(OpCreate), reflect.TypeFor[CreateArgs](), ""},
		{SchemaFile(OpGet), reflect.TypeFor[GetArgs](), ""},
		{SchemaFile(OpRefresh), reflect.TypeFor[RefreshArgs](), ""},
		{SchemaFile(OpRevoke), reflect.TypeFor[RevokeArgs](), ""},
		{SchemaFile(OpToken), reflect.TypeFor[TokenArgs](), ""},
		{SchemaFile(OpRevokeAll), reflect.TypeFor[RevokeAllArgs](), ""},
		{"result.json", reflect.TypeFor[Result](), ""},
		{"result.json", reflect.TypeFor[ErrorInfo](), "error"},
	}
	seen := map[Op]bool{}
	for _, tt := range tests {
		if o := Op(strings.TrimSuffix(tt.file, ".json")); o.Valid() {
			seen[o] = true
			if got := reflect.TypeOf(newArgs(o)).Elem(); got != tt.typ {
				t.Errorf("newArgs(%s) is %v, the table says %v", o, got, tt.typ)
			}
		}
		sch := loadSchema(t, tt.file)
		if tt.sub != "" {
			var nested schemaDoc
			if err := json.Unmarshal(sch.Properties[tt.sub], &nested); err != nil {
				t.Fatalf("%s: property %s: %v", tt.file, tt.sub, err)
			}
			sch = nested
		}
		want, got := keys(sch.Properties), names(jsonFields(tt.typ))
		if len(want) == 0 {
			t.Errorf("%s %s: no properties", tt.file, tt.sub)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s%s vs %v:\n schema properties %v\n Go JSON fields    %v", tt.file, tt.sub, tt.typ, want, got)
		}
	}
	for _, o := range AllOps() {
		if !seen[o] {
			t.Errorf("op %s has no row", o)
		}
	}
}

func TestJsonFieldsHelper(t *testing.T) {
	type inner struct {
		A string `json:"a,omitempty"`
	}
	type outer struct {
		inner
		B string `json:"b"`
		C string `json:"-"`
		D int
		e int
	}
	got := jsonFields(reflect.TypeFor[outer]())
	want := []jsonField{{"a", true}, {"b", false}, {"D", false}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("jsonFields = %v, want %v", got, want)
	}
	_ = outer{}.e
}

// Enumerations in the schemas match the Go constants.
func TestSchemaEnumsMatchGo(t *testing.T) {
	var res struct {
		Properties struct {
			Op      struct{ Enum []string } `json:"op"`
			Outcome struct{ Enum []string } `json:"outcome"`
			Error   struct {
				Properties struct {
					Class struct{ Enum []string } `json:"class"`
				} `json:"properties"`
			} `json:"error"`
		} `json:"properties"`
	}
	unmarshalSchema(t, "result.json", &res)
	var ops []string
	for _, o := range append(AllOps(), OpUnknown) {
		ops = append(ops, string(o))
	}
	if !sameSet(res.Properties.Op.Enum, ops) {
		t.Errorf("result.json op enum %v, Go ops %v", res.Properties.Op.Enum, ops)
	}
	if !sameSet(res.Properties.Outcome.Enum, []string{string(Succeeded), string(Failed)}) {
		t.Errorf("result.json outcome enum %v", res.Properties.Outcome.Enum)
	}
	var classes []string
	for _, c := range ErrorClasses() {
		classes = append(classes, string(c))
	}
	if !sameSet(res.Properties.Error.Properties.Class.Enum, classes) {
		t.Errorf("result.json error class enum %v, Go classes %v", res.Properties.Error.Properties.Class.Enum, classes)
	}

	var list struct {
		Properties struct {
			Status struct{ Enum []string } `json:"status"`
		} `json:"properties"`
	}
	unmarshalSchema(t, "list.json", &list)
	statuses := []string{}
	for _, s := range []clerkapi.SessionStatus{clerkapi.StatusActive, clerkapi.StatusRevoked, clerkapi.StatusEnded,
		clerkapi.StatusExpired, clerkapi.StatusRemoved, clerkapi.StatusAbandoned, clerkapi.StatusReplaced} {
		statuses = append(statuses, string(s)) // every status but pending, which Clerk's list refuses
	}
	if !sameSet(list.Properties.Status.Enum, statuses) {
		t.Errorf("list.json status enum %v, want %v", list.Properties.Status.Enum, statuses)
	}
}

func unmarshalSchema(t *testing.T, file string, v any) {
	t.Helper()
	b, err := schemas.FS.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	sort.Strings(a)
	sort.Strings(b)
	return len(a) > 0 && slices.Equal(a, b)
}

func TestOpsAndSchemaFiles(t *testing.T) {
	if n := len(AllOps()); n != 7 {
		t.Errorf("AllOps has %d ops, want 7", n)
	}
	seen := map[Op]bool{}
	for _, o := range AllOps() {
		if seen[o] {
			t.Errorf("op %s listed twice", o)
		}
		seen[o] = true
		if !o.Valid() {
			t.Errorf("%s.Valid() = false", o)
		}
		if _, err := schemas.FS.ReadFile(SchemaFile(o)); err != nil {
			t.Errorf("op %s: schema %s: %v", o, SchemaFile(o), err)
		}
		if a := newArgs(o); a == nil || a.Op() != o {
			t.Errorf("newArgs(%s) = %#v", o, a)
		}
		if got, want := o.Secret(), o == OpToken || o == OpRefresh; got != want {
			t.Errorf("%s.Secret() = %v, want %v", o, got, want)
		}
	}
	for _, o := range []Op{OpUnknown, "", "REVOKE", "token.request", "revoke-all"} {
		if o.Valid() {
			t.Errorf("%q.Valid() = true", o)
		}
		if newArgs(o) != nil {
			t.Errorf("newArgs(%q) != nil", o)
		}
	}
	// The schemas that require reply_to are those of the ops whose answer
	// is a secret.
	for _, o := range AllOps() {
		needs := slices.Contains(loadSchema(t, SchemaFile(o)).Required, "reply_to")
		if needs != o.Secret() {
			t.Errorf("%s: schema requires reply_to = %v, Secret() = %v", o, needs, o.Secret())
		}
	}
}
