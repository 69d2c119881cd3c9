// Package flatschema decodes the common job bodies — flat JSON objects of
// plain ASCII strings — without a general JSON Schema validator, and
// answers "don't know" for everything else.
//
// A Decoder is derived from a job's JSON Schema document itself (the
// schemas stay the source of truth). It understands a small subset: an
// object with additionalProperties false, required properties, and string
// properties constrained by minLength, maxLength and pattern (inline or by
// $ref to a shared definition). A schema using anything else gets no
// Decoder. Decode then accepts a body only if it is, lexically, the
// simplest JSON: one object, string values without escapes or non-ASCII
// bytes, no duplicate keys, no property outside the subset. Whatever it
// accepts, the full path (JSON Schema validation, then encoding/json)
// accepts with the same result; anything it does not accept, it leaves to
// the full path, which also writes every error message.
package flatschema

import (
	"reflect"
	"regexp"
	"strings"
)

// prop is a string property Decode can check.
type prop struct {
	name     string
	min, max int // max < 0: no maximum
	re       *regexp.Regexp
	field    []int // index path of the struct field it decodes into
	required bool
}

// Decoder decodes bodies of one schema into one struct type.
type Decoder struct {
	props    []prop // in schema order; few, so a slice beats a map
	required int
	typ      reflect.Type
	// opaque lists properties the schema allows that Decode does not
	// check (say, an integer): a body holding one goes to the full path.
	opaque map[string]bool
}

var topKeywords = map[string]bool{"$schema": true, "$id": true, "title": true, "description": true, "examples": true,
	"$comment": true, "type": true, "properties": true, "required": true, "additionalProperties": true}

var propKeywords = map[string]bool{"description": true, "title": true, "examples": true, "$comment": true,
	"type": true, "minLength": true, "maxLength": true, "pattern": true}

// New derives a Decoder from a schema document (as decoded by
// encoding/json into any), resolving "$ref": "<file>#/$defs/<name>"
// through defs (file name → its $defs), for bodies decoded into typ (a
// struct type). ok is false when the schema or the type is outside the
// subset.
func New(schema map[string]any, defs map[string]map[string]any, typ reflect.Type) (d *Decoder, ok bool) {
	if typ.Kind() != reflect.Struct {
		return nil, false
	}
	for k := range schema {
		if !topKeywords[k] {
			return nil, false
		}
	}
	if schema["type"] != "object" || schema["additionalProperties"] != false {
		return nil, false
	}
	props, _ := schema["properties"].(map[string]any)
	if props == nil {
		return nil, false
	}
	fields := jsonFields(typ)
	d = &Decoder{typ: typ, opaque: map[string]bool{}}
	var required []string
	if r, present := schema["required"]; present {
		list, isList := r.([]any)
		if !isList {
			return nil, false
		}
		for _, x := range list {
			s, isStr := x.(string)
			if !isStr {
				return nil, false
			}
			required = append(required, s)
		}
	}
	for name, raw := range props {
		p, isObj := raw.(map[string]any)
		if !isObj {
			return nil, false
		}
		if ref, isRef := p["$ref"].(string); isRef {
			if len(p) != 1 {
				return nil, false // $ref beside other keywords: outside the subset
			}
			file, def, found := strings.Cut(ref, "#/$defs/")
			if !found || defs[file] == nil {
				return nil, false
			}
			if p, isObj = defs[file][def].(map[string]any); !isObj {
				return nil, false
			}
		}
		sp, simple := stringProp(name, p)
		idx, hasField := fields[name]
		if !simple || !hasField || !isStringField(typ, idx) {
			d.opaque[name] = true
			continue
		}
		sp.field = idx
		for _, r := range required {
			if r == name {
				sp.required = true
				d.required++
			}
		}
		d.props = append(d.props, sp)
	}
	for _, r := range required {
		if _, known := props[r]; !known || d.opaque[r] {
			return nil, false // a required property Decode cannot check
		}
	}
	return d, true
}

// stringProp reads a property schema made only of type string, minLength,
// maxLength and pattern.
func stringProp(name string, p map[string]any) (prop, bool) {
	sp := prop{name: name, max: -1}
	for k := range p {
		if !propKeywords[k] {
			return sp, false
		}
	}
	if p["type"] != "string" {
		return sp, false
	}
	if v, present := p["minLength"]; present {
		n, ok := count(v)
		if !ok {
			return sp, false
		}
		sp.min = n
	}
	if v, present := p["maxLength"]; present {
		n, ok := count(v)
		if !ok {
			return sp, false
		}
		sp.max = n
	}
	if v, present := p["pattern"]; present {
		s, ok := v.(string)
		if !ok {
			return sp, false
		}
		re, err := regexp.Compile(s) // the validator's engine: Go's regexp
		if err != nil {
			return sp, false
		}
		sp.re = re
	}
	return sp, true
}

