package jobs

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/clerkapi"
)

func TestDecodeValid(t *testing.T) {
	tests := []struct {
		name string
		op   Op
		body string
		want Args
	}{
		{"list by user", OpList, `{"user_id":"user_2abc"}`,
			&ListArgs{UserID: "user_2abc"}},
		{"list by client", OpList, `{"client_id":"client_9"}`,
			&ListArgs{ClientID: "client_9"}},
		{"list every field", OpList,
			`{"job_id":"j-1","reply_to":"_INBOX.a.b","user_id":"user_1","client_id":"client_2","status":"revoked","limit":500,"offset":20,"paginated":true}`,
			&ListArgs{Common: Common{JobID: "j-1", ReplyTo: "_INBOX.a.b"}, UserID: "user_1", ClientID: "client_2", Status: clerkapi.StatusRevoked, Limit: 500, Offset: 20, Paginated: true}},
		{"list smallest limit", OpList, `{"user_id":"user_1","limit":1,"offset":0}`,
			&ListArgs{UserID: "user_1", Limit: 1}},
		{"create", OpCreate, `{"user_id":"user_2abc"}`,
			&CreateArgs{UserID: "user_2abc"}},
		{"create with organization", OpCreate, `{"user_id":"user_1","active_organization_id":"org_7","job_id":"c:1@x/y"}`,
			&CreateArgs{Common: Common{JobID: "c:1@x/y"}, UserID: "user_1", ActiveOrganizationID: "org_7"}},
		{"get", OpGet, `{"session_id":"sess_2abc","reply_to":"replies"}`,
			&GetArgs{Common: Common{ReplyTo: "replies"}, SessionID: "sess_2abc"}},
		{"refresh", OpRefresh,
			`{"session_id":"sess_1","reply_to":"_INBOX.r","expired_token":"eyJ.old","refresh_token":"rt_1","request_origin":"https://app.example.com"}`,
			&RefreshArgs{Common: Common{ReplyTo: "_INBOX.r"}, SessionID: "sess_1", ExpiredToken: "eyJ.old", RefreshToken: "rt_1", RequestOrigin: "https://app.example.com"}},
		{"refresh every field", OpRefresh,
			`{"session_id":"sess_1","reply_to":"_INBOX.r","expired_token":"e","refresh_token":"r","request_origin":"o","request_headers":{"User-Agent":["Go"],"X-N":"1"},"format":"cookie","request_originating_ip":"203.0.113.9"}`,
			&RefreshArgs{Common: Common{ReplyTo: "_INBOX.r"}, SessionID: "sess_1", ExpiredToken: "e", RefreshToken: "r", RequestOrigin: "o",
				RequestHeaders: map[string]any{"User-Agent": []any{"Go"}, "X-N": "1"}, Format: "cookie", RequestOriginatingIP: "203.0.113.9"}},
		{"refresh with numbers in headers, kept as written", OpRefresh,
			`{"session_id":"sess_1","reply_to":"_INBOX.r","expired_token":"e","refresh_token":"r","request_origin":"o","request_headers":{"X-Big":12345678901234567890,"X-E":1E3,"X-L":[0.10]}}`,
			&RefreshArgs{Common: Common{ReplyTo: "_INBOX.r"}, SessionID: "sess_1", ExpiredToken: "e", RefreshToken: "r", RequestOrigin: "o",
				RequestHeaders: map[string]any{"X-Big": json.Number("12345678901234567890"), "X-E": json.Number("1E3"), "X-L": []any{json.Number("0.10")}}}},
		{"refresh with nulls", OpRefresh,
			`{"session_id":"sess_1","reply_to":"_INBOX.r","expired_token":"e","refresh_token":"r","request_origin":"o","request_headers":null,"format":null,"request_originating_ip":null}`,
			&RefreshArgs{Common: Common{ReplyTo: "_INBOX.r"}, SessionID: "sess_1", ExpiredToken: "e", RefreshToken: "r", RequestOrigin: "o"}},
		{"revoke", OpRevoke, `{"session_id":"sess_2abc","job_id":"revoke-1"}`,
			&RevokeArgs{Common: Common{JobID: "revoke-1"}, SessionID: "sess_2abc"}},
		{"revoke with whitespace", OpRevoke, " \n{ \"session_id\" : \"sess_2abc\" }\n",
			&RevokeArgs{SessionID: "sess_2abc"}},
		{"token", OpToken, `{"session_id":"sess_2abc","reply_to":"_INBOX.abc"}`,
			&TokenArgs{Common: Common{ReplyTo: "_INBOX.abc"}, SessionID: "sess_2abc"}},
		{"token from template, shortest lifetime", OpToken, `{"session_id":"sess_2abc","reply_to":"_INBOX.abc","template_name":"hasura-v2","expires_in_seconds":30}`,
			&TokenArgs{Common: Common{ReplyTo: "_INBOX.abc"}, SessionID: "sess_2abc", TemplateName: "hasura-v2", ExpiresInSeconds: 30}},
		{"token longest lifetime", OpToken, `{"session_id":"sess_2abc","reply_to":"_INBOX.abc","expires_in_seconds":315360000}`,
			&TokenArgs{Common: Common{ReplyTo: "_INBOX.abc"}, SessionID: "sess_2abc", ExpiresInSeconds: 315360000}},
		{"revoke_all", OpRevokeAll, `{"user_id":"user_2abc","except_session_ids":["sess_keep","sess_also"]}`,
			&RevokeAllArgs{UserID: "user_2abc", ExceptSessionIDs: []string{"sess_keep", "sess_also"}}},
		{"revoke_all without exceptions", OpRevokeAll, `{"user_id":"user_2abc"}`,
			&RevokeAllArgs{UserID: "user_2abc"}},
	}
	covered := map[Op]bool{}
	for _, tt := range tests {
		covered[tt.op] = true
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode(tt.op, []byte(tt.body))
			if err != nil {
				t.Fatalf("Decode(%s, %s): %v", tt.op, tt.body, err)
			}
			if got.Op() != tt.op {
				t.Errorf("Op() = %s, want %s", got.Op(), tt.op)
			}
			if reflect.TypeOf(got) != reflect.TypeOf(tt.want) {
				t.Fatalf("Decode returned %T, want %T", got, tt.want)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Decode(%s, %s)\n got  %#v\n want %#v", tt.op, tt.body, got, tt.want)
			}
		})
	}
	for _, o := range AllOps() {
		if !covered[o] {
			t.Errorf("no valid example for op %s", o)
		}
	}
}

