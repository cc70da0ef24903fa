package grapherd

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/stretchr/testify/require"

	v1 "github.com/asecurityteam/vpcflow-grapherd/pkg/handlers/v1"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/marker"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/runtime"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/storage"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
)

// countingDigest counts its calls and holds each until release is closed,
// like a digester busy making a large digest.
func countingDigest(calls *atomic.Int32, release <-chan struct{}) digestFunc {
	return func(ctx context.Context, _, _ time.Time) (io.ReadCloser, error) {
		calls.Add(1)
		select {
		case <-release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return io.NopCloser(strings.NewReader(sampleV2)), nil
	}
}

// TestWorkerRouteIsBounded posts one job body 8 times at once: exactly one
// run makes the window, the others answer at once without making it again:
// 503 with Retry-After when the pool is full, 409 when a worker was free but
// another run holds the window.
func TestWorkerRouteIsBounded(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		workers string
		others  int // the answer of the 7 posts that do not make the graph
	}{
		{"1", http.StatusServiceUnavailable},
		{"8", http.StatusConflict},
	} {
		t.Run("GRAPHERD_WORKERS="+tt.workers, func(t *testing.T) {
			t.Parallel()
			var calls atomic.Int32
			release := make(chan struct{})
			h := newHarness(t, &Service{Digester: countingDigest(&calls, release)}, map[string]string{"GRAPHERD_WORKERS": tt.workers})
			job := jobBody(t, window)

			first := make(chan int, 1)
			go func() {
				status, _, _ := h.do(t, http.MethodPost, "/grapherd/job", strings.NewReader(job))
				first <- status
			}()
			require.Eventually(t, func() bool { return calls.Load() == 1 }, 10*time.Second, time.Millisecond)

			var wg sync.WaitGroup
			answers := make(chan http.Header, 7)
			for range 7 {
				wg.Go(func() {
					status, hdr, body := h.do(t, http.MethodPost, "/grapherd/job", strings.NewReader(job))
					require.Equal(t, tt.others, status, body)
					message(t, body)
					answers <- hdr
				})
			}
			// The 7 answer while the first run still holds the window.
			wg.Wait()
			close(answers)
			for hdr := range answers {
				if tt.others == http.StatusServiceUnavailable {
					require.Equal(t, "5", hdr.Get("Retry-After"))
				}
			}
			close(release)
			require.Equal(t, http.StatusNoContent, <-first)
			require.EqualValues(t, 1, calls.Load(), "one digest for one window")
			status, _, body := h.do(t, http.MethodGet, "/?"+window, nil)
			require.Equal(t, http.StatusOK, status, body)
		})
	}
}

// TestWorkerRouteAsyncWhileBusy shows a job asked for with respond-async
// answered 202 at once even while another run makes the window, and not
// made a second time.
func TestWorkerRouteAsyncWhileBusy(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	release := make(chan struct{})
	h := newHarness(t, &Service{Digester: countingDigest(&calls, release)}, nil)
	status, _, _ := h.do(t, http.MethodPost, "/?"+window, nil)
	require.Equal(t, http.StatusAccepted, status)
	require.Eventually(t, func() bool { return calls.Load() == 1 }, 10*time.Second, time.Millisecond)

	// A delivery with no token finds the window marked: it is answered as
	// a job run at once would be, not taken and dropped.
	status, _, body := h.do(t, http.MethodPost, "/grapherd/job", strings.NewReader(jobBody(t, window)), "Prefer", "respond-async")
	require.Equal(t, http.StatusConflict, status, body)
	require.Contains(t, message(t, body), "being made by another run")
	close(release)
	status, _, _ = h.waitGraph(t, window)
	require.Equal(t, http.StatusOK, status)
	// So no second digest was asked for.
	require.Eventually(t, func() bool { return h.service.pool.Running() == 0 }, 10*time.Second, time.Millisecond)
	require.EqualValues(t, 1, calls.Load())
}

