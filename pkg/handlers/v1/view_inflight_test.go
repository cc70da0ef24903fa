package v1

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// stuckWriter is a client that stops reading: its first write blocks until
// release is closed.
type stuckWriter struct {
	*httptest.ResponseRecorder
	release <-chan struct{}
}

func (s stuckWriter) Write(b []byte) (int, error) {
	<-s.release
	return s.ResponseRecorder.Write(b)
}

// TestViewsInFlightAreBounded holds maxViewsInFlight views in clients that
// stopped reading: the next view answers 503 with Retry-After at once
// rather than holding one more finished view in memory, and views are
// answered again once those clients read.
func TestViewsInFlightAreBounded(t *testing.T) {
	t.Parallel()
	h, _ := reviewGraph(t)
	release := make(chan struct{})
	var wg sync.WaitGroup
	stuck := make([]*httptest.ResponseRecorder, maxViewsInFlight)
	for i := range stuck {
		stuck[i] = httptest.NewRecorder()
		wg.Go(func() {
			h.Get(stuckWriter{stuck[i], release}, httptest.NewRequest(http.MethodGet, "/?"+viewWindow+"&format=csv", nil))
		})
	}
	require.Eventually(t, func() bool {
		h.slotOnce.Do(h.makeSlots)
		return len(h.inflight) == maxViewsInFlight
	}, 10*time.Second, 5*time.Millisecond, "every stuck client holds its view")

	rec := httptest.NewRecorder()
	h.Get(rec, httptest.NewRequest(http.MethodGet, "/?"+viewWindow+"&format=json", nil))
	require.Equal(t, http.StatusServiceUnavailable, rec.Code, rec.Body.String())
	require.Equal(t, "2", rec.Header().Get("Retry-After"))

	close(release)
	wg.Wait()
	for _, s := range stuck {
		require.Equal(t, http.StatusOK, s.Code)
		require.Contains(t, s.Body.String(), "source,target")
	}
	rec = httptest.NewRecorder()
	h.Get(rec, httptest.NewRequest(http.MethodGet, "/?"+viewWindow+"&format=json", nil))
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
}