// The README tells operators that this works from the nats CLI; it must,
// byte for byte.
func TestDecodeREADMERevoke(t *testing.T) {
	const body = `{"session_id":"sess_123"}`
	sub := Subjects{}
	if got := sub.Job(OpRevoke); got != "sessions.revoke" {
		t.Fatalf("revoke subject = %q, want sessions.revoke", got)
	}
	o := sub.OpOf("sessions.revoke")
	a, err := Decode(o, []byte(body))
	if err != nil {
		t.Fatalf("nats pub sessions.revoke '%s' would be refused: %v", body, err)
	}
	r, ok := a.(*RevokeArgs)
	if !ok || r.SessionID != "sess_123" || r.JobID != "" || r.ReplyTo != "" {
		t.Fatalf("Decode = %#v, want RevokeArgs{SessionID: sess_123}", a)
	}
}

func TestDecodeInvalid(t *testing.T) {
	big := `{"session_id":"sess_1","job_id":"` + strings.Repeat("a", MaxJobBytes) + `"}`
	tests := []struct {
		name   string
		op     Op
		body   string
		field  string   // JSON pointer; "" for the message as a whole
		reason []string // substrings the reason must hold
	}{
		{"not JSON", OpRevoke, `session_id=sess_1`, "", []string{"not JSON"}},
		{"empty body", OpRevoke, ``, "", []string{"not JSON"}},
		{"truncated JSON", OpRevoke, `{"session_id":"sess_1"`, "", []string{"not JSON"}},
		{"trailing data", OpRevoke, `{"session_id":"sess_1"} {}`, "", []string{"not JSON"}},
		{"null", OpRevoke, `null`, "", []string{"null", "object"}},
		{"array", OpGet, `[{"session_id":"sess_1"}]`, "", []string{"array", "object"}},
		{"string", OpRevoke, `"sess_1"`, "", []string{"string", "object"}},

		{"session_id is a number", OpRevoke, `{"session_id":123}`, "/session_id", []string{"number", "string"}},
		{"limit is a string", OpList, `{"user_id":"user_1","limit":"10"}`, "/limit", []string{"string", "integer"}},
		{"limit is fractional", OpList, `{"user_id":"user_1","limit":2.5}`, "/limit", []string{"number", "integer"}},
		{"paginated is a string", OpList, `{"user_id":"user_1","paginated":"yes"}`, "/paginated", []string{"string", "boolean"}},
		{"except_session_ids is a string", OpRevokeAll, `{"user_id":"user_1","except_session_ids":"sess_a"}`, "/except_session_ids", []string{"string", "array"}},
		{"expires_in_seconds is a string", OpToken, `{"session_id":"sess_1","reply_to":"_INBOX.x","expires_in_seconds":"60"}`, "/expires_in_seconds", []string{"string", "integer"}},
		{"request_headers is an array", OpRefresh, `{"session_id":"sess_1","reply_to":"_INBOX.x","expired_token":"e","refresh_token":"r","request_origin":"o","request_headers":[]}`, "/request_headers", []string{"array"}},

		{"revoke without session_id", OpRevoke, `{}`, "/session_id", []string{"required"}},
		{"get without session_id", OpGet, `{"job_id":"j1"}`, "/session_id", []string{"required"}},
		{"create without user_id", OpCreate, `{"active_organization_id":"org_1"}`, "/user_id", []string{"required"}},
		{"revoke_all without user_id", OpRevokeAll, `{"except_session_ids":["sess_a"]}`, "/user_id", []string{"required"}},
		{"token without reply_to", OpToken, `{"session_id":"sess_1"}`, "/reply_to", []string{"required"}},
		{"refresh without refresh_token", OpRefresh, `{"session_id":"sess_1","reply_to":"_INBOX.x","expired_token":"e","request_origin":"o"}`, "/refresh_token", []string{"required"}},
		{"refresh without reply_to", OpRefresh, `{"session_id":"sess_1","expired_token":"e","refresh_token":"r","request_origin":"o"}`, "/reply_to", []string{"required"}},
		{"refresh with empty refresh_token", OpRefresh, `{"session_id":"sess_1","reply_to":"_INBOX.x","expired_token":"e","refresh_token":"","request_origin":"o"}`, "/refresh_token", []string{"Length"}},
		{"list with neither user_id nor client_id", OpList, `{"status":"active"}`, "", []string{"user_id", "client_id"}},

		{"unknown field, typo of a required one", OpRevoke, `{"sesion_id":"sess_123"}`, "/sesion_id", []string{"unknown field", "revoke.json"}},
		{"unknown field beside a valid job", OpRevoke, `{"session_id":"sess_123","reason":"fired"}`, "/reason", []string{"unknown field", "revoke.json"}},
		{"unknown field, wrong case", OpGet, `{"Session_ID":"sess_1"}`, "/Session_ID", []string{"unknown field", "get.json"}},
		{"unknown field, list typo", OpList, `{"user_id":"user_1","limt":5}`, "/limt", []string{"unknown field", "list.json"}},
		{"unknown field, list typo of the id", OpList, `{"usr_id":"user_1"}`, "/usr_id", []string{"unknown field", "list.json"}},
		{"unknown field, token camelCase", OpToken, `{"session_id":"sess_1","replyTo":"_INBOX.x","reply_to":"_INBOX.x"}`, "/replyTo", []string{"unknown field", "token.json"}},
		{"unknown field, refresh", OpRefresh, `{"session_id":"sess_1","reply_to":"_INBOX.x","expired_token":"e","refresh_token":"r","request_origin":"o","cookie":"c"}`, "/cookie", []string{"unknown field", "refresh.json"}},

		{"session_id path traversal", OpRevoke, `{"session_id":"sess_1/../x"}`, "/session_id", []string{"sess_1/../x", "pattern"}},
		{"session_id without prefix", OpGet, `{"session_id":"123"}`, "/session_id", []string{"pattern"}},
		{"session_id with a NATS wildcard", OpRevoke, `{"session_id":"sess_*"}`, "/session_id", []string{"pattern"}},
		{"user_id of another kind", OpCreate, `{"user_id":"sess_1"}`, "/user_id", []string{"pattern"}},
		{"client_id bad", OpList, `{"client_id":"client_"}`, "/client_id", []string{"pattern"}},
		{"organization id bad", OpCreate, `{"user_id":"user_1","active_organization_id":"organization_1"}`, "/active_organization_id", []string{"pattern"}},
		{"excepted session bad", OpRevokeAll, `{"user_id":"user_1","except_session_ids":["sess_ok","../etc"]}`, "/except_session_ids/1", []string{"pattern"}},
		{"excepted sessions repeated", OpRevokeAll, `{"user_id":"user_1","except_session_ids":["sess_a","sess_a"]}`, "/except_session_ids", []string{"equal"}},
		{"job_id with a space", OpRevoke, `{"session_id":"sess_1","job_id":"a b"}`, "/job_id", []string{"pattern"}},
		{"job_id empty", OpRevoke, `{"session_id":"sess_1","job_id":""}`, "/job_id", []string{"Length"}},
		{"job_id too long", OpRevoke, `{"session_id":"sess_1","job_id":"` + strings.Repeat("j", 129) + `"}`, "/job_id", []string{"Length"}},
		{"reply_to with a wildcard", OpToken, `{"session_id":"sess_1","reply_to":"_INBOX.*"}`, "/reply_to", []string{"pattern"}},
		{"reply_to with an empty token", OpGet, `{"session_id":"sess_1","reply_to":"a..b"}`, "/reply_to", []string{"pattern"}},
		{"reply_to with a space", OpGet, `{"session_id":"sess_1","reply_to":"a b"}`, "/reply_to", []string{"pattern"}},
		{"template name bad", OpToken, `{"session_id":"sess_1","reply_to":"_INBOX.x","template_name":"a b"}`, "/template_name", []string{"pattern"}},
		{"status pending", OpList, `{"user_id":"user_1","status":"pending"}`, "/status", []string{`"active"`, `"revoked"`}},
		{"format bad", OpRefresh, `{"session_id":"sess_1","reply_to":"_INBOX.x","expired_token":"e","refresh_token":"r","request_origin":"o","format":"jwt"}`, "/format", []string{`value must be one of "token", "cookie", null`}},

		{"limit 0", OpList, `{"user_id":"user_1","limit":0}`, "/limit", []string{"minimum", "got 0", "want 1"}},
		{"limit 501", OpList, `{"user_id":"user_1","limit":501}`, "/limit", []string{"maximum", "got 501", "want 500"}},
		{"offset negative", OpList, `{"user_id":"user_1","offset":-1}`, "/offset", []string{"minimum", "got -1", "want 0"}},
		// Clerk's description bounds offset below only; the schema bounds it
		// by what the worker (and Clerk's Go SDK, an int64) can hold, so
		// that the schema refuses, saying the bound, not a later decode.
		{"offset 2^63", OpList, `{"user_id":"user_1","offset":9223372036854775808}`, "/offset", []string{"maximum", "want 9223372036854775807"}},
		{"expires_in_seconds 29", OpToken, `{"session_id":"sess_1","reply_to":"_INBOX.x","expires_in_seconds":29}`, "/expires_in_seconds", []string{"minimum", "got 29", "want 30"}},
		{"expires_in_seconds 315360001", OpToken, `{"session_id":"sess_1","reply_to":"_INBOX.x","expires_in_seconds":315360001}`, "/expires_in_seconds", []string{"maximum", "got 315360001", "want 315360000"}},

		// Secrets pasted where they do not belong are refused without
		// being repeated (the error reaches logs and dead-letter headers).
		{"URL with a password as session_id", OpRevoke, `{"session_id":"https://u:pw9xq4vlm2@evil/x"}`, "/session_id", []string{"a value of 27 characters", "pattern"}},
		{"secret key as session_id", OpRevoke, `{"session_id":"sk_` + `live_SECRETabcdefghijklmnopqrstuvwxyz0123"}`, "/session_id", []string{"a value of 44 characters", "pattern"}},
		{"URL with a password as a member name", OpRevoke, `{"session_id":"sess_1","https://u:pw9xq4vlm2@evil/x":1}`, "/(a name of 27 characters)", []string{"unknown field"}},
		{"secret key as a member name", OpRevoke, `{"session_id":"sess_1","sk_` + `live_SECRETabcdefghijklmnopqrstuvwxyz0123":1}`, "/(a name of 44 characters)", []string{"unknown field"}},
		{"member name with control characters", OpRevoke, `{"session_id":"sess_1","a\u001b[31mb\nc":1}`, "/(a name of 9 characters)", []string{"unknown field"}},
		{"long member name", OpRevoke, `{"session_id":"sess_1","` + strings.Repeat("n", 100) + `":1}`, "/(a name of 100 characters)", []string{"unknown field"}},
		// A refresh job read as a form, or a form read as JSON, by a body
		// parser: its token (opaque, shaped like nothing) sits in a name.
		{"refresh job as a member name", OpRevoke, `{"session_id":"sess_1","{\"refresh_token\":\"SECRET2\"}":""}`, "/(a name of 27 characters)", []string{"unknown field"}},
		{"form as a member name", OpRevoke, `{"session_id":"sess_1","refresh_token=SECRET2":""}`, "/(a name of 21 characters)", []string{"unknown field"}},

		// A member name given twice, at any depth: readers disagree on
		// which value counts (encoding/json takes the last). The name is
		// shown only when it is safe to; a value never is.
		{"session_id twice", OpRevoke, `{"session_id":"eyJ` + `hbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1In0.SECRETsig","session_id":"sess_1"}`, "/session_id", []string{"more than once"}},
		{"job_id twice, same value", OpRevoke, `{"session_id":"sess_1","job_id":"j","job_id":"j"}`, "/job_id", []string{"more than once"}},
		{"name twice, written with an escape", OpGet, `{"session_id":"sess_1","session\u005fid":"sess_2"}`, "/session_id", []string{"more than once"}},
		{"name twice in request_headers", OpRefresh, `{"session_id":"sess_1","reply_to":"_INBOX.x","expired_token":"e","refresh_token":"r","request_origin":"o","request_headers":{"A":"SECRET1","A":"b"}}`, "/request_headers/A", []string{"more than once"}},
		{"name twice in an object in an array", OpRefresh, `{"session_id":"sess_1","reply_to":"_INBOX.x","expired_token":"e","refresh_token":"r","request_origin":"o","request_headers":{"a":[{},{"x":1,"x":2}]}}`, "/request_headers/a/1/x", []string{"more than once"}},
		{"secret-shaped name twice", OpRevoke, `{"session_id":"sess_1","sk_` + `live_SECRETabcdefghijklmnopqrstuvwxyz0123":1,"sk_` + `live_SECRETabcdefghijklmnopqrstuvwxyz0123":2}`, "/(a name of 44 characters)", []string{"more than once"}},
		{"name twice beside an unknown field", OpRevoke, `{"sesion_id":"sess_1","session_id":"sess_1","session_id":"sess_2"}`, "/session_id", []string{"more than once"}},

		// A job id shaped like a secret fits the pattern, and would be
		// stored in record subjects, headers and logs: refused on /job_id
		// whatever else is wrong, so that the worker records the job as
		// seq-<n>.
		{"secret key as job_id", OpRevoke, `{"session_id":"sess_1","job_id":"sk_` + `live_SECRETabcdefghijklmnopqrstuvwxyz0123"}`, "/job_id", []string{"shaped like a secret", "44 characters"}},
		{"short JWT as job_id", OpGet, `{"session_id":"sess_1","job_id":"eyJ` + `SECRET.eyJz.c2ln"}`, "/job_id", []string{"shaped like a secret"}},
		{"secret job_id, escaped", OpRevoke, `{"session_id":"sess_1","job_id":"sk_` + `live_SECRETabcd"}`, "/job_id", []string{"shaped like a secret"}},
		{"secret job_id, session_id missing", OpRevoke, `{"job_id":"sk_` + `test_SECRETabcd"}`, "/job_id", []string{"shaped like a secret"}},
		{"secret job_id beside an unknown field", OpRevoke, `{"session_id":"sess_1","colour":"red","job_id":"sk_` + `test_SECRETabcd"}`, "/job_id", []string{"shaped like a secret"}},

		{"body over MaxJobBytes", OpRevoke, big, "", []string{"bytes", "65536"}},
		{"unknown op", Op("rvoke"), `{"session_id":"sess_1"}`, "", []string{"no job type"}},
		{"unknown op, empty", Op(""), `{"session_id":"sess_1"}`, "", []string{"no job type"}},
		{"OpUnknown", OpUnknown, `{"session_id":"sess_1"}`, "", []string{"no job type"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := Decode(tt.op, []byte(tt.body))
			if err == nil {
				t.Fatalf("Decode(%s, %.80s) = %#v, want an error", tt.op, tt.body, a)
			}
			if a != nil {
				t.Errorf("Decode returned Args %#v along with error %v", a, err)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("errors.Is(%v, ErrInvalid) = false", err)
			}
			var ie *InvalidError
			if !errors.As(err, &ie) {
				t.Fatalf("error %T %v is not an *InvalidError", err, err)
			}
			wantOp := tt.op
			if !tt.op.Valid() {
				wantOp = OpUnknown
			}
			if ie.Op != wantOp {
				t.Errorf("Op = %q, want %q", ie.Op, wantOp)
			}
			if ie.Field != tt.field {
				t.Errorf("Field = %q, want %q (reason %q)", ie.Field, tt.field, ie.Reason)
			}
			if ie.Reason == "" {
				t.Fatal("empty Reason")
			}
			for _, s := range tt.reason {
				if !strings.Contains(ie.Reason, s) {
					t.Errorf("Reason %q does not mention %q", ie.Reason, s)
				}
			}
			if strings.Contains(err.Error(), "SECRET") {
				t.Errorf("Error() repeats the secret: %s", err)
			}
			if len(ie.Reason) > 600 {
				t.Errorf("Reason is %d bytes: a person cannot read that in a log line", len(ie.Reason))
			}
			msg := err.Error()
			if !strings.Contains(msg, string(wantOp)) || !strings.Contains(msg, ie.Field) || !strings.Contains(msg, ie.Reason) {
				t.Errorf("Error() = %q does not hold op %q, field %q and reason", msg, wantOp, ie.Field)
			}
		})
	}
}

