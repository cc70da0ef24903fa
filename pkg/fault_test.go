package grapherd

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/graph/formats/dot"
	"gonum.org/v1/gonum/graph/formats/dot/ast"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/awss3/s3test"
	v1 "github.com/asecurityteam/vpcflow-grapherd/pkg/handlers/v1"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/marker"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/storage"
)

// The fault tests inject one failure of a dependency at a time into a
// service whose other parts are real, and check the promises of issue 5:
// the client gets a bounded, documented answer; a GET answers 200 only with
// a whole graph; the failure is recorded or the mark cleared; everything
// works once the dependency is back; and (TestMain's goleak) no goroutine
// outlives the test.

// requireWholeGraph fails unless body is a DOT graph that parses and has
// one edge per line of the digest it was made from.
func requireWholeGraph(t *testing.T, body string, wantEdges int) {
	t.Helper()
	f, err := dot.ParseString(body)
	require.NoError(t, err, "a 200 answer must carry a graph that parses")
	require.Len(t, f.Graphs, 1)
	n := 0
	for _, st := range f.Graphs[0].Stmts {
		if _, ok := st.(*ast.EdgeStmt); ok {
			n++
		}
	}
	require.Equal(t, wantEdges, n, "a 200 answer must carry every edge")
}

// Digester faults, one per stand-in mode.
const (
	faultNone        = ""
	fault500         = "500 on create"
	faultHangCreate  = "hang on create"
	faultHangPoll    = "hang on poll"
	faultNeverReady  = "never ready"
	faultStallBody   = "stall mid-body"
	faultCutBody     = "connection closed mid-body"
	faultCorruptGzip = "corrupt gzip"
	faultGigantic    = "gigantic digest"
	faultLargeStall  = "too large, then stall"
)

// faultyDigesterd behaves like vpcflow-digesterd (POST 202, GET 200 with a
// gzipped digest) until told to misbehave in one of the fault modes.
type faultyDigesterd struct {
	digest string
	mu     sync.Mutex
	fault  string
	quit   chan struct{} // closed at cleanup: hung handlers return
	gets   atomic.Int32
}

func newFaultyDigesterd(t *testing.T, digest, fault string) (*faultyDigesterd, *httptest.Server) {
	t.Helper()
	d := &faultyDigesterd{digest: digest, fault: fault, quit: make(chan struct{})}
	srv := httptest.NewServer(d)
	t.Cleanup(func() {
		close(d.quit)
		srv.Close()
	})
	return d, srv
}

func (d *faultyDigesterd) setFault(f string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.fault = f
}

func (d *faultyDigesterd) hang(r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-d.quit:
	}
}

func (d *faultyDigesterd) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	fault := d.fault
	d.mu.Unlock()
	if r.Method == http.MethodPost {
		switch fault {
		case fault500:
			http.Error(w, `{"message":"digesterd exploded"}`, http.StatusInternalServerError)
		case faultHangCreate:
			d.hang(r)
		default:
			w.WriteHeader(http.StatusAccepted)
		}
		return
	}
	d.gets.Add(1)
	full := gzippedString(d.digest)
	switch fault {
	case faultHangPoll:
		d.hang(r)
	case faultNeverReady:
		w.WriteHeader(http.StatusNoContent)
	case faultStallBody:
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(full[:len(full)/2])
		w.(http.Flusher).Flush()
		d.hang(r)
	case faultCutBody:
		// A close-delimited body cut short: only the gzip trailer can tell.
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		_, _ = buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/gzip\r\nConnection: close\r\n\r\n")
		_, _ = buf.Write(full[:len(full)/2])
		_ = buf.Flush()
		_ = conn.Close()
	case faultCorruptGzip:
		bad := append([]byte(nil), full[:10]...) // a valid gzip header, then garbage
		bad = append(bad, bytes.Repeat([]byte{0xff}, 256)...)
		_, _ = w.Write(bad)
	case faultGigantic:
		// An endless stream of valid lines, until the reader gives up;
		// stored, not compressed, so it is fast to make and to drain.
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		zw, _ := gzip.NewWriterLevel(w, gzip.NoCompression)
		chunk := strings.Repeat(d.digest, 512)
		for i := 0; i < 1<<14; i++ {
			if _, err := io.WriteString(zw, chunk); err != nil {
				return
			}
			select {
			case <-r.Context().Done():
				return
			case <-d.quit:
				return
			default:
			}
		}
		_ = zw.Close()
	case faultLargeStall:
		// More than the limit, then nothing: the reader stops at the limit
		// and must not wait for the rest when it closes the body.
		w.WriteHeader(http.StatusOK)
		zw, _ := gzip.NewWriterLevel(w, gzip.NoCompression)
		_, _ = io.WriteString(zw, strings.Repeat(d.digest, 64))
		_ = zw.Flush()
		w.(http.Flusher).Flush()
		d.hang(r)
	default:
		_, _ = w.Write(full)
	}
}

