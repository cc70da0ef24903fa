// Package queuer holds the built-in types.Queuer implementations: HTTP, which
// hands jobs to a stream appliance (an event bus, or this service's own worker
// route), and Memory, a bounded in-process worker pool used when no stream
// appliance is configured and as the worker's background pool for
// "Prefer: respond-async" requests.
package queuer