// A body exactly at the limit is judged on its content, one byte over is
// refused for its size.
func TestDecodeSizeLimit(t *testing.T) {
	pad := func(n int) []byte {
		head := `{"session_id":"sess_1","reply_to":"_INBOX.x","expired_token":"e","refresh_token":"r","request_origin":"o","request_headers":{"x":"`
		tail := `"}}`
		b := []byte(head + strings.Repeat("h", n-len(head)-len(tail)) + tail)
		if len(b) != n {
			t.Fatalf("pad: built %d bytes, want %d", len(b), n)
		}
		return b
	}
	if _, err := Decode(OpRefresh, pad(MaxJobBytes)); err != nil {
		t.Errorf("a %d-byte refresh job is refused: %v", MaxJobBytes, err)
	}
	_, err := Decode(OpRefresh, pad(MaxJobBytes+1))
	var ie *InvalidError
	if !errors.As(err, &ie) || !strings.Contains(ie.Reason, "more than") {
		t.Errorf("a %d-byte job: err = %v, want an *InvalidError about its size", MaxJobBytes+1, err)
	}
}

func TestInvalidError(t *testing.T) {
	e := &InvalidError{Op: OpGet, Field: "/session_id", Reason: "required field is missing"}
	if got, want := e.Error(), "invalid get job: /session_id: required field is missing"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	e = &InvalidError{Op: OpUnknown, Reason: "no job type is published on this subject"}
	if got, want := e.Error(), "invalid unknown job: no job type is published on this subject"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	wrapped := errors.Join(errors.New("context"), e)
	if !errors.Is(wrapped, ErrInvalid) {
		t.Error("a wrapped *InvalidError does not match ErrInvalid")
	}
	if errors.Is(errors.New("invalid job"), ErrInvalid) {
		t.Error("an unrelated error with the same text matches ErrInvalid")
	}
}

