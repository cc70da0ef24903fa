package grapherd

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/stretchr/testify/require"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/marker"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/runtime"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/storage"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
)

// roleConfig is the configuration of an empty environment in role.
func roleConfig(t *testing.T, role string) *runtime.Config {
	t.Helper()
	cfg, err := runtime.Load(func(string) string { return "" })
	require.NoError(t, err)
	cfg.Role = role
	return cfg
}

// TestLifecycleExplicit builds, starts, binds and drains the service step by
// step, as a program with its own consumers would.
func TestLifecycleExplicit(t *testing.T) {
	t.Parallel()
	s := &Service{Config: roleConfig(t, runtime.RoleAll), Storage: &storage.Memory{}, Marker: &marker.Memory{Timeout: time.Minute}, Digester: staticDigest(sampleV2)}
	require.NoError(t, s.Init(context.Background()))
	require.NoError(t, s.Init(context.Background()), "Init twice does nothing")
	require.NoError(t, s.Start(context.Background()))
	require.NoError(t, s.Start(context.Background()), "Start twice does nothing")
	router := chi.NewRouter()
	require.NoError(t, s.BindRoutes(router))
	require.Error(t, s.BindRoutes(chi.NewRouter()), "routes are bound once")
	srv := httptest.NewServer(router)
	h := &harness{url: srv.URL, service: s}
	status, _, _ := h.do(t, http.MethodPost, "/?"+window, nil)
	require.Equal(t, http.StatusAccepted, status)
	status, _, _ = h.waitGraph(t, window)
	require.Equal(t, http.StatusOK, status)
	srv.Close()
	require.NoError(t, s.Shutdown(context.Background()))
	require.NoError(t, s.Shutdown(context.Background()), "Shutdown twice does nothing")
}

// TestShutdownBeforeStart shows Shutdown of a service never started
// returning at once.
func TestShutdownBeforeStart(t *testing.T) {
	t.Parallel()
	s := &Service{Config: roleConfig(t, runtime.RoleAll), Storage: &storage.Memory{}, Marker: &marker.Memory{}}
	require.NoError(t, s.Init(context.Background()))
	require.NoError(t, s.Shutdown(context.Background()))
}

// TestRoleAPI serves the API and health routes only: jobs go to the
// configured queue with the mark's token, and no pool runs them.
func TestRoleAPI(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var queued []types.Job
	s := &Service{Config: roleConfig(t, runtime.RoleAPI), Digester: staticDigest(sampleV2), Queuer: queuerFunc(func(_ context.Context, job types.Job) error {
		mu.Lock()
		defer mu.Unlock()
		queued = append(queued, job)
		return nil
	})}
	h := newHarness(t, s, nil)
	status, _, body := h.do(t, http.MethodPost, "/?"+window, nil)
	require.Equal(t, http.StatusAccepted, status, body)
	mu.Lock()
	require.Len(t, queued, 1)
	require.NotEmpty(t, queued[0].Token, "the job carries the mark's owner token")
	mu.Unlock()
	status, _, _ = h.do(t, http.MethodGet, "/?"+window, nil)
	require.Equal(t, http.StatusNoContent, status, "the mark holds until a worker takes the job")
	status, _, _ = h.do(t, http.MethodPost, "/grapherd/job", strings.NewReader(jobBody(t, window)))
	require.Equal(t, http.StatusNotFound, status, "no worker route in the api role")
	status, _, _ = h.do(t, http.MethodGet, "/healthz", nil)
	require.Equal(t, http.StatusOK, status)
	require.Nil(t, s.pool, "no pool in the api role")
}

// TestRoleWorker serves only the health routes.
func TestRoleWorker(t *testing.T) {
	t.Parallel()
	h := newHarness(t, &Service{Config: roleConfig(t, runtime.RoleWorker), Digester: staticDigest(sampleV2)}, nil)
	for _, r := range []struct{ method, path string }{
		{http.MethodPost, "/?" + window},
		{http.MethodGet, "/?" + window},
		{http.MethodPost, "/grapherd/job"},
	} {
		status, _, _ := h.do(t, r.method, r.path, strings.NewReader(jobBody(t, window)))
		require.Equal(t, http.StatusNotFound, status, "%s %s", r.method, r.path)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		status, _, body := h.do(t, http.MethodGet, path, nil)
		require.Equal(t, http.StatusOK, status, body)
	}
}

// TestQueueEngineUnreachable refuses to start on a queue engine that
// cannot be reached, naming the variable.
func TestQueueEngineUnreachable(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close()) // nothing listens there now
	cfg, err := runtime.Load(func(k string) string {
		return map[string]string{"GRAPHERD_QUEUE_URL": "nats://" + addr}[k]
	})
	require.NoError(t, err)
	s := &Service{Config: cfg, Storage: &storage.Memory{}, Marker: &marker.Memory{}}
	err = s.BindRoutes(chi.NewRouter())
	require.ErrorContains(t, err, "GRAPHERD_QUEUE_URL: ")
	require.ErrorIs(t, err, types.ErrQueueUnavailable)
	require.NoError(t, s.Shutdown(context.Background()))
}
