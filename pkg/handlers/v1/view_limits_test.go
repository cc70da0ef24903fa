package v1

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/flowlog"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/flowtable"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/marker"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/storage"
)

// TestGzipRefusedWhateverTheCaseOfQ asks for the stored DOT refusing gzip
// with a weight of 0 spelt as RFC 9110 allows (q in either case, spaces,
// other parameters first): it comes plain, where only a lower-case q=0
// right after the ';' was read, and "gzip;Q=0" got gzip. A weight above 0
// still gets gzip.
func TestGzipRefusedWhateverTheCaseOfQ(t *testing.T) {
	t.Parallel()
	h, _ := reviewGraph(t)
	for ae, gz := range map[string]bool{
		"gzip;Q=0": false, "gzip; Q=0": false, "identity, gzip;Q=0": false, "gzip;x=y;q=0": false, "gzip ; q = 0.0": false,
		"gzip;Q=0.5": true, "gzip": true,
	} {
		req := httptest.NewRequest(http.MethodGet, "/?"+viewWindow, nil)
		req.Header.Set("Accept-Encoding", ae)
		rec := httptest.NewRecorder()
		h.Get(rec, req)
		require.Equal(t, http.StatusOK, rec.Code)
		if gz {
			require.Equal(t, "gzip", rec.Header().Get("Content-Encoding"), "Accept-Encoding: %s", ae)
			continue
		}
		require.Empty(t, rec.Header().Get("Content-Encoding"), "Accept-Encoding: %s refuses gzip", ae)
		require.Equal(t, reviewDOT, rec.Body.String(), "Accept-Encoding: %s", ae)
	}
}

// TestSVGViewEdgesCapped asks for views of a stored graph of 40 addresses
// and 400 flows between them, each pair's own, with an SVG view's edges capped at 100
// (GRAPHERD_VIEW_MAX_SVG_EDGES, 10,000 unless told): the SVG view answers
// 422 naming its edges before Graphviz is started, where only its nodes
// were capped, and sfdp was handed 99,000 labelled edges of 2,000 nodes
// and ran its whole timeout, a core and 440 MB, on each such request. The
// JSON view of the same graph, and the SVG of its 20 busiest edges, laid
// out by the real Graphviz, are answered.
func TestSVGViewEdgesCapped(t *testing.T) {
	t.Parallel()
	var table bytes.Buffer
	tw := flowtable.NewWriter(&table)
	for i := range 400 {
		a, b := i%20, i/20 // 400 pairs of 40 addresses
		rec := flowlog.Record{Version: 2, SrcAddr: netip.AddrFrom4([4]byte{10, 0, 0, byte(a)}),
			DstAddr: netip.AddrFrom4([4]byte{10, 0, 1, byte(b)}), DstPort: 443, Protocol: 6,
			Packets: 1, Bytes: int64(100 + i), Action: flowlog.ActionAccept, LogStatus: flowlog.StatusOK,
			AccountID: "123456789012", InterfaceID: "eni-1"}
		require.NoError(t, tw.Add(&rec))
	}
	require.NoError(t, tw.Close())
	mem := &storage.Memory{}
	start, stop, err := ParseWindow(viewWindow, 0)
	require.NoError(t, err)
	id := ComputeID(start, stop)
	ctx := context.Background()
	require.NoError(t, mem.StoreObject(ctx, id, flowtable.Kind, &table))
	require.NoError(t, mem.Store(ctx, id, strings.NewReader(reviewDOT)))
	h := &Graph{
		Storage: &storage.InProgress{Storage: mem, Marker: &marker.Memory{Timeout: time.Minute}},
		Views:   ViewLimits{MaxNodes: 20000, MaxEdges: 100000, MaxSVGNodes: 2000, MaxSVGEdges: 100, SVGTimeout: 60 * time.Second},
	}
	get := func(query string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.Get(rec, httptest.NewRequest(http.MethodGet, "/?"+viewWindow+query, nil))
		return rec
	}
	rec := get("&format=svg&min_bytes=1")
	require.Equal(t, http.StatusUnprocessableEntity, rec.Code, rec.Body.String())
	require.Contains(t, rec.Body.String(), "edges")
	rec = get("&format=json")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	rec = get("&format=svg&top=20")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Contains(t, rec.Body.String(), "<svg")
}