// gzippedString returns s compressed with gzip.
func gzippedString(s string) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = io.WriteString(zw, s)
	_ = zw.Close()
	return buf.Bytes()
}

// faultEnv are short timeouts, so every fault resolves in about a second.
func faultEnv(digesterURL string) map[string]string {
	return map[string]string{
		"DIGESTER_ENDPOINT":         digesterURL,
		"DIGESTER_POLLING_INTERVAL": "10",
		"DIGESTER_POLLING_TIMEOUT":  "600",
		"GRAPHERD_HTTP_TIMEOUT":     "400ms",
		"GRAPHERD_HTTP_RETRIES":     "1",
		"GRAPHERD_MAX_DIGEST_BYTES": "4096",
	}
}

// TestFaultDigester drives the worker against a vpcflow-digesterd that fails
// in each way it can: the job fails within the configured timeouts with the
// documented status, GET reports the failure with its reason (never a
// partial graph), and POST makes the graph once the digester is healthy.
func TestFaultDigester(t *testing.T) {
	t.Parallel()
	tests := []struct {
		fault  string
		status int    // the worker's synchronous answer
		reason string // the public reason, in the worker's and GET's message
	}{
		{fault500, http.StatusInternalServerError, "the digester answered 500"},
		{faultHangCreate, http.StatusInternalServerError, "the digester did not answer in time"},
		{faultHangPoll, http.StatusInternalServerError, "the digester failed"},
		{faultNeverReady, http.StatusInternalServerError, "the digester failed"},
		{faultStallBody, http.StatusInternalServerError, "the digester did not answer in time"},
		{faultCutBody, http.StatusInternalServerError, "the digester failed"},
		{faultCorruptGzip, http.StatusUnprocessableEntity, "the digest is malformed"},
		{faultGigantic, http.StatusUnprocessableEntity, "the digest is larger than the limit of 4096 bytes"},
		{faultLargeStall, http.StatusUnprocessableEntity, "the digest is larger than the limit of 4096 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.fault, func(t *testing.T) {
			t.Parallel()
			dd, stub := newFaultyDigesterd(t, sampleV2, tt.fault)
			s := &Service{}
			h := newHarness(t, s, faultEnv(stub.URL))
			t.Cleanup(s.DigesterHTTPClient.CloseIdleConnections)

			began := time.Now()
			status, _, body := h.do(t, http.MethodPost, "/vpcflow/graph", strings.NewReader(jobBody(t, window)))
			took := time.Since(began)
			_, _, record := h.do(t, http.MethodGet, "/?"+window, nil)
			require.Equal(t, tt.status, status, "%s; recorded: %s", body, record)
			require.Equal(t, tt.reason, message(t, body))
			// 2 attempts of 400ms, a backoff and the 600ms poll timeout at most.
			require.Less(t, took, 3*time.Second, "the worker must give up within the configured timeouts")

			status, _, body = h.do(t, http.MethodGet, "/?"+window, nil)
			require.Equal(t, http.StatusFailedDependency, status, body)
			require.True(t, strings.HasSuffix(message(t, body), ": "+tt.reason), "GET gives the public reason: %s", body)
			require.NotContains(t, body, "127.0.0.1", "no internal address reaches the client")
			_, err := h.storage.Get(context.Background(), jobID(t, window))
			require.Error(t, err, "nothing is stored for a failed job")

			dd.setFault(faultNone)
			status, _, body = h.do(t, http.MethodPost, "/?"+window, nil)
			require.Equal(t, http.StatusAccepted, status, body)
			status, _, body = h.waitGraph(t, window)
			require.Equal(t, http.StatusOK, status, body)
			requireWholeGraph(t, body, 2)
			require.Positive(t, dd.gets.Load())
		})
	}
}

