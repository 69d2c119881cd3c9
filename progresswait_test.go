package clerkjobs_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs"
	"github.com/clerkjobs/clerkjobs/clerkjobstest"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestRevokeAllWaitsOnWhileTheListingGetsOn: Request started its timeout
// again only when a revoke_all's done count moved, so a job still reading
// the pages of a user's sessions (done stays 0 until every page is read)
// was given up as if its worker were dead. The worker's updates say the
// pages read; while they move the wait goes on, and updates that move
// nothing still end it at the timeout.
func TestRevokeAllWaitsOnWhileTheListingGetsOn(t *testing.T) {
	const timeout = time.Second
	for _, tc := range []struct {
		name   string
		moving bool
	}{
		{"pages read move", true},
		{"nothing moves", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := clerkjobstest.New(t, clerkjobstest.WithoutWorker())
			c, err := clerkjobs.NewClient(env.Conn, clerkjobs.WithTopology(env.Topology), clerkjobs.WithTimeout(timeout))
			if err != nil {
				t.Fatal(err)
			}
			// No deadline: the client's timeout applies only then.
			ctx := t.Context()
			type outcome struct {
				res *clerkjobs.Result
				err error
			}
			done := make(chan outcome, 1)
			go func() {
				res, err := c.Request(ctx, &jobs.RevokeAllArgs{Common: jobs.Common{JobID: "listing-1"}, UserID: "user_1"})
				done <- outcome{res, err}
			}()
			stream, err := env.JetStream.Stream(ctx, env.Topology.JobsStream)
			if err != nil {
				t.Fatal(err)
			}
			replyTo, seq := storedJob(ctx, t, stream, "listing-1")
			// A listing of many slow pages: an update every fifth of the
			// timeout, for three timeouts, done 0 throughout.
			for i := range 15 {
				pages := 1
				if tc.moving {
					pages = i + 1
				}
				p := jobs.Progress{JobID: "listing-1", Op: jobs.OpRevokeAll, Outcome: jobs.InProgress, PagesRead: pages,
					Progress: jobs.RevokeAllSummary{UserID: "user_1"}}
				b, err := json.Marshal(p)
				if err != nil {
					t.Fatal(err)
				}
				if err := env.Conn.Publish(replyTo, b); err != nil {
					t.Fatal(err)
				}
				time.Sleep(timeout / 5)
			}
			res := fmt.Sprintf(`{"job_id":"listing-1","op":"revoke_all","outcome":"succeeded","attempts":1,"deliveries":1,"stream_seq":%d,"finished_at":%q,"duration_ms":1,`+
				`"result":{"user_id":"user_1","revoked":0,"already_gone":0,"failed":0,"excepted":0,"passes":1}}`, seq, time.Now().UTC().Format(time.RFC3339Nano))
			if err := env.Conn.Publish(replyTo, []byte(res)); err != nil {
				t.Fatal(err)
			}
			o := <-done
			switch {
			case tc.moving && (o.err != nil || o.res.Outcome != jobs.Succeeded):
				t.Fatalf("Request = %+v, %v; want the result sent after a listing whose pages kept coming", o.res, o.err)
			case !tc.moving && !errors.Is(o.err, clerkjobs.ErrNoResult):
				t.Fatalf("Request = %+v, %v; want ErrNoResult: the updates moved nothing", o.res, o.err)
			}
		})
	}
}
