package v1

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/runtime"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
)

// DefaultMaxBodyBytes bounds a worker request body when Worker.MaxBodyBytes is
// zero. A job is about 120 bytes.
const DefaultMaxBodyBytes = 64 << 10

// Worker makes graphs: it fetches the digest for a job's window, converts it
// and stores the graph, then clears the progress mark. It serves
// POST /{topic}/{event} and is the job runner of the in-process queue.
type Worker struct {
	// Storage is the plain graph storage, without the in-progress decorator:
	// the worker must see whether a graph exists while its own mark is set.
	Storage  types.Storage
	Marker   types.Marker
	Digester types.Digester
	Grapher  types.Grapher
	Logger   *slog.Logger
	Stats    runtime.Stats
	// Async, when set, takes jobs whose request carries RFC 7240
	// "Prefer: respond-async"; the worker then answers 202 at once.
	Async types.Queuer
	// MaxBodyBytes bounds the request body; zero means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// MaxDigestBytes bounds the digest read for one job; zero means no bound.
	MaxDigestBytes int64
	// MaxWindow bounds stop-start of a job taken over HTTP, as the API bounds
	// the windows it queues; zero means no bound.
	MaxWindow time.Duration
	// RefreshInterval is how often a running job refreshes its progress
	// mark, so a job longer than the mark's timeout keeps its window; zero
	// means never. A third of the timeout leaves room for a missed beat.
	RefreshInterval time.Duration
}

// jobBody is the worker's request body, the same as the original service's.
type jobBody struct {
	ID    string `json:"id"`
	Start string `json:"start"`
	Stop  string `json:"stop"`
}

// ServeHTTP runs the job in the request body: 204 when the graph is stored
// (or already was), 202 when it was taken for background work, 400/413/422
// for a job that can never succeed, 5xx when a retry may help.
func (h *Worker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	logger := LoggerFrom(r.Context(), h.Logger)
	limit := h.MaxBodyBytes
	if limit <= 0 {
		limit = DefaultMaxBodyBytes
	}
	job, err := DecodeJob(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			err = &httpError{status: http.StatusRequestEntityTooLarge, msg: fmt.Sprintf("job body is larger than %d bytes", limit), event: runtime.EventInvalidInput, err: err}
		}
		writeError(w, r, logger, err)
		return
	}
	if h.MaxWindow > 0 && job.Stop.Sub(job.Start) > h.MaxWindow {
		writeError(w, r, logger, invalidf("job window of %s is longer than the limit of %s", job.Stop.Sub(job.Start), h.MaxWindow))
		return
	}
	logger = logger.With(slog.String("id", job.ID))
	if h.Async != nil && prefersAsync(r.Header) {
		if err := h.Async.Queue(r.Context(), job); err != nil {
			if !errors.Is(err, types.ErrQueueFull) {
				err = dependencyError(runtime.DependencyQueuer, err)
			}
			writeError(w, r, logger, err)
			return
		}
		w.Header().Set("Preference-Applied", "respond-async")
		w.WriteHeader(http.StatusAccepted)
		return
	}
	// Run adds the id to the request's logger itself.
	if err := h.Run(r.Context(), job); err != nil {
		writeError(w, r, logger, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// DecodeJob reads and checks a job body: one JSON object whose id is the
// graph id of its RFC 3339 start and stop. Errors wrap types.ErrInvalidInput.
func DecodeJob(r io.Reader) (types.Job, error) {
	var body jobBody
	dec := json.NewDecoder(r)
	if err := dec.Decode(&body); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return types.Job{}, err
		}
		return types.Job{}, invalidf("job body is not a JSON object with id, start and stop: %s", quoteInput(err.Error()))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		// A body over the limit is too large wherever its object ends.
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return types.Job{}, err
		}
		return types.Job{}, invalidf("job body has data after the JSON object")
	}
	if _, err := uuid.Parse(body.ID); err != nil || len(body.ID) != 36 {
		return types.Job{}, invalidf("job id %s is not a graph id", quoteInput(body.ID))
	}
	start, err := time.Parse(time.RFC3339Nano, body.Start)
	if err != nil {
		return types.Job{}, invalidf("job start %s is not an RFC 3339 time", quoteInput(body.Start))
	}
	stop, err := time.Parse(time.RFC3339Nano, body.Stop)
	if err != nil {
		return types.Job{}, invalidf("job stop %s is not an RFC 3339 time", quoteInput(body.Stop))
	}
	start, stop = start.UTC(), stop.UTC()
	if start.After(stop) {
		return types.Job{}, invalidf("job start %s is after stop %s", body.Start, body.Stop)
	}
	if id := ComputeID(start, stop); !strings.EqualFold(id, body.ID) {
		return types.Job{}, invalidf("job id %s is not the id of the window %s to %s (%s)", body.ID, body.Start, body.Stop, id)
	}
	return types.Job{ID: strings.ToLower(body.ID), Start: start, Stop: stop}, nil
}

