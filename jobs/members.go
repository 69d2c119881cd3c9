package jobs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// A JSON object may name a member twice ({"session_id":"eyJ…",
// "session_id":"sess_1"}). encoding/json keeps the last value, other readers
// the first, and a map keeps one: whatever reads a body through a map never
// sees the others. This file reads JSON keeping every member of every
// object, in order, so that Decode can refuse such a body and Redact can
// judge every value it holds.

// readDoc reads a job body as the JSON Schema validator reads it: objects
// as maps, numbers as json.Number. A body over MaxJobBytes, not JSON, or
// giving a member name twice in one object (at any depth), is an
// *InvalidError.
//
// A name given twice is refused because encoding/json (and so the
// handlers) would take the last value, other readers the first, and the
// schema sees one of them: the job would not say one thing. Only the name
// is shown, and only if fieldName deems it safe: either value may be a
// secret.
//
// Nearly every body is strict JSON (RFC 7493: valid UTF-8, each name once
// per object), which jsontext tells in one pass that builds nothing; only
// the others are read member by member first, to say what is wrong.
func readDoc(o Op, data []byte) (any, error) {
	if len(data) > MaxJobBytes {
		return nil, &InvalidError{Op: o, Reason: fmt.Sprintf("body is %d bytes, more than %d", len(data), MaxJobBytes)}
	}
	if !jsontext.Value(data).IsValid() {
		if !json.Valid(data) {
			// The validator's reader says what is wrong, as it always has.
			_, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
			return nil, &InvalidError{Op: o, Reason: "body is not JSON: " + err.Error()}
		}
		members, err := parseMembers(data)
		if err != nil {
			return nil, &InvalidError{Op: o, Reason: "body is not JSON: " + err.Error()}
		}
		if parent, name, ok := firstDuplicate(members); ok {
			return nil, &InvalidError{Op: o, Field: parent + "/" + fieldName(name),
				Reason: "member given more than once: readers disagree on which value counts; send each member once"}
		}
	}
	var doc any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return nil, &InvalidError{Op: o, Reason: "body is not JSON: " + err.Error()}
	}
	return doc, nil
}

// CheckJSON reports what Decode reports of a body before its schema is
// asked: too big, not JSON, or a member name given twice in one object (an
// *InvalidError). It is for code that reads a body into a map to change it
// (set its job id or reply_to) before Decode sees it: the map keeps one
// value of a name given twice, and Decode could no longer refuse it.
func CheckJSON(o Op, data []byte) error {
	_, err := readDoc(o, data)
	return err
}

// member is one name and value of a JSON object, as written.
type member struct {
	name  string
	value any
}

// object is a JSON object as written: every member in order, a name given
// twice kept twice. Other values are as encoding/json decodes them into
// any, with numbers as json.Number (kept as written) and arrays as []any.
type object []member

// parseMembers reads one JSON value. data must be valid JSON (json.Valid):
// that check also bounds the nesting (encoding/json's scanner refuses more
// than 10,000 levels), which the token reader below does not.
func parseMembers(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	return readValue(dec)
}

var errBadToken = errors.New("unexpected JSON token")

func readValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch tok {
	case json.Delim('{'):
		obj := object{}
		for dec.More() {
			nt, err := dec.Token()
			if err != nil {
				return nil, err
			}
			name, ok := nt.(string)
			if !ok {
				return nil, errBadToken
			}
			v, err := readValue(dec)
			if err != nil {
				return nil, err
			}
			obj = append(obj, member{name, v})
		}
		if _, err := dec.Token(); err != nil { // '}'
			return nil, err
		}
		return obj, nil
	case json.Delim('['):
		arr := []any{}
		for dec.More() {
			v, err := readValue(dec)
			if err != nil {
				return nil, err
			}
			arr = append(arr, v)
		}
		if _, err := dec.Token(); err != nil { // ']'
			return nil, err
		}
		return arr, nil
	case json.Delim('}'), json.Delim(']'):
		return nil, errBadToken
	}
	return tok, nil // string, json.Number, bool or nil
}

// firstDuplicate finds the first member name given twice in one object,
// at any depth: the JSON pointer of the object holding it, and the name.
// Names in the pointer are as fieldName shows them (a name shaped like a
// secret, long, or with control characters is described, not repeated).
func firstDuplicate(v any) (parent, name string, found bool) {
	switch v := v.(type) {
	case object:
		seen := make(map[string]bool, len(v))
		for _, m := range v {
			if seen[m.name] {
				return "", m.name, true
			}
			seen[m.name] = true
		}
		for _, m := range v {
			if p, n, ok := firstDuplicate(m.value); ok {
				return "/" + fieldName(m.name) + p, n, true
			}
		}
	case []any:
		for i, e := range v {
			if p, n, ok := firstDuplicate(e); ok {
				return "/" + strconv.Itoa(i) + p, n, true
			}
		}
	}
	return "", "", false
}

// appendJSON encodes v as JSON, objects with their members in order (a
// name given twice stays twice). Strings are encoded as encoding/json
// encodes them. Not a MarshalJSON on object: encoding/json re-reads
// (compacts) what a MarshalJSON returns, at every level of nesting, which
// made a deeply nested payload's redaction take time quadratic in its size.
func appendJSON(b []byte, v any) (_ []byte, err error) {
	switch v := v.(type) {
	case object:
		b = append(b, '{')
		for i, m := range v {
			if i > 0 {
				b = append(b, ',')
			}
			k, _ := json.Marshal(m.name) // a string: always encodes
			if b, err = appendJSON(append(append(b, k...), ':'), m.value); err != nil {
				return nil, err
			}
		}
		return append(b, '}'), nil
	case []any:
		b = append(b, '[')
		for i, e := range v {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = appendJSON(b, e); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	}
	e, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, e...), nil
}
