package worker

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// sameAsMarshal fails unless encodeResult gives json.Marshal's bytes, or
// json.Marshal's error.
func sameAsMarshal(t *testing.T, r jobs.Result, trusted bool) {
	t.Helper()
	want, wantErr := json.Marshal(&r)
	got, gotErr := encodeResult(&r, trusted)
	if (wantErr == nil) != (gotErr == nil) || (wantErr != nil && wantErr.Error() != gotErr.Error()) {
		t.Fatalf("errors differ: json.Marshal %v, encodeResult %v", wantErr, gotErr)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("encodeResult differs from json.Marshal:\n got %s\nwant %s", got, want)
	}
}

func mustMarshal(t testing.TB, v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEncodeResultIsJSONMarshal(t *testing.T) {
	now := time.Date(2026, 11, 26, 17, 4, 5, 123456789, time.UTC)
	sess := mustMarshal(t, clerkapi.Session{ID: "sess_1", UserID: "user_<&>\u2028", Status: clerkapi.StatusRevoked})
	base := jobs.Result{JobID: "j-1", Op: jobs.OpRevoke, Outcome: jobs.Succeeded, Attempts: 1, Deliveries: 1, StreamSeq: 42,
		EnqueuedAt: now, StartedAt: now.Add(time.Millisecond), FinishedAt: now.Add(2 * time.Millisecond), DurationMS: 1.234, Worker: "host-abc", Result: sess}
	cases := map[string]func(r *jobs.Result){
		"typical":           func(r *jobs.Result) {},
		"zero values":       func(r *jobs.Result) { *r = jobs.Result{} },
		"zero times":        func(r *jobs.Result) { r.EnqueuedAt, r.StartedAt = time.Time{}, time.Time{} },
		"whole ms":          func(r *jobs.Result) { r.DurationMS = 3 },
		"tiny duration":     func(r *jobs.Result) { r.DurationMS = 1e-7 },
		"huge duration":     func(r *jobs.Result) { r.DurationMS = 1.5e21 },
		"negative duration": func(r *jobs.Result) { r.DurationMS = -0.001 },
		"NaN duration":      func(r *jobs.Result) { r.DurationMS = math.NaN() },
		"infinite":          func(r *jobs.Result) { r.DurationMS = math.Inf(1) },
		"escapes":           func(r *jobs.Result) { r.JobID = "a\"b\\c\n\r\t\b\f\x00\x1f<>&\u2028\u2029é😀\xff\xfe" },
		"worker unicode":    func(r *jobs.Result) { r.Worker = "hôte-\u2029" },
		"local zone":        func(r *jobs.Result) { r.FinishedAt = now.In(time.FixedZone("X", 5*3600+30*60)) },
		"negative zone":     func(r *jobs.Result) { r.StartedAt = now.In(time.FixedZone("Y", -(9*3600 + 59))) },
		"zone 24h":          func(r *jobs.Result) { r.FinishedAt = now.In(time.FixedZone("Z", 24*3600)) },
		"year 10000":        func(r *jobs.Result) { r.EnqueuedAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) },
		"year -1":           func(r *jobs.Result) { r.StartedAt = time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC) },
		"year 0":            func(r *jobs.Result) { r.FinishedAt = time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC) },
		"no result":         func(r *jobs.Result) { r.Result = nil },
		"empty result":      func(r *jobs.Result) { r.Result = json.RawMessage{} },
		"null result":       func(r *jobs.Result) { r.Result = json.RawMessage("null") },
		"flags":             func(r *jobs.Result) { r.AlreadyRevoked, r.SecretDelivered = true, true },
		"secret":            func(r *jobs.Result) { r.Secret = mustMarshal(t, clerkapi.Token{JWT: "a.b.c"}) },
		"error": func(r *jobs.Result) {
			r.Error = &jobs.ErrorInfo{Class: jobs.ClassPermanent, Message: "<no>", HTTPStatus: 404}
		},
		"max values": func(r *jobs.Result) {
			r.Attempts, r.Deliveries, r.StreamSeq = math.MaxInt, math.MinInt, math.MaxUint64
		},
		"summary": func(r *jobs.Result) {
			r.Op, r.Result = jobs.OpRevokeAll, mustMarshal(t, jobs.RevokeAllSummary{UserID: "user_1", FailedSessionIDs: []string{"sess_<1>"}})
		},
	}
	for name, edit := range cases {
		t.Run(name, func(t *testing.T) {
			r := base
			edit(&r)
			sameAsMarshal(t, r, true)
			sameAsMarshal(t, r, false)
		})
	}
}

