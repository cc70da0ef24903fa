package v1

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/runtime"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
)

// httpError is an error with the status and public message it maps to.
type httpError struct {
	status int
	msg    string
	event  string
	dep    string
	err    error
	// retryAfter, when set, is the Retry-After of a 503.
	retryAfter time.Duration
}

func (e *httpError) Error() string {
	if e.err != nil {
		return e.msg + ": " + e.err.Error()
	}
	return e.msg
}

func (e *httpError) Unwrap() error { return e.err }

// dependencyError reports that dep failed; the client sees a 500 naming the
// dependency, the log gets the cause.
func dependencyError(dep string, err error) error {
	return &httpError{status: http.StatusInternalServerError, msg: dep + " dependency failed", event: runtime.EventDependencyFailure, dep: dep, err: err}
}

// conflict reports a 409 with a message meant for the client.
func conflict(msg string) error {
	return &httpError{status: http.StatusConflict, msg: msg, event: runtime.EventConflict}
}

type errorBody struct {
	Message string `json:"message"`
}

// writeError is the one place errors become responses. 5xx are logged at
// error level, 4xx at info, each once.
func writeError(w http.ResponseWriter, r *http.Request, logger *slog.Logger, err error) {
	status, msg, event, dep := classify(err)
	retryAfter := 5 * time.Second
	var he *httpError
	if errors.As(err, &he) && he.retryAfter > 0 {
		retryAfter = he.retryAfter
	}
	attrs := []slog.Attr{slog.Int("status", status)}
	if dep != "" {
		attrs = append(attrs, slog.String(runtime.AttrDependency, dep))
	}
	level := slog.LevelInfo
	switch {
	case r.Context().Err() != nil:
		// The client went away, and with it the request's context, which
		// also ends the dependency calls made for it: nobody waits for
		// this answer and nothing need be wrong with the dependency.
		event = runtime.EventClientGone
	case status == http.StatusServiceUnavailable && event == runtime.EventConflict:
		// Shedding load is the service working as meant, not a failure.
		level = slog.LevelWarn
	case status >= 500:
		level = slog.LevelError
	}
	runtime.LogEvent(r.Context(), logger, level, event, err, attrs...)
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", strconv.Itoa(int(max(retryAfter.Round(time.Second), time.Second)/time.Second)))
	}
	writeJSON(w, status, errorBody{Message: msg})
}

func classify(err error) (status int, msg, event, dep string) {
	var he *httpError
	var fe *types.FailedError
	switch {
	case errors.As(err, &he):
		return he.status, he.msg, he.event, he.dep
	case errors.As(err, &fe):
		return http.StatusFailedDependency, fe.Error(), runtime.EventGraphFailed, ""
	case errors.Is(err, types.ErrInvalidInput):
		return http.StatusBadRequest, err.Error(), runtime.EventInvalidInput, ""
	case errors.Is(err, types.ErrNotFound):
		return http.StatusNotFound, err.Error(), runtime.EventNotFound, ""
	case errors.Is(err, types.ErrQueueFull):
		return http.StatusServiceUnavailable, "too many graph jobs are waiting; try again later", runtime.EventDependencyFailure, runtime.DependencyQueuer
	case errors.Is(err, types.ErrQueueUnavailable):
		return http.StatusServiceUnavailable, "the job queue cannot be reached; try again later", runtime.EventDependencyFailure, runtime.DependencyQueuer
	case errors.Is(err, types.ErrMalformedDigest), errors.Is(err, types.ErrDigestTooLarge), types.IsPermanent(err):
		return http.StatusUnprocessableEntity, err.Error(), runtime.EventJobFailed, ""
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, "request was cancelled before it completed", runtime.EventDependencyFailure, ""
	default:
		return http.StatusInternalServerError, "internal error", runtime.EventDependencyFailure, ""
	}
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// NotFound answers unknown routes with a JSON 404.
func NotFound(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusNotFound, errorBody{Message: "no route for " + r.Method + " " + truncate(r.URL.Path, 128)})
}

// MethodNotAllowed answers a known route asked with the wrong method.
func MethodNotAllowed(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusMethodNotAllowed, errorBody{Message: "method " + truncate(r.Method, 16) + " is not allowed on " + truncate(r.URL.Path, 128)})
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
