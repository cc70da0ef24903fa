package digester

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/flowlog/flowlogtest"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var (
	testStart = time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	testStop  = time.Date(2026, 11, 1, 11, 0, 0, 0, time.UTC)
)

const sampleDigest = "2 123456789012 eni-1 10.0.0.1 10.0.0.2 0 443 6 10 840 1793527200 1793527260 ACCEPT OK\n"

func gzipBytes(t *testing.T, s string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, err := zw.Write([]byte(s))
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	return buf.Bytes()
}

// fakeDigesterd behaves like vpcflow-digesterd: POST creates a digest, GET
// answers 204 until it is ready and then 200 with the digest.
type fakeDigesterd struct {
	postStatus int           // status for POST; 202 when 0
	notReady   int           // GETs answered 204 before the digest is ready; -1 never ready
	getStatus  int           // status once ready; 200 when 0
	body       []byte        // body of the ready (or error) response
	getHandler http.Handler  // replaces the GET logic when set
	posts      atomic.Int32  // POSTs received
	gets       atomic.Int32  // GETs received
	newConns   atomic.Int32  // TCP connections accepted
	mu         sync.Mutex    // guards queries
	queries    []url.Values  // query of each request
	paths      []string      // path of each request
	unblock    chan struct{} // closed by the test to release a hung handler
}

func (f *fakeDigesterd) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.queries = append(f.queries, r.URL.Query())
	f.paths = append(f.paths, r.URL.Path)
	f.mu.Unlock()
	switch r.Method {
	case http.MethodPost:
		f.posts.Add(1)
		status := f.postStatus
		if status == 0 {
			status = http.StatusAccepted
		}
		w.WriteHeader(status)
		if status >= 300 {
			_, _ = w.Write(f.body)
		}
	case http.MethodGet:
		n := f.gets.Add(1)
		if f.getHandler != nil {
			f.getHandler.ServeHTTP(w, r)
			return
		}
		if f.notReady < 0 || int(n) <= f.notReady {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		status := f.getStatus
		if status == 0 {
			status = http.StatusOK
		}
		w.WriteHeader(status)
		_, _ = w.Write(f.body)
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
}

// start serves f on a loopback httptest server and returns a digester for it
// whose client is closed with the test.
func (f *fakeDigesterd) start(t *testing.T, path string) (*HTTP, *httptest.Server) {
	t.Helper()
	srv := httptest.NewUnstartedServer(f)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			f.newConns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(func() {
		if f.unblock != nil {
			select {
			case <-f.unblock:
			default:
				close(f.unblock)
			}
		}
		srv.Close()
	})
	transport := &http.Transport{}
	t.Cleanup(transport.CloseIdleConnections)
	u, err := url.Parse(srv.URL + path)
	require.NoError(t, err)
	return &HTTP{
		Endpoint:     u,
		Client:       &http.Client{Transport: transport},
		PollInterval: 5 * time.Millisecond,
	}, srv
}

func TestHTTPDigestReady(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		postStatus int
		notReady   int
		body       []byte
		maxBytes   int64
	}{
		{name: "202 then 204s then gzip", postStatus: http.StatusAccepted, notReady: 3, body: gzipBytes(t, sampleDigest)},
		{name: "409 then gzip at once", postStatus: http.StatusConflict, notReady: 0, body: gzipBytes(t, sampleDigest)},
		{name: "plain body", postStatus: http.StatusAccepted, notReady: 1, body: []byte(sampleDigest)},
		{name: "empty body", postStatus: http.StatusAccepted, notReady: 0, body: nil},
		{name: "one byte body", postStatus: http.StatusAccepted, notReady: 0, body: []byte("\n")},
		{name: "exactly max bytes", postStatus: http.StatusAccepted, notReady: 0, body: gzipBytes(t, sampleDigest), maxBytes: int64(len(sampleDigest))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := &fakeDigesterd{postStatus: tt.postStatus, notReady: tt.notReady, body: tt.body}
			d, _ := f.start(t, "")
			d.MaxBytes = tt.maxBytes
			rc, err := d.Digest(context.Background(), testStart, testStop)
			require.NoError(t, err)
			got, err := io.ReadAll(rc)
			require.NoError(t, err)
			require.NoError(t, rc.Close())
			want := sampleDigest
			if tt.body == nil || len(tt.body) < 2 {
				want = string(tt.body)
			}
			require.Equal(t, want, string(got))
			require.EqualValues(t, 1, f.posts.Load())
			require.EqualValues(t, tt.notReady+1, f.gets.Load())
			// Every body was drained and closed: all calls reused one connection.
			require.EqualValues(t, 1, f.newConns.Load())
			f.mu.Lock()
			defer f.mu.Unlock()
			for _, p := range f.paths {
				require.Equal(t, "/", p, "an endpoint without a path is asked at /")
			}
		})
	}
}

