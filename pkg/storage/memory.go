package storage

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
)

var _ types.Storage = (*Memory)(nil)

// Memory keeps graphs in memory, for tests and for programs that embed the
// service and need no persistence. It holds each graph whole by nature. The
// zero value is ready to use.
type Memory struct {
	mu      sync.RWMutex
	graphs  map[string][]byte
	objects map[string][]byte
}

// Get returns the graph id, or types.ErrNotFound.
func (m *Memory) Get(ctx context.Context, id string) (io.ReadCloser, error) {
	if err := validateID(id); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memory get %q: %w", id, err)
	}
	m.mu.RLock()
	b, ok := m.graphs[id]
	m.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("memory get %q: %w", id, types.ErrNotFound)
	}
	// Stored slices are replaced, never modified, so readers can share them.
	return io.NopCloser(bytes.NewReader(b)), nil
}

// Exists reports whether the graph id is stored.
func (m *Memory) Exists(ctx context.Context, id string) (bool, error) {
	if err := validateID(id); err != nil {
		return false, err
	}
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("memory exists %q: %w", id, err)
	}
	m.mu.RLock()
	_, ok := m.graphs[id]
	m.mu.RUnlock()
	return ok, nil
}

// Store reads r to its end and then replaces the graph id; when r fails or
// ctx ends first, the previous graph stays.
func (m *Memory) Store(ctx context.Context, id string, r io.Reader) error {
	if err := validateID(id); err != nil {
		return err
	}
	b, err := io.ReadAll(ctxReader{ctx: ctx, r: r})
	if err != nil {
		return fmt.Errorf("memory store %q: %w", id, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory store %q: %w", id, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.graphs == nil {
		m.graphs = make(map[string][]byte)
	}
	m.graphs[id] = b
	return nil
}

var _ types.ObjectStorage = (*Memory)(nil)

// StoreObject keeps r as the object kind of graph id once r is read whole.
func (m *Memory) StoreObject(ctx context.Context, id, kind string, r io.Reader) error {
	if err := validateObject(id, kind); err != nil {
		return err
	}
	b, err := io.ReadAll(ctxReader{ctx: ctx, r: r})
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return fmt.Errorf("memory store %q: %w", objectKey(id, kind), err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.objects == nil {
		m.objects = make(map[string][]byte)
	}
	m.objects[objectKey(id, kind)] = b
	return nil
}

// GetObject returns the object kind of graph id, or types.ErrNotFound.
func (m *Memory) GetObject(ctx context.Context, id, kind string) (io.ReadCloser, error) {
	if err := validateObject(id, kind); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memory get %q: %w", objectKey(id, kind), err)
	}
	m.mu.RLock()
	b, ok := m.objects[objectKey(id, kind)]
	m.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("memory get %q: %w", objectKey(id, kind), types.ErrNotFound)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}
