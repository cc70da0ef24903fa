package v1

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/flowtable"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/runtime"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
)

// DOTContentType is the media type of a graph served by GET /.
const DOTContentType = "text/vnd.graphviz; charset=utf-8"

// Graph serves the API: POST / creates a graph, GET / fetches it.
type Graph struct {
	// Storage is the in-progress-aware storage: it reports ErrInProgress and
	// *types.FailedError for graphs being made or failed.
	Storage types.Storage
	Marker  types.Marker
	Queuer  types.Queuer
	Logger  *slog.Logger
	// MaxWindow bounds stop-start; zero means no bound.
	MaxWindow time.Duration
	// WriteTimeout bounds each write of a graph to the client: one that
	// stops reading is cut off after this long without progress instead of
	// holding the handler and its storage stream for good. Zero means no
	// bound.
	WriteTimeout time.Duration
	// Views caps the views of a graph (see view.go).
	Views ViewLimits

	// slot holds the one aggregation running at a time (see aggregate).
	slotOnce sync.Once
	slot     chan struct{}
	// layouts hold the Graphviz layouts running at once (see render).
	layouts chan struct{}
	// inflight holds the views being answered (see getView).
	inflight chan struct{}
}

// created is the body of a 202 answer to POST /.
type created struct {
	ID    string `json:"id"`
	Start string `json:"start"`
	Stop  string `json:"stop"`
	// Location is where the graph will be fetched from.
	Location string `json:"location"`
}

// Post queues the job that makes the graph for the window in the query.
func (h *Graph) Post(w http.ResponseWriter, r *http.Request) {
	logger := LoggerFrom(r.Context(), h.Logger)
	job, err := h.create(r.Context(), r.URL.RawQuery)
	if err != nil {
		writeError(w, r, logger, err)
		return
	}
	location := "/?" + windowQuery(job.Start, job.Stop)
	w.Header().Set("Location", location)
	logger.InfoContext(r.Context(), "graph queued", slog.String("id", job.ID))
	writeJSON(w, http.StatusAccepted, created{
		ID: job.ID, Start: job.Start.Format(time.RFC3339), Stop: job.Stop.Format(time.RFC3339), Location: location,
	})
}

func (h *Graph) create(ctx context.Context, rawQuery string) (types.Job, error) {
	start, stop, err := ParseWindow(rawQuery, h.MaxWindow)
	if err != nil {
		return types.Job{}, err
	}
	job := types.Job{ID: ComputeID(start, stop), Start: start, Stop: stop}
	window := fmt.Sprintf("%s to %s", start.Format(time.RFC3339), stop.Format(time.RFC3339))

	exists, err := h.Storage.Exists(ctx, job.ID)
	switch {
	case errors.Is(err, types.ErrInProgress):
		return job, conflict("graph for the time " + window + " is being made")
	case errors.Is(err, types.ErrFailed):
		// A failed graph may be made again at once.
	case err != nil:
		return job, dependencyError(failedDependency(err), err)
	case exists:
		return job, conflict("graph for the time " + window + " already exists")
	}

	// The mark goes first so that a fast worker never finds the job unmarked,
	// and so that of many concurrent requests exactly one queues a job.
	token, err := h.Marker.Mark(ctx, job.ID)
	if err != nil {
		if errors.Is(err, types.ErrInProgress) {
			return job, conflict("graph for the time " + window + " is being made")
		}
		return job, dependencyError(runtime.DependencyMarker, err)
	}
	// The worker claims the mark with the token, so that no other run can.
	job.Token = token
	if err := h.Queuer.Queue(ctx, job); err != nil {
		unmarkUnqueued(ctx, LoggerFrom(ctx, h.Logger), h.Marker, job)
		if errors.Is(err, types.ErrQueueFull) || errors.Is(err, types.ErrQueueUnavailable) {
			return job, err
		}
		return job, dependencyError(runtime.DependencyQueuer, err)
	}
	return job, nil
}

