package digester

import (
	"context"
	"fmt"
	"os"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/awss3"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/runtime"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
)

// Ping reports whether vpcflow-digesterd accepts connections; GET /readyz
// calls it.
func (h *HTTP) Ping(ctx context.Context) error {
	return runtime.PingURL(ctx, h.Endpoint)
}

// Ping reports whether the flow log source can be read. A digester with no
// source is not ready: every job would fail.
func (b *Builtin) Ping(ctx context.Context) error {
	switch src := b.Source.(type) {
	case nil:
		return fmt.Errorf("%w: set FLOW_LOGS_DIR, VPC_FLOW_LOGS_BUCKET or DIGESTER_ENDPOINT", types.ErrNoSource)
	case Dir:
		fi, err := os.Stat(src.Path)
		if err != nil {
			return fmt.Errorf("flow log folder: %w", err)
		}
		if !fi.IsDir() {
			return fmt.Errorf("flow log folder %q is not a folder", src.Path)
		}
		return nil
	case *Bucket:
		return awss3.PingBucket(ctx, src.Client, src.Bucket)
	default:
		return nil
	}
}
