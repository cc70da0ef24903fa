package runtime

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fastOptions retry quickly so the tests run in milliseconds.
func fastOptions(retries int) ClientOptions {
	return ClientOptions{
		Timeout:               10 * time.Second,
		ResponseHeaderTimeout: 5 * time.Second,
		Retries:               retries,
		MinBackoff:            time.Millisecond,
		MaxBackoff:            5 * time.Millisecond,
	}
}

// newClient builds a client whose connections are closed after the test.
func newClient(t *testing.T, o ClientOptions) *http.Client {
	t.Helper()
	c := NewHTTPClient(o)
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// statusSequence serves the given statuses in turn (the last one forever)
// and counts the attempts.
func statusSequence(t *testing.T, statuses ...int) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		i := int(n.Add(1)) - 1
		st := statuses[min(i, len(statuses)-1)]
		w.WriteHeader(st)
		_, _ = fmt.Fprintf(w, "attempt %d", i+1)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func TestHTTPClientRetriesUntilSuccess(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		statuses []int
	}{
		{"503 twice", []int{503, 503, 200}},
		{"500", []int{500, 200}},
		{"502 then 503", []int{502, 503, 200}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, attempts := statusSequence(t, tt.statuses...)
			resp, err := newClient(t, fastOptions(3)).Get(srv.URL)
			require.NoError(t, err)
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			require.Equal(t, int64(len(tt.statuses)), attempts.Load())
			require.Equal(t, fmt.Sprintf("attempt %d", len(tt.statuses)), string(b))
		})
	}
}

func TestHTTPClientDoesNotRetryOtherStatuses(t *testing.T) {
	t.Parallel()
	for _, status := range []int{200, 204, 400, 404, 409, 429, 501, 504} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			t.Parallel()
			srv, attempts := statusSequence(t, status, 200)
			resp, err := newClient(t, fastOptions(3)).Get(srv.URL)
			require.NoError(t, err)
			defer resp.Body.Close()
			require.Equal(t, status, resp.StatusCode)
			require.Equal(t, int64(1), attempts.Load())
		})
	}
}

func TestHTTPClientGivesUpAndReturnsLastResponse(t *testing.T) {
	t.Parallel()
	for _, retries := range []int{0, 1, 3} {
		t.Run(fmt.Sprint(retries), func(t *testing.T) {
			t.Parallel()
			srv, attempts := statusSequence(t, 503)
			resp, err := newClient(t, fastOptions(retries)).Get(srv.URL)
			require.NoError(t, err, "the caller gets the status, not an error")
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
			require.Equal(t, int64(retries+1), attempts.Load())
			require.Equal(t, fmt.Sprintf("attempt %d", retries+1), string(b), "the body of the last attempt")
		})
	}
}

func TestHTTPClientStopsOnContextCancelDuringBackoff(t *testing.T) {
	t.Parallel()
	first := make(chan struct{})
	var once sync.Once
	var attempts atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		attempts.Add(1)
		once.Do(func() { close(first) })
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)

	o := fastOptions(5)
	o.MinBackoff, o.MaxBackoff = 10*time.Second, 10*time.Second
	client := newClient(t, o)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	require.NoError(t, err)
	go func() {
		<-first
		time.Sleep(20 * time.Millisecond)
		cancel()
	}()
	start := time.Now()
	resp, err := client.Do(req)
	if resp != nil {
		_ = resp.Body.Close()
	}
	require.ErrorIs(t, err, context.Canceled)
	require.Nil(t, resp)
	require.Less(t, time.Since(start), 5*time.Second, "the backoff wait ends with the context")
	require.Equal(t, int64(1), attempts.Load())
}

func TestHTTPClientTimeoutBoundsWholeCall(t *testing.T) {
	t.Parallel()
	srv, attempts := statusSequence(t, 503)
	o := fastOptions(5)
	o.Timeout = 200 * time.Millisecond
	o.MinBackoff, o.MaxBackoff = 150*time.Millisecond, 150*time.Millisecond
	start := time.Now()
	resp, err := newClient(t, o).Get(srv.URL)
	if resp != nil {
		_ = resp.Body.Close()
	}
	require.Error(t, err)
	var netErr net.Error
	require.ErrorAs(t, err, &netErr)
	require.True(t, netErr.Timeout())
	require.Less(t, time.Since(start), 2*time.Second)
	require.Less(t, attempts.Load(), int64(6), "the deadline stopped the retries")
}

func TestHTTPClientResponseHeaderTimeoutIsRetried(t *testing.T) {
	t.Parallel()
	var attempts atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if attempts.Add(1) == 1 {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)
	o := fastOptions(2)
	o.ResponseHeaderTimeout = 100 * time.Millisecond
	resp, err := newClient(t, o).Get(srv.URL)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, int64(2), attempts.Load())
}

