package v1

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
)

// TestReviewWorkerLongWindowLength: the worker route reports a job window
// over its limit with stop.Sub(start), which saturates at 292 years, so a
// job for 0001 to 9999 is said to be 2562047h47m16.854775807s long; the
// API's window check was fixed for this, the worker's was not.
func TestReviewWorkerLongWindowLength(t *testing.T) {
	t.Parallel()
	start := time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	stop := time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	body, err := EncodeJob(jobFor(start, stop))
	require.NoError(t, err)
	h := &Worker{MaxWindow: 24 * time.Hour}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/topic/event", strings.NewReader(string(body))))
	require.Equal(t, http.StatusBadRequest, rec.Code)
	require.NotContains(t, rec.Body.String(), "2562047h")
	require.Contains(t, rec.Body.String(), windowLength(start, stop))
}

func jobFor(start, stop time.Time) types.Job {
	return types.Job{ID: ComputeID(start, stop), Start: start, Stop: stop}
}

// TestReviewWorkerEchoesLongTimes: RFC 3339 (and time.Parse) take a
// fraction of a second of any length, and two of the worker's 400 messages
// quote the job's start and stop whole and unquoted, so a body of 60 KB of
// zeros lands in the answer and in the log line.
func TestReviewWorkerEchoesLongTimes(t *testing.T) {
	t.Parallel()
	long := "." + strings.Repeat("0", 30000) + "Z"
	for _, body := range []string{
		// start after stop
		`{"id":"` + ComputeID(time.Date(2026, 11, 1, 11, 0, 0, 0, time.UTC), time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)) +
			`","start":"2026-11-01T11:00:00` + long + `","stop":"2026-11-01T10:00:00` + long + `"}`,
		// an id of another window
		`{"id":"6357a262-b301-5f60-a2d4-644e10c814ea","start":"2026-11-01T09:00:00` + long + `","stop":"2026-11-01T10:00:00` + long + `"}`,
	} {
		logs := &lockedBuffer{}
		h := &Worker{Logger: slog.New(slog.NewJSONHandler(logs, nil))}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/topic/event", strings.NewReader(body)))
		require.Equal(t, http.StatusBadRequest, rec.Code)
		require.Less(t, rec.Body.Len(), 1024, "answer of %d bytes", rec.Body.Len())
		require.Less(t, len(logs.b.String()), 2048, "log of %d bytes", len(logs.b.String()))
	}
}