// TestWorkerToken requires the bearer token on the worker route when one is
// configured, and only there.
func TestWorkerToken(t *testing.T) {
	t.Parallel()
	const token = "s3cret-token"
	h := newHarness(t, &Service{Digester: staticDigest(sampleV2)}, map[string]string{"GRAPHERD_WORKER_TOKEN": token})
	job := jobBody(t, window)
	for _, auth := range []string{"", "Bearer wrong", "Basic " + token, "Bearer " + token + "x", "Bearer"} {
		t.Run(fmt.Sprintf("%q", auth), func(t *testing.T) {
			status, hdr, body := h.do(t, http.MethodPost, "/grapherd/job", strings.NewReader(job), "Authorization", auth)
			require.Equal(t, http.StatusUnauthorized, status, body)
			require.Contains(t, hdr.Get("WWW-Authenticate"), "Bearer")
			require.Equal(t, "application/json", hdr.Get("Content-Type"))
			require.Contains(t, message(t, body), "GRAPHERD_WORKER_TOKEN")
			require.NotContains(t, body, token)
		})
	}
	status, _, body := h.do(t, http.MethodPost, "/grapherd/job", strings.NewReader(job), "Authorization", "Bearer "+token)
	require.Equal(t, http.StatusNoContent, status, body)
	// The API needs no token.
	status, _, _ = h.do(t, http.MethodGet, "/?"+window, nil)
	require.Equal(t, http.StatusOK, status)
}

// TestWorkerWithoutToken accepts jobs without Authorization when no token
// is configured, as the seed's event bus sends them.
func TestWorkerWithoutToken(t *testing.T) {
	t.Parallel()
	h := newHarness(t, &Service{Digester: staticDigest(sampleV2)}, nil)
	status, _, body := h.do(t, http.MethodPost, "/grapherd/job", strings.NewReader(jobBody(t, window)))
	require.Equal(t, http.StatusNoContent, status, body)
}

// TestWorkerSlowBodyIs408 sends a job body slower than the server's read
// deadline: the answer is 408, which an event bus retries, not the 400 of a
// malformed job; a malformed body stays 400.
func TestWorkerSlowBodyIs408(t *testing.T) {
	t.Parallel()
	cfg, err := runtime.Load(func(string) string { return "" })
	require.NoError(t, err)
	s := &Service{Config: cfg, Storage: &storage.Memory{}, Marker: &marker.Memory{Timeout: time.Minute}, Digester: staticDigest(sampleV2)}
	router := chi.NewRouter()
	require.NoError(t, s.BindRoutes(router))
	srv := runtime.NewServer(cfg, router, nil, nil)
	srv.ReadTimeout = 300 * time.Millisecond
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-served)
		require.NoError(t, s.Shutdown(context.Background()))
	})

	job := jobBody(t, window)
	conn, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	_, err = fmt.Fprintf(conn, "POST /grapherd/job HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(job), job[:10])
	require.NoError(t, err)
	// The rest never comes; the server's read deadline ends the wait.
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	require.Equal(t, http.StatusRequestTimeout, res.StatusCode, string(body))
	require.Contains(t, string(body), "did not arrive in time")

	status, _, body2 := do(t, "http://"+ln.Addr().String(), http.MethodPost, "/grapherd/job", strings.NewReader(job[:10]))
	require.Equal(t, http.StatusBadRequest, status, body2)
}

// TestSelfQueueSendsToken queues to the service's own worker route, the
// seed's setup, with GRAPHERD_WORKER_TOKEN set: the built-in HTTP queuer
// sends the token, so the job gets through and the graph is made.
func TestSelfQueueSendsToken(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	env := map[string]string{
		"STREAM_APPLIANCE_ENDPOINT": "http://" + ln.Addr().String(),
		"GRAPHERD_WORKER_TOKEN":     "s3cret-token",
	}
	cfg, err := runtime.Load(func(k string) string { return env[k] })
	require.NoError(t, err)
	s := &Service{Config: cfg, Storage: &storage.Memory{}, Marker: &marker.Memory{Timeout: time.Minute}, Digester: staticDigest(sampleV2)}
	router := chi.NewRouter()
	require.NoError(t, s.BindRoutes(router))
	srv := httptest.NewUnstartedServer(router)
	require.NoError(t, srv.Listener.Close())
	srv.Listener = ln
	srv.Start()
	t.Cleanup(func() {
		s.QueuerHTTPClient.CloseIdleConnections()
		srv.Close()
		require.NoError(t, s.Shutdown(context.Background()))
	})
	h := &harness{url: srv.URL, service: s}
	status, _, body := h.do(t, http.MethodPost, "/?"+window, nil)
	require.Equal(t, http.StatusAccepted, status, body)
	status, _, body = h.waitGraph(t, window)
	require.Equal(t, http.StatusOK, status, body)
}

