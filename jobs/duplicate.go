package jobs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// HeaderJobDigest is set on every record (result and dead letter): Digest
// of the job's subject and body, so that a publisher told "duplicate" can
// tell its own job from another one that used the same id.
const HeaderJobDigest = "Job-Digest"

// Digest names a job by its subject and body, reply_to aside: where the
// answer goes is not what the job does, so a request sent again with the
// same job id from a new inbox is the same job (its answer went to the
// first inbox; its record says what became of it). A body that is not a
// JSON object is taken byte for byte.
func Digest(subject string, body []byte) string {
	h := sha256.New()
	h.Write([]byte(subject))
	h.Write([]byte{'\n'})
	h.Write(withoutReplyTo(body))
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// withoutReplyTo is a JSON object without its reply_to, its members in key
// order; anything else as it is.
func withoutReplyTo(body []byte) []byte {
	var obj map[string]json.RawMessage
	if json.Unmarshal(body, &obj) != nil || obj == nil {
		return body
	}
	delete(obj, "reply_to")
	b, err := json.Marshal(obj) // sorted keys, compacted values
	if err != nil {
		return body
	}
	return b
}

// ErrJobIDReused is returned when JetStream deduplicated a publish against
// a different job that used the same job id (Nats-Msg-Id) within the jobs
// stream's deduplication window: the job was NOT queued. Publish it again
// with another job id.
var ErrJobIDReused = errors.New("job id already used by a different job")

// ErrDuplicateUnverified is returned by CheckDuplicate when the job stored
// under the same id could not be read to compare (it ran already and its
// record expired, or this NATS user may not read the streams).
var ErrDuplicateUnverified = errors.New("duplicate job id: the stored job could not be compared")

// DuplicateError says which stored job a publish was deduplicated against.
type DuplicateError struct {
	JobID string
	// Seq is the stored job's sequence in the jobs stream.
	Seq uint64
	// Subject is the stored job's subject, when known.
	Subject string
	Err     error // ErrJobIDReused or ErrDuplicateUnverified
	// Gone (with ErrDuplicateUnverified): the stored job has left the jobs
	// stream and no record of it was found. Whichever job it was, this
	// one was not queued, and waiting for a record is waiting for nothing.
	Gone  bool
	cause error
}

func (e *DuplicateError) Error() string {
	if errors.Is(e.Err, ErrJobIDReused) {
		s := fmt.Sprintf("job id %s is already used by a different job (jobs stream sequence %d", e.JobID, e.Seq)
		if e.Subject != "" {
			s += " on " + e.Subject
		}
		return s + "): this job was not queued; publish it again with another job id"
	}
	s := fmt.Sprintf("job id %s was published before (jobs stream sequence %d) and the stored job could not be compared with this one", e.JobID, e.Seq)
	if e.cause != nil {
		s += ": " + e.cause.Error()
	}
	if e.Gone {
		// Whichever job it was, nothing under this id is left to run.
		return s + "; this job was not queued: publish it again with another job id"
	}
	return s + "; if it is not the same job, publish again with another job id"
}

// Unwrap lets errors.Is match ErrJobIDReused or ErrDuplicateUnverified.
func (e *DuplicateError) Unwrap() error { return e.Err }

// CheckDuplicate compares a message JetStream acknowledged as a duplicate
// with the job stored under the same id: nil when it is the same job (the
// harmless duplicate of a retried publish), a *DuplicateError wrapping
// ErrJobIDReused when it is another, or ErrDuplicateUnverified when the
// stored job can be read neither in the jobs stream (it ran already) nor as
// its record.
func CheckDuplicate(ctx context.Context, js jetstream.JetStream, subj Subjects, m *nats.Msg, ack *jetstream.PubAck) error {
	if ack == nil || !ack.Duplicate {
		return nil
	}
	tenant, o := subj.ParseJob(m.Subject)
	jobID := m.Header.Get(jetstream.MsgIDHeader)
	if a, err := Decode(o, m.Data); err == nil && a.CommonFields().JobID != "" {
		jobID = a.CommonFields().JobID
	}
	fail := func(err, cause error, subject string) error {
		return &DuplicateError{JobID: jobID, Seq: ack.Sequence, Subject: subject, Err: err, cause: cause}
	}
	want := Digest(m.Subject, m.Data)
	s, err := js.Stream(ctx, ack.Stream)
	if err != nil {
		return fail(ErrDuplicateUnverified, err, "")
	}
	stored, err := s.GetMsg(ctx, ack.Sequence)
	switch {
	case err == nil:
		if stored.Subject != m.Subject || Digest(stored.Subject, stored.Data) != want {
			return fail(ErrJobIDReused, nil, stored.Subject)
		}
		return nil
	case !errors.Is(err, jetstream.ErrMsgNotFound):
		return fail(ErrDuplicateUnverified, err, "")
	}
	// The stored job ran and left the work queue: its record says what it
	// was.
	gen := Generation(s.CachedInfo().Created)
	var unread error // a record that may be there: then the job is not known to be gone
	for _, kind := range []string{"results", "dlq"} {
		rec, err := lastRecord(ctx, js, subj.jobRecords(kind, tenant, jobID, gen, ack.Sequence))
		if err != nil {
			if !errors.Is(err, jetstream.ErrMsgNotFound) && !errors.Is(err, jetstream.ErrStreamNotFound) && unread == nil {
				unread = fmt.Errorf("it left the jobs stream and its record could not be read: %w", err)
			}
			continue
		}
		if rec.Header.Get(HeaderJobDigest) == want {
			return nil
		}
		return fail(ErrJobIDReused, nil, "")
	}
	if unread != nil {
		return fail(ErrDuplicateUnverified, unread, "")
	}
	return &DuplicateError{JobID: jobID, Seq: ack.Sequence, Err: ErrDuplicateUnverified, Gone: true,
		cause: errors.New("it left the jobs stream (it ran, or was deleted) and no record of it was found")}
}

// lastRecord reads the last message on a record filter from whichever of
// the record streams captures it.
func lastRecord(ctx context.Context, js jetstream.JetStream, filter string) (*jetstream.RawStreamMsg, error) {
	name, err := js.StreamNameBySubject(ctx, filter)
	if err != nil {
		return nil, err
	}
	s, err := js.Stream(ctx, name)
	if err != nil {
		return nil, err
	}
	return s.GetLastMsgForSubject(ctx, filter)
}
