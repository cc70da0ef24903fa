// Package runtime is what the service runs on: configuration read from an
// injected environment and validated in one place, the JSON logger and the
// seed's log event names, DogStatsD stats, an HTTP server with timeouts,
// connection metrics and graceful shutdown, signal handling and a retrying
// HTTP client. It replaces the seed's runhttp, transport, settings and
// logevent libraries with maintained ones, keeping their variable names and
// defaults. Its name shadows the standard library's runtime package; callers
// that need both import one under an alias.
package runtime
