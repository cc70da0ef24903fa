package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
)

var _ types.ObjectStorage = (*File)(nil)

// StoreObject writes r as <Dir>/<id>.<kind> beside the graph, atomically as
// Store writes the graph.
func (f *File) StoreObject(ctx context.Context, id, kind string, r io.Reader) error {
	if err := validateObject(id, kind); err != nil {
		return err
	}
	return f.storeFile(ctx, id, filepath.Join(f.Dir, objectKey(id, kind)), r)
}

// GetObject opens <Dir>/<id>.<kind>, or returns types.ErrNotFound.
func (f *File) GetObject(ctx context.Context, id, kind string) (io.ReadCloser, error) {
	if err := validateObject(id, kind); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("file get %q: %w", objectKey(id, kind), err)
	}
	fh, err := os.Open(filepath.Join(f.Dir, objectKey(id, kind)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("file get %q: %w", objectKey(id, kind), types.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("file get %q: %w", objectKey(id, kind), err)
	}
	return fh, nil
}
