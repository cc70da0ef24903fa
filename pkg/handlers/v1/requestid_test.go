package v1

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// TestRequestID: a short id of safe characters is kept, in the log line and
// the answer; anything else (too long, spaces, quotes, line breaks, none) is
// replaced by a fresh UUID.
func TestRequestID(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, id string
		kept     bool
	}{
		{"uuid", "5f0c6b1e-8f1d-4c8e-9a52-2f0f4f4c0e11", true},
		{"proxy style", "1-67891233-abcdef012345678912345678.a_b:c", true},
		{"at the limit", strings.Repeat("a", MaxRequestIDLength), true},
		{"over the limit", strings.Repeat("a", MaxRequestIDLength+1), false},
		{"huge", strings.Repeat("x", 15<<10), false},
		{"space", "a b", false},
		{"forged json", `x","level":"ERROR`, false},
		{"line break", "a\nb", false},
		{"none", "", false},
		{"non ascii", "idé", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var logs strings.Builder
			logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			h := RequestID(RequestLogger(logger, nil)(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(http.StatusNoContent)
			})))
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			if tt.id != "" {
				req.Header.Set(RequestIDHeader, tt.id)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)

			var line struct {
				RequestID string `json:"request_id"`
			}
			require.NoError(t, json.Unmarshal([]byte(strings.Split(logs.String(), "\n")[0]), &line))
			require.Equal(t, rec.Header().Get(RequestIDHeader), line.RequestID, "the answer names the logged id")
			if tt.kept {
				require.Equal(t, tt.id, line.RequestID)
				return
			}
			_, err := uuid.Parse(line.RequestID)
			require.NoError(t, err, "a fresh UUID, not %q", line.RequestID)
			require.NotEqual(t, tt.id, line.RequestID)
		})
	}
}