// A raw field that is not json.Marshal output (a custom handler's answer)
// is compacted and escaped as json.Marshal does, or refused as it refuses.
func TestEncodeResultUntrustedRawFields(t *testing.T) {
	for _, raw := range []string{`{ "a" : "<b>" }`, "[1,\n2]", `{"a":`, `nope`} {
		r := jobs.Result{JobID: "j", Result: json.RawMessage(raw)}
		sameAsMarshal(t, r, false)
	}
}

// Every field of jobs.Result must be encoded: a field added to the
// contract without encodeResult learning it fails here.
func TestEncodeResultCoversEveryField(t *testing.T) {
	var r jobs.Result
	v := reflect.ValueOf(&r).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString("x" + v.Type().Field(i).Name)
		case reflect.Int:
			f.SetInt(int64(i + 1))
		case reflect.Uint64:
			f.SetUint(uint64(i + 1))
		case reflect.Float64:
			f.SetFloat(float64(i) + 0.5)
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Slice: // json.RawMessage
			f.SetBytes([]byte(`{"n":` + string(rune('0'+i%10)) + `}`))
		case reflect.Struct: // time.Time
			f.Set(reflect.ValueOf(time.Date(2026, 1, 2, 3, 4, 5, i, time.UTC)))
		case reflect.Pointer: // *ErrorInfo: encoded by json.Marshal
		default:
			t.Fatalf("jobs.Result.%s has kind %s: teach encodeResult and this test about it", v.Type().Field(i).Name, f.Kind())
		}
	}
	sameAsMarshal(t, r, true)
}

func FuzzEncodeResult(f *testing.F) {
	f.Add("job-1", "worker-1", `{"id":"sess_1"}`, 1.5, int64(1764176645123456789), 0, uint64(7), true)
	f.Add("\xff<\u2028>", "", `"x"`, 1e-9, int64(-62135596800000000), -3600, uint64(0), false)
	f.Fuzz(func(t *testing.T, id, worker, raw string, dur float64, nanos int64, offset int, seq uint64, flag bool) {
		ts := time.Unix(0, nanos).In(time.FixedZone("F", offset%(48*3600)))
		var rawMsg json.RawMessage
		if json.Valid([]byte(raw)) {
			// What the worker's handlers produce: json.Marshal output.
			var v any
			if json.Unmarshal([]byte(raw), &v) == nil {
				rawMsg = mustMarshal(t, v)
			}
		}
		r := jobs.Result{JobID: id, Op: jobs.Op(worker), Outcome: jobs.Succeeded, Attempts: int(seq % 100), Deliveries: 1, StreamSeq: seq,
			EnqueuedAt: ts, StartedAt: ts.UTC(), FinishedAt: ts, DurationMS: dur, Worker: worker, Result: rawMsg,
			AlreadyRevoked: flag, SecretDelivered: !flag}
		sameAsMarshal(t, r, true)
		r.Result = json.RawMessage(raw)
		sameAsMarshal(t, r, false)
	})
}

func BenchmarkEncodeResult(b *testing.B) {
	now := time.Now().UTC()
	sess := mustMarshal(b, clerkapi.Session{ID: "sess_2abcdefghijklmnopqrstuvwxyz0", UserID: "user_2abcdefghijklmnopqrstuvwxyz0",
		ClientID: "client_2abcdefghijklmnopqrstuvwxy", Status: clerkapi.StatusRevoked, LastActiveAt: 1764176645123, ExpireAt: 1764781445123,
		AbandonAt: 1766768645123, CreatedAt: 1764176645123, UpdatedAt: 1764176645999})
	r := jobs.Result{JobID: "bench-123456", Op: jobs.OpRevoke, Outcome: jobs.Succeeded, Attempts: 1, Deliveries: 1, StreamSeq: 123456,
		EnqueuedAt: now, StartedAt: now, FinishedAt: now, DurationMS: 0.712, Worker: "host-a1b2c3", Result: sess}
	b.Run("json.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = json.Marshal(&r)
		}
	})
	b.Run("encodeResult", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = encodeResult(&r, true)
		}
	})
}
