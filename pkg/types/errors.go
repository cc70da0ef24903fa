package types

import (
	"errors"
	"fmt"
	"time"
)

var (
	// ErrNotFound is returned when no graph, mark or digest exists for an id.
	ErrNotFound = errors.New("not found")
	// ErrInProgress is returned when a graph is being made: a live progress mark
	// exists for its id.
	ErrInProgress = errors.New("graph is in progress")
	// ErrNotOwner is returned by a Marker asked to refresh, clear or fail a
	// mark that another run owns now.
	ErrNotOwner = errors.New("progress mark has another owner")
	// ErrFailed matches every *FailedError with errors.Is.
	ErrFailed = errors.New("graph failed")
	// ErrInvalidInput is returned, wrapped with the reason, for input that can
	// never succeed: a malformed window, job or key.
	ErrInvalidInput = errors.New("invalid input")
	// ErrMalformedDigest is returned when a digest holds no usable flow record
	// but does hold malformed lines, or breaks a limit such as the line length.
	ErrMalformedDigest = errors.New("malformed digest")
	// ErrDigestTooLarge is returned when a digest is larger than the configured
	// limit.
	ErrDigestTooLarge = errors.New("digest too large")
	// ErrMarkerUnavailable wraps a Marker's failure where it surfaces through
	// another module, such as the in-progress decorator of Storage, so the
	// failure is still put down to the marker.
	ErrMarkerUnavailable = errors.New("progress marker unavailable")
	// ErrQueueFull is returned (wrapped) by a queuer that cannot take another
	// job now; the API answers 503 with Retry-After.
	ErrQueueFull = errors.New("job queue is full")
	// ErrQueueUnavailable is returned (wrapped) by a queuer whose queue
	// engine cannot be reached now; like ErrQueueFull, the API answers 503
	// with Retry-After, since the engine's return will let the job in.
	ErrQueueUnavailable = errors.New("job queue is unavailable")
	// ErrNoSource is returned by a digester that has nowhere to read flow logs
	// from.
	ErrNoSource = errors.New("no flow log source configured")
)

// FailedError is the failure record a worker leaves behind when making a graph
// failed. It matches ErrFailed with errors.Is.
type FailedError struct {
	// ID is the graph id.
	ID string
	// Reason says why the graph could not be made.
	Reason string
	// At is when the failure was recorded.
	At time.Time
}

// Error implements error.
func (e *FailedError) Error() string {
	return fmt.Sprintf("graph %s failed at %s: %s", e.ID, e.At.UTC().Format(time.RFC3339), e.Reason)
}

// Is reports whether target is ErrFailed.
func (e *FailedError) Is(target error) bool { return target == ErrFailed }

// PermanentError marks an error that no retry can fix, such as a digest that
// is malformed beyond repair. The worker answers such a job with a 4xx so an
// event bus does not redeliver it.
type PermanentError struct{ Err error }

// Error implements error.
func (e *PermanentError) Error() string { return e.Err.Error() }

// Unwrap returns the wrapped error.
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err as a PermanentError; a nil err stays nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err}
}

// IsPermanent reports whether err, or any error it wraps, is permanent:
// a PermanentError, ErrInvalidInput, ErrMalformedDigest or ErrDigestTooLarge.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p) || errors.Is(err, ErrInvalidInput) ||
		errors.Is(err, ErrMalformedDigest) || errors.Is(err, ErrDigestTooLarge)
}
