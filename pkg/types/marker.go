package types

import (
	"context"
	"time"
)

// MarkState is what a progress mark says about a graph.
type MarkState int

const (
	// MarkNone means no live mark: none was set, it was cleared, or it expired.
	MarkNone MarkState = iota
	// MarkInProgress means a job for the graph was queued or is running.
	MarkInProgress
	// MarkFailed means the last job for the graph failed; Mark.Reason says why.
	MarkFailed
)

// String returns the state's name.
func (s MarkState) String() string {
	switch s {
	case MarkInProgress:
		return "in_progress"
	case MarkFailed:
		return "failed"
	default:
		return "none"
	}
}

// Mark is the progress state of one graph.
type Mark struct {
	// State is what the mark says.
	State MarkState
	// Since is when the mark was set or the failure recorded.
	Since time.Time
	// Reason says why the graph failed, for MarkFailed.
	Reason string
}

// Marker records which graphs are being made and which failed. Marks set by
// Mark expire after the marker's timeout, so a crashed job cannot hold a
// window forever. Every in-progress mark has an owner, named by the token
// Mark or Claim returned: only its owner may refresh, clear or fail it, so a
// run whose mark expired and was taken over cannot touch the newer run's
// mark. A mark written by the original service has no owner; the empty
// token owns it.
type Marker interface {
	// Mark atomically sets the in-progress mark for id and returns its owner
	// token. Of any number of concurrent calls for the same id, exactly one
	// succeeds; the others return ErrInProgress. A missing, expired or
	// failed mark is replaced.
	Mark(ctx context.Context, id string) (token string, err error)
	// Claim takes the mark for id for a new owner and returns the new token:
	// it succeeds where Mark would, and also when the live mark's owner is
	// token, which hands the mark the API set over to the worker running the
	// job. It returns ErrInProgress when another owner holds a live mark; of
	// concurrent claims with one token, exactly one succeeds.
	Claim(ctx context.Context, id, token string) (string, error)
	// Refresh sets the in-progress mark for id to the current time, so it
	// holds for another full timeout. The worker making a graph calls it
	// while the job runs, so a job longer than the timeout keeps its window.
	// It returns ErrNotFound, and changes nothing, when the mark was cleared
	// or replaced by a failure record, and ErrNotOwner when another owner
	// holds it.
	Refresh(ctx context.Context, id, token string) error
	// Unmark removes the mark for id when token owns it. Removing a missing
	// mark is not an error; another owner's mark is left alone and
	// ErrNotOwner returned.
	Unmark(ctx context.Context, id, token string) error
	// Fail replaces the mark for id with a failure record carrying reason,
	// when there is no mark or token owns it; else it returns ErrNotOwner.
	// The record stays owned by token. Failure records do not expire; Mark
	// replaces them.
	Fail(ctx context.Context, id, token, reason string) error
	// Check returns the mark for id. An expired in-progress mark, or none,
	// is reported as MarkNone with a nil error.
	Check(ctx context.Context, id string) (Mark, error)
}
