package v1

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/runtime"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/worker"
)

// DefaultMaxBodyBytes bounds a worker request body when Worker.MaxBodyBytes is
// zero. A job is about 120 bytes.
const DefaultMaxBodyBytes = 64 << 10

// Worker serves POST /{topic}/{event}, the route an event bus delivers jobs
// to. It decodes the job and hands it to Run, then translates the runner's
// Result into a status: the route speaks HTTP, the runner does not.
type Worker struct {
	Logger *slog.Logger
	// Run runs one job to its end within the worker pool's bound
	// (queuer.Memory.Do): Retry with RetryAfter when every worker is busy.
	Run func(ctx context.Context, job types.Job, d worker.Delivery) worker.Result
	// Async, when set, takes jobs whose request carries RFC 7240
	// "Prefer: respond-async"; the worker then answers 202 at once.
	Async types.Queuer
	// Marker, when set, marks an async job's window before the 202 when
	// the job carries no token (the API marks the jobs it queues), so that
	// a GET after the answer finds the graph in progress; a window already
	// marked is answered 409, as a job run at once would be.
	Marker types.Marker
	// MaxBodyBytes bounds the request body; zero means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// MaxWindow bounds stop-start of a job taken over HTTP, as the API bounds
	// the windows it queues; zero means no bound.
	MaxWindow time.Duration
	// Token, when set, is the bearer token a request must carry
	// (GRAPHERD_WORKER_TOKEN); requests without it get 401.
	Token string
}

// jobBody is the worker's request body, the same as the original service's
// plus the optional owner token of the progress mark the API set.
type jobBody struct {
	ID    string `json:"id"`
	Start string `json:"start"`
	Stop  string `json:"stop"`
	Token string `json:"token,omitempty"`
}

