package digester

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/runtime"
)

// TestHTTPDigestRedirectIsNotFollowed: a digester that redirects the
// create-digest POST elsewhere gets a failed digest with its status; the
// service's client never sends the POST on, and nothing the other host says
// reaches the error.
func TestHTTPDigestRedirectIsNotFollowed(t *testing.T) {
	t.Parallel()
	const secret = "metadata-credentials"
	var hits atomic.Int32
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		_, _ = io.WriteString(w, secret)
	}))
	t.Cleanup(elsewhere.Close)
	for _, code := range []int{http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		digesterd := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, elsewhere.URL+"/latest/meta-data", code)
		}))
		t.Cleanup(digesterd.Close)
		u, err := url.Parse(digesterd.URL)
		require.NoError(t, err)
		client := runtime.NewHTTPClient(runtime.ClientOptions{})
		t.Cleanup(client.CloseIdleConnections)
		_, err = (&HTTP{Endpoint: u, Client: client}).Digest(context.Background(), testStart, testStop)
		require.Error(t, err)
		require.Contains(t, err.Error(), "unexpected status")
		require.NotContains(t, err.Error(), secret)
	}
	require.Zero(t, hits.Load(), "the POST never reached the other host")
}
