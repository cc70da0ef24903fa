package v1

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5/middleware"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/runtime"
)

type loggerKey struct{}

// WithLogger returns ctx carrying logger; handlers log through it.
func WithLogger(ctx context.Context, logger *slog.Logger) context.Context {
	return context.WithValue(ctx, loggerKey{}, logger)
}

// LoggerFrom returns the logger carried by ctx, or fallback when there is none.
func LoggerFrom(ctx context.Context, fallback *slog.Logger) *slog.Logger {
	if l, ok := ctx.Value(loggerKey{}).(*slog.Logger); ok {
		return l
	}
	if fallback == nil {
		return slog.New(slog.DiscardHandler)
	}
	return fallback
}

// RequestLogger gives every request a logger carrying its request id, method
// and path, and counts requests and their latency by status.
func RequestLogger(base *slog.Logger, stats runtime.Stats) func(http.Handler) http.Handler {
	if stats == nil {
		stats = runtime.NopStats{}
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			started := time.Now()
			logger := base.With(
				slog.String("request_id", middleware.GetReqID(r.Context())),
				slog.String("method", r.Method),
				slog.String("path", truncate(r.URL.Path, 128)),
			)
			ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
			// Deferred, so a request the handler aborts (panic with
			// http.ErrAbortHandler, a client gone mid-stream) is counted too.
			defer func() {
				status := ww.Status()
				if status == 0 {
					status = http.StatusOK
				}
				tags := []string{"status:" + statusTag(status), "method:" + methodTag(r.Method)}
				stats.Count("http.server.requests", 1, tags...)
				stats.Timing("http.server.latency", time.Since(started), tags...)
				logger.DebugContext(r.Context(), "request served", slog.Int("status", status), slog.Duration("duration", time.Since(started)))
			}()
			next.ServeHTTP(ww, r.WithContext(WithLogger(r.Context(), logger)))
		})
	}
}

// methodTag is the metric tag value of a request method: the standard
// methods the API could be asked with, else "other", so a client cannot
// choose a tag value (or an unbounded number of them).
func methodTag(method string) string {
	switch method {
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete,
		http.MethodPatch, http.MethodHead, http.MethodOptions:
		return method
	}
	return "other"
}

// statusTag is the metric tag value of a status: its number when it is an
// HTTP status (100 to 599), else "other".
func statusTag(status int) string {
	if status < 100 || status > 599 {
		return "other"
	}
	return strconv.Itoa(status)
}
