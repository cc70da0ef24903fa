package runtime

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestHTTPClientRedirects: a POST is never sent on, whatever the redirect
// status, and no call follows a redirect to another host; the 3xx itself is
// what the caller gets, with nothing from the other host. A GET redirected
// on the same host is still followed.
func TestHTTPClientRedirects(t *testing.T) {
	t.Parallel()
	const secret = "secret-behind-the-redirect"
	var elsewhereHits atomic.Int32
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		elsewhereHits.Add(1)
		_, _ = io.WriteString(w, secret)
	}))
	t.Cleanup(elsewhere.Close)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/here":
			_, _ = io.WriteString(w, "same host")
		case "/local":
			http.Redirect(w, r, "/here", http.StatusFound)
		default:
			code := http.StatusTemporaryRedirect
			if r.URL.Query().Get("code") == "302" {
				code = http.StatusFound
			}
			http.Redirect(w, r, elsewhere.URL+"/steal", code)
		}
	}))
	t.Cleanup(origin.Close)
	c := NewHTTPClient(ClientOptions{})
	t.Cleanup(c.CloseIdleConnections)

	do := func(method, path string) (int, string) {
		t.Helper()
		var body io.Reader
		if method == http.MethodPost {
			body = bytes.NewReader([]byte(`{"id":"x"}`))
		}
		req, err := http.NewRequest(method, origin.URL+path, body)
		require.NoError(t, err)
		res, err := c.Do(req)
		require.NoError(t, err)
		defer func() { _ = res.Body.Close() }()
		b, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		return res.StatusCode, string(b)
	}

	for _, tt := range []struct {
		method, path string
		want         int
	}{
		{http.MethodPost, "/away", http.StatusTemporaryRedirect},
		{http.MethodPost, "/away?code=302", http.StatusFound},
		{http.MethodPost, "/local", http.StatusFound},
		{http.MethodGet, "/away", http.StatusTemporaryRedirect},
		{http.MethodHead, "/away", http.StatusTemporaryRedirect},
	} {
		status, body := do(tt.method, tt.path)
		require.Equal(t, tt.want, status, "%s %s", tt.method, tt.path)
		require.False(t, strings.Contains(body, secret), "%s %s", tt.method, tt.path)
	}
	require.Zero(t, elsewhereHits.Load(), "no request reached the other host")

	status, body := do(http.MethodGet, "/local")
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "same host", body)
}
