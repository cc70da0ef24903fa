package v1

import (
	"bytes"
	stdgzip "compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/storage"
)

// flushCounter is a ResponseWriter that keeps the body and counts flushes,
// snapshotting the body at each so a test can see what a client had.
type flushCounter struct {
	mu      sync.Mutex
	header  http.Header
	body    bytes.Buffer
	flushes int
	flushed []byte // the body as of the last flush
}

func newFlushCounter() *flushCounter { return &flushCounter{header: http.Header{}} }

func (f *flushCounter) Header() http.Header { return f.header }
func (f *flushCounter) WriteHeader(int)     {}

func (f *flushCounter) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.body.Write(p)
}

func (f *flushCounter) Flush() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.flushes++
	f.flushed = append(f.flushed[:0], f.body.Bytes()...)
}

func (f *flushCounter) state() (flushes int, flushed []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.flushes, append([]byte(nil), f.flushed...)
}

// syntheticDOT returns a DOT graph of about size bytes shaped like the
// grapher's output: one edge a line between addresses of a /16.
func syntheticDOT(size int) []byte {
	var b bytes.Buffer
	b.WriteString("digraph {\n")
	for i := 0; b.Len() < size; i++ {
		x := uint32(i) * 2654435761
		fmt.Fprintf(&b, "\t\"10.0.%d.%d\" -> \"10.1.%d.%d\" [label=\"tcp/%d %d bytes %d packets\"];\n",
			x>>24, x>>16&0xff, x>>8&0xff, x&0xff, 1+x%1024, x%100000, x%977)
	}
	b.WriteString("}\n")
	return b.Bytes()
}

// TestGetGzipIsStoredDOTWithBoundedFlushes serves a 32 MB stored graph to a
// gzip client: the body decompresses to the stored bytes exactly, and the
// compressor is flushed once per interval at most, not once per write (a
// thousand times here).
func TestGetGzipIsStoredDOTWithBoundedFlushes(t *testing.T) {
	dot := syntheticDOT(32 << 20)
	st := &storage.Memory{}
	id := ComputeID(time.Unix(0, 0).UTC(), time.Unix(3600, 0).UTC())
	require.NoError(t, st.Store(t.Context(), id, bytes.NewReader(dot)))
	h := &Graph{Storage: st}

	w := newFlushCounter()
	r := httptest.NewRequest(http.MethodGet, "/?start=1970-01-01T00:00:00Z&stop=1970-01-01T01:00:00Z", nil)
	r.Header.Set("Accept-Encoding", "gzip")
	began := time.Now()
	h.Get(w, r)
	took := time.Since(began)

	require.Equal(t, "gzip", w.header.Get("Content-Encoding"))
	zr, err := stdgzip.NewReader(bytes.NewReader(w.body.Bytes()))
	require.NoError(t, err)
	got, err := io.ReadAll(zr)
	require.NoError(t, err)
	require.True(t, bytes.Equal(dot, got), "gzip body is not the stored DOT")
	flushes, _ := w.state()
	require.LessOrEqual(t, flushes, int(took/gzipFlushInterval)+1,
		"%d flushes in %v for %d writes", flushes, took, len(dot)/copyBufferBytes)
}

// TestGzipBodyFlushesAPause writes a little and then nothing: what was
// written reaches the client within the flush interval, as a gzip stream
// that decompresses to it, though the body is not closed.
func TestGzipBodyFlushesAPause(t *testing.T) {
	w := newFlushCounter()
	gz := newGzipBody(w, w)
	defer gz.stop()
	_, err := gz.Write([]byte("digraph {\n"))
	require.NoError(t, err)
	require.Eventually(t, func() bool { n, _ := w.state(); return n == 1 }, 5*time.Second, 10*time.Millisecond)

	_, flushed := w.state()
	zr, err := stdgzip.NewReader(bytes.NewReader(flushed))
	require.NoError(t, err)
	got := make([]byte, 64)
	n, _ := io.ReadAtLeast(zr, got, len("digraph {\n"))
	require.Equal(t, "digraph {\n", string(got[:n]))

	// Nothing new, no new flush.
	time.Sleep(3 * gzipFlushInterval)
	n2, _ := w.state()
	require.Equal(t, 1, n2)
}

