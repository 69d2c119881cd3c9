package jobs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"math/big"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode"

	argsjson "github.com/go-json-experiment/json/v1"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/clerkjobs/clerkjobs/schemas"
)

// MaxJobBytes is the largest job body accepted.
const MaxJobBytes = 64 << 10

// InvalidError says why a message is not a valid job. The worker
// dead-letters such messages at once with class "invalid".
type InvalidError struct {
	// Op is the job type the subject names, or OpUnknown.
	Op Op
	// Field is the JSON pointer of the offending value ("/session_id"), or
	// "" when the message as a whole is wrong.
	Field string
	// Reason says what is wrong, for a person.
	Reason string
}

func (e *InvalidError) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("invalid %s job: %s: %s", e.Op, e.Field, e.Reason)
	}
	return fmt.Sprintf("invalid %s job: %s", e.Op, e.Reason)
}

// ErrInvalid matches every *InvalidError with errors.Is.
var ErrInvalid = errors.New("invalid job")

// Is makes errors.Is(err, ErrInvalid) true.
func (e *InvalidError) Is(target error) bool { return target == ErrInvalid }

// Decode checks a job body against the schema of op and returns its typed
// arguments. Any failure is an *InvalidError naming the field.
func Decode(o Op, data []byte) (Args, error) {
	if !o.Valid() {
		return nil, &InvalidError{Op: OpUnknown, Reason: "no job type is published on this subject"}
	}
	sch, err := compiled()
	if err != nil {
		return nil, err
	}
	doc, err := readDoc(o, data)
	if err != nil {
		return nil, err
	}
	// A job id shaped like a secret is refused before the schema is asked,
	// so that it is this error, on /job_id, whatever else is wrong: the
	// worker then records the job as seq-<n>, never under that id.
	obj, _ := doc.(map[string]any)
	if id, ok := obj["job_id"].(string); ok && secretShaped(id) {
		return nil, &InvalidError{Op: o, Field: "/job_id", Reason: CheckJobID(id).Error()}
	}
	if field, n := hugeNumber(doc); n != "" {
		return nil, &InvalidError{Op: o, Field: field, Reason: fmt.Sprintf("number %.40s is out of range", n)}
	}
	if err := sch[o].Validate(doc); err != nil {
		return nil, schemaError(o, err)
	}
	a := newArgs(o)
	if err := decodeArgs(data, a); err != nil {
		// The schema accepted it: a whole number written as a JSON Schema
		// integer may be (10.0, 1e2), which Go reads into no int, or one
		// beyond int64. The first is read as the schema says; the second
		// is named, without its digits, which may fill the whole body.
		if a, err = decodeWhole(o, doc); err != nil {
			return nil, fitError(o, err)
		}
	}
	// The schema's pattern and CheckJobID say the same but for the secret
	// shape; this keeps every id Decode hands out usable even under a
	// schema edited to allow more.
	if id := a.CommonFields().JobID; id != "" {
		if err := CheckJobID(id); err != nil {
			return nil, &InvalidError{Op: o, Field: "/job_id", Reason: err.Error()}
		}
	}
	return a, nil
}

// BodyJobID is the job_id of a body Decode refused for another reason,
// so that the job is recorded where its publisher looks for it (by job id).
// It is "" when the body is not read as Decode reads it (too big, not JSON,
// a member name given twice at any depth: which job_id would count is then
// unclear), or its job_id is not a string or not usable (CheckJobID).
func BodyJobID(data []byte) string {
	doc, err := readDoc(OpUnknown, data)
	if err != nil {
		return ""
	}
	obj, _ := doc.(map[string]any)
	id, _ := obj["job_id"].(string)
	if id == "" || CheckJobID(id) != nil {
		return ""
	}
	return id
}

