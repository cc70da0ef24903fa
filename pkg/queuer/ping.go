package queuer

import (
	"context"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/runtime"
)

// Ping reports whether the event bus accepts connections; GET /readyz calls
// it.
func (q *HTTP) Ping(ctx context.Context) error {
	return runtime.PingURL(ctx, q.Endpoint)
}
