package v1

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/flowtable"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/marker"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/storage"
)

const viewWindow = "start=2026-11-01T10:00:00Z&stop=2026-11-01T11:00:00Z"

// TestViewStates answers views of graphs being made, missing and made, and
// 501 for SVG when Graphviz is not installed.
func TestViewStates(t *testing.T) {
	t.Parallel()
	mem := &storage.Memory{}
	marks := &marker.Memory{Timeout: time.Minute}
	h := &Graph{
		Storage: &storage.InProgress{Storage: mem, Marker: marks},
		Views:   ViewLimits{GraphvizDir: t.TempDir()},
	}
	get := func(query string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.Get(rec, httptest.NewRequest(http.MethodGet, "/?"+viewWindow+"&"+query, nil))
		return rec
	}
	require.Equal(t, http.StatusNotFound, get("format=json").Code)

	start, stop, err := ParseWindow(viewWindow, 0)
	require.NoError(t, err)
	id := ComputeID(start, stop)
	require.NoError(t, marks.Mark(context.Background(), id))
	require.Equal(t, http.StatusNoContent, get("format=csv").Code)

	dot := "digraph {\n\tn0a000001 [label=\"10.0.0.1\"]\n\tn0a000002 [label=\"10.0.0.2\"]\n" +
		"\tn0a000001 -> n0a000002 [govpc_accountID=\"1\" govpc_eniID=\"eni-1\" govpc_srcPort=\"1\" govpc_dstPort=\"443\" " +
		"govpc_protocol=\"6\" govpc_packets=\"2\" govpc_bytes=\"300\" govpc_start=\"10\" govpc_end=\"20\" color=\"green\" label=\"x\"]\n}\n"
	require.NoError(t, mem.Store(context.Background(), id, strings.NewReader(dot)))
	require.NoError(t, marks.Unmark(context.Background(), id))
	rec := get("format=csv")
	require.Equal(t, http.StatusOK, rec.Code)
	require.Equal(t, "source,target,flows,packets,bytes,accepted,rejected,first,last,ports,other_ports\n10.0.0.1,10.0.0.2,1,2,300,1,0,10,20,443:1,0\n", rec.Body.String())

	rec = get("format=svg")
	require.Equal(t, http.StatusNotImplemented, rec.Code)
	require.Contains(t, rec.Body.String(), "graphviz is not installed")

	rec = get("group=cidr:99")
	require.Equal(t, http.StatusBadRequest, rec.Code)
	require.Contains(t, rec.Body.String(), "parameter group=")
}

// TestNegotiate picks the view format from Accept only when it names one.
func TestNegotiate(t *testing.T) {
	t.Parallel()
	for accept, want := range map[string]flowtable.Format{
		"":                                    "",
		"*/*":                                 "",
		"text/html,application/xhtml+xml,*/*": "",
		"application/json":                    flowtable.FormatJSON,
		"text/csv;q=0.5, image/svg+xml":       flowtable.FormatSVG,
		"text/vnd.graphviz, application/json;q=0.1": flowtable.FormatDOT,
		"application/json;q=0":                      "",
		"image/svg+xml;q=x":                         "",
	} {
		require.Equal(t, want, negotiate(accept), accept)
	}
	for enc, want := range map[string]bool{"gzip": true, "br, gzip;q=0.5": true, "gzip;q=0": false, "identity": false, "": false} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Accept-Encoding", enc)
		require.Equal(t, want, acceptsGzip(r), enc)
	}
}
