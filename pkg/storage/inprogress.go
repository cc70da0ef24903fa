package storage

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
)

var _ types.Storage = (*InProgress)(nil)

// InProgress decorates a Storage so that a graph that is not stored yet is
// reported as being made (types.ErrInProgress) or as failed
// (*types.FailedError) when the Marker says so. A complete graph always wins
// over a mark: the stored graph is asked first, so a mark left behind by a
// crashed job can never hide a graph that exists. When neither a graph nor a
// live mark is found, the graph is asked for once more: a worker stores the
// graph and then clears its mark, so a lookup that falls between the two
// would otherwise report a finished graph as missing. Store is the wrapped
// Storage's; clearing the mark is the worker's job.
type InProgress struct {
	types.Storage
	// Marker holds the progress marks and failure records.
	Marker types.Marker
}

// Get returns the stored graph id. When there is none it returns
// types.ErrInProgress while the graph is being made, a *types.FailedError
// when the last attempt failed, and types.ErrNotFound otherwise.
func (s *InProgress) Get(ctx context.Context, id string) (io.ReadCloser, error) {
	rc, err := s.Storage.Get(ctx, id)
	if err == nil {
		return rc, nil
	}
	if !errors.Is(err, types.ErrNotFound) {
		return nil, err
	}
	if markErr := s.markError(ctx, id); markErr != nil {
		return nil, markErr
	}
	return s.Storage.Get(ctx, id)
}

// Exists reports whether the graph id is stored. When it is not, it returns
// types.ErrInProgress while the graph is being made and a *types.FailedError
// when the last attempt failed.
func (s *InProgress) Exists(ctx context.Context, id string) (bool, error) {
	ok, err := s.Storage.Exists(ctx, id)
	if err != nil || ok {
		return ok, err
	}
	if markErr := s.markError(ctx, id); markErr != nil {
		return false, markErr
	}
	return s.Storage.Exists(ctx, id)
}

// markError turns the mark for id into the error the decorator returns, or
// nil when there is no live mark.
func (s *InProgress) markError(ctx context.Context, id string) error {
	m, err := s.Marker.Check(ctx, id)
	if err != nil {
		return fmt.Errorf("%w: check progress mark %q: %w", types.ErrMarkerUnavailable, id, err)
	}
	switch m.State {
	case types.MarkInProgress:
		return fmt.Errorf("graph %s: %w", id, types.ErrInProgress)
	case types.MarkFailed:
		return &types.FailedError{ID: id, Reason: m.Reason, At: m.Since}
	default:
		return nil
	}
}

var _ types.ObjectStorage = (*InProgress)(nil)

// StoreObject stores the object through the wrapped Storage, or returns
// types.ErrNotFound (wrapped) when it keeps no objects.
func (s *InProgress) StoreObject(ctx context.Context, id, kind string, r io.Reader) error {
	objs, err := objectsOf(s.Storage, "store", id, kind)
	if err != nil {
		return err
	}
	return objs.StoreObject(ctx, id, kind, r)
}

// GetObject returns the object from the wrapped Storage, or types.ErrNotFound
// when it keeps no objects. Objects have no progress of their own: ask Get or
// Exists whether the graph is complete first.
func (s *InProgress) GetObject(ctx context.Context, id, kind string) (io.ReadCloser, error) {
	objs, err := objectsOf(s.Storage, "get", id, kind)
	if err != nil {
		return nil, err
	}
	return objs.GetObject(ctx, id, kind)
}

// objectsOf returns the ObjectStorage of a decorator's wrapped Storage, or
// an error wrapping types.ErrNotFound for op when it keeps no objects.
func objectsOf(s types.Storage, op, id, kind string) (types.ObjectStorage, error) {
	objs, ok := s.(types.ObjectStorage)
	if !ok {
		return nil, fmt.Errorf("%s object %q of %q: storage keeps no objects: %w", op, kind, id, types.ErrNotFound)
	}
	return objs, nil
}
