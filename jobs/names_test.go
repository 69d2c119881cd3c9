package jobs_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// longestTopology is the test topology with every stream, consumer and
// bucket name as long as Topology.Validate accepts, found by asking it.
func longestTopology(t *testing.T) jobs.Topology {
	t.Helper()
	top := testenv.TestTopology()
	top.Subjects.Prefix = "longest"
	for _, f := range []struct {
		name *string
		c    string
	}{
		{&top.JobsStream, "J"}, {&top.ResultsStream, "R"}, {&top.DeadLetterStream, "D"},
		{&top.Consumer, "c"}, {&top.ProgressBucket, "p"}, {&top.RateBucket, "r"},
	} {
		n := 300
		for ; n > 0; n-- {
			*f.name = strings.Repeat(f.c, n)
			if top.Validate() == nil {
				break
			}
		}
		if n < 200 {
			t.Fatalf("Validate accepts no %s name of 200 bytes or more", f.c)
		}
	}
	return top
}

// TestLongestNamesAreCreated: the longest names Topology.Validate accepts
// are ones JetStream creates, so that its limits and the server's agree.
func TestLongestNamesAreCreated(t *testing.T) {
	env := testenv.New(t)
	top := longestTopology(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := top.Ensure(ctx, env.JS); err != nil {
		t.Fatalf("Ensure with the longest names Validate accepts: %v", err)
	}
}

// TestLongestNamesAreDeletedForGood: a stream (or bucket) with the
// longest name Validate accepts can be deleted, and one created again
// under that name starts empty. The file store deletes a stream by first
// renaming its directory to "." + name: at 255 bytes that is one byte
// more than a file name may have, the rename fails, the server still
// answers that the stream is deleted, and the stream created again opens
// the old directory: the jobs of before come back and are run again.
func TestLongestNamesAreDeletedForGood(t *testing.T) {
	env := testenv.New(t)
	top := longestTopology(t)
	if top.Storage != jetstream.FileStorage {
		t.Fatalf("test topology storage %v: the check needs the file store", top.Storage)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := top.Ensure(ctx, env.JS); err != nil {
		t.Fatal(err)
	}
	if _, err := env.JS.Publish(ctx, top.Subjects.Prefix+".revoke", []byte(`{"session_id":"sess_1"}`)); err != nil {
		t.Fatal(err)
	}
	kv, err := env.JS.KeyValue(ctx, top.ProgressBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "job", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if err := env.JS.DeleteStream(ctx, top.JobsStream); err != nil {
		t.Fatal(err)
	}
	if err := env.JS.DeleteKeyValue(ctx, top.ProgressBucket); err != nil {
		t.Fatal(err)
	}
	if _, err := top.Ensure(ctx, env.JS); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{top.JobsStream, "KV_" + top.ProgressBucket} {
		s, err := env.JS.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if n := s.CachedInfo().State.Msgs; n != 0 {
			t.Errorf("stream of %d bytes deleted and created again holds %d messages from before", len(name), n)
		}
	}
}