func TestValidate(t *testing.T) {
	if err := Validate(&RevokeArgs{SessionID: "sess_1"}); err != nil {
		t.Errorf("Validate(valid revoke) = %v", err)
	}
	tests := []struct {
		a     Args
		field string
	}{
		{&RevokeArgs{}, "/session_id"}, // encodes "session_id":"", which fails the pattern
		{&RevokeArgs{SessionID: "sess_1/../x"}, "/session_id"},
		// A publisher's job id shaped like a secret: refused before it is
		// published (jobs.Publish, the client and publish all validate).
		{&RevokeArgs{SessionID: "sess_1", Common: Common{JobID: "sk_" + "live_abcdefghijklmnopqrstuvwxyz0123456789ABCD"}}, "/job_id"},
		{&TokenArgs{SessionID: "sess_1", Common: Common{JobID: "eyJ" + "hbGc.eyJz.c2ln", ReplyTo: "_INBOX.x"}}, "/job_id"},
		{&TokenArgs{SessionID: "sess_1"}, "/reply_to"},
		{&TokenArgs{SessionID: "sess_1", Common: Common{ReplyTo: "_INBOX.x"}, ExpiresInSeconds: 29}, "/expires_in_seconds"},
		{&ListArgs{UserID: "user_1", Limit: 501}, "/limit"},
		{&ListArgs{}, ""},
		{&ListArgs{UserID: "user_1", Status: clerkapi.StatusPending}, "/status"},
		{&RefreshArgs{SessionID: "sess_1", Common: Common{ReplyTo: "_INBOX.x"}, ExpiredToken: "e", RequestOrigin: "o"}, "/refresh_token"},
		{&RefreshArgs{SessionID: "sess_1", Common: Common{ReplyTo: "_INBOX.x"}, ExpiredToken: "e", RefreshToken: "r", RequestOrigin: "o", RequestHeaders: map[string]any{"f": func() {}}}, ""},
	}
	for _, tt := range tests {
		err := Validate(tt.a)
		if err == nil {
			t.Errorf("Validate(%#v) = nil, want an error", tt.a)
			continue
		}
		var ie *InvalidError
		if errors.As(err, &ie) {
			if ie.Field != tt.field {
				t.Errorf("Validate(%#v): Field = %q, want %q (%v)", tt.a, ie.Field, tt.field, err)
			}
		} else if _, isMarshal := errors.Unwrap(err).(*json.UnsupportedTypeError); !isMarshal {
			t.Errorf("Validate(%#v) = %T %v, want an *InvalidError or an encoding error", tt.a, err, err)
		}
	}
}