func TestHTTPDigestQuery(t *testing.T) {
	t.Parallel()
	f := &fakeDigesterd{body: []byte(sampleDigest)}
	d, _ := f.start(t, "/digests?team=net")
	// The same instants in another zone, with nanoseconds.
	zone := time.FixedZone("UTC+2", 2*3600)
	start := testStart.Add(123 * time.Nanosecond).In(zone)
	rc, err := d.Digest(context.Background(), start, testStop.In(zone))
	require.NoError(t, err)
	require.NoError(t, rc.Close())

	f.mu.Lock()
	defer f.mu.Unlock()
	require.Len(t, f.queries, 2)
	for i, q := range f.queries {
		require.Equal(t, "/digests", f.paths[i])
		require.Equal(t, "net", q.Get("team"))
		require.Equal(t, "2026-11-01T10:00:00.000000123Z", q.Get("start"))
		require.Equal(t, "2026-11-01T11:00:00Z", q.Get("stop"))
	}
}

func TestHTTPDigestErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		f         *fakeDigesterd
		wantIn    []string
		permanent bool
	}{
		{
			name:   "POST 500",
			f:      &fakeDigesterd{postStatus: http.StatusInternalServerError, body: []byte(`{"message":"s3 down"}`)},
			wantIn: []string{"create digest", "500"},
		},
		{
			name:      "POST 400 is permanent",
			f:         &fakeDigesterd{postStatus: http.StatusBadRequest, body: []byte(`{"message":"bad start"}`)},
			wantIn:    []string{"400"},
			permanent: true,
		},
		{
			name:   "GET 404",
			f:      &fakeDigesterd{notReady: 2, getStatus: http.StatusNotFound, body: []byte("no such digest")},
			wantIn: []string{"poll digest", "404"},
		},
		{
			name:   "GET 503",
			f:      &fakeDigesterd{getStatus: http.StatusServiceUnavailable, body: []byte("busy")},
			wantIn: []string{"503"},
		},
		{
			name:   "a long error body stays out",
			f:      &fakeDigesterd{postStatus: http.StatusBadGateway, body: bytes.Repeat([]byte("x"), 5000)},
			wantIn: []string{"502"},
		},
		{
			name:      "corrupt gzip header",
			f:         &fakeDigesterd{body: []byte{0x1f, 0x8b, 0xff, 0xff, 0xff}},
			wantIn:    []string{"gzip header"},
			permanent: false,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d, _ := tt.f.start(t, "")
			rc, err := d.Digest(context.Background(), testStart, testStop)
			require.Error(t, err)
			require.Nil(t, rc)
			for _, s := range tt.wantIn {
				require.Contains(t, err.Error(), s)
			}
			if tt.f.postStatus != 0 || tt.f.getStatus != 0 {
				require.NotContains(t, err.Error(), string(tt.f.body[:4]), "an answer's body never reaches an error")
			}
			require.Equal(t, tt.permanent, types.IsPermanent(err))
		})
	}
}

func TestHTTPDigestNoEndpoint(t *testing.T) {
	t.Parallel()
	_, err := (&HTTP{}).Digest(context.Background(), testStart, testStop)
	require.ErrorIs(t, err, types.ErrNoSource)
}

func TestHTTPDigestNeverReady(t *testing.T) {
	t.Parallel()
	f := &fakeDigesterd{notReady: -1}
	d, _ := f.start(t, "")
	d.PollInterval = 10 * time.Millisecond
	// Thirty intervals: a loaded machine still polls more than twice.
	d.PollTimeout = 300 * time.Millisecond
	began := time.Now()
	_, err := d.Digest(context.Background(), testStart, testStop)
	require.ErrorIs(t, err, ErrDigestNotReady)
	require.Contains(t, err.Error(), "not ready after")
	require.Contains(t, err.Error(), "polls, timeout 300ms")
	require.False(t, types.IsPermanent(err))
	require.Less(t, time.Since(began), 2*time.Second)
	require.GreaterOrEqual(t, f.gets.Load(), int32(3))
}

