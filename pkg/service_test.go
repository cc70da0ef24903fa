package grapherd

import (
	"context"
	"encoding/json"
	"errors"
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
	"go.uber.org/goleak"
	"gonum.org/v1/gonum/graph/formats/dot"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/digester"
	v1 "github.com/asecurityteam/vpcflow-grapherd/pkg/handlers/v1"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/marker"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/runtime"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/storage"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	window   = "start=2026-11-01T10:00:00Z&stop=2026-11-01T11:00:00Z"
	sampleV2 = "2 123456789012 eni-0a1 10.0.0.1 10.0.0.2 0 443 6 10 840 1793527200 1793527260 ACCEPT OK\n" +
		"2 123456789012 eni-0a1 10.0.0.3 10.0.0.1 0 22 6 2 120 1793527300 1793527320 REJECT OK\n"
)

// digestFunc is a Digester made of a function; the HTTP and built-in
// digesters have their own tests against real peers.
type digestFunc func(ctx context.Context, start, stop time.Time) (io.ReadCloser, error)

func (f digestFunc) Digest(ctx context.Context, start, stop time.Time) (io.ReadCloser, error) {
	return f(ctx, start, stop)
}

func staticDigest(s string) digestFunc {
	return func(context.Context, time.Time, time.Time) (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader(s)), nil
	}
}

// blockingDigest returns sampleV2 once release is closed, holding its job
// in progress until then.
func blockingDigest(release <-chan struct{}) digestFunc {
	return func(ctx context.Context, _, _ time.Time) (io.ReadCloser, error) {
		select {
		case <-release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return io.NopCloser(strings.NewReader(sampleV2)), nil
	}
}

type queuerFunc func(ctx context.Context, job types.Job) error

func (f queuerFunc) Queue(ctx context.Context, job types.Job) error { return f(ctx, job) }

type harness struct {
	url     string
	service *Service
	storage *storage.Memory
	marker  *marker.Memory
}

func newHarness(t *testing.T, s *Service, env map[string]string) *harness {
	t.Helper()
	h := &harness{service: s, storage: &storage.Memory{}, marker: &marker.Memory{Timeout: time.Minute}}
	if s.Storage == nil {
		s.Storage = h.storage
	}
	if s.Marker == nil {
		s.Marker = h.marker
	}
	h.url = serve(t, s, env)
	return h
}

// serve configures s from env unless it has a Config, binds its routes and
// serves them until the test ends, when the service must shut down cleanly.
// It returns the server's URL.
func serve(t *testing.T, s *Service, env map[string]string) string {
	t.Helper()
	if s.Config == nil {
		cfg, err := runtime.Load(func(k string) string { return env[k] })
		require.NoError(t, err)
		s.Config = cfg
	}
	router := chi.NewRouter()
	require.NoError(t, s.BindRoutes(router))
	srv := httptest.NewServer(router)
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, s.Shutdown(ctx))
	})
	return srv.URL
}

func (h *harness) do(t *testing.T, method, path string, body io.Reader, header ...string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, h.url+path, body)
	require.NoError(t, err)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res.StatusCode, res.Header, string(b)
}