func jobID(t *testing.T, query string) string {
	t.Helper()
	start, stop, err := v1.ParseWindow(query, 0)
	require.NoError(t, err)
	return v1.ComputeID(start, stop)
}

// storeSignal is the S3 storage with a hook telling the test when a Store
// has returned.
type storeSignal struct {
	*storage.S3
	stored chan error
}

func (s *storeSignal) Store(ctx context.Context, id string, r io.Reader) error {
	err := s.S3.Store(ctx, id, r)
	s.stored <- err
	return err
}

// TestFaultS3Outage stops the S3 server while a job runs and clients ask
// for graphs, then starts it again. While it is down every request answers
// a JSON 500 naming the dependency within the SDK's bounded retries, and
// /readyz names storage and marker; the interrupted job leaves no graph, its
// window becomes free again, and after the restart everything works.
func TestFaultS3Outage(t *testing.T) {
	t.Parallel()
	gw := s3test.Start(t)
	graphs, progress := gw.NewBucket(t), gw.NewBucket(t)
	client := gw.Client(t)
	st := &storeSignal{S3: &storage.S3{Bucket: graphs, Client: client}, stored: make(chan error, 16)}
	mk := &marker.S3{Bucket: progress, Client: client, Timeout: 1500 * time.Millisecond}

	const other = "start=2026-11-01T12:00:00Z&stop=2026-11-01T13:00:00Z"
	release, digesting := make(chan struct{}), make(chan struct{})
	var once sync.Once
	s := &Service{Storage: st, Marker: mk, Digester: digestFunc(func(ctx context.Context, start, _ time.Time) (io.ReadCloser, error) {
		if start.Hour() == 10 {
			once.Do(func() { close(digesting) })
			select {
			case <-release:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		return io.NopCloser(strings.NewReader(sampleV2)), nil
	})}
	h := newHarness(t, s, map[string]string{"GRAPH_PROGRESS_TIMEOUT": "1500"})

	status, _, body := h.do(t, http.MethodGet, "/readyz", nil)
	require.Equal(t, http.StatusOK, status, body)
	status, _, body = h.do(t, http.MethodPost, "/?"+window, nil)
	require.Equal(t, http.StatusAccepted, status, body)
	status, _, _ = h.do(t, http.MethodGet, "/?"+window, nil)
	require.Equal(t, http.StatusNoContent, status)
	<-digesting // the job is past its own S3 calls and waits for the digest

	gw.Stop(t)

	// Clients keep asking while S3 is away: each answer is bounded and one
	// of the documented ones; none is a graph.
	type answer struct {
		name   string
		status int
		body   string
		took   time.Duration
	}
	requests := []struct{ name, method, path string }{
		{"POST other", http.MethodPost, "/?" + other},
		{"GET other", http.MethodGet, "/?" + other},
		{"GET running", http.MethodGet, "/?" + window},
		{"POST running", http.MethodPost, "/?" + window},
		{"readyz", http.MethodGet, "/readyz"},
	}
	answers := make(chan answer, len(requests))
	var wg sync.WaitGroup
	for _, rq := range requests {
		wg.Go(func() {
			began := time.Now()
			status, _, body := h.do(t, rq.method, rq.path, nil)
			answers <- answer{rq.name, status, body, time.Since(began)}
		})
	}
	wg.Wait()
	close(answers)
	for a := range answers {
		t.Logf("while S3 is down: %s answered %d in %s", a.name, a.status, a.took.Round(time.Millisecond))
		// Three attempts with backoff capped at 2s: well under 10s.
		require.Less(t, a.took, 10*time.Second, "%s must not hang while S3 is down", a.name)
		if a.name == "readyz" {
			require.Equal(t, http.StatusServiceUnavailable, a.status, a.body)
			require.Contains(t, a.body, `"status":"unavailable"`)
			require.Contains(t, a.body, `"storage":"unavailable"`)
			require.Contains(t, a.body, `"marker":"unavailable"`)
			require.NotContains(t, a.body, graphs, "bucket names stay in the log")
			require.NotContains(t, a.body, progress, "bucket names stay in the log")
			continue
		}
		require.Equal(t, http.StatusInternalServerError, a.status, "%s: %s", a.name, a.body)
		require.Equal(t, "storage dependency failed", message(t, a.body), a.name)
	}

	// The running job reaches storage while S3 is down: it fails, and no
	// graph appears.
	close(release)
	select {
	case err := <-st.stored:
		require.Error(t, err, "storing must fail while S3 is down")
	case <-time.After(15 * time.Second):
		t.Fatal("the job did not reach storage")
	}

	gw.Restart(t)
	require.Eventually(t, func() bool {
		status, _, _ := h.do(t, http.MethodGet, "/readyz", nil)
		return status == http.StatusOK
	}, 10*time.Second, 50*time.Millisecond)

	// The interrupted job's window ends as a failure record (when the
	// marker was reachable to record it) or as a mark that expires; never
	// as a graph, and never stuck.
	status, _, body = h.waitGraph(t, window)
	t.Logf("the interrupted job's window answers %d: %s", status, body)
	require.Contains(t, []int{http.StatusFailedDependency, http.StatusNotFound}, status, body)
	_, err := client.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(graphs), Key: aws.String(jobID(t, window) + ".dot")})
	require.Error(t, err, "no graph object for the failed job")

	for _, q := range []string{window, other} {
		status, _, body = h.do(t, http.MethodPost, "/?"+q, nil)
		require.Equal(t, http.StatusAccepted, status, body)
		status, _, body = h.waitGraph(t, q)
		require.Equal(t, http.StatusOK, status, body)
		requireWholeGraph(t, body, 2)
	}
	for len(st.stored) > 0 {
		<-st.stored
	}
}

