package main

import (
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	v1 "github.com/asecurityteam/vpcflow-grapherd/pkg/handlers/v1"
)

// These tests signal the service binary and time its exit, so they do not
// run in parallel with other tests.

// stuckDigesterd is a vpcflow-digesterd whose digests are never ready; it
// reports every digest asked for, so a test knows a job is running.
type stuckDigesterd struct{ created chan string }

func (d *stuckDigesterd) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		d.created <- r.URL.RawQuery
		w.WriteHeader(http.StatusAccepted)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// busyService starts the binary with two workers and a digester that never
// finishes, and gives it four jobs: one in the pool, one on the worker route
// (an in-flight request), two waiting in the pool. It returns the service,
// its mark folder and a channel that yields the worker route's answer.
func busyService(t *testing.T, shutdownTimeout string) (*proc, string, <-chan int) {
	t.Helper()
	dd := &stuckDigesterd{created: make(chan string, 10)}
	stub := httptest.NewServer(dd)
	t.Cleanup(stub.Close)
	data := t.TempDir()
	p := startService(t, freeAddr(t), map[string]string{
		"GRAPHERD_DATA_DIR":         data,
		"DIGESTER_ENDPOINT":         stub.URL,
		"DIGESTER_POLLING_INTERVAL": "10",
		"DIGESTER_POLLING_TIMEOUT":  "-1",
		"GRAPHERD_WORKERS":          "2",
		"GRAPHERD_SHUTDOWN_TIMEOUT": shutdownTimeout,
	})
	status, body := p.do(t, http.MethodPost, "/?start=2026-11-01T10:00:00Z&stop=2026-11-01T11:00:00Z")
	require.Equal(t, http.StatusAccepted, status, body)
	<-dd.created // the pool's job runs

	answer := make(chan int, 1)
	go func() {
		job := `{"id":"` + jobIDOf(t, "2026-11-01T11:00:00Z", "2026-11-01T12:00:00Z") + `","start":"2026-11-01T11:00:00Z","stop":"2026-11-01T12:00:00Z"}`
		res, err := http.Post(p.url+"/grapherd/job", "application/json", strings.NewReader(job))
		if err != nil {
			answer <- 0
			return
		}
		res.Body.Close()
		answer <- res.StatusCode
	}()
	<-dd.created // the worker route's job runs: both workers are busy

	for _, q := range []string{"start=2026-11-01T12:00:00Z&stop=2026-11-01T13:00:00Z", "start=2026-11-01T13:00:00Z&stop=2026-11-01T14:00:00Z"} {
		status, body := p.do(t, http.MethodPost, "/?"+q)
		require.Equal(t, http.StatusAccepted, status, body)
	}
	require.Len(t, marks(t, data), 4, "four windows are marked")
	return p, data, answer
}

// marks lists the progress marks in the data folder.
func marks(t *testing.T, data string) []string {
	t.Helper()
	found, err := filepath.Glob(filepath.Join(data, "progress", "*_in_progress"))
	require.NoError(t, err)
	return found
}

// TestShutdownOneDeadline shows requests and jobs sharing one
// GRAPHERD_SHUTDOWN_TIMEOUT: with 2 s configured and work that never ends,
// the process exits after about 2 s, not 4, with status 0, and every job it
// did not finish, running, in flight or waiting, has its mark cleared.
func TestShutdownOneDeadline(t *testing.T) {
	p, data, answer := busyService(t, "2s")
	began := time.Now()
	require.NoError(t, p.stop(t, syscall.SIGTERM), "a shutdown that cancels jobs at its deadline still exits 0")
	took := time.Since(began)
	require.GreaterOrEqual(t, took, 2*time.Second, "the shutdown waited for the work")
	require.Less(t, took, 3500*time.Millisecond, "requests and jobs share one deadline")
	require.NotEqual(t, http.StatusNoContent, <-answer, "the in-flight job did not finish")
	require.Empty(t, marks(t, data), "every job not run has its mark cleared")
	require.Contains(t, p.stdout.String(), "shutdown deadline passed")
}

// TestShutdownSecondSignal shows a second signal during the shutdown ending
// the process at once with status 1.
func TestShutdownSecondSignal(t *testing.T) {
	p, _, _ := busyService(t, "30s")
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	require.Eventually(t, func() bool {
		return strings.Contains(p.stdout.String(), "http server shutting down")
	}, 10*time.Second, 5*time.Millisecond, "the first signal starts the shutdown")
	began := time.Now()
	err := p.stop(t, syscall.SIGTERM)
	require.Less(t, time.Since(began), 2*time.Second, "the second signal ends the shutdown at once")
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit)
	require.Equal(t, 1, exit.ExitCode())
	require.Contains(t, p.stderr.String(), "second signal")
	require.Contains(t, p.stdout.String(), "stopped by a second signal")
}

// jobIDOf is the graph id of a window.
func jobIDOf(t *testing.T, start, stop string) string {
	t.Helper()
	from, to, err := v1.ParseWindow("start="+start+"&stop="+stop, 0)
	require.NoError(t, err)
	return v1.ComputeID(from, to)
}
