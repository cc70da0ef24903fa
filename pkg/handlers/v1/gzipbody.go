package v1

import (
	"errors"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"
)

// gzipFlushInterval is the longest compressed bytes wait in the compressor
// before they are pushed to the client. Each flush ends a deflate block,
// which costs CPU and bytes; flushing after every write made a 400 MB graph
// cost seconds of CPU, while one flush per interval costs nothing a client
// can measure and still shows a client waiting on a slow source everything
// sent so far.
const gzipFlushInterval = 100 * time.Millisecond

// gzipBody compresses a body to the client and flushes it at most once per
// gzipFlushInterval, and then only when something was written since the
// last flush: a fast stream goes out in full deflate blocks, a slow one (a
// view's source pausing between writes) still reaches the client within
// the interval. A stream broken midway lacks the gzip trailer, so the
// client sees it as broken whether or not it was flushed. The compressor's
// memory is fixed by its window, not by how much is written.
//
// The flush that follows a pause runs on a timer, so the compressor and the
// ResponseWriter are used under mu; stop must be called before the handler
// returns, after which nothing touches the ResponseWriter.
type gzipBody struct {
	mu      sync.Mutex
	zw      compressor
	rc      *http.ResponseController
	timer   *time.Timer
	pending bool  // bytes written since the last flush
	stopped bool  // the handler is done with the ResponseWriter
	err     error // a failed flush, reported by the next call
}

// compressor is a gzip writer: klauspost's in the service, the standard
// library's in the benchmark beside it.
type compressor interface {
	io.WriteCloser
	Flush() error
}

// newGzipBody returns the compressing writer for w, whose bytes go to out
// (w itself or a writer wrapping it).
func newGzipBody(w http.ResponseWriter, out io.Writer) *gzipBody {
	zw, _ := gzip.NewWriterLevel(out, gzip.BestSpeed)
	return &gzipBody{zw: zw, rc: http.NewResponseController(w)}
}

func (g *gzipBody) Write(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.err != nil {
		return 0, g.err
	}
	if g.stopped {
		return 0, errBodyStopped
	}
	n, err := g.zw.Write(p)
	if err != nil {
		g.err = err
		return n, err
	}
	if n > 0 && !g.pending {
		g.pending = true
		if g.timer == nil {
			g.timer = time.AfterFunc(gzipFlushInterval, g.flushPending)
		} else {
			g.timer.Reset(gzipFlushInterval)
		}
	}
	return n, nil
}

// flushPending pushes what was written since the last flush to the client.
func (g *gzipBody) flushPending() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopped || !g.pending || g.err != nil {
		return
	}
	g.pending = false
	g.err = g.flush()
}

// flush ends the current deflate block and flushes the ResponseWriter.
func (g *gzipBody) flush() error {
	if err := g.zw.Flush(); err != nil {
		return err
	}
	// A writer that cannot flush (a test recorder) keeps the bytes.
	if err := g.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	return nil
}

// Close writes the end of the gzip stream; the server sends it when the
// handler returns. It stops the body.
func (g *gzipBody) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.stopLocked()
	if g.err != nil {
		return g.err
	}
	g.err = g.zw.Close()
	return g.err
}

// stop ends the body: after Close it only makes sure no pending flush
// touches the ResponseWriter once the handler returns; before Close (a
// stream broken midway) it first pushes out what was written, so the client
// has everything sent so far, and leaves out the gzip trailer, so the
// client sees the stream break. It may be called more than once.
func (g *gzipBody) stop() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.stopped && g.pending && g.err == nil {
		g.pending = false
		g.err = g.flush()
	}
	g.stopLocked()
}

func (g *gzipBody) stopLocked() {
	if g.timer != nil {
		g.timer.Stop()
	}
	g.stopped = true
}

// errBodyStopped is returned by a Write after the body was stopped or
// closed: the handler is done with the ResponseWriter.
var errBodyStopped = errors.New("gzip body written after it ended")
