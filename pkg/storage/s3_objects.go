package storage

import (
	"context"
	"io"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
)

var _ types.ObjectStorage = (*S3)(nil)

// StoreObject streams r to S3 as the object <id>.<kind> beside the graph,
// visible only once complete, as Store does for the graph.
func (s *S3) StoreObject(ctx context.Context, id, kind string, r io.Reader) error {
	if err := validateObject(id, kind); err != nil {
		return err
	}
	return s.upload(ctx, objectKey(id, kind), objectContentType(kind), r)
}

// GetObject streams the object <id>.<kind>, or returns types.ErrNotFound.
func (s *S3) GetObject(ctx context.Context, id, kind string) (io.ReadCloser, error) {
	if err := validateObject(id, kind); err != nil {
		return nil, err
	}
	return s.get(ctx, objectKey(id, kind))
}
