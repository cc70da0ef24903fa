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
	// Token is the owner token of the progress mark the API set for the job;
	// the worker claims the mark with it. Empty for jobs from the original
	// service, whose marks have no owner.
	Token string `json:"token,omitempty"`
}

// Queuer hands graph jobs to a worker.
type Queuer interface {
	// Queue hands the job over and returns once the job is certain to reach a
	// worker eventually; it does not wait for the graph to be made.
	Queue(ctx context.Context, job Job) error
}
