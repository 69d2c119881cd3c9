package clerkjobs_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs"
	"github.com/clerkjobs/clerkjobs/clerkjobstest"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestRecordWithoutAnAnswerEndsTheWait: a job can be recorded and never
// answered: the worker refused its reply_to (an inbox outside its
// --reply-prefix, here _OTHER.…) and dead-lettered it as invalid without
// a word to the inbox; or it crashed between storing the record and
// sending the answer, and the redelivery, finding the record, sends none.
// Request looked for the record only at its deadline (or after a
// reconnect), so the caller waited its whole timeout (an hour here, a
// RevokeAll's ten minutes) for a job finished long before, and one that
// gave up first (cancelled, no deadline of its own) heard "no result, may
// still run" of a dead-lettered job. Request now looks for the record
// while it waits, and returns it once stored.
func TestRecordWithoutAnAnswerEndsTheWait(t *testing.T) {
	env := clerkjobstest.New(t)
	emu := env.Clerk.Emulator
	sess := emu.CreateSessions(emu.CreateUser(), 1)[0]
	c := newClient(t, env, clerkjobs.WithInboxPrefix("_OTHER"), clerkjobs.WithTimeout(time.Hour))
	// The caller gives up after 20 s: no deadline, so no last look.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	giveUp := time.AfterFunc(20*time.Second, cancel)
	defer giveUp.Stop()
	_, err := c.RevokeSession(ctx, sess, &clerkjobs.RevokeOptions{JobID: "unanswered-1"})
	var failed *clerkjobs.JobError
	if !errors.As(err, &failed) || failed.Class != jobs.ClassInvalid || failed.Field != "/reply_to" || failed.JobID != "unanswered-1" {
		t.Fatalf("RevokeSession whose reply_to the worker refused = %v; want its dead letter, invalid /reply_to, before the caller gave up", err)
	}
	if ctx.Err() != nil {
		t.Fatalf("RevokeSession returned its dead letter only once the caller gave up")
	}
}
