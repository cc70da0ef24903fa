package queuer

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
)

// TestHTTPQueueFullBus: a bus answering 503 or 429 is full, which callers
// match as types.ErrQueueFull; other failures are not, and no answer's body
// reaches the error.
func TestHTTPQueueFullBus(t *testing.T) {
	t.Parallel()
	const secret = "secret-from-the-bus"
	for _, tt := range []struct {
		status int
		full   bool
	}{
		{http.StatusServiceUnavailable, true},
		{http.StatusTooManyRequests, true},
		{http.StatusInternalServerError, false},
		{http.StatusBadGateway, false},
		{http.StatusBadRequest, false},
	} {
		t.Run(strconv.Itoa(tt.status), func(t *testing.T) {
			t.Parallel()
			srv, client, _ := applianceServer(t, tt.status, secret)
			u, err := url.Parse(srv.URL)
			require.NoError(t, err)
			err = (&HTTP{Endpoint: u, Client: client}).Queue(context.Background(), testJob())
			require.Error(t, err)
			require.Equal(t, tt.full, errors.Is(err, types.ErrQueueFull), "%v", err)
			require.NotContains(t, err.Error(), secret)
			require.Contains(t, err.Error(), strconv.Itoa(tt.status))
		})
	}
}

// TestHTTPQueueToken: with a token set, each post carries it as a bearer
// token; without one, no Authorization header is sent.
func TestHTTPQueueToken(t *testing.T) {
	t.Parallel()
	for _, token := range []string{"", "s3cr3t-token"} {
		t.Run("token="+token, func(t *testing.T) {
			t.Parallel()
			got := make(chan string, 1)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got <- r.Header.Get("Authorization")
				w.WriteHeader(http.StatusAccepted)
			}))
			t.Cleanup(srv.Close)
			u, err := url.Parse(srv.URL)
			require.NoError(t, err)
			transport := &http.Transport{}
			t.Cleanup(transport.CloseIdleConnections)
			q := &HTTP{Endpoint: u, Client: &http.Client{Transport: transport}, Token: token}
			require.NoError(t, q.Queue(context.Background(), testJob()))
			want := ""
			if token != "" {
				want = "Bearer " + token
			}
			require.Equal(t, want, <-got)
		})
	}
}
