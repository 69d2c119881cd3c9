package clerkapi

import (
	"bytes"
	"encoding/json"
	"reflect"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
)

func FuzzIsIDMatchesIDPattern(f *testing.F) {
	idPattern := regexp.MustCompile(`^[a-z]+_[A-Za-z0-9]+$`)
	for _, s := range []string{"sess_1", "user_2abcXYZ", "_a", "a_", "a", "", "A_b", "sess__1", "sess_1\n", "sess_é", "a_b_c", "../users"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := isID(s), idPattern.MatchString(s); got != want {
			t.Fatalf("isID(%q) = %v, idPattern says %v", s, got, want)
		}
	})
}

// FuzzDecodeAnswerIsEncodingJSON: Clerk's answers are read by another
// implementation of encoding/json's rules (decodeAnswer); whatever the
// body, it must read the same values as encoding/json and fail where it
// fails, for every type an answer is read into.
func FuzzDecodeAnswerIsEncodingJSON(f *testing.F) {
	session := `{"object":"session","id":"sess_2ab","client_id":"client_1","user_id":"user_1","status":"revoked",` +
		`"last_active_at":1733356800000,"last_active_organization_id":null,"actor":{"sub":"user_2","n":12345678901234567890,"f":0.1},` +
		`"latest_activity":{"object":"session_activity","id":"sa_1","is_mobile":false,"browser_name":"Chrome","ip_address":"203.0.113.7"},` +
		`"expire_at":1,"abandon_at":2,"updated_at":3,"created_at":4,"tasks":[{"key":"choose-organization"}]}`
	for _, s := range []string{
		session,
		`[` + session + `,` + session + `]`,
		`{"data":[` + session + `],"total_count":7}`,
		`{"object":"token","jwt":"eyJ.a.b"}`,
		`{"object":"user","id":"user_1","locked":true,"lockout_expires_in_seconds":null,"banned":false,"created_at":1,"updated_at":2}`,
		`["__session=a; Path=/", "__client_uat=1"]`,
		`{"ID":"sess_upper","Object":"session"}`,                      // names matched without case
		`{"id":"first","id":"second"}`,                                // a name twice: the last counts
		`{"id":"sess_ÿþ","status":"active"}`,                          // invalid UTF-8, escapes
		`{"id":"x","last_active_at":"1"}`,                             // a string for a number
		`{"id":"x","expire_at":1e400}`,                                // out of range
		`{"id":"x","expire_at":1.5}`,                                  // a fraction for an integer
		`{"id":"x","latest_activity":null,"tasks":null,"actor":null}`, // nulls
		`{"id":"x","unknown":{"deep":[1,2,{"a":null}]}}`,
		`{"jwt":{"eyJhbGciOiJSUzI1NiJ9":1}}`, `{"jwt":"eyJhbGciOiJSUzI1NiJ9\q"}`, `{"id":"x","expire_at":"eyJhbGciOiJSUzI1NiJ9"}`,
		`{"id":"x"} trailing`, `{"id":"x"`, ``, `null`, `{}`, `[]`, `"session"`, `12`, `{"data":{}}`, `{"jwt":["a"]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, newValue := range []func() any{
			func() any { return new(Session) },
			func() any { return new(SessionList) },
			func() any { return new([]Session) },
			func() any { return new(Token) },
			func() any { return new(User) },
			func() any { return new(Cookies) },
			func() any { return new(RefreshResult) },
		} {
			got, want := newValue(), newValue()
			gotErr, wantErr := decodeAnswer(body, got), json.Unmarshal(body, want)
			if (gotErr == nil) != (wantErr == nil) {
				t.Fatalf("%T from %q: decodeAnswer says %v, encoding/json %v", got, body, gotErr, wantErr)
			}
			if wantErr == nil && !reflect.DeepEqual(got, want) {
				t.Fatalf("%T from %q:\ndecodeAnswer %+v\nencoding/json %+v", got, body, got, want)
			}
			// A token answer's body is a secret: the error must be
			// encoding/json's own, which quotes no name or value of it.
			if gotErr != nil && gotErr.Error() != wantErr.Error() {
				t.Fatalf("%T from %q: decodeAnswer's error %q, encoding/json's %q", got, body, gotErr, wantErr)
			}
		}
	})
}

func TestReadBodyIsLimitedReadAll(t *testing.T) {
	for _, n := range []int{0, 1, 511, 512, 513, 4096, 70_000} {
		body := bytes.Repeat([]byte("x"), n)
		for _, cl := range []int64{-1, 0, int64(n), int64(n) - 1, int64(n) + 10, maxResponseBytes} {
			got, err := readBody(iotest.OneByteReader(bytes.NewReader(body)), cl)
			if err != nil || !bytes.Equal(got, body) {
				t.Fatalf("n=%d content-length=%d: %d bytes, %v", n, cl, len(got), err)
			}
		}
	}
	// The limit holds whatever Content-Length says.
	big := strings.NewReader(strings.Repeat("y", maxResponseBytes+10))
	got, err := readBody(big, 100)
	if err != nil || len(got) != maxResponseBytes {
		t.Fatalf("read %d bytes, %v; want the first %d", len(got), err, maxResponseBytes)
	}
	// Errors pass through as ReadAll's do.
	_, err = readBody(iotest.TimeoutReader(strings.NewReader("abc")), 3)
	if err == nil {
		t.Fatal("no error from a failing body")
	}
}

// TestReadBodyReservesOnlyWhatComes: an answer that announces nearly the
// limit (16 MiB) and sends three bytes made readBody reserve the whole 16
// MiB before the first byte, per call in flight: a stalled or hostile
// upstream held gigabytes at a high concurrency.
func TestReadBodyReservesOnlyWhatComes(t *testing.T) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	got, err := readBody(strings.NewReader("abc"), maxResponseBytes-1)
	runtime.ReadMemStats(&after)
	if err != nil || string(got) != "abc" {
		t.Fatalf("read %q, %v", got, err)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 2<<20 {
		t.Errorf("reserved %d bytes for a 3-byte answer announcing %d; want at most %d", n, maxResponseBytes-1, 2<<20)
	}
}

// TestDecodeAnswerErrorIsEncodingJSONs: a body decodeAnswer cannot read
// fails with encoding/json's own error, text and type: the other
// implementation's names the path down into a map, keys and all, as the
// body spells them (of any length, secret-shaped or not), where
// encoding/json's stops at the struct field.
func TestDecodeAnswerErrorIsEncodingJSONs(t *testing.T) {
	key := "eyJhbGciOiJSUzI1NiJ9." + strings.Repeat("k", 4096)
	for _, body := range []string{
		`{"id":"x","actor":{"` + key + `":1e400}}`,
		`{"id":"x","actor":{"a":{"` + key + `":[1e400]}}}`,
		`{"data":[{"id":"x","actor":{"` + key + `":1e400}}]}`,
		`{"object":"token","jwt":"a\q"}`,
		`{"object":"cookies","cookies":["a",5]}`,
	} {
		for _, newValue := range []func() any{
			func() any { return new(Session) }, func() any { return new(SessionList) },
			func() any { return new(Token) }, func() any { return new(Cookies) }, func() any { return new(RefreshResult) },
		} {
			got, want := decodeAnswer([]byte(body), newValue()), json.Unmarshal([]byte(body), newValue())
			if (got == nil) != (want == nil) || got != nil && (got.Error() != want.Error() || reflect.TypeOf(got) != reflect.TypeOf(want)) {
				t.Errorf("%T from %.60q: decodeAnswer says %.200v (%T), encoding/json %.200v (%T)", newValue(), body, got, got, want, want)
			}
		}
	}
}