// EncodeJob returns the worker's request body for job.
func EncodeJob(job types.Job) ([]byte, error) {
	return json.Marshal(types.Job{ID: job.ID, Start: job.Start.UTC(), Stop: job.Stop.UTC()})
}

func prefersAsync(h http.Header) bool {
	for _, v := range h.Values("Prefer") {
		for _, pref := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(strings.SplitN(pref, ";", 2)[0]), "respond-async") {
				return true
			}
		}
	}
	return false
}

// Run makes the graph for job. It is idempotent: a job for a graph that
// exists does nothing and succeeds, so an event bus may deliver a job more
// than once. When making the graph fails the mark becomes a failure record
// that GET reports; when ctx is cancelled (shutdown) the mark is cleared so
// the window can be asked for again at once.
func (h *Worker) Run(ctx context.Context, job types.Job) error {
	logger := LoggerFrom(ctx, h.Logger).With(slog.String("id", job.ID))
	stats := h.Stats
	if stats == nil {
		stats = runtime.NopStats{}
	}
	started := time.Now()
	var phases jobPhases
	gs, err := h.run(ctx, job, &phases)
	if err == nil {
		stats.Count("grapherd.jobs", 1, "result:done")
		stats.Timing("grapherd.job.duration", time.Since(started))
		logger.InfoContext(ctx, runtime.EventJobDone,
			slog.Int64("lines", gs.Lines), slog.Int64("edges", gs.Used), slog.Int64("nodes", gs.Nodes),
			slog.Int64("skipped", gs.Skipped), slog.Duration("duration", time.Since(started)),
			slog.Duration("digest_duration", phases.digest), slog.Duration("graph_duration", phases.graph),
			slog.Duration("store_duration", phases.store))
		return nil
	}

	// The job's own context may be done; the bookkeeping still has to happen.
	bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if ctx.Err() != nil {
		stats.Count("grapherd.jobs", 1, "result:cancelled")
		runtime.LogEvent(ctx, logger, slog.LevelWarn, runtime.EventJobFailed, fmt.Errorf("cancelled: %w", err))
		if uerr := h.Marker.Unmark(bg, job.ID); uerr != nil {
			runtime.LogDependencyFailure(ctx, logger, runtime.DependencyMarker, fmt.Errorf("clear the mark of a cancelled job: %w", uerr))
		}
		return err
	}
	stats.Count("grapherd.jobs", 1, "result:failed")
	if ferr := h.Marker.Fail(bg, job.ID, failureReason(err)); ferr != nil {
		runtime.LogDependencyFailure(ctx, logger, runtime.DependencyMarker, fmt.Errorf("record a failed job: %w", ferr))
	}
	runtime.LogEvent(ctx, logger, slog.LevelError, runtime.EventJobFailed, err)
	return err
}

// jobPhases is how long a job's phases took, for the job-done log line.
// The graph is made and stored as the digest streams, so graph and store
// overlap: graph ends when the digest is read and converted, store when the
// last byte is uploaded.
type jobPhases struct {
	digest time.Duration // from the start until the digest opened (for the built-in digester: read and compacted)
	graph  time.Duration // from the digest opening until it was read to its end and converted
	store  time.Duration // from the digest opening until the graph was stored
}

