package grapherd

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/stretchr/testify/require"

	v1 "github.com/asecurityteam/vpcflow-grapherd/pkg/handlers/v1"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/runtime"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/storage"
)

// TestCompressedGraphsServedOnceCompressionIsOff stores a graph gzip'd, as
// GRAPH_STORAGE_COMPRESSION=gzip does, then serves the data folder with the
// setting off: GET / answers the graph's DOT, plain to a client that takes
// no gzip and gzip'd once to one that does, where it answered the stored
// gzip bytes as DOT (found in review), and /readyz still asks the storage.
func TestCompressedGraphsServedOnceCompressionIsOff(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	const dot = "digraph G {\n\tn0a000001 [label=\"10.0.0.1\"]\n}\n"
	start, stop, err := v1.ParseWindow(window, 0)
	require.NoError(t, err)
	gz := &storage.Gzip{Storage: &storage.File{Dir: filepath.Join(dataDir, "graphs")}}
	require.NoError(t, gz.Store(context.Background(), v1.ComputeID(start, stop), strings.NewReader(dot)))

	cfg, err := runtime.Load(func(k string) string {
		return map[string]string{"GRAPHERD_DATA_DIR": dataDir, "GRAPH_STORAGE_COMPRESSION": "off"}[k]
	})
	require.NoError(t, err)
	s := &Service{Config: cfg, Digester: staticDigest(sampleV2)}
	router := chi.NewRouter()
	require.NoError(t, s.BindRoutes(router))
	srv := httptest.NewServer(router)
	t.Cleanup(func() {
		srv.Close()
		_ = s.Shutdown(context.Background())
	})
	h := &harness{url: srv.URL, service: s}
	status, header, body := h.do(t, http.MethodGet, "/?"+window, nil, "Accept-Encoding", "identity")
	require.Equal(t, http.StatusOK, status)
	require.Empty(t, header.Get("Content-Encoding"))
	require.Equal(t, dot, body)

	req, err := http.NewRequest(http.MethodGet, srv.URL+"/?"+window, nil)
	require.NoError(t, err)
	req.Header.Set("Accept-Encoding", "gzip")
	res, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, "gzip", res.Header.Get("Content-Encoding"))
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	require.Equal(t, dot, gunzip(t, b))

	status, _, body = h.do(t, http.MethodGet, "/readyz", nil)
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, body, runtime.DependencyStorage)
}
