package marker

import (
	"context"
	"fmt"
	"os"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/awss3"
)

// Ping reports whether the progress bucket is reachable; GET /readyz calls it.
func (m *S3) Ping(ctx context.Context) error {
	return awss3.PingBucket(ctx, m.Client, m.Bucket)
}

// Ping reports whether the progress folder exists or can be made.
func (m *File) Ping(context.Context) error {
	if err := os.MkdirAll(m.Dir, dirPerm); err != nil {
		return fmt.Errorf("progress folder: %w", err)
	}
	return nil
}
