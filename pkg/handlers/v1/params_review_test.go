package v1

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestReviewViewUnknownParameter: a view with a misspelt parameter
// (acton=REJECT, dst_port=22) silently answers the unfiltered view, which
// a user takes for the filtered one. A view names what it does not know.
func TestReviewViewUnknownParameter(t *testing.T) {
	t.Parallel()
	h, _ := reviewGraph(t)
	for _, q := range []string{"format=json&acton=REJECT", "format=csv&dst_port=22", "group=cidr:24&grup=addr"} {
		rec := httptest.NewRecorder()
		h.Get(rec, httptest.NewRequest(http.MethodGet, "/?"+viewWindow+"&"+q, nil))
		require.Equal(t, http.StatusBadRequest, rec.Code, q)
		require.Contains(t, rec.Body.String(), "parameter", q)
	}
	// The stored DOT keeps answering whatever else the query carries, as
	// the original service did.
	rec := httptest.NewRecorder()
	h.Get(rec, httptest.NewRequest(http.MethodGet, "/?"+viewWindow+"&_=1733000000", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	require.Equal(t, reviewDOT, rec.Body.String())
}

// TestReviewViewSignedNumbers: strconv.Atoi takes a leading sign, so
// port=%2B22, top=%2B5 and group=cidr:%2B24 (a "+" itself is a space in a
// query) pass as numbers although the API
// documents plain integers.
func TestReviewViewSignedNumbers(t *testing.T) {
	t.Parallel()
	h, _ := reviewGraph(t)
	for _, q := range []string{"port=%2B22", "port=1-%2B2", "top=%2B5", "group=cidr:%2B24", "group=cidr:-0", "protocol=%2B6", "min_bytes=%2B1"} {
		rec := httptest.NewRecorder()
		h.Get(rec, httptest.NewRequest(http.MethodGet, "/?"+viewWindow+"&format=csv&"+q, nil))
		require.Equal(t, http.StatusBadRequest, rec.Code, q)
	}
}
