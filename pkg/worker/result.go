// Package worker runs graph jobs: digest -> graph -> store -> mark. It knows no
// transport: the HTTP worker route, the in-process pool and each queue
// consumer call a Handler and translate its Result into their own terms (a
// status code, an ack, a nak).
package worker

import (
	"context"
	"time"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
)

// Outcome says what became of one delivery of a job.
type Outcome int

const (
	// Done means the graph is stored (now, or by an earlier delivery): the
	// delivery is acknowledged and never repeated.
	Done Outcome = iota
	// Permanent means no retry can help (a malformed job or digest, no flow
	// logs in the window, a job retried too often): the failure record is
	// written and the delivery is acknowledged, never redelivered.
	Permanent
	// Retry means a later delivery may succeed (a dependency failed, the
	// pool is full, the process is shutting down): the delivery is released
	// for redelivery, after Result.RetryAfter when that is set.
	Retry
	// Busy means another live run holds the window's progress mark and is
	// making the graph now; this delivery made nothing. A queue consumer
	// releases it for redelivery after Result.RetryAfter, so the job is not
	// lost if that other run dies; the HTTP route answers 409 (202 when the
	// caller asked for async).
	Busy
)

// String returns the outcome's name, as used in logs and metric tags.
func (o Outcome) String() string {
	switch o {
	case Done:
		return "done"
	case Permanent:
		return "permanent"
	case Retry:
		return "retry"
	case Busy:
		return "busy"
	default:
		return "unknown"
	}
}

// Result is what a Handler made of one delivery.
type Result struct {
	// Outcome says how the transport should settle the delivery.
	Outcome Outcome
	// Err is the failure, for Permanent and Retry (and the reason for Busy);
	// nil for Done. It is for logs: its text may name internal hosts and
	// buckets and never reaches an unauthenticated client.
	Err error
	// RetryAfter, for Retry and Busy, is how long to wait before the next
	// delivery; zero lets the transport choose its own backoff.
	RetryAfter time.Duration
}

// Delivery describes one delivery of a job, as far as its transport knows.
type Delivery struct {
	// Attempt counts deliveries of this job, starting at 1; zero when the
	// transport does not count them (an HTTP event bus).
	Attempt int
	// MaxAttempts is the transport's limit of deliveries
	// (GRAPHERD_QUEUE_MAX_DELIVER); zero means unbounded. On the last
	// attempt a retryable failure is recorded as final, saying how many
	// tries were made, since the message goes to the dead-letter
	// destination next.
	MaxAttempts int
}

// Last reports whether this is the last delivery the transport will make.
func (d Delivery) Last() bool { return d.MaxAttempts > 0 && d.Attempt >= d.MaxAttempts }

// Handler runs one delivery of a job to its end and says how to settle it.
// It returns when the job is done, failed, or ctx is cancelled (then with
// Retry, the mark cleared, so that another worker can take the job at once).
type Handler func(ctx context.Context, job types.Job, d Delivery) Result
