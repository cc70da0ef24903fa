package v1

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestReviewClientGoneBeforeLookup: a client that hangs up while its GET or
// POST is looking the graph up cancels the storage call with its request;
// that is the client going away, yet it is logged as an ERROR
// dependency-failure of the storage, which any client can raise at will.
func TestReviewClientGoneBeforeLookup(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		method, query string
		serve         func(*Graph, http.ResponseWriter, *http.Request)
	}{
		{http.MethodGet, "", (*Graph).Get},
		{http.MethodGet, "&format=json", (*Graph).Get},
		{http.MethodPost, "", (*Graph).Post},
	} {
		h, logs := reviewGraph(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		tt.serve(h, httptest.NewRecorder(), httptest.NewRequest(tt.method, "/?"+viewWindow+tt.query, nil).WithContext(ctx))
		for _, r := range logs.records(t) {
			if r["level"] == "ERROR" {
				t.Errorf("%s %s: ERROR log line for a client that went away: %v", tt.method, tt.query, r)
			}
		}
	}
}
