package v1

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/flowtable"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/runtime"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
)

// Media types of the view formats.
const (
	JSONContentType = "application/json"
	CSVContentType  = "text/csv; charset=utf-8"
	SVGContentType  = "image/svg+xml"
)

// ViewLimits caps the views GET / answers; zero means no cap.
type ViewLimits struct {
	// MaxNodes and MaxEdges cap JSON, CSV and DOT views.
	MaxNodes, MaxEdges int
	// MaxSVGNodes and MaxSVGEdges cap SVG views, which Graphviz must lay
	// out.
	MaxSVGNodes, MaxSVGEdges int
	// SVGTimeout bounds one Graphviz layout.
	SVGTimeout time.Duration
	// GraphvizDir holds Graphviz's commands; empty means PATH.
	GraphvizDir string
}

// negotiate picks the format from the Accept header when the query names
// none: the first of JSON, CSV, SVG and DOT it lists (by quality, then
// order); anything else, */* included, keeps the stored DOT.
func negotiate(accept string) flowtable.Format {
	best, bestQ := flowtable.Format(""), 0.0
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		q := 1.0
		if v, ok := params["q"]; ok {
			if q, err = strconv.ParseFloat(v, 64); err != nil {
				continue
			}
		}
		var f flowtable.Format
		switch mt {
		case "application/json":
			f = flowtable.FormatJSON
		case "text/csv":
			f = flowtable.FormatCSV
		case "image/svg+xml":
			f = flowtable.FormatSVG
		case "text/vnd.graphviz":
			f = flowtable.FormatDOT
		default:
			continue
		}
		if q > bestQ {
			best, bestQ = f, q
		}
	}
	return best
}

// acceptsGzip reports whether the request's Accept-Encoding takes gzip.
func acceptsGzip(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept-Encoding") {
		for _, part := range strings.Split(v, ",") {
			name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
			if !strings.EqualFold(strings.TrimSpace(name), "gzip") {
				continue
			}
			// Parameters are case-insensitive, q among others (RFC 9110).
			for _, param := range strings.Split(params, ";") {
				k, q, _ := strings.Cut(param, "=")
				if strings.EqualFold(strings.TrimSpace(k), "q") {
					if f, err := strconv.ParseFloat(strings.TrimSpace(q), 64); err == nil && f == 0 {
						return false
					}
				}
			}
			return true
		}
	}
	return false
}

// startBody sends the 200 headers and returns the writer for the body,
// gzip-compressed when the client takes it, the function that ends it and
// the one that releases it, which the handler must call (deferred) on every
// path before it returns.
func startBody(w http.ResponseWriter, r *http.Request, contentType, filename string, timeout time.Duration) (out io.Writer, finish func() error, release func()) {
	h := setBodyHeaders(w, contentType, filename)
	out = newProgressWriter(w, timeout)
	if !acceptsGzip(r) {
		w.WriteHeader(http.StatusOK)
		return out, func() error { return nil }, func() {}
	}
	h.Set("Content-Encoding", "gzip")
	h.Del("Content-Length")
	w.WriteHeader(http.StatusOK)
	gz := newGzipBody(w, out)
	return gz, gz.Close, gz.stop
}

// setBodyHeaders sets the headers every 200 answer with a body carries and
// returns the header map for more.
func setBodyHeaders(w http.ResponseWriter, contentType, filename string) http.Header {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Disposition", `inline; filename="`+filename+`"`)
	h.Add("Vary", "Accept, Accept-Encoding")
	return h
}

