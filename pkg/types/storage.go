package types

import (
	"context"
	"fmt"
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

// ObjectStorage stores the objects kept beside a graph: its flow table and
// cached renderings of its views. A Storage that also implements it lets the
// worker store the table and the API answer views from it; without it, views
// are read from the stored DOT and nothing is cached.
type ObjectStorage interface {
	// StoreObject reads r until EOF and stores it as the object kind of the
	// graph id, with Store's all-or-nothing visibility. kind is lower-case
	// letters, digits and '-', at most 64 bytes, and not "dot"; it returns
	// ErrInvalidInput for an id or kind that cannot be a key.
	StoreObject(ctx context.Context, id, kind string, r io.Reader) error
	// GetObject returns a reader over the object kind of the graph id; the
	// caller closes it. It returns ErrNotFound when there is none.
	GetObject(ctx context.Context, id, kind string) (io.ReadCloser, error)
}

// ValidateObjectKind checks an object kind before it becomes part of a key.
// Errors wrap ErrInvalidInput.
func ValidateObjectKind(kind string) error {
	if kind == "" || len(kind) > 64 || kind == "dot" {
		return fmt.Errorf("%w: object kind %q", ErrInvalidInput, kind)
	}
	for i := 0; i < len(kind); i++ {
		c := kind[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return fmt.Errorf("%w: object kind %q", ErrInvalidInput, kind)
		}
	}
	return nil
}
