package runtime

import (
	"context"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestPingURL(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	u := &url.URL{Scheme: "http", Host: ln.Addr().String(), Path: "/grapherd/job"}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, PingURL(ctx, u))
	require.NoError(t, ln.Close())
	err = PingURL(ctx, u)
	require.Error(t, err)
	require.Contains(t, err.Error(), "unreachable")

	withSecret := &url.URL{Scheme: "http", User: url.UserPassword("bus", "hunter2"), Host: ln.Addr().String()}
	require.NotContains(t, PingURL(ctx, withSecret).Error(), "hunter2", "a password in the URL must not reach readiness output")
}
