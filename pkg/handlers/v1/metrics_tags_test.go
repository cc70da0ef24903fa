package v1

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestRequestMetricTags: only the standard methods become a method tag,
// anything else a client sends is "other"; a status outside 100..599 is
// "other" too.
func TestRequestMetricTags(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		method string
		status int
		want   []string
	}{
		{http.MethodGet, http.StatusOK, []string{"status:200", "method:GET"}},
		{http.MethodPost, http.StatusAccepted, []string{"status:202", "method:POST"}},
		{http.MethodOptions, http.StatusNoContent, []string{"status:204", "method:OPTIONS"}},
		{"X|#injected", http.StatusMethodNotAllowed, []string{"status:405", "method:other"}},
		{"PROPFIND", http.StatusMethodNotAllowed, []string{"status:405", "method:other"}},
		{"get", http.StatusMethodNotAllowed, []string{"status:405", "method:other"}},
		{http.MethodGet, 999, []string{"status:other", "method:GET"}},
	} {
		t.Run(tt.method, func(t *testing.T) {
			t.Parallel()
			stats := newRecordingStats()
			h := RequestLogger(slog.New(slog.DiscardHandler), stats)(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(tt.status)
			}))
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.Method = tt.method
			h.ServeHTTP(httptest.NewRecorder(), req)
			require.Equal(t, tt.want, stats.waitCount(t))
		})
	}
}