// count reads a non-negative integer keyword value (float64 or
// json.Number-like via its string form).
func count(v any) (int, bool) {
	switch n := v.(type) {
	case float64:
		if n < 0 || n != float64(int(n)) {
			return 0, false
		}
		return int(n), true
	}
	return 0, false
}

// jsonFields maps the JSON names of typ's fields (embedded structs
// flattened, as encoding/json does) to their index paths. A name that
// appears twice is left out: encoding/json's precedence rules are not
// replicated here.
func jsonFields(typ reflect.Type) map[string][]int {
	out := map[string][]int{}
	dup := map[string]bool{}
	var walk func(t reflect.Type, prefix []int)
	walk = func(t reflect.Type, prefix []int) {
		for i := range t.NumField() {
			f := t.Field(i)
			idx := append(append([]int{}, prefix...), i)
			tag := f.Tag.Get("json")
			if f.Anonymous && tag == "" && f.Type.Kind() == reflect.Struct {
				walk(f.Type, idx)
				continue
			}
			if !f.IsExported() || tag == "-" {
				continue
			}
			name, _, _ := strings.Cut(tag, ",")
			if name == "" {
				name = f.Name
			}
			if _, seen := out[name]; seen {
				dup[name] = true
			}
			out[name] = idx
		}
	}
	walk(typ, nil)
	for n := range dup {
		delete(out, n)
	}
	return out
}

func isStringField(typ reflect.Type, idx []int) bool {
	f := typ.FieldByIndex(idx)
	return f.Type.Kind() == reflect.String && !strings.Contains(f.Tag.Get("json"), ",string")
}

// maxProps bounds the properties one body may hold on the fast path.
const maxProps = 16

// Decode decodes data into dst (a pointer to the Decoder's struct type,
// zero-valued) and reports true if data is certainly valid; on false, dst
// may be partly written and the caller must use the full path.
func (d *Decoder) Decode(data []byte, dst any) bool {
	v := reflect.ValueOf(dst)
	if v.Kind() != reflect.Pointer || v.Type().Elem() != d.typ {
		return false
	}
	var seen [maxProps]*prop
	n, required := 0, 0
	i := skipWS(data, 0)
	if i >= len(data) || data[i] != '{' {
		return false
	}
	i = skipWS(data, i+1)
	if i < len(data) && data[i] == '}' {
		return false // {}: let the full path name what is missing
	}
	for {
		key, next, ok := plainString(data, i)
		if !ok {
			return false
		}
		i = skipWS(data, next)
		if i >= len(data) || data[i] != ':' {
			return false
		}
		val, next, ok := plainString(data, skipWS(data, i+1))
		if !ok {
			return false // not a plain string (a number, an escape, ...)
		}
		p := d.prop(key)
		if p == nil || n == maxProps {
			return false // unknown, opaque or too many properties
		}
		for _, s := range seen[:n] {
			if s == p {
				return false // a duplicate key
			}
		}
		seen[n] = p
		n++
		if len(val) < p.min || (p.max >= 0 && len(val) > p.max) || (p.re != nil && !p.re.Match(val)) {
			return false
		}
		if p.required {
			required++
		}
		v.Elem().FieldByIndex(p.field).SetString(string(val))
		i = skipWS(data, next)
		if i >= len(data) {
			return false
		}
		if data[i] == '}' {
			break
		}
		if data[i] != ',' {
			return false
		}
		i = skipWS(data, i+1)
	}
	if skipWS(data, i+1) != len(data) {
		return false // something after the object
	}
	return required == d.required
}

func (d *Decoder) prop(key []byte) *prop {
	for i := range d.props {
		if d.props[i].name == string(key) {
			return &d.props[i]
		}
	}
	return nil
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// plainString reads a JSON string at b[i] made only of printable ASCII
// without escapes: its bytes are then its value, and its length its
// length in characters.
func plainString(b []byte, i int) (s []byte, next int, ok bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, i, false
	}
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return b[i+1 : j], j + 1, true
		case c == '\\' || c < 0x20 || c >= 0x7f:
			return nil, j, false
		}
	}
	return nil, len(b), false
}
