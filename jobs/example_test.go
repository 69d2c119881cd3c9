package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/internal/embedded"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// A Go service submits a revoke job. Publish checks it against
// schemas/revoke.json and sets Nats-Msg-Id to the job id, so retrying after
// a lost acknowledgement does not revoke twice. (The embedded server
// stands in for the NATS deployment the service would connect to.)
func ExamplePublish() {
	dir, err := os.MkdirTemp("", "jobs-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	srv, err := embedded.StartConnected(embedded.Options{StoreDir: dir})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	js := srv.JetStream
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	top := jobs.DefaultTopology()
	if _, err := top.Ensure(ctx, js); err != nil { // normally done by the worker
		log.Fatal(err)
	}

	job := &jobs.RevokeArgs{
		Common:    jobs.Common{JobID: "offboard-user_42-sess_123"},
		SessionID: "sess_123",
	}
	ack, err := jobs.Publish(ctx, js, top.Subjects, job)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("stored on %s as job #%d, duplicate: %v\n", ack.Stream, ack.Sequence, ack.Duplicate)

	// The acknowledgement was lost, so the service publishes again.
	ack, err = jobs.Publish(ctx, js, top.Subjects, job)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("retry: job #%d, duplicate: %v\n", ack.Sequence, ack.Duplicate)

	// A bad job never reaches the stream.
	_, err = jobs.Publish(ctx, js, top.Subjects, &jobs.RevokeArgs{SessionID: "sess_1/../x"})
	var invalid *jobs.InvalidError
	if errors.As(err, &invalid) {
		fmt.Printf("refused: %s %s\n", invalid.Field, invalid.Reason)
	}
	// Output:
	// stored on SESSION_JOBS as job #1, duplicate: false
	// retry: job #1, duplicate: true
	// refused: /session_id "sess_1/../x" does not match the pattern ^sess_[A-Za-z0-9]+$
}

// What the worker does with a message: the subject names the op, Decode
// checks the body and returns the typed job.
func ExampleDecode() {
	var subj jobs.Subjects // the default prefix, "sessions"
	op := subj.OpOf("sessions.revoke")
	a, err := jobs.Decode(op, []byte(`{"session_id":"sess_123"}`))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s job for %s\n", a.Op(), a.(*jobs.RevokeArgs).SessionID)

	_, err = jobs.Decode(jobs.OpToken, []byte(`{"session_id":"sess_123"}`))
	fmt.Println(err)
	// Output:
	// revoke job for sess_123
	// invalid token job: /reply_to: required field is missing
}

// NewMessage builds the message without sending it, for code that
// publishes through its own connection.
func ExampleNewMessage() {
	m, err := jobs.NewMessage(jobs.Subjects{Prefix: "acme"}, &jobs.RevokeArgs{
		Common: jobs.Common{JobID: "j-1"}, SessionID: "sess_123",
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(m.Subject)
	fmt.Println(m.Header.Get(jetstream.MsgIDHeader))
	fmt.Println(string(m.Data))
	// Output:
	// acme.revoke
	// j-1
	// {"job_id":"j-1","session_id":"sess_123"}
}
