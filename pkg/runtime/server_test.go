package runtime

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// recordingStats keeps every metric, for assertions.
type recordingStats struct {
	mu     sync.Mutex
	counts map[string]int64
	gauges map[string][]float64
	closed bool
}

func newRecordingStats() *recordingStats {
	return &recordingStats{counts: map[string]int64{}, gauges: map[string][]float64{}}
}

func (r *recordingStats) Count(name string, v int64, _ ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.counts[name] += v
}

func (r *recordingStats) Gauge(name string, v float64, _ ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.gauges[name] = append(r.gauges[name], v)
}

func (r *recordingStats) Timing(string, time.Duration, ...string) {}

func (r *recordingStats) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	return nil
}

func (r *recordingStats) count(name string) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.counts[name]
}

// gaugeSeen reports whether name was ever reported as v.
func (r *recordingStats) gaugeSeen(name string, v float64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, g := range r.gauges[name] {
		if g == v {
			return true
		}
	}
	return false
}

// lastGauge returns the last value reported for name.
func (r *recordingStats) lastGauge(name string) (float64, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	g := r.gauges[name]
	if len(g) == 0 {
		return 0, false
	}
	return g[len(g)-1], true
}

// testConfig is a loaded default config with fast connection reports.
func testConfig(t *testing.T) *Config {
	t.Helper()
	c, err := Load(envOf(map[string]string{"RUNTIME_CONNSTATE_REPORTINTERVAL": "10ms"}))
	require.NoError(t, err)
	return c
}

// startServer serves h on a loopback listener until the returned cancel is
// called; wait returns Serve's result.
func startServer(t *testing.T, s *Server) (addr string, cancel context.CancelFunc, wait func() error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	var once sync.Once
	var result error
	wait = func() error {
		once.Do(func() {
			select {
			case result = <-done:
			case <-time.After(10 * time.Second):
				result = errors.New("Serve did not return")
			}
		})
		return result
	}
	t.Cleanup(func() {
		cancel()
		_ = wait()
	})
	return ln.Addr().String(), cancel, wait
}

// newTestClient is a plain client whose idle connections are closed at the
// end of the test.
func newTestClient(t *testing.T) *http.Client {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func TestServerInFlightRequestCompletesAcrossShutdown(t *testing.T) {
	t.Parallel()
	entered := make(chan struct{})
	release := make(chan struct{})
	ctxErr := make(chan error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		ctxErr <- r.Context().Err()
		_, _ = io.WriteString(w, "finished")
	})
	s := NewServer(testConfig(t), h, nil, nil)
	addr, cancel, wait := startServer(t, s)

	type result struct {
		body string
		err  error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := newTestClient(t).Get("http://" + addr + "/")
		if err != nil {
			got <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		got <- result{string(b), err}
	}()
	<-entered
	cancel()

	// The listener closes at once: new connections are refused while the
	// request runs.
	require.Eventually(t, func() bool {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			_ = c.Close()
		}
		return err != nil
	}, 2*time.Second, 5*time.Millisecond)

	close(release)
	r := <-got
	require.NoError(t, r.err)
	require.Equal(t, "finished", r.body)
	require.NoError(t, <-ctxErr, "the shutdown signal does not cancel in-flight requests")
	require.NoError(t, wait(), "clean shutdown returns nil")
}

func TestServerShutdownIsBounded(t *testing.T) {
	t.Parallel()
	entered := make(chan struct{})
	cancelled := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-r.Context().Done()
		close(cancelled)
	})
	s := NewServer(testConfig(t), h, nil, nil)
	s.ShutdownTimeout = 100 * time.Millisecond
	addr, cancel, wait := startServer(t, s)

	go func() {
		resp, err := newTestClient(t).Get("http://" + addr + "/")
		if err == nil {
			_ = resp.Body.Close()
		}
	}()
	<-entered
	start := time.Now()
	cancel()
	err := wait()
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Less(t, time.Since(start), 2*time.Second)
	select {
	case <-cancelled:
	case <-time.After(2 * time.Second):
		t.Fatal("a request outliving the shutdown timeout is cancelled")
	}
}

func TestServerCutsOffSlowHeaders(t *testing.T) {
	t.Parallel()
	called := make(chan struct{}, 1)
	h := http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called <- struct{}{} })
	s := NewServer(testConfig(t), h, nil, nil)
	s.ReadHeaderTimeout = 150 * time.Millisecond
	addr, _, _ := startServer(t, s)

	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	start := time.Now()
	_, err = io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n")
	require.NoError(t, err)

	// Trickle one header byte every 20ms, never finishing the headers.
	writeErr := make(chan error, 1)
	go func() {
		for {
			if _, err := io.WriteString(conn, "X"); err != nil {
				writeErr <- err
				return
			}
			time.Sleep(20 * time.Millisecond)
			if time.Since(start) > 5*time.Second {
				writeErr <- nil
				return
			}
		}
	}()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(5*time.Second)))
	_, err = io.ReadAll(conn)
	// The server closing with our trickled bytes unread may reach us as a
	// reset rather than an EOF; either is the server, not our deadline.
	if !errors.Is(err, syscall.ECONNRESET) {
		require.NoError(t, err, "the server closes the connection (EOF), not our read deadline")
	}
	elapsed := time.Since(start)
	// The server's clock starts at accept, a little before ours.
	require.GreaterOrEqual(t, elapsed, 100*time.Millisecond)
	require.Less(t, elapsed, 2*time.Second, "cut off near ReadHeaderTimeout")
	_ = conn.Close()
	<-writeErr
	require.Empty(t, called, "the handler never runs")
}

