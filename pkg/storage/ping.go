package storage

import (
	"context"
	"fmt"
	"os"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/awss3"
)

// Ping reports whether the graph bucket is reachable; GET /readyz calls it.
func (s *S3) Ping(ctx context.Context) error {
	return awss3.PingBucket(ctx, s.Client, s.Bucket)
}

// Ping reports whether the graph folder exists or can be made.
func (f *File) Ping(context.Context) error {
	if err := os.MkdirAll(f.Dir, dirPerm); err != nil {
		return fmt.Errorf("graph folder: %w", err)
	}
	return nil
}
