package runtime

import (
	"context"
	"io"
	"log/slog"
	"strings"
)

// Event names, logged as the message of a record. The first five are the
// seed's (its logs package), so dashboards and alerts built on them keep
// working; the job events are new.
const (
	// EventDependencyFailure is logged when a storage, marker, queuer,
	// digester or grapher call fails; the dependency attribute says which.
	EventDependencyFailure = "dependency-failure"
	// EventUnknownFailure is logged when an unexpected error occurs.
	EventUnknownFailure = "unknown-failure"
	// EventInvalidInput is logged when a request can never succeed.
	EventInvalidInput = "invalid-input"
	// EventNotFound is logged when a requested graph does not exist.
	EventNotFound = "not-found"
	// EventConflict is logged when a graph exists or is being made.
	EventConflict = "conflict"
	// EventJobFailed is logged when making a graph failed.
	EventJobFailed = "job-failed"
	// EventJobDone is logged when a graph was made and stored.
	EventJobDone = "job-done"
	// EventGraphFailed is logged when a client asks for a graph whose job
	// failed.
	EventGraphFailed = "graph-failed"
	// EventClientGone is logged, at info, when a client hangs up (or stops
	// reading) while a graph is streamed to it: its own event, so that
	// alerts on dependency-failure are not paged for a closed browser tab.
	EventClientGone = "client-gone"
)

// Dependency names, the values of the dependency attribute of
// EventDependencyFailure. The first three are the seed's.
const (
	// DependencyStorage is the graph storage.
	DependencyStorage = "storage"
	// DependencyMarker is the progress marker.
	DependencyMarker = "marker"
	// DependencyQueuer is the job queuer.
	DependencyQueuer = "queuer"
	// DependencyDigester is the flow log digester.
	DependencyDigester = "digester"
	// DependencyGrapher is the DOT converter.
	DependencyGrapher = "grapher"
)

// Attribute keys shared by the events, as in the seed's logs.
const (
	// AttrDependency names the failed dependency.
	AttrDependency = "dependency"
	// AttrReason says why, usually an error's text.
	AttrReason = "reason"
	// MessageKey is the JSON key of the event name. The seed wrote events
	// under "message", so the logger renames slog's "msg" to it.
	MessageKey = "message"
)

// NewLogger returns the service's logger: JSON lines to stdout at
// RUNTIME_LOGGER_LEVEL, or a logger that drops everything when
// RUNTIME_LOGGER_OUTPUT is NULL. A zero Config gives JSON at INFO. The
// logger is passed down explicitly; nothing here touches slog's default.
func NewLogger(c *Config, stdout io.Writer) *slog.Logger {
	if strings.EqualFold(c.LoggerOutput, LoggerOutputNull) || stdout == nil {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewJSONHandler(stdout, &slog.HandlerOptions{
		Level: parseLevel(c.LoggerLevel),
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.MessageKey {
				a.Key = MessageKey
			}
			return a
		},
	}))
}

// parseLevel maps RUNTIME_LOGGER_LEVEL to a slog level; anything Load would
// reject falls back to INFO.
func parseLevel(s string) slog.Level {
	switch strings.ToUpper(s) {
	case "DEBUG":
		return slog.LevelDebug
	case "WARN":
		return slog.LevelWarn
	case "ERROR":
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}

// LogDependencyFailure logs EventDependencyFailure at error level with the
// dependency (one of the Dependency constants) and err as the reason. Call
// it once, where the failure is handled.
func LogDependencyFailure(ctx context.Context, l *slog.Logger, dependency string, err error, attrs ...slog.Attr) {
	LogEvent(ctx, l, slog.LevelError, EventDependencyFailure, err,
		append([]slog.Attr{slog.String(AttrDependency, dependency)}, attrs...)...)
}

// LogEvent writes one event at level with err's text as the reason;
// LogDependencyFailure is LogEvent at the seed's level for its event. The JSON handler escapes
// every string, so hostile input in err cannot forge a log line.
func LogEvent(ctx context.Context, l *slog.Logger, level slog.Level, event string, err error, attrs ...slog.Attr) {
	if l == nil {
		return
	}
	reason := ""
	if err != nil {
		reason = err.Error()
	}
	l.LogAttrs(ctx, level, event, append([]slog.Attr{slog.String(AttrReason, reason)}, attrs...)...)
}
