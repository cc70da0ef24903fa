package types

import (
	"context"
	"io"
	"time"
)

// Digester makes VPC flow log digests: one version 2 flow log record per line,
// covering a window of time.
type Digester interface {
	// Digest returns a reader over the digest for [start, stop); the caller
	// closes it. A failure that no retry can fix is returned as a permanent
	// error (see IsPermanent); ErrNoSource when there is nowhere to read from.
	Digest(ctx context.Context, start, stop time.Time) (io.ReadCloser, error)
}
