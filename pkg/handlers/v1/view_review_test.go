package v1

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/marker"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/storage"
)

// reviewDOT is a stored graph of one edge, as the writer writes it.
const reviewDOT = "digraph {\n\tn0a000001 [label=\"10.0.0.1\"]\n\tn0a000002 [label=\"10.0.0.2\"]\n" +
	"\tn0a000001 -> n0a000002 [govpc_accountID=\"1\" govpc_eniID=\"eni-1\" govpc_srcPort=\"1\" govpc_dstPort=\"443\" " +
	"govpc_protocol=\"6\" govpc_packets=\"2\" govpc_bytes=\"300\" govpc_start=\"10\" govpc_end=\"20\" color=\"green\" label=\"x\"]\n}\n"

// reviewGraph is a Graph over memory storage holding reviewDOT for
// viewWindow, logging JSON to the returned buffer.
func reviewGraph(t *testing.T) (*Graph, *lockedBuffer) {
	t.Helper()
	mem := &storage.Memory{}
	start, stop, err := ParseWindow(viewWindow, 0)
	require.NoError(t, err)
	require.NoError(t, mem.Store(context.Background(), ComputeID(start, stop), strings.NewReader(reviewDOT)))
	logs := &lockedBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return &Graph{
		Storage: &storage.InProgress{Storage: mem, Marker: &marker.Memory{Timeout: time.Minute}},
		Logger:  logger,
		Views:   ViewLimits{GraphvizDir: t.TempDir()},
	}, logs
}

// goneWriter is a client that hung up: every write fails as a broken pipe.
type goneWriter struct{ *httptest.ResponseRecorder }

func (goneWriter) Write([]byte) (int, error) { return 0, errors.New("write: broken pipe") }

// TestReviewViewClientGoneIsNotAStorageFailure: a client that hangs up
// while a view is written to it is a client-gone event at info level, as it
// is for the stored DOT, not an ERROR dependency-failure of the storage
// that pages whoever alerts on it.
func TestReviewViewClientGoneIsNotAStorageFailure(t *testing.T) {
	t.Parallel()
	h, logs := reviewGraph(t)
	func() {
		defer func() {
			require.Equal(t, http.ErrAbortHandler, recover(), "the broken answer is aborted")
		}()
		h.Get(goneWriter{httptest.NewRecorder()}, httptest.NewRequest(http.MethodGet, "/?"+viewWindow+"&format=csv", nil))
	}()
	require.Equal(t, []string{"INFO client-gone"}, events(t, logs))
}

// TestReviewViewCancelledWaitIsNotAnError: a client that hangs up while its
// view waits for the aggregation slot is gone, not a failed dependency: no
// ERROR line for a request nobody is waiting for.
func TestReviewViewCancelledWaitIsNotAnError(t *testing.T) {
	t.Parallel()
	h, logs := reviewGraph(t)
	h.slotOnce.Do(h.makeSlots)
	h.slot <- struct{}{} // a slow view holds the slot
	ctx, cancel := context.WithCancel(context.Background())
	// The client hangs up once its view waits for the slot; Get cannot
	// return before the slot frees or the request ends.
	time.AfterFunc(200*time.Millisecond, cancel)
	rec := httptest.NewRecorder()
	h.Get(rec, httptest.NewRequest(http.MethodGet, "/?"+viewWindow+"&format=json", nil).WithContext(ctx))
	for _, r := range logs.records(t) {
		require.NotEqual(t, "ERROR", r["level"], "log line %v", r)
	}
}

