package grapherd

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestFullBusAnswers503: with STREAM_APPLIANCE_ENDPOINT set, a bus that
// answers 503 or 429 is a full queue: POST / answers 503 with Retry-After,
// quotes nothing the bus said, and clears its mark so the window can be
// asked for again. Every post carries the worker token.
func TestFullBusAnswers503(t *testing.T) {
	t.Parallel()
	const secret = "internal-bus-detail"
	for _, busStatus := range []int{http.StatusServiceUnavailable, http.StatusTooManyRequests} {
		t.Run(strconv.Itoa(busStatus), func(t *testing.T) {
			t.Parallel()
			var full atomic.Bool
			full.Store(true)
			auth := make(chan string, 4)
			bus := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				auth <- r.Header.Get("Authorization")
				if full.Load() {
					w.Header().Set("Retry-After", "0")
					w.WriteHeader(busStatus)
					_, _ = io.WriteString(w, secret)
					return
				}
				w.WriteHeader(http.StatusAccepted)
			}))
			t.Cleanup(bus.Close)
			h := newHarness(t, &Service{Digester: staticDigest(sampleV2)}, map[string]string{
				"STREAM_APPLIANCE_ENDPOINT": bus.URL + "/topics/graphs",
				"GRAPHERD_HTTP_RETRIES":     "0",
				"GRAPHERD_WORKER_TOKEN":     "bus-token",
				"RUNTIME_STATS_OUTPUT":      "NULLSTAT",
				"GRAPHERD_DATA_DIR":         t.TempDir(),
			})

			status, hdr, body := h.do(t, http.MethodPost, "/?"+window, nil)
			require.Equal(t, http.StatusServiceUnavailable, status, body)
			require.NotEmpty(t, hdr.Get("Retry-After"))
			require.NotContains(t, body, secret)
			require.Contains(t, message(t, body), "try again later")
			require.Equal(t, "Bearer bus-token", <-auth)

			// The mark is gone: the window is neither in progress nor taken.
			status, _, _ = h.do(t, http.MethodGet, "/?"+window, nil)
			require.Equal(t, http.StatusNotFound, status)
			full.Store(false)
			status, _, body = h.do(t, http.MethodPost, "/?"+window, nil)
			require.Equal(t, http.StatusAccepted, status, body)
			require.Equal(t, "Bearer bus-token", <-auth)
		})
	}
}
