package types

import (
	"context"
	"io"
)

// Storage stores and retrieves DOT graphs by id.
type Storage interface {
	// Get returns a reader over the complete graph stored under id; the caller
	// closes it. It returns ErrNotFound when no complete graph exists. The
	// in-progress decorator also returns ErrInProgress while the graph is being
	// made, a *FailedError when the last attempt failed, and an error
	// wrapping ErrMarkerUnavailable when the marker cannot be asked.
	Get(ctx context.Context, id string) (io.ReadCloser, error)
	// Exists reports whether a complete graph is stored under id without
	// reading it. The in-progress decorator returns ErrInProgress while the
	// graph is being made, a *FailedError when the last attempt failed, and
	// an error wrapping ErrMarkerUnavailable when the marker cannot be asked.
	Exists(ctx context.Context, id string) (bool, error)
	// Store reads the graph from r until EOF and stores it under id. The graph
	// becomes visible to Get only once all of r was read and written: when r
	// or the backend fails, nothing (or the previous complete graph) stays
	// visible. It returns ErrInvalidInput for an id that cannot be a key.
	Store(ctx context.Context, id string, r io.Reader) error
}
