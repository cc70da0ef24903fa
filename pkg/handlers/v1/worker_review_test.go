package v1

import (
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
