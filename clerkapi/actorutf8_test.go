package clerkapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"unicode/utf8"
)

// TestActorIsWrittenAsValidUTF8: an actor is kept as the JSON that came.
// One holding bytes that are not UTF-8 was kept so, and the stored result,
// written from it with encoding/json, was not UTF-8 either (not JSON to a
// strict reader), where decoded into a map the bytes had become U+FFFD as
// in every other string of the answer. They are U+FFFD again.
func TestActorIsWrittenAsValidUTF8(t *testing.T) {
	body := []byte("{\"object\":\"session\",\"id\":\"sess_1\",\"status\":\"active\",\"actor\":{\"sub\":\"user_\xff1\"}}")
	c := answering(t, http.StatusOK, body)
	s, err := c.GetSession(context.Background(), "sess_1")
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(s) // as the worker writes a result
	if err != nil {
		t.Fatal(err)
	}
	if !utf8.Valid(b) {
		t.Errorf("the session is written as %q, not UTF-8", b)
	}
	if want := "{\"sub\":\"user_\uFFFD1\"}"; string(s.Actor) != want {
		t.Errorf("actor %q; want %q", s.Actor, want)
	}
}
