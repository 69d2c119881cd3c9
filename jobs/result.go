package jobs

import (
	"encoding/json"
	"time"
)

// Outcome is how a job ended.
type Outcome string

// Outcomes.
const (
	Succeeded Outcome = "succeeded"
	Failed    Outcome = "failed"
)

// Result is the message a finished job produces (schemas/result.json). The
// worker stores it on <prefix>.results.<op> when the job succeeded and sends
// it to the job's reply_to whatever the outcome; Secret is set only in that
// reply.
type Result struct {
	JobID      string    `json:"job_id"`
	Op         Op        `json:"op"`
	Outcome    Outcome   `json:"outcome"`
	Attempts   int       `json:"attempts"`
	Deliveries int       `json:"deliveries"`
	StreamSeq  uint64    `json:"stream_seq,omitempty"`
	EnqueuedAt time.Time `json:"enqueued_at,omitzero"`
	StartedAt  time.Time `json:"started_at,omitzero"`
	FinishedAt time.Time `json:"finished_at"`
	DurationMS float64   `json:"duration_ms"`
	Worker     string    `json:"worker,omitempty"`
	// Result is the Clerk answer; null for token and refresh jobs.
	Result          json.RawMessage `json:"result,omitempty"`
	AlreadyRevoked  bool            `json:"already_revoked,omitempty"`
	SecretDelivered bool            `json:"secret_delivered,omitempty"`
	// Secret is the token or cookies of a token or refresh job, present
	// only in the message sent to reply_to.
	Secret json.RawMessage `json:"secret,omitempty"`
	Error  *ErrorInfo      `json:"error,omitempty"`
}

// ErrorClass says why a job was dead-lettered.
type ErrorClass string

// Error classes.
const (
	// ClassInvalid: the message is not a valid job (not JSON, fails its
	// schema, unknown subject). Fix the publisher.
	ClassInvalid ErrorClass = "invalid"
	// ClassPermanent: Clerk refused the request (400, 404, 422, a refresh
	// token that is not valid). Sending it again cannot succeed.
	ClassPermanent ErrorClass = "permanent"
	// ClassExhausted: Clerk kept failing with retryable errors until the
	// max-deliveries budget ran out. Replay it once Clerk is healthy.
	ClassExhausted ErrorClass = "exhausted"
	// ClassMaxDeliveries: JetStream gave up delivering the job without the
	// worker finishing it (worker crashes, ack timeouts).
	ClassMaxDeliveries ErrorClass = "max_deliveries"
)

// ErrorClasses lists the classes, in a stable order.
func ErrorClasses() []ErrorClass {
	return []ErrorClass{ClassInvalid, ClassPermanent, ClassExhausted, ClassMaxDeliveries}
}

// ErrorInfo describes why a job failed.
type ErrorInfo struct {
	Class        ErrorClass `json:"class"`
	Message      string     `json:"message"`
	HTTPStatus   int        `json:"http_status,omitempty"`
	ClerkCode    string     `json:"clerk_code,omitempty"`
	ClerkMessage string     `json:"clerk_message,omitempty"`
	TraceID      string     `json:"trace_id,omitempty"`
	Field        string     `json:"field,omitempty"`
}