func TestServerLimitsHeaderBytes(t *testing.T) {
	t.Parallel()
	s := NewServer(testConfig(t), http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), nil, nil)
	addr, _, _ := startServer(t, s)

	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/?start="+strings.Repeat("9", 64<<10), nil)
	require.NoError(t, err)
	resp, err := newTestClient(t).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusRequestHeaderFieldsTooLarge, resp.StatusCode, "an oversized query is refused")
}

func TestServerReportsConnectionStates(t *testing.T) {
	t.Parallel()
	c := testConfig(t)
	stats := newRecordingStats()
	h := http.NewServeMux()
	h.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	h.HandleFunc("/hijack", func(w http.ResponseWriter, _ *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			_ = conn.Close()
		}
	})
	s := NewServer(c, h, stats, nil)
	addr, cancel, wait := startServer(t, s)

	// Three requests on one keep-alive connection, then an idle wait.
	client := newTestClient(t)
	for range 3 {
		resp, err := client.Get("http://" + addr + "/")
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		require.NoError(t, resp.Body.Close())
	}
	require.Eventually(t, func() bool { return stats.gaugeSeen(c.ConnStateIdleGauge, 1) }, 2*time.Second, 5*time.Millisecond)

	// A hijacked connection.
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	_, err = io.WriteString(conn, "GET /hijack HTTP/1.1\r\nHost: x\r\n\r\n")
	require.NoError(t, err)
	_, _ = bufio.NewReader(conn).ReadByte()
	_ = conn.Close()
	require.Eventually(t, func() bool { return stats.count(c.ConnStateHijackedCounter) == 1 }, 2*time.Second, 5*time.Millisecond)

	// The client hangs up; the server notices and reports the close.
	client.CloseIdleConnections()
	require.Eventually(t, func() bool { return stats.count(c.ConnStateClosedCounter) == 1 }, 2*time.Second, 5*time.Millisecond)
	cancel()
	require.NoError(t, wait())

	require.Equal(t, int64(2), stats.count(c.ConnStateNewCounter), "two connections accepted")
	require.Equal(t, int64(4), stats.count(c.ConnStateActiveCounter), "three requests plus the hijack")
	require.Equal(t, int64(3), stats.count(c.ConnStateIdleCounter))
	require.Equal(t, int64(1), stats.count(c.ConnStateHijackedCounter))
	require.Equal(t, int64(1), stats.count(c.ConnStateClosedCounter), "the keep-alive connection closed")
	for _, g := range []string{c.ConnStateNewGauge, c.ConnStateActiveGauge, c.ConnStateIdleGauge} {
		v, ok := stats.lastGauge(g)
		require.True(t, ok, "gauge %s reported", g)
		require.Zero(t, v, "gauge %s ends at zero", g)
	}
}

// failingListener fails its first Accept with a permanent error.
type failingListener struct {
	net.Listener
}

func (f failingListener) Accept() (net.Conn, error) {
	return nil, errors.New("listener broke")
}

func TestServerReturnsListenerError(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := NewServer(testConfig(t), http.NotFoundHandler(), nil, nil)
	done := make(chan error, 1)
	go func() { done <- s.Serve(context.Background(), failingListener{ln}) }()
	select {
	case err := <-done:
		require.ErrorContains(t, err, "listener broke")
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return on a broken listener")
	}
}

func TestServerZeroConfigUsesDefaults(t *testing.T) {
	t.Parallel()
	s := NewServer(&Config{}, http.NotFoundHandler(), nil, nil)
	require.Equal(t, DefaultReadHeaderTimeout, s.ReadHeaderTimeout)
	require.Equal(t, DefaultReadTimeout, s.ReadTimeout)
	require.Equal(t, DefaultIdleTimeout, s.IdleTimeout)
	require.Equal(t, DefaultMaxHeaderBytes, s.MaxHeaderBytes)
	require.Equal(t, DefaultShutdownTimeout, s.ShutdownTimeout)
	require.Equal(t, DefaultConnStateReportInterval, s.ReportInterval)
	require.Equal(t, "http.server.connstate.new", s.names.counter[http.StateNew])
	require.Equal(t, "http.server.connstate.idle.gauge", s.names.gauge[http.StateIdle])

	// Serving with a cancelled context returns at once and cleanly.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.NoError(t, s.Serve(ctx, ln))
	_, err = net.DialTimeout("tcp", ln.Addr().String(), time.Second)
	require.Error(t, err, "Serve closed the listener")
}
