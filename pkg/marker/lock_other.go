//go:build !unix

package marker

import (
	"context"
	"os"
	"time"
)

// lockFile is a no-op where flock(2) does not exist: the File marker's mutex
// still serializes takeovers within one process, but two processes sharing
// a folder are not kept apart.
func lockFile(ctx context.Context, f *os.File, poll time.Duration) error {
	return ctx.Err()
}