// droppingListener closes the first drop connections it accepts, so the
// client sees transport errors, then hands the rest to the server.
type droppingListener struct {
	net.Listener
	drop     int64
	accepted atomic.Int64
}

func (d *droppingListener) Accept() (net.Conn, error) {
	for {
		c, err := d.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if d.accepted.Add(1) <= d.drop {
			_ = c.Close()
			continue
		}
		return c, nil
	}
}

func TestHTTPClientRetriesDroppedConnections(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dl := &droppingListener{Listener: ln, drop: 2}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	srv.Listener = dl
	srv.Start()
	t.Cleanup(srv.Close)

	resp, err := newClient(t, fastOptions(3)).Get(srv.URL)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, int64(3), dl.accepted.Load(), "two dropped connections, then success")
}

func TestHTTPClientRetriesRefusedConnections(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())

	// Nothing listens now: every attempt is refused, and the error comes
	// back after the retries.
	o := fastOptions(2)
	o.MinBackoff, o.MaxBackoff = 40*time.Millisecond, 40*time.Millisecond
	start := time.Now()
	resp, err := newClient(t, o).Get("http://" + addr + "/")
	if resp != nil {
		_ = resp.Body.Close()
	}
	require.Error(t, err)
	var opErr *net.OpError
	require.ErrorAs(t, err, &opErr)
	require.GreaterOrEqual(t, time.Since(start), 40*time.Millisecond, "two waits of at least half of 40ms each")

	// The server comes back while the client waits between attempts.
	o.Retries, o.MinBackoff, o.MaxBackoff = 20, 50*time.Millisecond, 50*time.Millisecond
	type result struct {
		resp *http.Response
		err  error
	}
	got := make(chan result, 1)
	client := newClient(t, o)
	go func() {
		resp, err := client.Get("http://" + addr + "/")
		got <- result{resp, err}
	}()
	time.Sleep(80 * time.Millisecond)
	ln2, err := net.Listen("tcp", addr)
	require.NoError(t, err)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "back")
	}), ReadHeaderTimeout: time.Second}
	go func() { _ = srv.Serve(ln2) }()
	t.Cleanup(func() { _ = srv.Close() })
	r := <-got
	require.NoError(t, r.err)
	defer r.resp.Body.Close()
	b, err := io.ReadAll(r.resp.Body)
	require.NoError(t, err)
	require.Equal(t, "back", string(b))
}

func TestHTTPClientReplaysPostBody(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var bodies []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, fmt.Sprintf("%s %d %s %s", r.Method, r.ContentLength, r.Header.Get("Content-Type"), b))
		n := len(bodies)
		mu.Unlock()
		if n < 3 {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)

	payload := `{"id":"g1","start":"2024-01-01T00:00:00Z","stop":"2024-01-01T01:00:00Z"}`
	resp, err := newClient(t, fastOptions(3)).Post(srv.URL, "application/json", strings.NewReader(payload))
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	want := fmt.Sprintf("POST %d application/json %s", len(payload), payload)
	require.Equal(t, []string{want, want, want}, bodies)
}

