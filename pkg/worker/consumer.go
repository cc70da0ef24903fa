package worker

import "context"

// Consumer takes jobs from a transport (the in-process pool, a JetStream
// consumer, an SQS queue) and runs each through a Handler, settling every
// delivery by the Result it returns. The Service starts its consumers in
// Start and drains them in Shutdown; a consumer speaks its engine's words
// (ack, nak, visibility) only inside its own file.
type Consumer interface {
	// Run takes jobs and calls h for each, at most the consumer's own
	// concurrency at once, until Drain is called or ctx is done. It blocks
	// for as long as the consumer runs and returns nil after a drain, or the
	// error that stopped it (ctx's error when ctx ended it). Cancelling ctx
	// cancels the contexts of the running handlers. A consumer reconnects to
	// its engine on its own; Run returns an error only when it cannot go on.
	Run(ctx context.Context, h Handler) error
	// Drain stops taking jobs and waits for the running handlers to return.
	// When ctx ends first it cancels their contexts (each handler then
	// clears its mark and returns Retry), waits for them to return, releases
	// every job taken but not run for redelivery at once, and returns an
	// error wrapping ctx's error. Drain may be called before Run, or more
	// than once; it returns once no handler of this consumer runs.
	Drain(ctx context.Context) error
}