// TestFaultS3Unresponsive points the service's own S3 client (built from
// the configuration) at a server that accepts connections and never
// answers: requests and readiness still answer within the configured HTTP
// timeout and its retries instead of hanging.
func TestFaultS3Unresponsive(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var conns sync.WaitGroup
	accepted := make(chan net.Conn, 64)
	conns.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c // held open, never answered
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		conns.Wait()
		close(accepted)
		for c := range accepted {
			_ = c.Close()
		}
	})

	env := map[string]string{
		"GRAPH_STORAGE_BUCKET":  "graphs",
		"GRAPH_PROGRESS_BUCKET": "graph-progress",
		"AWS_ENDPOINT_URL_S3":   "http://" + ln.Addr().String(),
		"USE_IAM":               "false",
		"AWS_ACCESS_KEY_ID":     "AKIDEXAMPLE",
		"AWS_SECRET_ACCESS_KEY": "secret",
		"GRAPHERD_HTTP_TIMEOUT": "300ms",
	}
	url := serve(t, &Service{Digester: staticDigest(sampleV2)}, env)

	tests := []struct {
		method, path string
		status       int
		msg          string
	}{
		{http.MethodPost, "/?" + window, http.StatusInternalServerError, "storage dependency failed"},
		{http.MethodGet, "/?" + window, http.StatusInternalServerError, "storage dependency failed"},
		{http.MethodGet, "/readyz", http.StatusServiceUnavailable, ""},
		{http.MethodGet, "/healthz", http.StatusOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			t.Parallel()
			began := time.Now()
			status, _, body := do(t, url, tt.method, tt.path, nil)
			require.Equal(t, tt.status, status, body)
			if tt.msg != "" {
				require.Equal(t, tt.msg, message(t, body))
			}
			// Three attempts of 300ms plus capped backoff.
			require.Less(t, time.Since(began), 8*time.Second, "a hung S3 must not hang the request")
		})
	}
}