// The validator compares numbers exactly (math/big): 1e999999 costs tens
// of milliseconds, and uniqueItems hashes every item of except_session_ids.
// A job body of such numbers must be refused quickly, not keep a worker
// busy for minutes.
func TestDecodeHugeNumbersAreCheap(t *testing.T) {
	var items []string
	for i := 0; len(strings.Join(items, ",")) < MaxJobBytes-100; i++ {
		items = append(items, "1e"+strconv.Itoa(999999-i))
	}
	tests := []struct {
		name  string
		op    Op
		body  string
		field string
	}{
		{"except_session_ids of huge numbers", OpRevokeAll, `{"user_id":"user_1","except_session_ids":[` + strings.Join(items, ",") + `]}`, "/except_session_ids/"},
		{"twenty huge numbers", OpRevokeAll, `{"user_id":"user_1","except_session_ids":[` + strings.Join(items[:20], ",") + `]}`, "/except_session_ids/"},
		{"huge limit", OpList, `{"user_id":"user_1","limit":1e999999}`, "/limit"},
		{"tiny limit", OpList, `{"user_id":"user_1","limit":-1E-999999}`, "/limit"},
		{"huge expiry", OpToken, `{"session_id":"sess_1","reply_to":"_INBOX.x","expires_in_seconds":1e+99999999999999999999}`, "/expires_in_seconds"},
		{"huge numbers in request headers", OpRefresh, `{"session_id":"sess_1","reply_to":"_INBOX.x","expired_token":"e","refresh_token":"r","request_origin":"o","request_headers":{"a":[1e999999]}}`, "/request_headers/a/0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			_, err := Decode(tt.op, []byte(tt.body))
			took := time.Since(start)
			var ie *InvalidError
			if !errors.As(err, &ie) {
				t.Fatalf("Decode = %v, want an *InvalidError", err)
			}
			if !strings.HasPrefix(ie.Field, tt.field) || !strings.Contains(ie.Reason, "range") {
				t.Errorf("Field %q, Reason %q; want %s… and a reason about the range", ie.Field, ie.Reason, tt.field)
			}
			if took > 2*time.Second {
				t.Errorf("Decode of a %d-byte body took %s", len(tt.body), took)
			}
		})
	}
	// Ordinary numbers, exponents within float64's range included, are
	// still fine.
	for _, body := range []string{
		`{"session_id":"sess_1","reply_to":"_INBOX.x","expired_token":"e","refresh_token":"r","request_origin":"o","request_headers":{"a":[1e308,-4.9E-324,1e-400,1E+400,0.5]}}`,
		`{"session_id":"sess_1","reply_to":"_INBOX.x","expired_token":"e","refresh_token":"r","request_origin":"o","request_headers":{"n":-12345678901234567890}}`,
	} {
		if _, err := Decode(OpRefresh, []byte(body)); err != nil {
			t.Errorf("Decode(%s) = %v", body, err)
		}
	}
	_, err := Decode(OpList, []byte(`{"user_id":"user_1","limit":50e300}`))
	var ie *InvalidError
	if !errors.As(err, &ie) || ie.Field != "/limit" || !strings.Contains(ie.Reason, "maximum") {
		t.Errorf("limit 50e300: %v, want the schema's maximum error", err)
	}
}