// decodeArgs reads a body the schema accepted into a's fields, with
// encoding/json's rules. Most job types are read by the implementation
// Go's encoding/json becomes under GOEXPERIMENT=jsonv2
// (go-json-experiment/json/v1): 0.5 µs and 1 allocation for a revoke,
// against 2.0 µs and 12. A refresh job's request_headers holds any JSON,
// whose numbers must stay as written (json.Number, which only
// encoding/json's own reader makes), so refresh jobs are read by it.
func decodeArgs(data []byte, a Args) error {
	if _, ok := a.(*RefreshArgs); !ok {
		return argsjson.Unmarshal(data, a)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	return dec.Decode(a)
}

// decodeWhole reads a body the schema accepted but decodeArgs did not,
// with each top-level number that is a whole number written with a
// fraction or an exponent (10.0, 1e2: integers to JSON Schema) written as
// the integer it is. The job types' numbers are all top-level; numbers
// deeper (a refresh's request_headers) stay as written.
func decodeWhole(o Op, doc any) (Args, error) {
	obj, ok := doc.(map[string]any)
	if !ok {
		return nil, errors.New("body is not an object")
	}
	whole := make(map[string]any, len(obj))
	for k, v := range obj {
		if n, ok := v.(json.Number); ok && strings.ContainsAny(string(n), ".eE") {
			// hugeNumber bounded the exponent: this expands to at most
			// about 400 digits.
			if r, ok := new(big.Rat).SetString(string(n)); ok && r.IsInt() {
				v = json.Number(r.Num().String())
			}
		}
		whole[k] = v
	}
	body, err := json.Marshal(whole)
	if err != nil {
		return nil, err
	}
	a := newArgs(o)
	if err := decodeArgs(body, a); err != nil {
		return nil, err
	}
	return a, nil
}

// fitError is the *InvalidError of a body the schema accepted and Go's
// types do not: the field, and never the value, which the publisher chose
// and may be 60,000 digits long.
func fitError(o Op, err error) error {
	var te *json.UnmarshalTypeError
	var te1 *argsjson.UnmarshalTypeError
	var field string
	var typ reflect.Type
	switch {
	case errors.As(err, &te):
		field, typ = te.Field, te.Type
	case errors.As(err, &te1):
		field, typ = te1.Field, te1.Type
	}
	if field == "" {
		return &InvalidError{Op: o, Reason: "body does not fit the job type"}
	}
	ptr := ""
	for _, f := range strings.Split(field, ".") {
		ptr += "/" + fieldName(f)
	}
	reason := "value does not fit the job type"
	if typ != nil && (typ.Kind() >= reflect.Int && typ.Kind() <= reflect.Uint64) {
		reason = "number is out of range: send a whole number from the range the field's schema allows"
	}
	return &InvalidError{Op: o, Field: ptr, Reason: reason}
}

// hugeNumber finds a number with an exponent beyond any float64's. The
// validator compares numbers exactly (math/big), and 1e999999 takes tens of
// milliseconds to expand: a body of such numbers in except_session_ids
// (uniqueItems) would keep a worker busy for minutes. The field's pointer
// is built only for the number found, not for every value looked at.
func hugeNumber(v any) (field, num string) {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if f, n := hugeNumber(e); n != "" {
				return "/" + k + f, n
			}
		}
	case []any:
		for i, e := range v {
			if f, n := hugeNumber(e); n != "" {
				return "/" + strconv.Itoa(i) + f, n
			}
		}
	case json.Number:
		if i := strings.IndexAny(string(v), "eE"); i >= 0 {
			if exp, err := strconv.Atoi(string(v[i+1:])); err != nil || exp > 400 || exp < -400 {
				return "", string(v)
			}
		}
	}
	return "", ""
}

// Validate checks a job (as a publisher would send it) against its schema.
func Validate(a Args) error {
	b, err := Encode(a)
	if err != nil {
		return fmt.Errorf("encode %s job: %w", a.Op(), err)
	}
	_, err = Decode(a.Op(), b)
	return err
}

// schemaError turns the validator's error tree into one line: the deepest
// leaf names the field and the reason.
func schemaError(o Op, err error) error {
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return &InvalidError{Op: o, Reason: err.Error()}
	}
	leaf := pickLeaf(ve)
	field := ""
	for _, tok := range leaf.InstanceLocation {
		field += "/" + fieldName(tok)
	}
	reason := leaf.ErrorKind.LocalizedString(english)
	switch k := leaf.ErrorKind.(type) {
	case *kind.Pattern:
		// The validator's message repeats the value whole; a token pasted
		// into the wrong field would then reach logs and dead-letter
		// headers. Short values (ids) are worth showing; long ones are not.
		// A refresh job's value is never shown: beside its tokens, a value
		// that is not what its field holds may well be one of them (a
		// refresh token and the session id swapped).
		shown := 64
		if o == OpRefresh {
			shown = 0
		}
		reason = quoted(k.Got, shown, "a value of %d characters") + " does not match the pattern " + k.Want
	case *kind.Required:
		if len(k.Missing) == 1 {
			field, reason = field+"/"+k.Missing[0], "required field is missing"
		}
	case *kind.AdditionalProperties:
		// The validator's message lists every name, as written: the
		// publisher's, any number of them, of any length, secret-shaped or
		// not. One is named, the same at every delivery and one that can
		// be shown if any can; the rest are counted.
		if len(k.Properties) > 0 {
			names := slices.Sorted(slices.Values(k.Properties))
			name := names[0]
			if i := slices.IndexFunc(names, func(n string) bool { return fieldName(n) == n }); i >= 0 {
				name = names[i]
			}
			field, reason = field+"/"+fieldName(name), "unknown field (check the spelling against schemas/"+SchemaFile(o)+")"
			if n := len(k.Properties) - 1; n > 0 {
				reason += fmt.Sprintf(", and %d more unknown field(s)", n)
			}
		}
	case *kind.AnyOf:
		// Only when every alternative is a missing field (pickLeaf).
		reason = strings.Join(requiredAlternatives(leaf), " or ") + " is required"
	case *kind.Enum:
		// The validator writes a null choice as Go's <nil>.
		choices := make([]string, len(k.Want))
		for i, w := range k.Want {
			b, _ := json.Marshal(w) // values from the schema: always encodable
			choices[i] = string(b)
		}
		reason = "value must be one of " + strings.Join(choices, ", ")
	case *kind.Minimum:
		reason = "minimum: got " + number(k.Got) + ", want " + number(k.Want)
	case *kind.Maximum:
		reason = "maximum: got " + number(k.Got) + ", want " + number(k.Want)
	}
	return &InvalidError{Op: o, Field: field, Reason: reason}
}