func TestHTTPDigestHang(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		pollTimeout time.Duration
		ctxTimeout  time.Duration
		wantErr     error
		wantIn      string
	}{
		{name: "ctx deadline, poll forever", pollTimeout: 0, ctxTimeout: 100 * time.Millisecond, wantErr: context.DeadlineExceeded},
		{name: "poll timeout cuts a hung poll", pollTimeout: 100 * time.Millisecond, ctxTimeout: time.Minute, wantErr: ErrDigestNotReady, wantIn: "1 polls"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := &fakeDigesterd{unblock: make(chan struct{})}
			f.getHandler = http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
				select {
				case <-r.Context().Done():
				case <-f.unblock:
				}
			})
			d, _ := f.start(t, "")
			d.PollTimeout = tt.pollTimeout
			ctx, cancel := context.WithTimeout(context.Background(), tt.ctxTimeout)
			defer cancel()
			began := time.Now()
			_, err := d.Digest(ctx, testStart, testStop)
			require.Error(t, err)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
			}
			if tt.wantIn != "" {
				require.Contains(t, err.Error(), tt.wantIn)
			}
			require.Less(t, time.Since(began), 5*time.Second)
		})
	}
}

func TestHTTPDigestCancelWhileWaiting(t *testing.T) {
	t.Parallel()
	answered := make(chan struct{})
	f := &fakeDigesterd{}
	f.getHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
		close(answered) // a second poll would panic: there is none within the hour
	})
	d, _ := f.start(t, "")
	d.PollInterval = time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-answered
		time.Sleep(50 * time.Millisecond) // the client reads the 204 and starts waiting
		cancel()
	}()
	_, err := d.Digest(ctx, testStart, testStop)
	require.ErrorIs(t, err, context.Canceled)
	require.Contains(t, err.Error(), "1 polls")
}

// TestHTTPDigestBodyFaults covers failures that show only while reading a
// digest that was reported ready.
func TestHTTPDigestBodyFaults(t *testing.T) {
	t.Parallel()
	big := strings.Repeat(sampleDigest, 200)
	gz := gzipBytes(t, big)
	tests := []struct {
		name     string
		handler  http.HandlerFunc
		maxBytes int64
		wantErr  error
		wantIn   string
	}{
		{
			name: "corrupt gzip stream",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				bad := append([]byte(nil), gz[:10]...) // a valid header
				bad = append(bad, bytes.Repeat([]byte{0xff}, 64)...)
				_, _ = w.Write(bad)
			},
			wantIn: "flate",
		},
		{
			name: "gzip checksum mismatch",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				bad := append([]byte(nil), gz...)
				bad[len(bad)-8] ^= 0xff // CRC-32 in the trailer
				_, _ = w.Write(bad)
			},
			wantErr: gzip.ErrChecksum,
		},
		{
			name: "connection closed mid-body",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Length", fmt.Sprint(len(gz)))
				w.WriteHeader(http.StatusOK)
				_, _ = w.Write(gz[:len(gz)/2])
				w.(http.Flusher).Flush()
				conn, _, err := http.NewResponseController(w).Hijack()
				if err == nil {
					_ = conn.Close()
				}
			},
			wantErr: io.ErrUnexpectedEOF,
		},
		{
			name: "plain connection closed mid-body",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Length", fmt.Sprint(len(big)))
				w.WriteHeader(http.StatusOK)
				_, _ = io.WriteString(w, big[:100])
				w.(http.Flusher).Flush()
				conn, _, err := http.NewResponseController(w).Hijack()
				if err == nil {
					_ = conn.Close()
				}
			},
			wantErr: io.ErrUnexpectedEOF,
		},
		{
			name: "over max bytes, gzip",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				_, _ = w.Write(gz)
			},
			maxBytes: int64(len(big)) - 1,
			wantErr:  types.ErrDigestTooLarge,
		},
		{
			name: "over max bytes, plain",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				_, _ = io.WriteString(w, big)
			},
			maxBytes: 1000,
			wantErr:  types.ErrDigestTooLarge,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := &fakeDigesterd{getHandler: tt.handler}
			d, _ := f.start(t, "")
			d.MaxBytes = tt.maxBytes
			rc, err := d.Digest(context.Background(), testStart, testStop)
			require.NoError(t, err)
			defer rc.Close()
			got, err := io.ReadAll(rc)
			require.Error(t, err)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
			}
			if tt.wantIn != "" {
				require.Contains(t, err.Error(), tt.wantIn)
			}
			if tt.maxBytes > 0 {
				require.Len(t, got, int(tt.maxBytes))
				require.True(t, types.IsPermanent(err))
			}
		})
	}
}