// TestReplyToPattern: reply_to is printable ASCII, so that no control
// character, non-ASCII space or system prefix hides what a subject is.
func TestReplyToPattern(t *testing.T) {
	for _, r := range []string{"_INBOX.abc", "_INBOX.svc_a.x", "a-b.c_d:e@f/g+h=i~j!k#l%m&n", "x"} {
		if _, err := Decode(OpToken, []byte(`{"session_id":"sess_1","reply_to":"`+r+`"}`)); err != nil {
			t.Errorf("reply_to %q refused: %v", r, err)
		}
	}
	for _, r := range []string{"", "a..b", ".a", "a.", "a b", "a\\tb", "a\\u0000b", "a\\u007fb", "a\\u00a0b", "a\\u2028b", "caf\\u00e9", "a.*", "a.>", "$SYS.x"} {
		_, err := Decode(OpToken, []byte(`{"session_id":"sess_1","reply_to":"`+r+`"}`))
		var ie *InvalidError
		if !errors.As(err, &ie) || ie.Field != "/reply_to" {
			t.Errorf("reply_to %q: %v, want invalid /reply_to", r, err)
		}
	}
}

// TestReadDocReadersAgree: bodies that the strict one-pass check accepts
// and bodies it leaves to the member reader (invalid UTF-8, an escaped
// lone surrogate, a name given twice) are read alike, or refused alike.
func TestReadDocReadersAgree(t *testing.T) {
	for _, body := range []string{
		`{"session_id":"sess_1","job_id":"j1"}`,
		` {"a":{"b":[1,2.50,-3e2,{"c":null}]},"d":true} `,
		`{"a":"\u003c\u00e9\ud83d\ude00"}`,
		"{\"a\":\"\xff\xfe\"}",
		`{"a":"\ud800"}`,
		"{\"\xff\":1,\"\xfe\":2}",
		`{"a":1,"a":2}`,
		`{"a":{"b":1,"b":1}}`,
		`{"session_id":"sess_1","session_\u0069d":"sess_2"}`,
		`[{"a":1},{"a":1}]`,
		`12345678901234567890123`,
		`"x"`, `null`, `{"a":}`, `{}`,
	} {
		t.Run(body, func(t *testing.T) { checkReadDoc(t, []byte(body)) })
	}
}