// fieldName is a member name from the body as an error names it: the
// publisher chose it, so one shaped like a secret (a URL with its password
// too), long, or holding a control character is described rather than
// repeated; so is one naming a refresh job's secret field as a JSON member
// or a form's name (a job read as a form by a body parser: its token,
// shaped like nothing, sits in the name). A plain refresh_token is named:
// it holds no value.
func fieldName(s string) string {
	if len(s) > 64 || secretShaped(s) || strings.ContainsFunc(s, unicode.IsControl) || quotesRefreshSecret(s) {
		return fmt.Sprintf("(a name of %d characters)", len(s))
	}
	return s
}

// requiredAlternatives returns the fields an anyOf asks for when each of
// its alternatives failed only for a missing field (list.json: user_id or
// client_id), else nil.
func requiredAlternatives(e *jsonschema.ValidationError) []string {
	if _, ok := e.ErrorKind.(*kind.AnyOf); !ok || len(e.Causes) == 0 {
		return nil
	}
	var alts []string
	for _, c := range e.Causes {
		r, ok := c.ErrorKind.(*kind.Required)
		if !ok || len(c.Causes) > 0 {
			return nil
		}
		alts = append(alts, strings.Join(r.Missing, " and "))
	}
	return alts
}

// number prints a bound as a person writes it: 315360001, not the
// printer's 3.15360001×10⁰⁸.
func number(r *big.Rat) string {
	if r.IsInt() && r.Num().IsInt64() {
		return r.Num().String()
	}
	f, _ := r.Float64()
	if math.IsInf(f, 0) {
		return "a number beyond ±1e308" // not +Inf: it was finite as sent
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// pickLeaf chooses the error to report among the validator's leaves: an
// unknown field first (usually a typo, which also makes the intended field
// look missing), else the first leaf.
func pickLeaf(ve *jsonschema.ValidationError) *jsonschema.ValidationError {
	var first *jsonschema.ValidationError
	var walk func(*jsonschema.ValidationError) *jsonschema.ValidationError
	walk = func(e *jsonschema.ValidationError) *jsonschema.ValidationError {
		if requiredAlternatives(e) != nil {
			// Name every alternative, not only the first.
			if first == nil {
				first = e
			}
			return nil
		}
		if len(e.Causes) == 0 {
			if first == nil {
				first = e
			}
			if _, ok := e.ErrorKind.(*kind.AdditionalProperties); ok {
				return e
			}
			return nil
		}
		for _, c := range e.Causes {
			if found := walk(c); found != nil {
				return found
			}
		}
		return nil
	}
	if found := walk(ve); found != nil {
		return found
	}
	return first
}

var english = message.NewPrinter(language.English)

// compiled compiles every job schema once per process. The schemas are
// embedded and fixed, so this is immutable state, not configuration.
var compiled = sync.OnceValues(func() (map[Op]*jsonschema.Schema, error) {
	c := jsonschema.NewCompiler()
	files, err := fs.Glob(schemas.FS, "*.json")
	if err != nil {
		return nil, err
	}
	const base = "https://github.com/clerkjobs/clerkjobs/schemas/"
	for _, f := range files {
		b, err := schemas.FS.ReadFile(f)
		if err != nil {
			return nil, err
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("schema %s: %w", f, err)
		}
		if err := c.AddResource(base+f, doc); err != nil {
			return nil, fmt.Errorf("schema %s: %w", f, err)
		}
	}
	out := make(map[Op]*jsonschema.Schema)
	for _, o := range AllOps() {
		s, err := c.Compile(base + SchemaFile(o))
		if err != nil {
			return nil, fmt.Errorf("compile schema %s: %w", SchemaFile(o), err)
		}
		out[o] = s
	}
	return out, nil
})

// SchemaFile is the file in schemas/ that describes jobs of type o.
func SchemaFile(o Op) string { return string(o) + ".json" }
