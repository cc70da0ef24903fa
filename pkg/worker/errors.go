package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/digester"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/flowlog"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/runtime"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
)

// reasonPanic is the public reason of a job stopped by a panicking module.
const reasonPanic = "internal error while making the graph"

// errJobTimeout is the cause of a job's context ending at JobTimeout. It is
// permanent: a job that took that long would take it again, and a client
// may ask for the window again at once.
var errJobTimeout = types.Permanent(errors.New("job timeout"))

// timeoutReason is the public reason of a job that ran out of time.
func timeoutReason(d time.Duration) string {
	return fmt.Sprintf("the job took longer than GRAPHERD_JOB_TIMEOUT (%s)", d)
}

// Error is a job failure as the runner classified it: the public reason a
// client may read, the module to blame, and the full cause for the log.
type Error struct {
	// Reason is the short public reason kept in the failure record. It names
	// no host, bucket, request id or upstream body.
	Reason string
	// Dependency is the module that failed (a runtime.Dependency name), or
	// empty when the job itself was at fault.
	Dependency string
	// Err is the full cause; it may name internals and is only logged.
	Err error
}

// Error implements error with the reason and the full cause.
func (e *Error) Error() string {
	if e.Err == nil {
		return e.Reason
	}
	return e.Reason + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// markerError blames the progress marker for err.
func markerError(err error) error {
	return &Error{Reason: "the progress marker failed", Dependency: runtime.DependencyMarker, Err: err}
}

// digestError classifies a failure to get or read the digest. Permanent
// errors stay permanent; the rest are the digester's.
func digestError(err error) error {
	reason := "the digester failed"
	var status *digester.StatusError
	switch {
	case errors.As(err, &status):
		reason = fmt.Sprintf("the digester answered %d", status.Status)
	case errors.Is(err, types.ErrNoSource):
		return &Error{Reason: "no flow log source is configured: set FLOW_LOGS_DIR, VPC_FLOW_LOGS_BUCKET or DIGESTER_ENDPOINT", Err: types.Permanent(err)}
	case errors.Is(err, digester.ErrNoFlowLogs):
		// A stored graph is never replaced, so an empty window is final:
		// asking again (a new POST) is the way to pick up late deliveries.
		return &Error{Reason: "no flow logs in this window", Err: types.Permanent(err)}
	case errors.Is(err, types.ErrMalformedDigest):
		reason = "the digest is malformed"
	case errors.Is(err, types.ErrDigestTooLarge):
		reason = "the digest is larger than the limit"
	case errors.Is(err, flowlog.ErrTooManyFlows):
		reason = "the window holds more distinct flows than GRAPHERD_MAX_FLOWS allows: ask for a shorter window or raise the bound"
	case errors.Is(err, flowlog.ErrCorrupt):
		reason = "a flow log file is corrupt"
	case errors.Is(err, types.ErrInvalidInput):
		reason = "the digester refused the window"
	case errors.Is(err, context.DeadlineExceeded):
		reason = "the digester did not answer in time"
	}
	if types.IsPermanent(err) {
		return &Error{Reason: reason, Err: err}
	}
	return &Error{Reason: reason, Dependency: runtime.DependencyDigester, Err: err}
}

// publicReason is the reason kept in a failure record: the classified
// failure's short public reason, with the counts that make it useful, never
// the raw error text (which may name buckets, hosts, request ids or an
// upstream's body).
func publicReason(err error, gs types.GraphStats, maxDigestBytes int64) string {
	var e *Error
	if !errors.As(err, &e) {
		return "internal error while making the graph"
	}
	switch {
	case errors.Is(e, errJobTimeout):
		return e.Reason
	case errors.Is(err, types.ErrMalformedDigest) && gs.Lines > 0:
		return fmt.Sprintf("the digest is malformed: %d usable lines of %d", gs.Used, gs.Lines)
	case errors.Is(err, types.ErrDigestTooLarge) && maxDigestBytes > 0:
		return fmt.Sprintf("the digest is larger than the limit of %d bytes", maxDigestBytes)
	}
	return e.Reason
}

// PublicReason is what a client may be told about a Result's error: the
// classified reason, or a generic sentence for an unclassified error.
func PublicReason(err error) string {
	var e *Error
	switch {
	case errors.As(err, &e):
		return e.Reason
	case errors.Is(err, types.ErrQueueFull):
		return "every worker is busy; try again later"
	case errors.Is(err, types.ErrInProgress):
		return "the graph for this window is being made by another run"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "the job was cancelled before it ended"
	default:
		return "internal error"
	}
}

// DependencyOf names the module err puts the failure down to, or "".
func DependencyOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Dependency
	}
	return ""
}
