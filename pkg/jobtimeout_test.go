package grapherd

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestJobTimeout gives a job a digester that never answers: after
// GRAPHERD_JOB_TIMEOUT the job fails with that reason, its window is free
// again, and nothing is stored. Both the in-process pool and the worker
// route end this way, and so does vpcflow-digesterd polled without end
// (DIGESTER_POLLING_TIMEOUT=-1).
func TestJobTimeout(t *testing.T) {
	t.Parallel()
	const reason = "the job took longer than GRAPHERD_JOB_TIMEOUT (300ms)"
	hang := digestFunc(func(ctx context.Context, _, _ time.Time) (io.ReadCloser, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	})
	t.Run("pool", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, &Service{Digester: hang}, map[string]string{"GRAPHERD_JOB_TIMEOUT": "300ms"})
		status, _, _ := h.do(t, http.MethodPost, "/?"+window, nil)
		require.Equal(t, http.StatusAccepted, status)
		status, _, body := h.waitGraph(t, window)
		require.Equal(t, http.StatusFailedDependency, status, body)
		require.True(t, strings.HasSuffix(message(t, body), ": "+reason), body)
	})
	t.Run("worker route", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, &Service{Digester: hang}, map[string]string{"GRAPHERD_JOB_TIMEOUT": "300ms"})
		began := time.Now()
		status, _, body := h.do(t, http.MethodPost, "/grapherd/job", strings.NewReader(jobBody(t, window)))
		require.Equal(t, http.StatusUnprocessableEntity, status, body)
		require.Equal(t, reason, message(t, body))
		require.Less(t, time.Since(began), 5*time.Second)
	})
	t.Run("digesterd polled forever", func(t *testing.T) {
		t.Parallel()
		_, stub := newFaultyDigesterd(t, sampleV2, faultNeverReady)
		env := faultEnv(stub.URL)
		env["DIGESTER_POLLING_TIMEOUT"] = "-1"
		env["GRAPHERD_JOB_TIMEOUT"] = "300ms"
		s := &Service{}
		h := newHarness(t, s, env)
		t.Cleanup(s.DigesterHTTPClient.CloseIdleConnections)
		status, _, _ := h.do(t, http.MethodPost, "/?"+window, nil)
		require.Equal(t, http.StatusAccepted, status)
		status, _, body := h.waitGraph(t, window)
		require.Equal(t, http.StatusFailedDependency, status, body)
		require.True(t, strings.HasSuffix(message(t, body), ": "+reason), body)
		_, err := h.storage.Get(context.Background(), jobID(t, window))
		require.Error(t, err, "nothing is stored")
	})
}