// stallProxy forwards TCP to an upstream S3 server until one connection has
// sent more than trigger bytes upstream (the middle of an upload); from then
// on, until released, it stops reading from its clients, as a hung S3 whose
// receive window closed. Its receive buffers are small, so a client's write
// blocks soon after.
type stallProxy struct {
	ln       net.Listener
	upstream string
	trigger  int64
	armed    atomic.Bool
	stalled  atomic.Bool
	closed   atomic.Bool
	mu       sync.Mutex
	conns    []net.Conn
	wg       sync.WaitGroup
}

func startStallProxy(t *testing.T, upstream string, trigger int64) *stallProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &stallProxy{ln: ln, upstream: upstream, trigger: trigger}
	p.armed.Store(true)
	p.wg.Go(p.accept)
	t.Cleanup(func() {
		p.closed.Store(true)
		_ = ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			_ = c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *stallProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		_ = c.(*net.TCPConn).SetReadBuffer(64 << 10)
		u, err := net.Dial("tcp", p.upstream)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, u)
		p.mu.Unlock()
		p.wg.Go(func() {
			_, _ = io.Copy(c, u)
			_ = c.Close()
		})
		p.wg.Go(func() {
			defer u.Close()
			buf := make([]byte, 32<<10)
			var sent int64
			for {
				for p.stalled.Load() {
					if p.closed.Load() {
						return
					}
					time.Sleep(5 * time.Millisecond)
				}
				n, err := c.Read(buf)
				if n > 0 {
					if _, werr := u.Write(buf[:n]); werr != nil {
						return
					}
					sent += int64(n)
					if sent > p.trigger && p.armed.CompareAndSwap(true, false) {
						p.stalled.Store(true)
					}
				}
				if err != nil {
					return
				}
			}
		})
	}
}

// TestFaultS3StopsReading has S3 stop reading in the middle of a multipart
// upload, the way a hung server does once its receive window closes: the
// service's S3 client fails the write within GRAPHERD_HTTP_TIMEOUT, the job
// fails with a record instead of holding a worker forever, no graph
// appears, and once S3 reads again the window is made.
func TestFaultS3StopsReading(t *testing.T) {
	t.Parallel()
	gw := s3test.Start(t)
	bucket := gw.NewBucket(t)
	proxy := startStallProxy(t, strings.TrimPrefix(gw.Endpoint, "http://"), 64<<10)
	env := map[string]string{
		"GRAPH_STORAGE_BUCKET":  bucket,
		"AWS_ENDPOINT_URL_S3":   "http://" + proxy.ln.Addr().String(),
		"USE_IAM":               "false",
		"AWS_ACCESS_KEY_ID":     gw.AccessKey,
		"AWS_SECRET_ACCESS_KEY": gw.SecretKey,
		"GRAPHERD_HTTP_TIMEOUT": "500ms",
	}
	// About 400 bytes of DOT per edge: more than one 5 MiB part.
	var digest strings.Builder
	const lines = 16000
	for i := range lines {
		fmt.Fprintf(&digest, "2 123456789012 eni-1 10.0.%d.%d 10.1.%d.%d 0 443 6 1 40 1793527200 1793527260 ACCEPT OK\n",
			i>>8, i&255, i>>8, i&255)
	}
	url := serve(t, &Service{Marker: &marker.Memory{Timeout: time.Minute}, Digester: staticDigest(digest.String())}, env)

	began := time.Now()
	status, _, body := do(t, url, http.MethodPost, "/vpcflow/graph", strings.NewReader(jobBody(t, window)))
	took := time.Since(began)
	require.True(t, proxy.stalled.Load(), "S3 stopped reading mid-upload")
	proxy.stalled.Store(false)
	require.Equal(t, http.StatusInternalServerError, status, body)
	require.Equal(t, "storage failed while storing the graph", message(t, body))
	// Three attempts at the part and at the abort, 500ms each, and backoff.
	require.Less(t, took, 15*time.Second)
	status, _, body = do(t, url, http.MethodGet, "/?"+window, nil)
	require.Equal(t, http.StatusFailedDependency, status, body)
	require.True(t, strings.HasSuffix(message(t, body), ": storage failed while storing the graph"), body)
	require.NotContains(t, body, bucket, "the bucket's name stays inside")

	_, err := gw.Client(t).HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(jobID(t, window) + ".dot")})
	require.Error(t, err, "an upload cut short leaves no object")
	status, _, body = do(t, url, http.MethodPost, "/?"+window, nil)
	require.Equal(t, http.StatusAccepted, status, body)
	deadline := time.Now().Add(30 * time.Second)
	for {
		status, _, body = do(t, url, http.MethodGet, "/?"+window, nil)
		if status != http.StatusNoContent || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	require.Equal(t, http.StatusOK, status, body)
	requireWholeGraph(t, body, lines)
}