// TestReviewSVGLayoutsAreBounded: every SVG view of a different canonical
// form misses the cache and starts its own Graphviz process, each allowed
// the whole SVG timeout (60 s by default) and 256 MB of output. Any client
// can ask for views that differ only in min_bytes; the layouts running at
// once must be bounded, or a handful of requests takes every core.
func TestReviewSVGLayoutsAreBounded(t *testing.T) {
	t.Parallel()
	real, err := exec.LookPath("dot")
	require.NoError(t, err, "Graphviz is installed by make test")
	dir := t.TempDir()
	// The wrapper counts the layouts running when it starts, then lays out
	// with the real Graphviz.
	script := "#!/bin/sh\nd=$(dirname \"$0\")\ntouch \"$d/run.$$\"\nls \"$d\" | grep -c '^run\\.' >> \"$d/seen\"\n" +
		"sleep 0.5\n" + real + " \"$@\"\nrc=$?\nrm -f \"$d/run.$$\"\nexit $rc\n"
	for _, name := range []string{"dot", "sfdp"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755))
	}
	h, _ := reviewGraph(t)
	h.Views.GraphvizDir = dir
	const clients = 6
	var wg sync.WaitGroup
	codes := make([]int, clients)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec := httptest.NewRecorder()
			h.Get(rec, httptest.NewRequest(http.MethodGet, fmt.Sprintf("/?%s&format=svg&min_bytes=%d", viewWindow, i+1), nil))
			codes[i] = rec.Code
		}()
	}
	wg.Wait()
	for _, c := range codes {
		require.Equal(t, http.StatusOK, c)
	}
	seen, err := os.ReadFile(filepath.Join(dir, "seen"))
	require.NoError(t, err)
	most := 0
	for _, f := range strings.Fields(string(seen)) {
		n, err := strconv.Atoi(f)
		require.NoError(t, err)
		most = max(most, n)
	}
	require.LessOrEqual(t, most, maxLayouts, "Graphviz processes running at once")
}

// TestReviewSVGCacheIsBounded: every SVG view of a new canonical form is
// stored beside its graph for good. The canonical forms are unbounded
// (min_bytes alone takes any integer), so any client fills the graph
// storage with one cached SVG per request, forever, with nothing that
// evicts them. The cache must stay bounded however many views are asked.
func TestReviewSVGCacheIsBounded(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("dot"); err != nil {
		t.Fatal("Graphviz is installed by make test")
	}
	dir := t.TempDir()
	files := &storage.File{Dir: dir}
	start, stop, err := ParseWindow(viewWindow, 0)
	require.NoError(t, err)
	id := ComputeID(start, stop)
	require.NoError(t, files.Store(context.Background(), id, strings.NewReader(reviewDOT)))
	h := &Graph{Storage: &storage.InProgress{Storage: files, Marker: &marker.Memory{Timeout: time.Minute}}}
	const views = 40
	for i := range views {
		rec := httptest.NewRecorder()
		h.Get(rec, httptest.NewRequest(http.MethodGet, fmt.Sprintf("/?%s&format=svg&min_bytes=%d", viewWindow, 1000+i), nil))
		require.Equal(t, http.StatusOK, rec.Code)
	}
	cached, err := filepath.Glob(filepath.Join(dir, id+".svg-*"))
	require.NoError(t, err)
	require.Less(t, len(cached), views/2, "SVGs cached for %d views asked once each", views)
}

// TestReviewSVGTimeoutIsTheViewsSize: a layout that runs out of
// GRAPHERD_VIEW_SVG_TIMEOUT does so because of the view the client asked
// for (thousands of nodes under the cap); it answers 500 "graphviz could not
// lay out the view" and logs an ERROR dependency-failure, which any client
// can raise at will and which tells the client nothing it can change. It is
// the view's size: 422 with a way to ask for less, logged at info.
func TestReviewSVGTimeoutIsTheViewsSize(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	slow := "#!/bin/sh\nexec sleep 30\n"
	for _, name := range []string{"dot", "sfdp"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(slow), 0o755))
	}
	h, logs := reviewGraph(t)
	h.Views.GraphvizDir = dir
	h.Views.SVGTimeout = 200 * time.Millisecond
	rec := httptest.NewRecorder()
	h.Get(rec, httptest.NewRequest(http.MethodGet, "/?"+viewWindow+"&format=svg", nil))
	require.Equal(t, http.StatusUnprocessableEntity, rec.Code, rec.Body.String())
	require.Contains(t, rec.Body.String(), "top=")
	for _, r := range logs.records(t) {
		require.NotEqual(t, "ERROR", r["level"], "log line %v", r)
	}
}
