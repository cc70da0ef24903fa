package runtime

import (
	"context"
	"fmt"
	"net"
	"net/url"
)

// PingURL reports whether the host of u accepts TCP connections. Readiness
// checks of HTTP dependencies use it rather than a request, so a check
// neither creates work on the peer nor depends on a route it may not have.
func PingURL(ctx context.Context, u *url.URL) error {
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(u.Hostname(), port))
	if err != nil {
		return fmt.Errorf("%s unreachable: %w", u.Redacted(), err)
	}
	return conn.Close()
}