// TestGzipBodyStopBreaksTheStream stops a body midway with bytes pending:
// the client gets all that was written, then a stream without its gzip
// trailer, which it cannot take for whole; the timer's flush never touches
// the ResponseWriter after the handler is done.
func TestGzipBodyStopBreaksTheStream(t *testing.T) {
	w := newFlushCounter()
	gz := newGzipBody(w, w)
	sent := syntheticDOT(1 << 20)
	_, err := gz.Write(sent)
	require.NoError(t, err)
	gz.stop()
	gz.stop()
	time.Sleep(3 * gzipFlushInterval)
	n, _ := w.state()
	require.Equal(t, 1, n, "one flush, by stop")
	_, err = gz.Write([]byte("more"))
	require.ErrorIs(t, err, errBodyStopped)

	zr, err := stdgzip.NewReader(bytes.NewReader(w.body.Bytes()))
	require.NoError(t, err)
	got, err := io.ReadAll(zr)
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	require.True(t, bytes.Equal(sent, got), "the client has all that was sent")
}

// flushEveryWrite is the body writer GET / used before gzipBody: the
// standard library's compressor, flushed after every write. It is kept as
// the benchmark's baseline.
type flushEveryWrite struct {
	gz *stdgzip.Writer
	rc *http.ResponseController
}

func (f flushEveryWrite) Write(p []byte) (int, error) {
	n, err := f.gz.Write(p)
	if err == nil {
		err = f.gz.Flush()
	}
	if err == nil {
		if ferr := f.rc.Flush(); ferr != nil && !errors.Is(ferr, http.ErrNotSupported) {
			err = ferr
		}
	}
	return n, err
}

// discardFlusher is a ResponseWriter that drops the body, counts its bytes
// and can flush.
type discardFlusher struct {
	header http.Header
	n      int64
}

func (d *discardFlusher) Header() http.Header         { return d.header }
func (d *discardFlusher) WriteHeader(int)             {}
func (d *discardFlusher) Flush()                      {}
func (d *discardFlusher) Write(p []byte) (int, error) { d.n += int64(len(p)); return len(p), nil }

// BenchmarkGetGzip serves a 64 MB stored graph to a gzip client through
// GET /'s stream: the old body writer (standard compressor flushed after
// every write) beside gzipBody with the standard compressor and with
// klauspost's, in one run. MB/s is of DOT served; the
// wire-bytes metric is the compressed size.
func BenchmarkGetGzip(b *testing.B) {
	dot := syntheticDOT(64 << 20)
	bodies := map[string]func(w http.ResponseWriter) (io.Writer, func() error){
		"flush-every-write-stdlib": func(w http.ResponseWriter) (io.Writer, func() error) {
			gz, _ := stdgzip.NewWriterLevel(w, stdgzip.BestSpeed)
			return flushEveryWrite{gz: gz, rc: http.NewResponseController(w)}, gz.Close
		},
		"interval-flush-stdlib": func(w http.ResponseWriter) (io.Writer, func() error) {
			zw, _ := stdgzip.NewWriterLevel(w, stdgzip.BestSpeed)
			gz := &gzipBody{zw: zw, rc: http.NewResponseController(w)}
			return gz, gz.Close
		},
		"interval-flush-klauspost": func(w http.ResponseWriter) (io.Writer, func() error) {
			gz := newGzipBody(w, w)
			return gz, gz.Close
		},
	}
	for _, name := range []string{"flush-every-write-stdlib", "interval-flush-stdlib", "interval-flush-klauspost"} {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(dot)))
			b.ReportAllocs()
			var wire int64
			for b.Loop() {
				w := &discardFlusher{header: http.Header{}}
				out, finish := bodies[name](w)
				if readErr, writeErr := streamGraph(out, bytes.NewReader(dot)); readErr != nil || writeErr != nil {
					b.Fatal(readErr, writeErr)
				}
				if err := finish(); err != nil {
					b.Fatal(err)
				}
				wire = w.n
			}
			b.ReportMetric(float64(wire)/float64(len(dot)), "wire-bytes/byte")
		})
	}
}