// TestHTTPDigestStreams shows the digest is handed over before the digester
// has finished sending it: nothing waits for (or holds) the whole body.
func TestHTTPDigestStreams(t *testing.T) {
	t.Parallel()
	f := &fakeDigesterd{unblock: make(chan struct{})}
	first := strings.Repeat(sampleDigest, 100)
	f.getHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		zw := gzip.NewWriter(w)
		_, _ = io.WriteString(zw, first)
		_ = zw.Flush()
		w.(http.Flusher).Flush()
		select {
		case <-f.unblock:
		case <-r.Context().Done():
			return
		}
		_, _ = io.WriteString(zw, sampleDigest)
		_ = zw.Close()
	})
	d, _ := f.start(t, "")
	rc, err := d.Digest(context.Background(), testStart, testStop)
	require.NoError(t, err)
	defer rc.Close()
	got := make([]byte, len(first))
	_, err = io.ReadFull(rc, got)
	require.NoError(t, err)
	require.Equal(t, first, string(got))

	close(f.unblock)
	rest, err := io.ReadAll(rc)
	require.NoError(t, err)
	require.Equal(t, sampleDigest, string(rest))
}

func TestHTTPDigestCloseEarly(t *testing.T) {
	t.Parallel()
	f := &fakeDigesterd{body: gzipBytes(t, strings.Repeat(sampleDigest, 10000))}
	d, _ := f.start(t, "")
	rc, err := d.Digest(context.Background(), testStart, testStop)
	require.NoError(t, err)
	buf := make([]byte, 10)
	_, err = io.ReadFull(rc, buf)
	require.NoError(t, err)
	require.NoError(t, rc.Close())
	require.NoError(t, rc.Close(), "a second Close is harmless")
	_, err = rc.Read(buf)
	require.Error(t, err)
	require.ErrorIs(t, err, errReadAfterClose)
}

func TestLimitReader(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		max     int64
		wantErr bool
	}{
		{name: "under", in: "abc", max: 4},
		{name: "exact", in: "abcd", max: 4},
		{name: "over by one", in: "abcde", max: 4, wantErr: true},
		{name: "empty", in: "", max: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := io.ReadAll(&limitReader{r: strings.NewReader(tt.in), left: tt.max, max: tt.max})
			if tt.wantErr {
				require.ErrorIs(t, err, types.ErrDigestTooLarge)
				require.Equal(t, tt.in[:tt.max], string(got))
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.in, string(got))
		})
	}
}

// TestHTTPDigestContentEncoding reads a digest sent as vpcflow-digesterd or
// a proxy may send it, with Content-Encoding: gzip: the digester asks for
// gzip itself and decompresses the body as sent, so a corrupt one is a
// malformed digest rather than a transport error.
func TestHTTPDigestContentEncoding(t *testing.T) {
	t.Parallel()
	big := strings.Repeat(sampleDigest, 500)
	gz := gzipBytes(t, big)
	corrupt := append(append([]byte(nil), gz[:10]...), bytes.Repeat([]byte{0xff}, 64)...)
	for _, tt := range []struct {
		name    string
		body    []byte
		want    string
		wantErr error
	}{
		{name: "gzip", body: gz, want: big},
		{name: "corrupt", body: corrupt, wantErr: types.ErrMalformedDigest},
		{name: "corrupt as the decompressor's internal error", body: []byte(flowlogtest.FlateInternalError),
			wantErr: types.ErrMalformedDigest},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var asked atomic.Value
			f := &fakeDigesterd{getHandler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				asked.Store(r.Header.Get("Accept-Encoding"))
				w.Header().Set("Content-Encoding", "gzip")
				_, _ = w.Write(tt.body)
			})}
			d, _ := f.start(t, "/")
			rc, err := d.Digest(context.Background(), testStart, testStop)
			require.NoError(t, err)
			got, err := io.ReadAll(rc)
			require.NoError(t, rc.Close())
			require.Equal(t, "gzip", asked.Load())
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, string(got))
		})
	}
}