func TestHTTPClientReusesConnections(t *testing.T) {
	t.Parallel()
	const parallel = 8
	var conns atomic.Int64
	// In a round, every handler waits until all of the round's requests have
	// arrived, so a round needs exactly `parallel` connections at once.
	var mu sync.Mutex
	arrived := 0
	gate := make(chan struct{})
	barrier := false
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		b, g := barrier, gate
		if b {
			arrived++
			if arrived == parallel {
				close(gate)
				arrived, gate = 0, make(chan struct{})
			}
		}
		mu.Unlock()
		if b {
			<-g
		}
		_, _ = io.WriteString(w, "ok")
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	get := func(client *http.Client) error {
		resp, err := client.Get(srv.URL)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.Body.Close()
	}

	client := newClient(t, fastOptions(0))
	for range 10 {
		require.NoError(t, get(client))
	}
	require.Equal(t, int64(1), conns.Load(), "one keep-alive connection for sequential calls")

	mu.Lock()
	barrier = true
	mu.Unlock()
	round := func() {
		var wg sync.WaitGroup
		errs := make(chan error, parallel)
		for range parallel {
			wg.Go(func() { errs <- get(client) })
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
	}
	round()
	require.Equal(t, int64(parallel), conns.Load(), "the idle connection plus seven new ones")
	round()
	require.Equal(t, int64(parallel), conns.Load(), "the second round reuses all idle connections (net/http's default keeps 2)")
}

func TestHTTPClientLogsRetriesAtDebugOnly(t *testing.T) {
	t.Parallel()
	srv, _ := statusSequence(t, 503, 200)
	var buf bytes.Buffer
	var mu sync.Mutex
	o := fastOptions(2)
	o.Logger = slog.New(slog.NewJSONHandler(&lockedWriter{w: &buf, mu: &mu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	resp, err := newClient(t, o).Get(srv.URL)
	require.NoError(t, err)
	_ = resp.Body.Close()
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	require.Contains(t, out, "retrying request")
	require.NotContains(t, out, `"level":"ERROR"`)
	require.NotContains(t, out, `"level":"INFO"`)
}

// lockedWriter serialises writes from concurrent goroutines.
type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestRetryPolicy(t *testing.T) {
	t.Parallel()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancelExpired := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancelExpired()
	resp := func(code int) *http.Response { return &http.Response{StatusCode: code, Body: http.NoBody} }
	tests := []struct {
		name      string
		ctx       context.Context
		resp      *http.Response
		err       error
		retry     bool
		returnErr bool
	}{
		{"503", context.Background(), resp(503), nil, true, false},
		{"500", context.Background(), resp(500), nil, true, false},
		{"502", context.Background(), resp(502), nil, true, false},
		{"504", context.Background(), resp(504), nil, false, false},
		{"404", context.Background(), resp(404), nil, false, false},
		{"connection refused", context.Background(), nil, &net.OpError{Op: "dial", Err: errors.New("refused")}, true, false},
		{"unexpected EOF", context.Background(), nil, io.ErrUnexpectedEOF, true, false},
		{"context cancelled", cancelled, nil, context.Canceled, false, true},
		{"one attempt timed out", context.Background(), nil, fmt.Errorf("x: %w", context.DeadlineExceeded), true, false},
		{"call deadline passed", expired, nil, fmt.Errorf("x: %w", context.DeadlineExceeded), false, true},
		{"response after cancel is handed over", cancelled, resp(503), nil, false, false},
		{"untrusted certificate", context.Background(), nil, x509.UnknownAuthorityError{}, false, true},
		{"plain http peer", context.Background(), nil, http.ErrSchemeMismatch, false, true},
		{"redirect loop", context.Background(), nil, errTooManyRedirects, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			retry, err := retryPolicy(tt.ctx, tt.resp, tt.err)
			require.Equal(t, tt.retry, retry)
			require.Equal(t, tt.returnErr, err != nil)
			if tt.resp != nil {
				require.NoError(t, err, "never an error with a response")
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	minW, maxW := 100*time.Millisecond, 2*time.Second
	withRetryAfter := func(code int, v string) *http.Response {
		return &http.Response{StatusCode: code, Header: http.Header{"Retry-After": []string{v}}}
	}
	tests := []struct {
		name     string
		attempt  int
		resp     *http.Response
		min, max time.Duration
	}{
		{"first", 0, nil, 50 * time.Millisecond, 100 * time.Millisecond},
		{"doubles", 1, nil, 100 * time.Millisecond, 200 * time.Millisecond},
		{"third", 3, nil, 400 * time.Millisecond, 800 * time.Millisecond},
		{"capped", 10, nil, time.Second, 2 * time.Second},
		{"huge attempt does not overflow", 200, nil, time.Second, 2 * time.Second},
		{"retry-after seconds", 0, withRetryAfter(503, "1"), time.Second, time.Second},
		{"retry-after capped", 0, withRetryAfter(503, "120"), 2 * time.Second, 2 * time.Second},
		{"retry-after ignored off 503", 0, withRetryAfter(500, "1"), 50 * time.Millisecond, 100 * time.Millisecond},
		{"bad retry-after", 0, withRetryAfter(503, "soon"), 50 * time.Millisecond, 100 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			seen := map[time.Duration]bool{}
			for range 200 {
				d := backoff(minW, maxW, tt.attempt, tt.resp)
				require.GreaterOrEqual(t, d, tt.min)
				require.LessOrEqual(t, d, tt.max)
				seen[d] = true
			}
			if tt.min != tt.max {
				require.Greater(t, len(seen), 1, "jittered")
			}
		})
	}
}

func TestRetryAfterDate(t *testing.T) {
	t.Parallel()
	now := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	d, ok := retryAfter(now.Add(3*time.Second).Format(http.TimeFormat), now)
	require.True(t, ok)
	require.Equal(t, 3*time.Second, d)
	d, ok = retryAfter(now.Add(-time.Hour).Format(http.TimeFormat), now)
	require.True(t, ok)
	require.Zero(t, d)
	_, ok = retryAfter("-5", now)
	require.False(t, ok)
}

func TestHTTPClientZeroOptions(t *testing.T) {
	t.Parallel()
	srv, attempts := statusSequence(t, 503, 200)
	resp, err := newClient(t, ClientOptions{}).Get(srv.URL)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "no retries unless asked")
	require.Equal(t, int64(1), attempts.Load())
}
