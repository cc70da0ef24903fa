package queuer

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// received is one request as the stream appliance saw it.
type received struct {
	method, path, query, contentType, prefer string
	body                                     []byte
}

// applianceServer records requests and answers with status and body.
func applianceServer(t *testing.T, status int, body string) (*httptest.Server, *http.Client, func() []received) {
	t.Helper()
	var mu sync.Mutex
	var got []received
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, received{
			method: r.Method, path: r.URL.Path, query: r.URL.RawQuery,
			contentType: r.Header.Get("Content-Type"), prefer: r.Header.Get("Prefer"), body: b,
		})
		mu.Unlock()
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	transport := &http.Transport{}
	t.Cleanup(func() {
		transport.CloseIdleConnections()
		srv.Close()
	})
	return srv, &http.Client{Transport: transport}, func() []received {
		mu.Lock()
		defer mu.Unlock()
		return append([]received(nil), got...)
	}
}

func testJob() types.Job {
	zone := time.FixedZone("UTC-7", -7*3600)
	return types.Job{
		ID:    "8e0b8d9c-6b0b-5b0e-9b8a-000000000001",
		Start: time.Date(2026, 11, 1, 3, 0, 0, 5, zone),
		Stop:  time.Date(2026, 11, 1, 4, 0, 0, 0, zone),
	}
}

func TestHTTPQueuePosts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, path, wantPath, wantQuery string
	}{
		{name: "bare address goes to the worker route", path: "", wantPath: DefaultJobPath},
		{name: "root path goes to the worker route", path: "/", wantPath: DefaultJobPath},
		{name: "a path is kept", path: "/topics/graphs/events", wantPath: "/topics/graphs/events"},
		{name: "a query is kept", path: "/bus?token=abc", wantPath: "/bus", wantQuery: "token=abc"},
		{name: "root with query", path: "/?a=1", wantPath: DefaultJobPath, wantQuery: "a=1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, client, got := applianceServer(t, http.StatusAccepted, "")
			u, err := url.Parse(srv.URL + tt.path)
			require.NoError(t, err)
			q := &HTTP{Endpoint: u, Client: client}
			require.NoError(t, q.Queue(context.Background(), testJob()))

			reqs := got()
			require.Len(t, reqs, 1)
			r := reqs[0]
			require.Equal(t, http.MethodPost, r.method)
			require.Equal(t, tt.wantPath, r.path)
			require.Equal(t, tt.wantQuery, r.query)
			require.Equal(t, "application/json", r.contentType)
			require.Equal(t, "respond-async", r.prefer)
			require.JSONEq(t, `{"id":"8e0b8d9c-6b0b-5b0e-9b8a-000000000001",
				"start":"2026-11-01T10:00:00.000000005Z","stop":"2026-11-01T11:00:00Z"}`, string(r.body))

			// The worker decodes it back to the same job.
			var back types.Job
			require.NoError(t, json.Unmarshal(r.body, &back))
			require.Equal(t, testJob().ID, back.ID)
			require.True(t, testJob().Start.Equal(back.Start))
			require.True(t, testJob().Stop.Equal(back.Stop))
		})
	}
}

func TestHTTPQueueStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status  int
		body    string
		wantErr bool
	}{
		{status: http.StatusOK},
		{status: http.StatusCreated},
		{status: http.StatusAccepted},
		{status: http.StatusNoContent},
		{status: http.StatusBadRequest, body: `{"message":"bad job"}`, wantErr: true},
		{status: http.StatusNotFound, body: "no route", wantErr: true},
		{status: http.StatusInternalServerError, body: strings.Repeat("y", 4096), wantErr: true},
		{status: http.StatusServiceUnavailable, body: "", wantErr: true},
		{status: http.StatusNotModified, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			t.Parallel()
			srv, client, _ := applianceServer(t, tt.status, tt.body)
			u, err := url.Parse(srv.URL)
			require.NoError(t, err)
			err = (&HTTP{Endpoint: u, Client: client}).Queue(context.Background(), testJob())
			if !tt.wantErr {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			require.Contains(t, err.Error(), strconv.Itoa(tt.status))
			require.Contains(t, err.Error(), testJob().ID)
			if tt.body != "" {
				require.NotContains(t, err.Error(), tt.body[:min(len(tt.body), 8)], "the body is never quoted")
			}
		})
	}
}

func TestHTTPQueueTransportErrors(t *testing.T) {
	t.Parallel()
	srv, client, _ := applianceServer(t, http.StatusOK, "")
	u, err := url.Parse(srv.URL)
	require.NoError(t, err)
	q := &HTTP{Endpoint: u, Client: client}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, q.Queue(ctx, testJob()), context.Canceled)

	srv.Close()
	require.Error(t, q.Queue(context.Background(), testJob()))

	require.Error(t, (&HTTP{}).Queue(context.Background(), testJob()))
}

func TestHTTPQueueHang(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	transport := &http.Transport{}
	t.Cleanup(func() {
		close(release)
		transport.CloseIdleConnections()
		srv.Close()
	})
	u, err := url.Parse(srv.URL)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err = (&HTTP{Endpoint: u, Client: &http.Client{Transport: transport}}).Queue(ctx, testJob())
	require.ErrorIs(t, err, context.DeadlineExceeded)
}