// waitGraph polls GET until it answers something other than 204.
func (h *harness) waitGraph(t *testing.T, query string) (int, http.Header, string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		status, hdr, body := h.do(t, http.MethodGet, "/?"+query, nil)
		if status != http.StatusNoContent || time.Now().After(deadline) {
			return status, hdr, body
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func message(t *testing.T, body string) string {
	t.Helper()
	var m struct {
		Message string `json:"message"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &m), "body %q is not a JSON message", body)
	require.NotEmpty(t, m.Message)
	return m.Message
}

func TestCreateThenFetch(t *testing.T) {
	t.Parallel()
	h := newHarness(t, &Service{Digester: staticDigest(sampleV2)}, nil)

	status, hdr, body := h.do(t, http.MethodPost, "/?"+window, nil)
	require.Equal(t, http.StatusAccepted, status, body)
	var created struct{ ID, Start, Stop, Location string }
	require.NoError(t, json.Unmarshal([]byte(body), &created))
	require.Equal(t, v1.ComputeID(time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC), time.Date(2026, 11, 1, 11, 0, 0, 0, time.UTC)), created.ID)
	require.Equal(t, created.Location, hdr.Get("Location"))

	status, hdr, body = h.waitGraph(t, window)
	require.Equal(t, http.StatusOK, status, body)
	require.Equal(t, v1.DOTContentType, hdr.Get("Content-Type"))
	g, err := dot.ParseString(body)
	require.NoError(t, err)
	require.Len(t, g.Graphs, 1)
	require.True(t, g.Graphs[0].Directed)
	require.Contains(t, body, `govpc_dstPort="443"`)
	require.Contains(t, body, `color="red"`)
	require.Equal(t, 2, strings.Count(body, "->"), "one edge per digest line")

	// The window now exists: a second POST is a conflict naming it.
	status, _, body = h.do(t, http.MethodPost, "/?"+window, nil)
	require.Equal(t, http.StatusConflict, status)
	require.Equal(t, "graph for the time 2026-11-01T10:00:00Z to 2026-11-01T11:00:00Z already exists", message(t, body))

	// The same window written with an offset is the same graph.
	status, _, _ = h.do(t, http.MethodGet, "/?start=2026-11-01T12:00:00%2B02:00&stop=2026-11-01T13:00:30%2B02:00", nil)
	require.Equal(t, http.StatusOK, status)
}

func TestInProgressConflictNamesWindow(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	h := newHarness(t, &Service{Digester: blockingDigest(release)}, nil)

	status, _, _ := h.do(t, http.MethodPost, "/?"+window, nil)
	require.Equal(t, http.StatusAccepted, status)
	status, _, body := h.do(t, http.MethodPost, "/?start=2026-11-01T10:00:10Z&stop=2026-11-01T11:00:59Z", nil)
	require.Equal(t, http.StatusConflict, status)
	require.Equal(t, "graph for the time 2026-11-01T10:00:00Z to 2026-11-01T11:00:00Z is being made", message(t, body))
	status, _, body = h.do(t, http.MethodGet, "/?"+window, nil)
	require.Equal(t, http.StatusNoContent, status)
	require.Empty(t, body)
	close(release)
	status, _, _ = h.waitGraph(t, window)
	require.Equal(t, http.StatusOK, status)
}

func TestConcurrentCreatesQueueOneJob(t *testing.T) {
	t.Parallel()
	var jobs atomic.Int32
	h := newHarness(t, &Service{Digester: digestFunc(func(context.Context, time.Time, time.Time) (io.ReadCloser, error) {
		jobs.Add(1)
		return io.NopCloser(strings.NewReader(sampleV2)), nil
	})}, nil)

	const clients = 50
	var wg sync.WaitGroup
	codes := make(chan int, clients)
	start := make(chan struct{})
	for range clients {
		wg.Go(func() {
			<-start
			status, _, _ := h.do(t, http.MethodPost, "/?"+window, nil)
			codes <- status
		})
	}
	close(start)
	wg.Wait()
	close(codes)
	counts := map[int]int{}
	for c := range codes {
		counts[c]++
	}
	require.Equal(t, map[int]int{http.StatusAccepted: 1, http.StatusConflict: clients - 1}, counts)
	status, _, _ := h.waitGraph(t, window)
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, int32(1), jobs.Load())
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	h := newHarness(t, &Service{Digester: staticDigest(sampleV2)}, nil)
	tests := []struct {
		method, path string
		status       int
		msg          string
	}{
		{http.MethodPost, "/?start=soon&stop=2026-11-01T11:00:00Z", http.StatusBadRequest, `"start" is "soon", not an RFC 3339 time`},
		{http.MethodGet, "/?start=2026-11-01T12:00:00Z&stop=2026-11-01T11:00:00Z", http.StatusBadRequest, "is after stop"},
		{http.MethodGet, "/", http.StatusBadRequest, `"start" is required`},
		{http.MethodPost, "/?start=2026-01-01T00:00:00Z&stop=2026-11-01T00:00:00Z", http.StatusBadRequest, "longer than the limit"},
		{http.MethodGet, "/?start=2026-11-02T10:00:00Z&stop=2026-11-02T11:00:00Z", http.StatusNotFound, "no graph for the time 2026-11-02T10:00:00Z to 2026-11-02T11:00:00Z"},
		{http.MethodGet, "/no/such/route", http.StatusNotFound, "no route for GET /no/such/route"},
		{http.MethodPut, "/", http.StatusMethodNotAllowed, "method PUT is not allowed"},
		{http.MethodGet, "/grapherd/job", http.StatusMethodNotAllowed, "method GET is not allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			t.Parallel()
			status, hdr, body := h.do(t, tt.method, tt.path, nil)
			require.Equal(t, tt.status, status, body)
			require.Equal(t, "application/json", hdr.Get("Content-Type"))
			require.Contains(t, message(t, body), tt.msg)
		})
	}
}

func TestFailedJobIsReportedAndRetried(t *testing.T) {
	t.Parallel()
	var fail atomic.Bool
	fail.Store(true)
	h := newHarness(t, &Service{Digester: digestFunc(func(context.Context, time.Time, time.Time) (io.ReadCloser, error) {
		if fail.Load() {
			return nil, errors.New("digester answered 503")
		}
		return io.NopCloser(strings.NewReader(sampleV2)), nil
	})}, nil)

	status, _, _ := h.do(t, http.MethodPost, "/?"+window, nil)
	require.Equal(t, http.StatusAccepted, status)
	status, _, body := h.waitGraph(t, window)
	require.Equal(t, http.StatusFailedDependency, status, body)
	require.True(t, strings.HasSuffix(message(t, body), ": the digester failed"), body)

	// A failed window may be asked for again at once.
	fail.Store(false)
	status, _, body = h.do(t, http.MethodPost, "/?"+window, nil)
	require.Equal(t, http.StatusAccepted, status, body)
	status, _, _ = h.waitGraph(t, window)
	require.Equal(t, http.StatusOK, status)
}

func TestMalformedDigestFailsPermanently(t *testing.T) {
	t.Parallel()
	h := newHarness(t, &Service{Digester: staticDigest("2 garbage\nnot a flow log line at all\n")}, nil)
	job := jobBody(t, window)
	status, _, body := h.do(t, http.MethodPost, "/topic/event", strings.NewReader(job))
	require.Equal(t, http.StatusUnprocessableEntity, status, body)
	require.Equal(t, "the digest is malformed: 0 usable lines of 2", message(t, body))
	status, _, body = h.do(t, http.MethodGet, "/?"+window, nil)
	require.Equal(t, http.StatusFailedDependency, status)
	require.Contains(t, message(t, body), ": the digest is malformed: 0 usable lines of 2")
}

func TestQueueFailureClearsMark(t *testing.T) {
	t.Parallel()
	var fail atomic.Bool
	fail.Store(true)
	var queued atomic.Int32
	h := newHarness(t, &Service{
		Digester: staticDigest(sampleV2),
		Queuer: queuerFunc(func(context.Context, types.Job) error {
			if fail.Load() {
				return errors.New("event bus answered 502")
			}
			queued.Add(1)
			return nil
		}),
	}, nil)
	status, _, body := h.do(t, http.MethodPost, "/?"+window, nil)
	require.Equal(t, http.StatusInternalServerError, status)
	require.Equal(t, "queuer dependency failed", message(t, body))
	// Nothing holds the window: it is not in progress and may be asked for again.
	status, _, _ = h.do(t, http.MethodGet, "/?"+window, nil)
	require.Equal(t, http.StatusNotFound, status)
	fail.Store(false)
	status, _, _ = h.do(t, http.MethodPost, "/?"+window, nil)
	require.Equal(t, http.StatusAccepted, status)
	require.Equal(t, int32(1), queued.Load())
}

func jobBody(t *testing.T, query string) string {
	t.Helper()
	start, stop, err := v1.ParseWindow(query, 0)
	require.NoError(t, err)
	b, err := v1.EncodeJob(types.Job{ID: v1.ComputeID(start, stop), Start: start, Stop: stop})
	require.NoError(t, err)
	return string(b)
}

func TestWorkerIsIdempotent(t *testing.T) {
	t.Parallel()
	var digests atomic.Int32
	h := newHarness(t, &Service{Digester: digestFunc(func(context.Context, time.Time, time.Time) (io.ReadCloser, error) {
		digests.Add(1)
		return io.NopCloser(strings.NewReader(sampleV2)), nil
	})}, nil)
	job := jobBody(t, window)
	for range 3 {
		status, _, body := h.do(t, http.MethodPost, "/vpcflow/graph", strings.NewReader(job))
		require.Equal(t, http.StatusNoContent, status, body)
	}
	require.Equal(t, int32(1), digests.Load(), "a redelivered job does no work once the graph exists")
	status, _, _ := h.do(t, http.MethodGet, "/?"+window, nil)
	require.Equal(t, http.StatusOK, status)
}

func TestWorkerRejectsBadBodies(t *testing.T) {
	t.Parallel()
	h := newHarness(t, &Service{Digester: staticDigest(sampleV2)}, map[string]string{"GRAPHERD_MAX_BODY_BYTES": "512"})
	tests := []struct {
		name, body string
		status     int
		msg        string
	}{
		{"not json", "hello", http.StatusBadRequest, "not a JSON object"},
		{"empty", "", http.StatusBadRequest, "not a JSON object"},
		{"id of another window", strings.Replace(jobBody(t, window), "11:00:00Z", "12:00:00Z", 1), http.StatusBadRequest, "is not the id of the window"},
		{"too large", `{"id":"` + strings.Repeat("a", 1024) + `"}`, http.StatusRequestEntityTooLarge, "larger than 512 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			status, _, body := h.do(t, http.MethodPost, "/topic/event", strings.NewReader(tt.body))
			require.Equal(t, tt.status, status, body)
			require.Contains(t, message(t, body), tt.msg)
		})
	}
}

func TestWorkerRespondAsync(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	h := newHarness(t, &Service{Digester: blockingDigest(release)}, nil)
	started := time.Now()
	status, hdr, _ := h.do(t, http.MethodPost, "/grapherd/job", strings.NewReader(jobBody(t, window)), "Prefer", "respond-async, wait=5")
	require.Equal(t, http.StatusAccepted, status)
	require.Equal(t, "respond-async", hdr.Get("Preference-Applied"))
	require.Less(t, time.Since(started), 2*time.Second, "the worker must not hold the caller while the digest is made")
	status, _, _ = h.do(t, http.MethodGet, "/?"+window, nil)
	require.Equal(t, http.StatusNoContent, status, "the worker marks a job it takes directly")
	close(release)
	status, _, _ = h.waitGraph(t, window)
	require.Equal(t, http.StatusOK, status)
}

type pingFailStorage struct{ storage.Memory }

func (*pingFailStorage) Ping(context.Context) error {
	return errors.New("bucket graphs: connection refused")
}

func TestHealth(t *testing.T) {
	t.Parallel()
	h := newHarness(t, &Service{Digester: staticDigest(""), Storage: &pingFailStorage{}}, nil)
	status, _, body := h.do(t, http.MethodGet, "/healthz", nil)
	require.Equal(t, http.StatusOK, status)
	require.JSONEq(t, `{"status":"ok"}`, body)
	status, _, body = h.do(t, http.MethodGet, "/readyz", nil)
	require.Equal(t, http.StatusServiceUnavailable, status)
	require.JSONEq(t, `{"status":"unavailable","checks":{"storage":"unavailable"}}`, body)
	require.NotContains(t, body, "bucket graphs", "the check's error stays in the log")
}

func TestShutdownClearsMarksOfCancelledJobs(t *testing.T) {
	t.Parallel()
	started := make(chan struct{})
	s := &Service{Digester: digestFunc(func(ctx context.Context, _, _ time.Time) (io.ReadCloser, error) {
		close(started)
		<-ctx.Done()
		return nil, fmt.Errorf("digest: %w", ctx.Err())
	})}
	cfg, err := runtime.Load(func(string) string { return "" })
	require.NoError(t, err)
	s.Config = cfg
	mk := &marker.Memory{Timeout: time.Hour}
	s.Storage, s.Marker = &storage.Memory{}, mk
	router := chi.NewRouter()
	require.NoError(t, s.BindRoutes(router))
	srv := httptest.NewServer(router)
	defer srv.Close()

	res, err := http.Post(srv.URL+"/?"+window, "", nil)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusAccepted, res.StatusCode)
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_ = s.Shutdown(ctx) // gives up waiting and cancels the running job
	start, stop, _ := v1.ParseWindow(window, 0)
	m, err := mk.Check(context.Background(), v1.ComputeID(start, stop))
	require.NoError(t, err)
	require.Equal(t, types.MarkNone, m.State, "a job cut short by shutdown leaves the window free")
}

// TestLongJobKeepsItsMark runs a job several times longer than the mark's
// timeout: the worker's refreshes keep GET at 204 and POST at 409 throughout.
func TestLongJobKeepsItsMark(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	// Refreshes come every third of the timeout, leaving two thirds of
	// slack for a loaded machine; the job runs for three timeouts.
	const timeout = time.Second
	h := newHarness(t, &Service{Digester: blockingDigest(release), Marker: &marker.Memory{Timeout: timeout}},
		map[string]string{"GRAPH_PROGRESS_TIMEOUT": "1000"})

	status, _, _ := h.do(t, http.MethodPost, "/?"+window, nil)
	require.Equal(t, http.StatusAccepted, status)
	for deadline := time.Now().Add(3 * timeout); time.Now().Before(deadline); {
		status, _, _ = h.do(t, http.MethodGet, "/?"+window, nil)
		require.Equal(t, http.StatusNoContent, status, "the mark must not expire while the job runs")
		status, _, _ = h.do(t, http.MethodPost, "/?"+window, nil)
		require.Equal(t, http.StatusConflict, status)
		time.Sleep(20 * time.Millisecond)
	}
	close(release)
	status, _, _ = h.waitGraph(t, window)
	require.Equal(t, http.StatusOK, status)
}

// brokenReadStorage serves graphs whose stream breaks after a few bytes, as
// an S3 connection dropped mid-download would.
type brokenReadStorage struct{ storage.Memory }

type breakingReader struct{ left int }

func (b *breakingReader) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, errors.New("connection reset by S3")
	}
	n := min(len(p), b.left)
	for i := range p[:n] {
		p[i] = 'x'
	}
	b.left -= n
	return n, nil
}

func (*breakingReader) Close() error { return nil }

func (s *brokenReadStorage) Get(ctx context.Context, id string) (io.ReadCloser, error) {
	if _, err := s.Memory.Get(ctx, id); err != nil {
		return nil, err
	}
	return &breakingReader{left: 64 << 10}, nil
}

// TestInterruptedGraphIsNotServedWhole shows a client that a graph stream
// broken midway ends in an error, never in a clean short body.
func TestInterruptedGraphIsNotServedWhole(t *testing.T) {
	t.Parallel()
	h := newHarness(t, &Service{Digester: staticDigest(sampleV2), Storage: &brokenReadStorage{}}, nil)
	status, _, _ := h.do(t, http.MethodPost, "/topic/event", strings.NewReader(jobBody(t, window)))
	require.Equal(t, http.StatusNoContent, status)

	res, err := http.Get(h.url + "/?" + window)
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	b, err := io.ReadAll(res.Body)
	require.Error(t, err, "the client must see the stream break, not a complete body")
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	require.Len(t, b, 64<<10)
}

// endlessStorage serves a graph that never ends and reports when its
// stream is closed, that is when the handler serving it has returned.
type endlessStorage struct {
	storage.Memory
	closed chan struct{}
}

type endlessReader struct{ closed chan struct{} }

func (endlessReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	return len(p), nil
}

func (e endlessReader) Close() error {
	close(e.closed)
	return nil
}

func (s *endlessStorage) Get(context.Context, string) (io.ReadCloser, error) {
	return endlessReader{closed: s.closed}, nil
}

// TestClientThatStopsReadingIsCutOff shows a client that asks for a graph
// and never reads it releasing the handler after GRAPHERD_HTTP_TIMEOUT.
func TestClientThatStopsReadingIsCutOff(t *testing.T) {
	t.Parallel()
	st := &endlessStorage{closed: make(chan struct{})}
	h := newHarness(t, &Service{Digester: staticDigest(sampleV2), Storage: st}, map[string]string{"GRAPHERD_HTTP_TIMEOUT": "300ms"})

	conn, err := net.Dial("tcp", strings.TrimPrefix(h.url, "http://"))
	require.NoError(t, err)
	defer conn.Close()
	_, err = fmt.Fprintf(conn, "GET /?%s HTTP/1.1\r\nHost: grapherd\r\n\r\n", window)
	require.NoError(t, err)
	// Never read: the socket buffers fill and the server's writes block.
	select {
	case <-st.closed:
	case <-time.After(20 * time.Second):
		t.Fatal("the handler still holds the graph stream of a client that stopped reading")
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(s.b.String()), "\n") {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), "log line %q", line)
		out = append(out, m)
	}
	return out
}

// TestLogsUseSeedEventNames checks that refusals and failures are logged
// once each, under the original service's event names.
func TestLogsUseSeedEventNames(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	h := newHarness(t, &Service{
		Logger:   runtime.NewLogger(&runtime.Config{}, &logs),
		Digester: staticDigest(sampleV2),
		Queuer:   queuerFunc(func(context.Context, types.Job) error { return errors.New("bus down") }),
	}, nil)
	h.do(t, http.MethodGet, "/?start=x&stop=y", nil)
	h.do(t, http.MethodGet, "/?"+window, nil)
	h.do(t, http.MethodPost, "/?"+window, nil)

	var events []string
	for _, l := range logs.lines(t) {
		if l["status"] != nil {
			events = append(events, fmt.Sprintf("%v %v %v %v", l["level"], l["message"], l["status"], l["dependency"]))
		}
	}
	require.Equal(t, []string{
		"INFO invalid-input 400 <nil>",
		"INFO not-found 404 <nil>",
		"ERROR dependency-failure 500 queuer",
	}, events)
}

type panickingGrapher struct{}

func (panickingGrapher) Graph(context.Context, io.Writer, io.Reader) (types.GraphStats, error) {
	panic("custom grapher bug")
}

// TestPanickingModuleFailsTheJobNotTheProcess shows a job whose module
// panics ending as a failed graph, with the service still serving: the
// grapher runs on a goroutine of the worker's, the digester on the pool's.
func TestPanickingModuleFailsTheJobNotTheProcess(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		service *Service
		reason  string
	}{
		{"grapher", &Service{Digester: staticDigest(sampleV2), Grapher: panickingGrapher{}}, "internal error while making the graph"},
		{"digester", &Service{Digester: digestFunc(func(context.Context, time.Time, time.Time) (io.ReadCloser, error) {
			panic("custom digester bug")
		})}, "internal error while making the graph"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, tt.service, nil)
			status, _, _ := h.do(t, http.MethodPost, "/?"+window, nil)
			require.Equal(t, http.StatusAccepted, status)
			status, _, body := h.waitGraph(t, window)
			require.Equal(t, http.StatusFailedDependency, status, body)
			require.Contains(t, message(t, body), tt.reason)
			status, _, _ = h.do(t, http.MethodGet, "/healthz", nil)
			require.Equal(t, http.StatusOK, status)
		})
	}
}

// downMarker is a marker whose store cannot be reached.
type downMarker struct{ marker.Memory }

func (*downMarker) Check(context.Context, string) (types.Mark, error) {
	return types.Mark{}, errors.New("progress bucket: connection refused")
}

func (*downMarker) Mark(context.Context, string) (string, error) {
	return "", errors.New("progress bucket: connection refused")
}

// TestMarkerOutageIsPutDownToTheMarker shows a marker failure named as
// such, though it surfaces through the in-progress storage.
func TestMarkerOutageIsPutDownToTheMarker(t *testing.T) {
	t.Parallel()
	h := newHarness(t, &Service{Digester: staticDigest(sampleV2), Marker: &downMarker{}}, nil)
	for _, method := range []string{http.MethodPost, http.MethodGet} {
		status, _, body := h.do(t, method, "/?"+window, nil)
		require.Equal(t, http.StatusInternalServerError, status, method)
		require.Equal(t, "marker dependency failed", message(t, body), method)
	}
}

// TestBuiltinDigesterTakesItsSettings hands the built-in digester the
// memory budget, spill folder and flow bound the environment sets.
func TestBuiltinDigesterTakesItsSettings(t *testing.T) {
	t.Parallel()
	spill := t.TempDir()
	env := map[string]string{
		"FLOW_LOGS_DIR": "../testdata/flowlogs", "GRAPHERD_DATA_DIR": t.TempDir(),
		"GRAPHERD_DIGEST_MEMORY_BYTES": "16777216", "GRAPHERD_SPILL_DIR": spill, "GRAPHERD_MAX_FLOWS": "1234",
	}
	cfg, err := runtime.Load(func(k string) string { return env[k] })
	require.NoError(t, err)
	s := &Service{Config: cfg}
	require.NoError(t, s.Init(context.Background()))
	b, ok := s.Digester.(*digester.Builtin)
	require.True(t, ok, "%T", s.Digester)
	require.Equal(t, int64(16<<20), b.MemoryBytes)
	require.Equal(t, spill, b.SpillDir)
	require.Equal(t, 1234, b.MaxFlows)
}