func (h *Worker) run(ctx context.Context, job types.Job, phases *jobPhases) (types.GraphStats, error) {
	began := time.Now()
	exists, err := h.Storage.Exists(ctx, job.ID)
	if err != nil {
		return types.GraphStats{}, dependencyError(runtime.DependencyStorage, err)
	}
	if exists {
		// Delivered again after the graph was made: clear a stale mark and succeed.
		if err := h.Marker.Unmark(ctx, job.ID); err != nil {
			return types.GraphStats{}, dependencyError(runtime.DependencyMarker, err)
		}
		return types.GraphStats{}, nil
	}
	// A job delivered straight to the worker, or redelivered after a failure,
	// has no live mark: set one so GET answers 204 while the graph is made.
	if err := h.Marker.Mark(ctx, job.ID); err != nil && !errors.Is(err, types.ErrInProgress) {
		return types.GraphStats{}, dependencyError(runtime.DependencyMarker, err)
	}

	stopRefresh := h.keepMarked(ctx, job.ID)
	defer stopRefresh()

	digest, err := h.Digester.Digest(ctx, job.Start, job.Stop)
	if err != nil {
		return types.GraphStats{}, classifyDigestError(err)
	}
	defer digest.Close()
	opened := time.Now()
	phases.digest = opened.Sub(began)
	var in io.Reader = digest
	if h.MaxDigestBytes > 0 {
		in = &limitedReader{r: digest, left: h.MaxDigestBytes, limit: h.MaxDigestBytes}
	}

	// Digest -> grapher -> pipe -> storage: nothing is held whole in memory,
	// and storage makes the graph visible only if the pipe ends cleanly.
	pr, pw := io.Pipe()
	done := make(chan struct{})
	var gs types.GraphStats
	var graphErr error
	go func() {
		defer close(done)
		// Nothing above this goroutine can recover a panic in it, and a
		// module's bug must fail the job, not the process.
		defer func() {
			if r := recover(); r != nil {
				graphErr = dependencyError(runtime.DependencyGrapher, fmt.Errorf("grapher panicked: %v", r))
				pw.CloseWithError(graphErr)
			}
		}()
		gs, graphErr = h.Grapher.Graph(ctx, pw, in)
		phases.graph = time.Since(opened)
		pw.CloseWithError(graphErr)
	}()
	storeErr := h.Storage.Store(ctx, job.ID, pr)
	phases.store = time.Since(opened)
	// Unblock the grapher if storage stopped reading early.
	pr.CloseWithError(errors.Join(storeErr, errStoreStopped))
	<-done

	switch {
	case graphErr != nil && !errors.Is(graphErr, errStoreStopped) && !errors.Is(graphErr, io.ErrClosedPipe):
		var classified *httpError
		if types.IsPermanent(graphErr) || errors.As(graphErr, &classified) {
			return gs, graphErr
		}
		return gs, dependencyError(runtime.DependencyDigester, graphErr)
	case storeErr != nil:
		return gs, dependencyError(runtime.DependencyStorage, storeErr)
	}
	stopRefresh()
	if err := h.Marker.Unmark(ctx, job.ID); err != nil {
		// The graph is stored and wins over any mark; the stale mark only
		// costs a lookup until it expires.
		runtime.LogEvent(ctx, LoggerFrom(ctx, h.Logger), slog.LevelWarn, runtime.EventDependencyFailure,
			fmt.Errorf("graph stored but its mark was not cleared: %w", err),
			slog.String(runtime.AttrDependency, runtime.DependencyMarker), slog.String("id", job.ID))
	}
	return gs, nil
}

var errStoreStopped = errors.New("storage stopped reading the graph")

// keepMarked refreshes the mark of id every RefreshInterval until the
// returned function is called; that function waits for the last refresh to
// end, so no refresh can land after the mark is cleared or failed.
func (h *Worker) keepMarked(ctx context.Context, id string) (stop func()) {
	if h.RefreshInterval <= 0 {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		ticker := time.NewTicker(h.RefreshInterval)
		defer ticker.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-ticker.C:
			}
			if err := h.Marker.Refresh(ctx, id); err != nil && ctx.Err() == nil {
				// A missed beat is not fatal: the next one may land, and at
				// worst the window is made twice, which is harmless.
				runtime.LogEvent(ctx, LoggerFrom(ctx, h.Logger), slog.LevelWarn, runtime.EventDependencyFailure,
					fmt.Errorf("refresh the progress mark: %w", err),
					slog.String(runtime.AttrDependency, runtime.DependencyMarker), slog.String("id", id))
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}
}

// classifyDigestError keeps permanent digester errors as they are (the worker
// answers them with a 4xx) and reports the rest as a failed dependency.
func classifyDigestError(err error) error {
	switch {
	case errors.Is(err, types.ErrNoSource):
		return types.Permanent(err)
	case types.IsPermanent(err):
		return err
	default:
		return dependencyError(runtime.DependencyDigester, err)
	}
}

// failureReason is the message kept in a failure record: the cause without
// internals the client cannot act on, bounded in size.
func failureReason(err error) string {
	msg := err.Error()
	if len(msg) > 1024 {
		msg = msg[:1024] + "..."
	}
	return msg
}

// limitedReader fails with types.ErrDigestTooLarge once more than left bytes
// were read, rather than silently truncating the digest.
type limitedReader struct {
	r           io.Reader
	left, limit int64
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.left < 0 {
		return 0, l.err()
	}
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if l.left < 0 {
		return n, l.err()
	}
	return n, err
}

func (l *limitedReader) err() error {
	return fmt.Errorf("%w: more than %d bytes (GRAPHERD_MAX_DIGEST_BYTES)", types.ErrDigestTooLarge, l.limit)
}