// Get streams the graph for the window in the query: 200 with the graph, 204
// while it is being made, 404 when there is none, 424 when making it failed.
func (h *Graph) Get(w http.ResponseWriter, r *http.Request) {
	logger := LoggerFrom(r.Context(), h.Logger)
	start, stop, err := ParseWindow(r.URL.RawQuery, h.MaxWindow)
	if err != nil {
		writeError(w, r, logger, err)
		return
	}
	id := ComputeID(start, stop)
	params, err := flowtable.ParseParams(r.URL.Query())
	if err != nil {
		writeError(w, r, logger, err)
		return
	}
	if params.Format == "" {
		params.Format = negotiate(r.Header.Get("Accept"))
	}
	if params.IsView() {
		if err := flowtable.CheckNames(r.URL.Query(), "start", "stop"); err != nil {
			writeError(w, r, logger, err)
			return
		}
		h.getView(w, r, logger, flowtable.Meta{ID: id, Start: start, Stop: stop}, params)
		return
	}
	body, encoding, err := h.openGraph(r, id)
	switch {
	case errors.Is(err, types.ErrInProgress):
		w.WriteHeader(http.StatusNoContent)
		return
	case errors.Is(err, types.ErrNotFound):
		writeError(w, r, logger, notFound(start, stop))
		return
	case errors.Is(err, types.ErrFailed):
		writeError(w, r, logger, err)
		return
	case err != nil:
		writeError(w, r, logger, dependencyError(failedDependency(err), err))
		return
	}
	defer body.Close()
	var out io.Writer
	finish, release := func() error { return nil }, func() {}
	if encoding == gzipEncoding {
		// Stored compressed and the client takes it so: the stored bytes
		// go out as they are.
		out = startEncodedBody(w, DOTContentType, id+".dot", encoding, h.WriteTimeout)
	} else {
		out, finish, release = startBody(w, r, DOTContentType, id+".dot", h.WriteTimeout)
	}
	defer release()
	readErr, writeErr := streamGraph(out, body)
	if readErr == nil && writeErr == nil {
		writeErr = finish()
	}
	switch {
	case writeErr != nil, readErr != nil && r.Context().Err() != nil:
		// The client went away (or stopped reading past the write timeout),
		// and with it the request's context, which also ends a storage read:
		// nothing is wrong with the storage.
		runtime.LogEvent(r.Context(), logger, slog.LevelInfo, runtime.EventClientGone,
			fmt.Errorf("graph stream to the client ended: %w", errors.Join(writeErr, readErr)), slog.String("id", id))
	case readErr != nil:
		runtime.LogDependencyFailure(r.Context(), logger, runtime.DependencyStorage,
			fmt.Errorf("graph stream interrupted: %w", readErr), slog.String("id", id))
	default:
		return
	}
	// The status is sent; the client sees a truncated body and a broken
	// connection, never a short graph presented as whole.
	panic(http.ErrAbortHandler)
}

// gzipEncoding is the Content-Encoding of a gzip stream.
const gzipEncoding = "gzip"

// encodedStorage is a Storage that can hand out a graph as it is stored
// (storage.Encoded): "gzip" or "" for plain DOT.
type encodedStorage interface {
	GetEncoded(ctx context.Context, id string) (io.ReadCloser, string, error)
}

// openGraph opens the stored graph id: as stored when it is stored
// compressed and the client accepts gzip, plain otherwise.
func (h *Graph) openGraph(r *http.Request, id string) (io.ReadCloser, string, error) {
	if es, ok := h.Storage.(encodedStorage); ok && acceptsGzip(r) {
		return es.GetEncoded(r.Context(), id)
	}
	body, err := h.Storage.Get(r.Context(), id)
	return body, "", err
}

// startEncodedBody sends the 200 headers of a body already in encoding and
// returns the writer for it.
func startEncodedBody(w http.ResponseWriter, contentType, filename, encoding string, timeout time.Duration) io.Writer {
	h := setBodyHeaders(w, contentType, filename)
	h.Set("Content-Encoding", encoding)
	h.Del("Content-Length")
	w.WriteHeader(http.StatusOK)
	return newProgressWriter(w, timeout)
}

// copyBufferBytes is the size of the buffer a graph is streamed through.
const copyBufferBytes = 32 << 10

// streamGraph copies src to dst and says which side failed: readErr is the
// storage's, writeErr the client's. A clean end of src is no error.
func streamGraph(dst io.Writer, src io.Reader) (readErr, writeErr error) {
	buf := make([]byte, copyBufferBytes)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return nil, werr
			}
		}
		switch {
		case errors.Is(err, io.EOF):
			return nil, nil
		case err != nil:
			return err, nil
		}
	}
}

// progressWriter gives every write to the client its own deadline.
type progressWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
}

func newProgressWriter(w http.ResponseWriter, timeout time.Duration) io.Writer {
	if timeout <= 0 {
		return w
	}
	return &progressWriter{w: w, rc: http.NewResponseController(w), timeout: timeout}
}

func (p *progressWriter) Write(b []byte) (int, error) {
	// A writer that cannot take deadlines (a test recorder) just writes.
	_ = p.rc.SetWriteDeadline(time.Now().Add(p.timeout))
	n, err := p.w.Write(b)
	if err == nil {
		// Clear it again: the server sets no deadline of its own for the
		// next request on this connection.
		_ = p.rc.SetWriteDeadline(time.Time{})
	}
	return n, err
}

// failedDependency names the module behind an error of the in-progress
// storage: the marker when it says so, else the storage.
func failedDependency(err error) string {
	if errors.Is(err, types.ErrMarkerUnavailable) {
		return runtime.DependencyMarker
	}
	return runtime.DependencyStorage
}

func windowQuery(start, stop time.Time) string {
	q := url.Values{}
	q.Set("start", start.Format(time.RFC3339))
	q.Set("stop", stop.Format(time.RFC3339))
	return q.Encode()
}