// eventBus stands in for a stream appliance: it takes a job (202) and
// delivers it to the worker route without a Prefer header, as an event bus
// does, recording the worker's answers. In mode "hang" it never answers; a
// closed listener stands for a bus that refuses connections.
type eventBus struct {
	mu       sync.Mutex
	mode     string // "", "hang"
	times    int    // deliveries per job
	worker   string // the worker route's URL
	answers  []int
	client   *http.Client
	quit     chan struct{}
	delivers sync.WaitGroup
	received atomic.Int32
}

func (b *eventBus) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.received.Add(1)
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	b.mu.Lock()
	mode, times, worker := b.mode, max(b.times, 1), b.worker
	b.mu.Unlock()
	if mode == "hang" {
		select {
		case <-r.Context().Done():
		case <-b.quit:
		}
		return
	}
	w.WriteHeader(http.StatusAccepted)
	b.delivers.Go(func() {
		for range times {
			b.deliver(worker, body)
		}
	})
}

func (b *eventBus) deliver(worker string, body []byte) {
	res, err := b.client.Post(worker, "application/json", bytes.NewReader(body))
	status := 0
	if err == nil {
		status = res.StatusCode
		_, _ = io.Copy(io.Discard, res.Body)
		_ = res.Body.Close()
	}
	b.mu.Lock()
	b.answers = append(b.answers, status)
	b.mu.Unlock()
}

func (b *eventBus) set(mode string, times int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.mode, b.times = mode, times
}

// waitAnswers waits until the bus has n answers from the worker and
// returns them.
func (b *eventBus) waitAnswers(t *testing.T, n int) []int {
	t.Helper()
	var got []int
	require.Eventually(t, func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		got = append([]int(nil), b.answers...)
		return len(got) >= n
	}, 10*time.Second, 10*time.Millisecond)
	return got
}

