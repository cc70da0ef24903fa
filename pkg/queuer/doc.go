// Package queuer holds the built-in types.Queuer implementations: HTTP, which
// hands jobs to a stream appliance (an event bus, or this service's own worker
// route), and Memory, a bounded in-process worker pool used when no stream
// appliance is configured and as the worker's background pool for
// "Prefer: respond-async" requests.
//
// JetStream (NATS JetStream) and SQS (Amazon SQS) are queue engines for API
// and worker processes apart: each is both the types.Queuer the API hands
// jobs to and the worker.Consumer workers take them from, one file per
// engine with both sides in it. They share one consumer loop (consume.go)
// that bounds the jobs run at once, keeps each alive while it runs, settles
// it by the worker.Result and drains on shutdown; the engine's own words
// (ack, nak, visibility, advisory) stay in its file.
package queuer