// A whole number written with a fraction or an exponent (10.0, 1e2, as
// Python's json module writes a float) is an integer to JSON Schema: a
// publisher that validates against schemas/ sends it, and the worker
// dead-lettered it ("cannot unmarshal number 10.0 into … int").
func TestDecodeWholeNumbersAsTheSchemaReadsThem(t *testing.T) {
	tests := []struct {
		name string
		op   Op
		body string
		want Args
	}{
		{"limit 10.0", OpList, `{"user_id":"user_1","limit":10.0}`, &ListArgs{UserID: "user_1", Limit: 10}},
		{"largest offset", OpList, `{"user_id":"user_1","offset":9223372036854775807}`, &ListArgs{UserID: "user_1", Offset: 9223372036854775807}},
		{"limit 1e2, offset 2.5E1", OpList, `{"user_id":"user_1","limit":1e2,"offset":2.5E1}`, &ListArgs{UserID: "user_1", Limit: 100, Offset: 25}},
		{"offset -0.0", OpList, `{"user_id":"user_1","offset":-0.0}`, &ListArgs{UserID: "user_1"}},
		{"expiry 60.000", OpToken, `{"session_id":"sess_1","reply_to":"_INBOX.x","expires_in_seconds":60.000}`,
			&TokenArgs{Common: Common{ReplyTo: "_INBOX.x"}, SessionID: "sess_1", ExpiresInSeconds: 60}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode(tt.op, []byte(tt.body))
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Decode = %#v, %v; want %#v", got, err, tt.want)
			}
		})
	}
}

