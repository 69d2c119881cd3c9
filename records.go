package clerkjobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/jobs"
)

// A job's record is found by its subject, which holds the tenant and the id
// key (jobs.Subjects.JobResults): a direct get of the last message on that
// filter ($JS.API.DIRECT.GET.<stream>.<filter>) finds the newest without a
// scan, without STREAM.INFO, and under NATS permissions that let a service
// read its own tenant's records and no one else's.

// stored is the last message on a record filter.
type stored struct {
	msg     *nats.Msg
	subject string
	seq     uint64
	at      time.Time
}

// lookupTimeout bounds one direct get: a user without the permission gets
// no answer at all, only a timeout.
const lookupTimeout = 5 * time.Second

// lastMsg reads the last message of stream on filter; nil when there is
// none.
func (c *Client) lastMsg(ctx context.Context, stream, filter string) (*stored, error) {
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	m, err := c.nc.RequestWithContext(ctx, jetstream.DefaultAPIPrefix+"DIRECT.GET."+stream+"."+filter, nil)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return nil, unavailable(err, "read %s from stream %s: the stream does not answer direct gets (does it exist?)", filter, stream)
	case err != nil && c.inboxRefused() != "":
		return nil, unavailable(err, "read %s from stream %s: %s", filter, stream, c.inboxRefused())
	case err != nil:
		return nil, unavailable(err, "read %s from stream %s (is this NATS user allowed %sDIRECT.GET.%s.%s?)", filter, stream, jetstream.DefaultAPIPrefix, stream, filter)
	}
	switch st := m.Header.Get("Status"); st {
	case "":
	case "404":
		return nil, nil
	default:
		return nil, fmt.Errorf("read %s from stream %s: %s %s", filter, stream, st, m.Header.Get("Description"))
	}
	seq, err := strconv.ParseUint(m.Header.Get(jetstream.SequenceHeader), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("read %s from stream %s: the answer has no sequence", filter, stream)
	}
	at, _ := time.Parse(time.RFC3339Nano, m.Header.Get(jetstream.TimeStampHeaer))
	return &stored{msg: m, subject: m.Header.Get(jetstream.SubjectHeader), seq: seq, at: at}, nil
}

// latest is the newest record of a job of tenant (stored at seq of the
// jobs stream, when not 0), as a Result: a dead letter becomes a failed
// Result. It is nil when the job has no record. A result wins over a dead
// letter of the same job, stored before or after it: two deliveries may
// record both at once, and the worker then deletes the dead letter.
func (c *Client) latest(ctx context.Context, tenant, jobID string, seq uint64) (*Result, error) {
	subj := c.topo.Subjects
	res, errR := c.lastMsg(ctx, c.topo.ResultsStream, subj.JobResults(tenant, jobID, seq))
	dl, errD := c.lastMsg(ctx, c.topo.DeadLetterStream, subj.JobDeadLetters(tenant, jobID, seq))
	if res != nil && dl != nil {
		if beside, ok := subj.ResultBeside(dl.subject); ok && beside == res.subject {
			dl = nil
		}
	}
	switch {
	case dl != nil && errR != nil:
		// A result beside the dead letter, unread, would have won: the
		// job may have succeeded.
		return nil, errR
	case dl != nil && (res == nil || dl.at.After(res.at)):
		return deadLetterResult(dl, tenant)
	case res != nil:
		var rec Record
		if err := json.Unmarshal(res.msg.Data, &rec); err != nil {
			return nil, fmt.Errorf("result of job %s (stream %s, seq %d) is not a result: %w", jobID, c.topo.ResultsStream, res.seq, err)
		}
		r := newResult(rec)
		r.digest = res.msg.Header.Get(jobs.HeaderJobDigest)
		return r, nil
	}
	return nil, errors.Join(errR, errD)
}

// of reports whether r is a record of the job of digest (any job's when
// digest is empty): records carry their job's Job-Digest.
func (r *Result) of(digest string) bool {
	return r != nil && (digest == "" || r.digest == digest)
}

// deadLetterResult is the failed Result a dead letter stands for.
func deadLetterResult(s *stored, tenant string) (*Result, error) {
	d, err := jobs.ParseDeadLetter(s.msg.Header)
	if errors.Is(err, jobs.ErrNotDeadLetter) {
		return nil, fmt.Errorf("dead letter %d: %w", s.seq, err)
	}
	// Other header problems leave what could be read: enough to report.
	return &Result{Record: Record{
		JobID: d.JobID, Tenant: tenant, Op: d.Op, Outcome: jobs.Failed, Attempts: d.Attempts,
		Deliveries: d.Deliveries, StreamSeq: d.StreamSeq, FinishedAt: d.LastFailure, Worker: d.Worker, Error: &d.Error,
	}, DeadLetterSeq: s.seq, digest: s.msg.Header.Get(jobs.HeaderJobDigest)}, nil
}