// getView answers a view of the graph id: the graph must be complete, then
// its flow table (or, without one, its DOT) is aggregated and written in the
// format p asks for.
func (h *Graph) getView(w http.ResponseWriter, r *http.Request, logger *slog.Logger, meta flowtable.Meta, p flowtable.Params) {
	ctx := r.Context()
	id := meta.ID
	if !h.graphComplete(w, r, logger, meta) {
		return
	}
	h.slotOnce.Do(h.makeSlots)
	select {
	case h.inflight <- struct{}{}:
		defer func() { <-h.inflight }()
	default:
		writeError(w, r, logger, errViewsBusy)
		return
	}
	objs, _ := h.Storage.(types.ObjectStorage)
	cache := flowtable.SVGCacheOf(p)
	if p.Format == flowtable.FormatSVG && objs != nil {
		if rc, err := objs.GetObject(ctx, id, cache.Kind); err == nil {
			defer rc.Close()
			// The slot may hold another view that shares it: then it is
			// laid out again below and takes the slot over.
			if svg, ok := cache.Open(rc); ok {
				h.serve(w, r, logger, id, SVGContentType, id+".svg", func(out io.Writer) error {
					_, err := io.Copy(out, svg)
					return err
				})
				return
			}
		}
	}

	limits := flowtable.Limits{MaxNodes: h.Views.MaxNodes, MaxEdges: h.Views.MaxEdges}
	if p.Format == flowtable.FormatSVG && h.Views.MaxSVGNodes > 0 {
		limits.MaxNodes = h.Views.MaxSVGNodes
	}
	if p.Format == flowtable.FormatSVG && h.Views.MaxSVGEdges > 0 {
		// sfdp took a core for its whole timeout, and 440 MB, on 2,000
		// nodes of 99,000 labelled edges.
		limits.MaxEdges = min(limits.MaxEdges, h.Views.MaxSVGEdges)
	}
	view, err := h.aggregate(ctx, h.openRecords(ctx, id, objs), p, limits)
	var tooLarge *flowtable.TooLargeError
	switch {
	case errors.As(err, &tooLarge):
		writeError(w, r, logger, &httpError{status: http.StatusUnprocessableEntity, msg: err.Error(), event: runtime.EventInvalidInput})
		return
	case r.Context().Err() != nil:
		// The client went away while its view waited or was aggregated.
		runtime.LogEvent(ctx, logger, slog.LevelInfo, runtime.EventClientGone,
			fmt.Errorf("view request ended before its answer: %w", err), slog.String("id", id))
		return
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		writeError(w, r, logger, err)
		return
	case err != nil:
		writeError(w, r, logger, dependencyError(runtime.DependencyStorage, fmt.Errorf("read the records of graph %s: %w", id, err)))
		return
	}

	switch p.Format {
	case flowtable.FormatJSON:
		h.serve(w, r, logger, id, JSONContentType, id+".json", func(out io.Writer) error { return flowtable.WriteJSON(out, view, meta) })
	case flowtable.FormatCSV:
		h.serve(w, r, logger, id, CSVContentType, id+".csv", func(out io.Writer) error { return flowtable.WriteCSV(out, view) })
	case flowtable.FormatSVG:
		svg, err := h.render(ctx, view, meta)
		switch {
		case r.Context().Err() != nil:
			runtime.LogEvent(ctx, logger, slog.LevelInfo, runtime.EventClientGone,
				fmt.Errorf("view request ended before its layout: %w", err), slog.String("id", id))
			return
		case errors.Is(err, context.DeadlineExceeded):
			// The view is too large to lay out in time: the client can ask
			// for less, nothing is broken.
			writeError(w, r, logger, &httpError{status: http.StatusUnprocessableEntity, event: runtime.EventInvalidInput, err: err,
				msg: fmt.Sprintf("graphviz could not lay out the view's %d nodes and %d edges within %s; ask for less: "+
					"group addresses into networks (group=cidr:24), keep the busiest edges (top=200), or filter", len(view.Nodes), len(view.Edges), h.Views.SVGTimeout)})
			return
		case errors.Is(err, flowtable.ErrNoGraphviz):
			writeError(w, r, logger, &httpError{status: http.StatusNotImplemented, msg: err.Error(), event: runtime.EventDependencyFailure})
			return
		case err != nil:
			writeError(w, r, logger, &httpError{status: http.StatusInternalServerError, msg: "graphviz could not lay out the view", event: runtime.EventDependencyFailure, err: err})
			return
		}
		if objs != nil {
			if err := objs.StoreObject(ctx, id, cache.Kind, cache.Wrap(svg)); err != nil {
				// The answer is still good; the next one lays it out again.
				runtime.LogEvent(ctx, logger, slog.LevelWarn, runtime.EventDependencyFailure,
					fmt.Errorf("cache the rendered view: %w", err), slog.String(runtime.AttrDependency, runtime.DependencyStorage))
			}
		}
		h.serve(w, r, logger, id, SVGContentType, id+".svg", func(out io.Writer) error {
			_, err := out.Write(svg)
			return err
		})
	default:
		h.serve(w, r, logger, id, DOTContentType, id+".view.dot", func(out io.Writer) error { return flowtable.WriteDOT(out, view, meta) })
	}
}

// maxLayouts bounds the Graphviz processes one handler runs at once: each
// may take a core for the whole SVG timeout, and every view of a new
// canonical form misses the cache.
const maxLayouts = 2

// render lays the view out in one of the handler's layout slots, waiting
// for one until the request ends.
func (h *Graph) render(ctx context.Context, view *flowtable.View, meta flowtable.Meta) ([]byte, error) {
	h.slotOnce.Do(h.makeSlots)
	select {
	case h.layouts <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-h.layouts }()
	return flowtable.RenderSVG(ctx, view, meta, flowtable.SVGOptions{Timeout: h.Views.SVGTimeout, Dir: h.Views.GraphvizDir})
}

func (h *Graph) makeSlots() {
	h.slot = make(chan struct{}, 1)
	h.layouts = make(chan struct{}, maxLayouts)
	h.inflight = make(chan struct{}, maxViewsInFlight)
}

