package jobs

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzDecodeArgsIsEncodingJSON: a job's typed arguments are read by
// another implementation of encoding/json's rules (decodeArgs); whatever
// the body, every job type must get the same values as encoding/json's
// reader (with UseNumber) gives it, and fail where it fails.
func FuzzDecodeArgsIsEncodingJSON(f *testing.F) {
	for _, s := range []string{
		string(benchRevoke),
		`{"user_id":"user_1","client_id":"c","status":"revoked","limit":500,"offset":20,"paginated":true}`,
		`{"session_id":"s","template_name":"t","expires_in_seconds":315360000}`,
		`{"user_id":"u","except_session_ids":["a","b"],"lock_user":true}`,
		`{"session_id":"s","request_headers":{"X-N":12345678901234567890,"X-E":1E400,"L":[0.10,"a",null]}}`,
		`{"SESSION_ID":"upper","Job_Id":"j"}`, // names matched without case
		`{"session_id":"a","session_id":"b"}`, // a name twice: the last counts
		`{"session_id":"\xff\u00e9"}`,         // invalid UTF-8, escapes
		`{"limit":1.5}`, `{"limit":"1"}`, `{"limit":1e400}`, `{"expires_in_seconds":-0}`, `{"lock_user":"true"}`,
		`{"except_session_ids":[1]}`, `{"except_session_ids":null,"request_headers":null}`,
		`{} trailing`, `{`, ``, `null`, `[]`, `"s"`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, o := range AllOps() {
			got, want := newArgs(o), newArgs(o)
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.UseNumber()
			wantErr := dec.Decode(want)
			if wantErr == nil && dec.More() || !json.Valid(body) {
				continue // Decode sees only one whole JSON value (readDoc)
			}
			gotErr := decodeArgs(body, got)
			if (gotErr == nil) != (wantErr == nil) {
				t.Fatalf("%s job from %q: decodeArgs says %v, encoding/json %v", o, body, gotErr, wantErr)
			}
			if wantErr == nil && !reflect.DeepEqual(got, want) {
				t.Fatalf("%s job from %q:\ndecodeArgs    %+v\nencoding/json %+v", o, body, got, want)
			}
		}
	})
}