// TestFaultEventBus points STREAM_APPLIANCE_ENDPOINT at a bus that refuses
// connections, then at one that never answers: POST / answers 500 within the
// HTTP timeout and the mark is cleared, so a later POST works once the bus
// is back. The bus's synchronous deliveries get 204 for a graph made, the
// same job twice and a job after the graph exists do no harm, and a job that
// fails gets 5xx (retry) or 422 (do not).
func TestFaultEventBus(t *testing.T) {
	t.Parallel()
	// Reserve an address, then close it: the bus refuses connections.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())

	transport := &http.Transport{}
	bus := &eventBus{client: &http.Client{Transport: transport, Timeout: 10 * time.Second}, quit: make(chan struct{})}
	var mode atomic.Value
	mode.Store("ok")
	var digests atomic.Int32
	s := &Service{Digester: digestFunc(func(context.Context, time.Time, time.Time) (io.ReadCloser, error) {
		digests.Add(1)
		switch mode.Load() {
		case "fail":
			return nil, errors.New("digesterd answered 503")
		case "malformed":
			return io.NopCloser(strings.NewReader("2 garbage\n")), nil
		}
		return io.NopCloser(strings.NewReader(sampleV2)), nil
	})}
	h := newHarness(t, s, map[string]string{
		"STREAM_APPLIANCE_ENDPOINT": "http://" + addr + "/vpcflow/graph",
		"GRAPHERD_HTTP_TIMEOUT":     "400ms",
		"GRAPHERD_HTTP_RETRIES":     "2",
	})
	t.Cleanup(s.QueuerHTTPClient.CloseIdleConnections)
	bus.worker = h.url + "/vpcflow/graph"

	postFails := func(t *testing.T, q string) {
		t.Helper()
		began := time.Now()
		status, _, body := h.do(t, http.MethodPost, "/?"+q, nil)
		require.Equal(t, http.StatusInternalServerError, status, body)
		require.Equal(t, "queuer dependency failed", message(t, body))
		// The whole call, retries included, is bounded by the 400ms timeout.
		require.Less(t, time.Since(began), 2*time.Second)
		status, _, body = h.do(t, http.MethodGet, "/?"+q, nil)
		require.Equal(t, http.StatusNotFound, status, "the mark of a job not queued is cleared: %s", body)
	}
	postFails(t, window)

	// The bus comes up on the same address, but hangs.
	ln, err = net.Listen("tcp", addr)
	require.NoError(t, err)
	srv := httptest.NewUnstartedServer(bus)
	require.NoError(t, srv.Listener.Close())
	srv.Listener = ln
	srv.Start()
	t.Cleanup(func() {
		close(bus.quit)
		srv.Close()
		bus.delivers.Wait()
		transport.CloseIdleConnections()
	})
	bus.set("hang", 1)
	postFails(t, window)
	require.Positive(t, bus.received.Load())

	// A healthy bus: the job reaches the worker, which answers 204.
	bus.set("", 1)
	status, _, body := h.do(t, http.MethodPost, "/?"+window, nil)
	require.Equal(t, http.StatusAccepted, status, body)
	require.Equal(t, []int{http.StatusNoContent}, bus.waitAnswers(t, 1))
	status, _, body = h.do(t, http.MethodGet, "/?"+window, nil)
	require.Equal(t, http.StatusOK, status, body)
	graph := body
	require.Equal(t, int32(1), digests.Load())

	// Delivered after the graph exists, and twice: success, no work.
	status, _, _ = h.do(t, http.MethodPost, "/vpcflow/graph", strings.NewReader(jobBody(t, window)))
	require.Equal(t, http.StatusNoContent, status)
	require.Equal(t, int32(1), digests.Load())

	const second = "start=2026-11-01T10:30:00Z&stop=2026-11-01T11:30:00Z"
	bus.set("", 2)
	status, _, body = h.do(t, http.MethodPost, "/?"+second, nil)
	require.Equal(t, http.StatusAccepted, status, body)
	require.Equal(t, []int{http.StatusNoContent, http.StatusNoContent, http.StatusNoContent}, bus.waitAnswers(t, 3))
	require.Equal(t, int32(2), digests.Load(), "a redelivered job does no work once the graph exists")
	status, _, body = h.do(t, http.MethodGet, "/?"+second, nil)
	require.Equal(t, http.StatusOK, status)
	requireWholeGraph(t, body, 2)

	// The same job delivered twice at once: one graph, made once. The
	// second delivery finds the graph made (204) or being made (409 at once).
	const third = "start=2026-11-01T09:00:00Z&stop=2026-11-01T10:00:00Z"
	job := jobBody(t, third)
	var wg sync.WaitGroup
	codes := make([]int, 2)
	for i := range codes {
		wg.Go(func() {
			codes[i], _, _ = h.do(t, http.MethodPost, "/vpcflow/graph", strings.NewReader(job))
		})
	}
	wg.Wait()
	require.Contains(t, codes, http.StatusNoContent)
	require.Subset(t, []int{http.StatusNoContent, http.StatusConflict}, codes)
	require.Equal(t, int32(3), digests.Load(), "the window was made once")
	status, _, body = h.do(t, http.MethodGet, "/?"+third, nil)
	require.Equal(t, http.StatusOK, status)
	requireWholeGraph(t, body, 2)

	// Failures reach the bus as documented: 5xx may be retried, 422 not.
	bus.set("", 1)
	mode.Store("fail")
	const fourth = "start=2026-11-01T08:00:00Z&stop=2026-11-01T09:00:00Z"
	status, _, _ = h.do(t, http.MethodPost, "/?"+fourth, nil)
	require.Equal(t, http.StatusAccepted, status)
	require.Equal(t, http.StatusInternalServerError, bus.waitAnswers(t, 4)[3])
	mode.Store("malformed")
	status, _, _ = h.do(t, http.MethodPost, "/?"+fourth, nil)
	require.Equal(t, http.StatusAccepted, status, "a failed window may be asked for again at once")
	require.Equal(t, http.StatusUnprocessableEntity, bus.waitAnswers(t, 5)[4])
	status, _, body = h.do(t, http.MethodGet, "/?"+fourth, nil)
	require.Equal(t, http.StatusFailedDependency, status)
	require.Contains(t, message(t, body), "the digest is malformed: 0 usable lines of 1")

	// The first graph was never touched.
	status, _, body = h.do(t, http.MethodGet, "/?"+window, nil)
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, graph, body)
}