// maxViewsInFlight bounds the views a handler answers at once, from the
// wait for the aggregation slot to the last byte written: a finished view is
// held until its client has read it, so slow readers would otherwise each
// hold one. Past it a view answers 503 with Retry-After.
const maxViewsInFlight = 8

// errViewsBusy answers a view asked for while maxViewsInFlight are being
// answered.
var errViewsBusy = &httpError{status: http.StatusServiceUnavailable, retryAfter: 2 * time.Second,
	msg: "too many views are being answered; try again shortly", event: runtime.EventConflict}

// releaseAfterPairs is the size of aggregation after which its memory is
// handed back at once: the collector would otherwise let the next one grow
// the heap to twice the size of this one before collecting.
const releaseAfterPairs = 100_000

// aggregate runs flowtable.Aggregate in the handler's one aggregation slot.
//
// One aggregation runs at a time per handler: each holds up to ~60 bytes per
// distinct pair it merges, and one at a time keeps the service's memory that
// of its largest view. A view takes well under a second, so a second caller
// waits briefly (or until its request ends) rather than doubling the memory.
func (h *Graph) aggregate(ctx context.Context, open flowtable.Open, p flowtable.Params, limits flowtable.Limits) (*flowtable.View, error) {
	h.slotOnce.Do(h.makeSlots)
	select {
	case h.slot <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-h.slot }()
	view, err := flowtable.Aggregate(ctx, open, p, limits)
	merged := 0
	var tooLarge *flowtable.TooLargeError
	switch {
	case err == nil:
		merged = view.Merged
	case errors.As(err, &tooLarge):
		merged = tooLarge.Merged
	}
	if merged > releaseAfterPairs {
		debug.FreeOSMemory()
	}
	return view, err
}

// graphComplete answers for a graph that is not complete (204 being made,
// 404 missing, 424 failed) and reports whether it is.
func (h *Graph) graphComplete(w http.ResponseWriter, r *http.Request, logger *slog.Logger, meta flowtable.Meta) bool {
	exists, err := h.Storage.Exists(r.Context(), meta.ID)
	switch {
	case errors.Is(err, types.ErrInProgress):
		w.WriteHeader(http.StatusNoContent)
	case errors.Is(err, types.ErrFailed):
		writeError(w, r, logger, err)
	case err != nil:
		writeError(w, r, logger, dependencyError(failedDependency(err), err))
	case !exists:
		writeError(w, r, logger, notFound(meta.Start, meta.Stop))
	default:
		return true
	}
	return false
}

func notFound(start, stop time.Time) error {
	return fmt.Errorf("%w: no graph for the time %s to %s; POST the window to create it",
		types.ErrNotFound, start.Format(time.RFC3339), stop.Format(time.RFC3339))
}

// openRecords opens the graph's flow table, or its DOT when it has none.
func (h *Graph) openRecords(ctx context.Context, id string, objs types.ObjectStorage) flowtable.Open {
	return func() (flowtable.Source, io.Closer, error) {
		if objs != nil {
			rc, err := objs.GetObject(ctx, id, flowtable.Kind)
			if err == nil {
				return flowtable.NewReader(rc), rc, nil
			}
			if !errors.Is(err, types.ErrNotFound) {
				return nil, nil, err
			}
		}
		rc, err := h.Storage.Get(ctx, id)
		if err != nil {
			return nil, nil, err
		}
		return flowtable.NewDOTReader(rc), rc, nil
	}
}

// serve writes a 200 answer whose body write produces; a failure midway
// breaks the connection, so a cut-short view is never taken for whole.
func (h *Graph) serve(w http.ResponseWriter, r *http.Request, logger *slog.Logger, id, contentType, filename string, write func(io.Writer) error) {
	out, finish, release := startBody(w, r, contentType, filename, h.WriteTimeout)
	defer release()
	client := &clientWriter{w: out}
	err := write(client)
	if err == nil {
		err = finish()
	}
	switch {
	case err == nil:
		return
	case client.err != nil, r.Context().Err() != nil:
		// The client went away or stopped reading: nothing is wrong with
		// the storage.
		runtime.LogEvent(r.Context(), logger, slog.LevelInfo, runtime.EventClientGone,
			fmt.Errorf("view stream to the client ended: %w", err), slog.String("id", id))
	default:
		runtime.LogDependencyFailure(r.Context(), logger, runtime.DependencyStorage,
			fmt.Errorf("view stream interrupted: %w", err), slog.String("id", id))
	}
	panic(http.ErrAbortHandler)
}

// clientWriter remembers a failed write to the client, so a broken answer
// is told apart from a broken storage read.
type clientWriter struct {
	w   io.Writer
	err error
}

func (c *clientWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	if err != nil && c.err == nil {
		c.err = err
	}
	return n, err
}
