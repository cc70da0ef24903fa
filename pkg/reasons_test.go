package grapherd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/runtime"
)

// TestFailureReasonKeepsSecrets has the digester fail with text carrying a
// secret, the way an upstream's body or an SDK error carries request ids,
// ARNs and hosts: GET's 424 and the worker route's answer give the public
// reason only, and the log has the full error once.
func TestFailureReasonKeepsSecrets(t *testing.T) {
	t.Parallel()
	const secret = "AKIAIOSFODNN7EXAMPLE arn:aws:sts::123456789012:assumed-role/grapherd bucket-internal-77"
	t.Run("digesterd body", func(t *testing.T) {
		t.Parallel()
		stub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "upstream exploded: "+secret, http.StatusInternalServerError)
		}))
		t.Cleanup(stub.Close)
		var logs syncBuffer
		s := &Service{Logger: runtime.NewLogger(&runtime.Config{}, &logs)}
		h := newHarness(t, s, faultEnv(stub.URL))
		t.Cleanup(s.DigesterHTTPClient.CloseIdleConnections)
		status, _, body := h.do(t, http.MethodPost, "/grapherd/job", strings.NewReader(jobBody(t, window)))
		require.Equal(t, http.StatusInternalServerError, status)
		require.NotContains(t, body, "AKIA")
		require.Equal(t, "the digester answered 500", message(t, body))

		status, _, body = h.do(t, http.MethodGet, "/?"+window, nil)
		require.Equal(t, http.StatusFailedDependency, status)
		for _, part := range strings.Fields(secret) {
			require.NotContains(t, body, part)
		}
		require.NotContains(t, body, "127.0.0.1")
		require.True(t, strings.HasSuffix(message(t, body), ": the digester answered 500"), body)
		// The digester's body is quoted nowhere, not even in the log: it
		// may come from whatever host a redirect pointed at. The status is
		// logged once, with the job's failure.
		logged := 0
		for _, l := range logs.lines(t) {
			line := fmt.Sprint(l)
			require.NotContains(t, line, "AKIAIOSFODNN7EXAMPLE")
			if strings.Contains(line, "unexpected status 500") && strings.Contains(line, "job-failed") {
				logged++
			}
		}
		require.Equal(t, 1, logged, "the full error is logged once: %s", logs.b.String())
	})
	t.Run("module error", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, &Service{Digester: digestFunc(func(context.Context, time.Time, time.Time) (io.ReadCloser, error) {
			return nil, errors.New("GET https://" + secret + ".s3.amazonaws.com: 403")
		})}, nil)
		status, _, _ := h.do(t, http.MethodPost, "/?"+window, nil)
		require.Equal(t, http.StatusAccepted, status)
		status, _, body := h.waitGraph(t, window)
		require.Equal(t, http.StatusFailedDependency, status)
		require.NotContains(t, body, "AKIA")
		require.NotContains(t, body, "amazonaws")
	})
}