// ServeHTTP runs the job in the request body: 204 when the graph is stored
// (or already was), 202 when it was taken for background work, 409 when
// another live run is making its window, 401 without the configured token,
// 400/413/422 for a job that can never succeed, 408 when the body did not
// arrive in time, 503 with Retry-After when every worker is busy, 5xx when
// a retry may help. 408, 429 and 5xx are the answers worth retrying.
func (h *Worker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	logger := LoggerFrom(r.Context(), h.Logger)
	if h.Token != "" && !bearerMatches(r.Header.Get("Authorization"), h.Token) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="grapherd worker"`)
		writeError(w, r, logger, &httpError{status: http.StatusUnauthorized,
			msg: "the worker route needs Authorization: Bearer with GRAPHERD_WORKER_TOKEN", event: runtime.EventInvalidInput})
		return
	}
	limit := h.MaxBodyBytes
	if limit <= 0 {
		limit = DefaultMaxBodyBytes
	}
	job, err := DecodeJob(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooLarge *http.MaxBytesError
		switch {
		case errors.As(err, &tooLarge):
			err = &httpError{status: http.StatusRequestEntityTooLarge, msg: fmt.Sprintf("job body is larger than %d bytes", limit), event: runtime.EventInvalidInput, err: err}
		case isTimeout(err):
			err = &httpError{status: http.StatusRequestTimeout, msg: "the job body did not arrive in time; send it again", event: runtime.EventInvalidInput, err: err}
		}
		writeError(w, r, logger, err)
		return
	}
	if err := checkJobWindow(job, h.MaxWindow); err != nil {
		writeError(w, r, logger, err)
		return
	}
	logger = logger.With(slog.String("id", job.ID))
	if h.Async != nil && prefersAsync(r.Header) {
		marked, err := h.markAsync(r.Context(), &job)
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		if err := h.Async.Queue(r.Context(), job); err != nil {
			if marked {
				unmarkUnqueued(r.Context(), logger, h.Marker, job)
			}
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
	res := h.Run(r.Context(), job, worker.Delivery{})
	if res.Outcome == worker.Done {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	writeError(w, r, logger, resultError(res))
}

// markAsync marks the window of an async job that carries no token, and
// hands the job the mark's token for the runner to claim. It reports
// whether it set a mark. A window another run holds gets the answer the
// runner would give (409), rather than a 202 for a job the runner would
// then drop as taken: the caller learns that this job was not.
func (h *Worker) markAsync(ctx context.Context, job *types.Job) (bool, error) {
	if h.Marker == nil || job.Token != "" {
		return false, nil
	}
	token, err := h.Marker.Mark(ctx, job.ID)
	switch {
	case errors.Is(err, types.ErrInProgress):
		return false, resultError(worker.Result{Outcome: worker.Busy})
	case err != nil:
		return false, dependencyError(runtime.DependencyMarker, err)
	}
	job.Token = token
	return true, nil
}

// unmarkUnqueued clears the mark job.Token owns for a job that was not
// queued, so that it does not hold the window until it expires, even when
// the request that made it is gone.
func unmarkUnqueued(ctx context.Context, logger *slog.Logger, m types.Marker, job types.Job) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := m.Unmark(ctx, job.ID, job.Token); err != nil {
		runtime.LogDependencyFailure(ctx, logger, runtime.DependencyMarker,
			fmt.Errorf("clear the mark of a job that was not queued: %w", err), slog.String("id", job.ID))
	}
}

// resultError is the answer to a job that did not end Done. The runner has
// logged the job's failure with its cause, so the answer carries only the
// public reason.
func resultError(res worker.Result) error {
	reason := worker.PublicReason(res.Err)
	switch res.Outcome {
	case worker.Busy:
		return conflict("the graph for this window is being made by another run")
	case worker.Permanent:
		if errors.Is(res.Err, types.ErrInvalidInput) {
			return &httpError{status: http.StatusBadRequest, msg: reason, event: runtime.EventInvalidInput}
		}
		return &httpError{status: http.StatusUnprocessableEntity, msg: reason, event: runtime.EventJobFailed}
	}
	if res.RetryAfter > 0 || errors.Is(res.Err, types.ErrQueueFull) || errors.Is(res.Err, context.Canceled) {
		return &httpError{status: http.StatusServiceUnavailable, msg: reason, event: runtime.EventDependencyFailure,
			dep: worker.DependencyOf(res.Err), retryAfter: res.RetryAfter}
	}
	dep := worker.DependencyOf(res.Err)
	return &httpError{status: http.StatusInternalServerError, msg: reason, event: runtime.EventDependencyFailure, dep: dep}
}

// bearerMatches reports whether the Authorization header value carries
// token as a bearer token, comparing in constant time.
func bearerMatches(header, token string) bool {
	scheme, got, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), []byte(token)) == 1
}

// isTimeout reports whether reading a body failed because it did not arrive
// in time (the server's read deadline), not because it was malformed.
func isTimeout(err error) bool {
	var netErr net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &netErr) && netErr.Timeout())
}

// DecodeJob reads and checks a job body: one JSON object whose id is the
// graph id of its RFC 3339 start and stop, and an optional mark token.
// Errors wrap types.ErrInvalidInput, except a body over the limit
// (*http.MaxBytesError) and a read that timed out (see isTimeout), which
// are returned as they are.
func DecodeJob(r io.Reader) (types.Job, error) {
	var body jobBody
	dec := json.NewDecoder(r)
	if err := dec.Decode(&body); err != nil {
		if readFailed(err) {
			return types.Job{}, err
		}
		return types.Job{}, invalidf("job body is not a JSON object with id, start and stop: %s", quoteInput(err.Error()))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		// A body over the limit is too large wherever its object ends.
		if readFailed(err) {
			return types.Job{}, err
		}
		return types.Job{}, invalidf("job body has data after the JSON object")
	}
	if _, err := uuid.Parse(body.ID); err != nil || len(body.ID) != 36 {
		return types.Job{}, invalidf("job id %s is not a graph id", quoteInput(body.ID))
	}
	start, err := ParseTime(body.Start)
	if err != nil {
		return types.Job{}, invalidf("job start %s is not an RFC 3339 time", quoteInput(body.Start))
	}
	stop, err := ParseTime(body.Stop)
	if err != nil {
		return types.Job{}, invalidf("job stop %s is not an RFC 3339 time", quoteInput(body.Stop))
	}
	start, stop = start.UTC(), stop.UTC()
	if start.After(stop) {
		return types.Job{}, invalidf("job start %s is after stop %s", quoteInput(body.Start), quoteInput(body.Stop))
	}
	if id := ComputeID(start, stop); !strings.EqualFold(id, body.ID) {
		return types.Job{}, invalidf("job id %s is not the id of the window %s to %s (%s)", body.ID, quoteInput(body.Start), quoteInput(body.Stop), id)
	}
	return types.Job{ID: strings.ToLower(body.ID), Start: start, Stop: stop, Token: body.Token}, nil
}

// DecodeQueuedJob reads a job taken from a queue engine as the worker route
// reads its body: DecodeJob's checks, and a window no longer than maxWindow
// (0: no bound), so that a forged or replayed message, like a forged
// request, can only ever make the graph of its own window.
func DecodeQueuedJob(body []byte, maxWindow time.Duration) (types.Job, error) {
	job, err := DecodeJob(bytes.NewReader(body))
	if err != nil {
		return types.Job{}, err
	}
	if err := checkJobWindow(job, maxWindow); err != nil {
		return types.Job{}, err
	}
	return job, nil
}

// checkJobWindow refuses a job whose window is longer than max (0: no
// bound).
func checkJobWindow(job types.Job, max time.Duration) error {
	if max > 0 && job.Stop.After(job.Start.Add(max)) {
		return invalidf("job window of %s is longer than the limit of %s", windowLength(job.Start, job.Stop), max)
	}
	return nil
}

// readFailed reports whether err is the body's reader failing (too large,
// too slow) rather than the body being malformed.
func readFailed(err error) bool {
	var tooLarge *http.MaxBytesError
	return errors.As(err, &tooLarge) || isTimeout(err)
}

// EncodeJob returns the worker's request body for job.
func EncodeJob(job types.Job) ([]byte, error) {
	return json.Marshal(types.Job{ID: job.ID, Start: job.Start.UTC(), Stop: job.Stop.UTC(), Token: job.Token})
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