// TestWorkerRouteAsyncMarksFirst: a job taken with respond-async and no
// token is marked before the 202, so a GET that follows finds it in
// progress, even while it waits in the queue; a job the full queue refuses
// leaves no mark behind.
func TestWorkerRouteAsyncMarksFirst(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	release := make(chan struct{})
	var once sync.Once
	releaseAll := func() { once.Do(func() { close(release) }) }
	t.Cleanup(releaseAll)
	mk := &marker.Memory{Timeout: time.Minute}
	h := newHarness(t, &Service{Digester: countingDigest(&calls, release), Marker: mk}, map[string]string{
		"GRAPHERD_WORKERS": "1", "GRAPHERD_QUEUE_CAPACITY": "1",
	})
	windows := make([]string, 4)
	for i := range windows {
		start := time.Date(2026, 11, 2, i, 0, 0, 0, time.UTC)
		windows[i] = "start=" + start.Format(time.RFC3339) + "&stop=" + start.Add(time.Hour).Format(time.RFC3339)
	}
	post := func(w string) (int, string) {
		status, _, body := h.do(t, http.MethodPost, "/grapherd/job", strings.NewReader(jobBody(t, w)), "Prefer", "respond-async")
		return status, body
	}
	get := func(w string) int {
		status, _, _ := h.do(t, http.MethodGet, "/?"+w, nil)
		return status
	}

	status, body := post(windows[0])
	require.Equal(t, http.StatusAccepted, status, body)
	require.Equal(t, http.StatusNoContent, get(windows[0]))
	require.Eventually(t, func() bool { return calls.Load() == 1 }, 10*time.Second, time.Millisecond)

	// The only worker is busy: the second job waits in the queue, marked.
	status, body = post(windows[1])
	require.Equal(t, http.StatusAccepted, status, body)
	require.Equal(t, http.StatusNoContent, get(windows[1]))

	// The queue is full: the third is refused and its mark cleared.
	status, body = post(windows[2])
	require.Equal(t, http.StatusServiceUnavailable, status, body)
	require.Equal(t, http.StatusNotFound, get(windows[2]))

	// A refused job that carries the API's token leaves the API's mark,
	// which is not the route's to clear.
	start, stop, err := v1.ParseWindow(windows[3], 0)
	require.NoError(t, err)
	token, err := mk.Mark(context.Background(), v1.ComputeID(start, stop))
	require.NoError(t, err)
	b, err := v1.EncodeJob(types.Job{ID: v1.ComputeID(start, stop), Start: start, Stop: stop, Token: token})
	require.NoError(t, err)
	status, _, body = h.do(t, http.MethodPost, "/grapherd/job", strings.NewReader(string(b)), "Prefer", "respond-async")
	require.Equal(t, http.StatusServiceUnavailable, status, body)
	require.Equal(t, http.StatusNoContent, get(windows[3]))
	require.NoError(t, mk.Unmark(context.Background(), v1.ComputeID(start, stop), token))

	releaseAll()
	for _, w := range windows[:2] {
		status, _, _ := h.waitGraph(t, w)
		require.Equal(t, http.StatusOK, status)
	}
	// The runner took the marks over and cleared them; the refused window
	// can be asked for again at once.
	status, body = post(windows[2])
	require.Equal(t, http.StatusAccepted, status, body)
	status, _, _ = h.waitGraph(t, windows[2])
	require.Equal(t, http.StatusOK, status)
}

// TestWorkerRouteAsyncMarkerDown: a job with no token that cannot be
// marked is not taken (a 5xx the bus retries), and the answer says nothing
// of the marker's failure.
func TestWorkerRouteAsyncMarkerDown(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	release := make(chan struct{})
	close(release)
	h := newHarness(t, &Service{Digester: countingDigest(&calls, release), Marker: &downMarker{}}, nil)
	status, _, body := h.do(t, http.MethodPost, "/grapherd/job", strings.NewReader(jobBody(t, window)), "Prefer", "respond-async")
	require.GreaterOrEqual(t, status, 500, body)
	require.NotContains(t, body, "connection refused")
	time.Sleep(50 * time.Millisecond)
	require.Zero(t, calls.Load(), "nothing was taken")
}
