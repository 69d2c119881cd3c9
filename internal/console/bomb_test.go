package console_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/internal/testenv"
)

// TestDeepPayloadPageIsBounded: a job whose body nests arrays thousands
// deep (a few kilobytes, valid JSON) is dead-lettered by the worker as
// stored; its entry page must stay about the size of the payload. Indented
// as is, every level costs a line as long as its depth: the page would grow
// with the square of the depth (tens of megabytes here, gigabytes for a
// megabyte of such arrays), all of it held in the console's memory three
// times over before a byte is sent.
func TestDeepPayloadPageIsBounded(t *testing.T) {
	env := testenv.New(t)
	env.StartWorker(t)
	const depth = 4000
	body := `{"session_id":"sess_1","x":` + strings.Repeat("[", depth) + strings.Repeat("]", depth) + `}`
	env.PublishRaw(t, env.Topology.Subjects.Job("revoke"), []byte(body))
	testenv.Eventually(t, 20*time.Second, "the hostile job's dead letter", func() bool {
		return env.StreamCount(t, env.Topology.DeadLetterStream) == 1
	})
	seq := env.StreamMsgs(t, env.Topology.DeadLetterStream)[0].Sequence

	con := startConsole(t, env.NATSURL)
	con.waitIndexed(t, 20*time.Second)
	code, page := con.get(t, fmt.Sprintf("/dlq/%d", seq))
	if code != 200 {
		t.Fatalf("entry page: %d", code)
	}
	if limit := 64<<10 + 4*len(body); len(page) > limit {
		t.Fatalf("the entry page of a %d-byte dead letter is %d bytes (more than %d): its payload was indented level by level", len(body), len(page), limit)
	}
	if !strings.Contains(page, `&#34;session_id&#34;:&#34;sess_1&#34;`) {
		t.Errorf("the entry page does not show the payload at all")
	}
}