// A number Go cannot hold was refused with encoding/json's message, which
// repeats the number: a body of 60,000 digits went whole into the
// requester's answer and the worker's log. The refusal names the field,
// and no digit; it is the schema's maximum now that offset has one.
func TestDecodeOutOfRangeNamesTheFieldNotTheNumber(t *testing.T) {
	digits := strings.Repeat("7", 60000)
	for _, body := range []string{
		`{"user_id":"user_1","offset":` + digits + `}`,
		`{"user_id":"user_1","offset":9223372036854775808}`,
		`{"user_id":"user_1","offset":1e300}`,
	} {
		_, err := Decode(OpList, []byte(body))
		var ie *InvalidError
		if !errors.As(err, &ie) || ie.Field != "/offset" || !strings.Contains(ie.Reason, "maximum") {
			t.Errorf("Decode(%.60s…) = %.200v; want an *InvalidError on /offset about the maximum", body, err)
			continue
		}
		if strings.Contains(err.Error(), "7777") || strings.Contains(err.Error(), "9223372036854775808") || strings.Contains(err.Error(), "Inf") || len(err.Error()) > 300 {
			t.Errorf("the refusal repeats the number: %.300s", err)
		}
	}
}

// Two unknown fields or more were refused with the validator's message,
// which lists every name as written: a secret-shaped name repeated, 300
// names repeated as 56 KB, and no field named. One field is named, as a
// single unknown field is, and the others counted.
func TestDecodeUnknownFieldsAreNamedNotListed(t *testing.T) {
	key := "sk_" + "live_" + strings.Repeat("A", 40)
	var many strings.Builder
	for i := range 300 {
		fmt.Fprintf(&many, `,"unknown_%03d_%s":1`, i, strings.Repeat("z", 150))
	}
	tests := []struct {
		name, body, field string
	}{
		{"a key as a name, and another", `{"session_id":"sess_1","` + key + `":1,"sesion_id":2}`, "/sesion_id"},
		{"only secret-shaped or long names", `{"session_id":"sess_1","` + key + `":1,"` + strings.Repeat("x", 3000) + `":2}`, "/(a name of 48 characters)"},
		{"300 long names", `{"session_id":"sess_1"` + many.String() + `}`, "/(a name of 162 characters)"},
		{"control characters", `{"session_id":"sess_1","a\u001b[31m":1,"b\n":2}`, "/(a name of 6 characters)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 5 { // the validator's order is a map's: the same field each time
				_, err := Decode(OpRevoke, []byte(tt.body))
				var ie *InvalidError
				if !errors.As(err, &ie) || ie.Field != tt.field || !strings.Contains(ie.Reason, "more unknown field") {
					t.Fatalf("Decode = %.300v; want an *InvalidError on %s counting the other unknown fields", err, tt.field)
				}
				if s := err.Error(); strings.Contains(s, key) || len(s) > 300 || strings.ContainsAny(s, "\x1b\n") {
					t.Fatalf("the refusal repeats the names: %.300q (%d bytes)", s, len(s))
				}
			}
		})
	}
}
