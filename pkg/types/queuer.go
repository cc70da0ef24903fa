package types

import (
	"context"
	"time"
)

// Job asks a worker to make the graph id for the window [Start, Stop).
type Job struct {
	ID    string    `json:"id"`
	Start time.Time `json:"start"`
	Stop  time.Time `json:"stop"`
}

// Queuer hands graph jobs to a worker.
type Queuer interface {
	// Queue hands the job over and returns once the job is certain to reach a
	// worker eventually; it does not wait for the graph to be made.
	Queue(ctx context.Context, job Job) error
}