// TestFaultHostileDigest feeds digest lines whose free-text fields hold
// quotes, backslashes, braces, control characters and invalid UTF-8, and
// lines cut by a newline: the graph parses with gonum and renders with
// Graphviz, with one edge per well-formed line.
func TestFaultHostileDigest(t *testing.T) {
	t.Parallel()
	const tail = " 0 443 6 10 840 1793527200 1793527260 ACCEPT OK\n"
	digest := `2 12"34 eni-"quoted" 10.0.0.1 10.0.0.2` + tail +
		`2 back\slash eni-trailing\ 10.0.0.2 10.0.0.3` + tail +
		`2 }{;] eni-}"];digraph{x->y} 10.0.0.3 10.0.0.4` + tail +
		"2 cr\rinside eni-\x00\x1b[31m\x7f 10.0.0.4 10.0.0.5" + tail +
		"2 \xff\xfe eni-\u00fc\u2028 10.0.0.5 10.0.0.6" + tail +
		`2 \" eni-\\\\ 2001:db8::1 2001:db8::2` + tail +
		"2 123456789012 eni-cut\n 10.0.0.7 10.0.0.8" + tail + // a newline in a field: two malformed lines
		"2 123456789012 eni-1 10.0.0.9 10.0.0.1 0 22 6 2 120 1793527300 1793527320 REJECT OK}\n"
	const wantEdges = 6
	h := newHarness(t, &Service{Digester: staticDigest(digest)}, nil)

	status, _, body := h.do(t, http.MethodPost, "/?"+window, nil)
	require.Equal(t, http.StatusAccepted, status, body)
	status, _, body = h.waitGraph(t, window)
	require.Equal(t, http.StatusOK, status, body)
	requireWholeGraph(t, body, wantEdges)
	for _, l := range []string{`label="10.0.0.1"`, `label="2001:db8::2"`} {
		require.Contains(t, body, l)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "dot", "-Tsvg")
	cmd.Stdin = strings.NewReader(body)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "Graphviz rejects the graph: %s", stderr.String())
	require.Equal(t, wantEdges, strings.Count(stdout.String(), `class="edge"`), "Graphviz draws every edge")
	require.NotContains(t, stderr.String(), "syntax error")
}

// do sends one request to base+path with a client that gives up after 20s,
// so a hang shows as a failure, not as a stuck test.
func do(t *testing.T, base, method, path string, body io.Reader) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, base+path, body)
	require.NoError(t, err)
	client := &http.Client{Timeout: 20 * time.Second}
	res, err := client.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res.StatusCode, res.Header, string(b)
}
