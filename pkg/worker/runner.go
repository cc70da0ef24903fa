package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/flowlog"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/flowtable"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/runtime"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
)

// bookkeepingTimeout bounds the marker calls that settle a job after its own
// context is done: they must still happen, but not hang a drain.
const bookkeepingTimeout = 10 * time.Second

// busyRetryAfter is how long a transport waits before delivering again a job
// whose window another live run is making: long enough not to spin, short
// enough that a job whose other run died is taken up soon after its mark
// expires.
const busyRetryAfter = 30 * time.Second

// Runner makes graphs: it fetches the digest for a job's window, converts it
// and stores the graph, then clears the progress mark. Its Handle is the
// Handler of the HTTP worker route, the in-process pool and the queue
// consumers alike.
type Runner struct {
	// Storage is the plain graph storage, without the in-progress decorator:
	// the runner must see whether a graph exists while its own mark is set.
	Storage  types.Storage
	Marker   types.Marker
	Digester types.Digester
	Grapher  types.Grapher
	// Logger receives one record per job; nil discards them.
	Logger *slog.Logger
	// Stats counts jobs by outcome; nil drops them.
	Stats runtime.Stats
	// MaxDigestBytes bounds the digest read for one job; zero means no bound.
	MaxDigestBytes int64
	// RefreshInterval is how often a running job refreshes its progress
	// mark, so a job longer than the mark's timeout keeps its window; zero
	// means never. A third of the timeout leaves room for a missed beat.
	RefreshInterval time.Duration
	// JobTimeout bounds one job from start to end (GRAPHERD_JOB_TIMEOUT); a
	// job still running then fails with that reason. Zero means no bound.
	JobTimeout time.Duration
}

var _ Handler = (*Runner)(nil).Handle

// Handle makes the graph for job and says how to settle the delivery. It is
// idempotent: a job for a graph that exists does nothing and is Done, so a
// transport may deliver a job more than once. It claims the window's mark
// with the job's token first: a window another live run holds is Busy and
// is not made twice. When making the graph fails the mark becomes a failure
// record with the failure's public reason, which GET reports; when ctx is
// cancelled (shutdown), or already was when Handle was called, the mark is
// cleared so the window can be asked for again at once, and the result is
// Retry. A job running longer than JobTimeout fails. A panic in a module
// fails the job, not the process.
func (r *Runner) Handle(ctx context.Context, job types.Job, d Delivery) (res Result) {
	logger := r.logger().With(slog.String("id", job.ID))
	started := time.Now()
	at := &attempt{job: job, token: job.Token}
	defer func() {
		if p := recover(); p != nil {
			err := &Error{Reason: reasonPanic, Err: fmt.Errorf("graph job panicked: %v", p)}
			logger = logger.With(slog.String("stack", string(debug.Stack())))
			res = r.failed(ctx, logger, at, d, err)
		}
		r.stats().Count("grapherd.jobs", 1, "result:"+res.Outcome.String())
	}()
	if ctx.Err() != nil {
		// Never started: the transport gave up on it (a drain ran out of time).
		return r.cancelled(ctx, logger, at, ctx.Err())
	}
	jobCtx := ctx
	if r.JobTimeout > 0 {
		var cancel context.CancelFunc
		jobCtx, cancel = context.WithTimeoutCause(ctx, r.JobTimeout, &Error{Reason: timeoutReason(r.JobTimeout), Err: errJobTimeout})
		defer cancel()
	}
	gs, err := r.run(jobCtx, at)
	switch {
	case errors.Is(err, types.ErrInProgress):
		logger.InfoContext(ctx, runtime.EventConflict, slog.String("public_reason", "another live run holds the window"))
		return Result{Outcome: Busy, Err: err, RetryAfter: busyRetryAfter}
	case err != nil && ctx.Err() == nil && jobCtx.Err() != nil:
		// The job ran out of time; whatever failed last, that is the reason.
		err = fmt.Errorf("%w (last error: %w)", context.Cause(jobCtx), err)
		fallthrough
	case err != nil:
		return r.failed(ctx, logger, at, d, err)
	}
	r.stats().Timing("grapherd.job.duration", time.Since(started))
	logger.InfoContext(ctx, runtime.EventJobDone,
		slog.Int64("lines", gs.Lines), slog.Int64("edges", gs.Used), slog.Int64("nodes", gs.Nodes),
		slog.Int64("skipped", gs.Skipped), slog.Duration("duration", time.Since(started)),
		slog.Duration("digest_duration", at.phases.digest), slog.Duration("graph_duration", at.phases.graph),
		slog.Duration("store_duration", at.phases.store))
	return Result{Outcome: Done}
}

// attempt is one job in the runner's hands: the token is the job's until
// the runner claims the mark, then the runner's own.
type attempt struct {
	job    types.Job
	token  string
	stats  types.GraphStats
	phases phases
}

// phases is how long a job's phases took, for the job-done log line. The
// graph is made and stored as the digest streams, so graph and store
// overlap: graph ends when the digest is read and converted, store when the
// last byte is stored.
type phases struct {
	digest time.Duration // from the start until the digest opened (for the built-in digester: read and compacted)
	graph  time.Duration // from the digest opening until it was read to its end and converted
	store  time.Duration // from the digest opening until the graph was stored
}

// failed settles a job whose run returned err: a cancelled job's mark is
// cleared, a failed job's mark becomes its failure record with the public
// reason, and the full error is logged once, here.
func (r *Runner) failed(ctx context.Context, logger *slog.Logger, at *attempt, d Delivery, err error) Result {
	if ctx.Err() != nil {
		return r.cancelled(ctx, logger, at, err)
	}
	outcome := Retry
	if types.IsPermanent(err) {
		outcome = Permanent
	}
	reason := publicReason(err, at.stats, r.MaxDigestBytes)
	if outcome == Retry && d.Last() {
		reason = fmt.Sprintf("gave up after %d tries: %s", d.Attempt, reason)
	}
	bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), bookkeepingTimeout)
	defer cancel()
	if ferr := r.Marker.Fail(bg, at.job.ID, at.token, reason); ferr != nil {
		runtime.LogDependencyFailure(ctx, logger, runtime.DependencyMarker, fmt.Errorf("record a failed job: %w", ferr))
	}
	runtime.LogEvent(ctx, logger, slog.LevelError, runtime.EventJobFailed, err,
		slog.String("public_reason", reason), slog.String("outcome", outcome.String()), slog.Int("attempt", d.Attempt))
	return Result{Outcome: outcome, Err: &Error{Reason: reason, Dependency: DependencyOf(err), Err: err}}
}

// cancelled clears the mark of a job that was stopped, or never started,
// because ctx ended, so that another run may take the window at once.
func (r *Runner) cancelled(ctx context.Context, logger *slog.Logger, at *attempt, err error) Result {
	runtime.LogEvent(ctx, logger, slog.LevelWarn, runtime.EventJobFailed, fmt.Errorf("cancelled: %w", err))
	bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), bookkeepingTimeout)
	defer cancel()
	if uerr := r.Marker.Unmark(bg, at.job.ID, at.token); uerr != nil && !errors.Is(uerr, types.ErrNotOwner) {
		runtime.LogDependencyFailure(ctx, logger, runtime.DependencyMarker, fmt.Errorf("clear the mark of a cancelled job: %w", uerr))
	}
	return Result{Outcome: Retry, Err: &Error{Reason: "the job was cancelled before it ended", Err: err}}
}

func (r *Runner) run(ctx context.Context, at *attempt) (types.GraphStats, error) {
	job := at.job
	exists, err := r.Storage.Exists(ctx, job.ID)
	if err != nil {
		return types.GraphStats{}, &Error{Reason: "storage failed while looking for the graph", Dependency: runtime.DependencyStorage, Err: err}
	}
	if exists {
		// Delivered again after the graph was made: clear the job's own mark
		// if it is still there (another run's is none of its business).
		if err := r.Marker.Unmark(ctx, job.ID, at.token); err != nil && !errors.Is(err, types.ErrNotOwner) {
			return types.GraphStats{}, markerError(err)
		}
		return types.GraphStats{}, nil
	}
	// Take the mark over from the API that set it (or set one, for a job
	// delivered straight to the worker or redelivered after a failure), so
	// GET answers 204 while the graph is made and no other run makes it.
	token, err := r.Marker.Claim(ctx, job.ID, job.Token)
	if err != nil {
		if errors.Is(err, types.ErrInProgress) {
			return types.GraphStats{}, err
		}
		return types.GraphStats{}, markerError(err)
	}
	at.token = token
	// Another run may have stored the graph and cleared its mark between
	// the look above and the claim: look again, now that no other run can
	// start, so that a job delivered twice is made once.
	if exists, err = r.Storage.Exists(ctx, job.ID); err != nil || exists {
		if uerr := r.Marker.Unmark(ctx, job.ID, token); uerr != nil && !errors.Is(uerr, types.ErrNotOwner) && err == nil {
			return types.GraphStats{}, markerError(uerr)
		}
		if err != nil {
			return types.GraphStats{}, &Error{Reason: "storage failed while looking for the graph", Dependency: runtime.DependencyStorage, Err: err}
		}
		return types.GraphStats{}, nil
	}

	stopRefresh := r.keepMarked(ctx, job.ID, token)
	defer stopRefresh()

	gs, err := r.build(ctx, at)
	at.stats = gs
	if err != nil {
		return gs, err
	}
	stopRefresh()
	if err := r.Marker.Unmark(ctx, job.ID, token); err != nil {
		// The graph is stored and wins over any mark; the stale mark only
		// costs a lookup until it expires.
		runtime.LogEvent(ctx, r.logger(), slog.LevelWarn, runtime.EventDependencyFailure,
			fmt.Errorf("graph stored but its mark was not cleared: %w", err),
			slog.String(runtime.AttrDependency, runtime.DependencyMarker), slog.String("id", job.ID))
	}
	return gs, nil
}

// build streams digest -> grapher -> pipe -> storage: nothing is held whole
// in memory, and storage makes the graph visible only if the pipe ends
// cleanly.
func (r *Runner) build(ctx context.Context, at *attempt) (types.GraphStats, error) {
	job := at.job
	began := time.Now()
	digest, err := r.Digester.Digest(ctx, job.Start, job.Stop)
	if err != nil {
		return types.GraphStats{}, digestError(err)
	}
	defer digest.Close()
	opened := time.Now()
	at.phases.digest = opened.Sub(began)
	var in io.Reader = digest
	// The built-in digester's digest reaches the grapher as records, not
	// text, and GRAPHERD_MAX_FLOWS bounds it instead.
	if _, records := digest.(*flowlog.CompactedDigest); r.MaxDigestBytes > 0 && !records {
		in = &limitedReader{r: digest, left: r.MaxDigestBytes, limit: r.MaxDigestBytes}
	}

	pr, pw := io.Pipe()
	done := make(chan struct{})
	var gs types.GraphStats
	var graphErr error
	go func() {
		defer close(done)
		// Nothing above this goroutine can recover a panic in it, and a
		// module's bug must fail the job, not the process.
		defer func() {
			if p := recover(); p != nil {
				graphErr = &Error{Reason: reasonPanic, Dependency: runtime.DependencyGrapher, Err: fmt.Errorf("grapher panicked: %v", p)}
				pw.CloseWithError(graphErr)
			}
		}()
		// The flow table the views are made from is written in the same
		// pass, and stored before the graph (see flowtable.WithTable).
		g := flowtable.WithTable(r.Grapher, r.Storage, job.ID)
		gs, graphErr = g.Graph(ctx, pw, in)
		at.phases.graph = time.Since(opened)
		pw.CloseWithError(graphErr)
	}()
	storeErr := r.Storage.Store(ctx, job.ID, pr)
	at.phases.store = time.Since(opened)
	// Unblock the grapher if storage stopped reading early.
	pr.CloseWithError(errors.Join(storeErr, errStoreStopped))
	<-done

	switch {
	case errors.Is(graphErr, flowtable.ErrStoreFailed):
		return gs, &Error{Reason: "storage failed while storing the graph", Dependency: runtime.DependencyStorage, Err: graphErr}
	case graphErr != nil && !errors.Is(graphErr, errStoreStopped) && !errors.Is(graphErr, io.ErrClosedPipe):
		var classified *Error
		if errors.As(graphErr, &classified) {
			return gs, graphErr
		}
		// The grapher fails on what it reads: the digest stream.
		return gs, digestError(graphErr)
	case storeErr != nil:
		return gs, &Error{Reason: "storage failed while storing the graph", Dependency: runtime.DependencyStorage, Err: storeErr}
	}
	return gs, nil
}

var errStoreStopped = errors.New("storage stopped reading the graph")

// keepMarked refreshes the mark of id every RefreshInterval until the
// returned function is called; that function waits for the last refresh to
// end, so no refresh can land after the mark is cleared or failed.
func (r *Runner) keepMarked(ctx context.Context, id, token string) (stop func()) {
	if r.RefreshInterval <= 0 {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		ticker := time.NewTicker(r.RefreshInterval)
		defer ticker.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-ticker.C:
			}
			if err := r.Marker.Refresh(ctx, id, token); err != nil && ctx.Err() == nil {
				// A missed beat is not fatal: the next one may land. A mark
				// another run took over stays that run's.
				runtime.LogEvent(ctx, r.logger(), slog.LevelWarn, runtime.EventDependencyFailure,
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

func (r *Runner) logger() *slog.Logger {
	if r.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Logger
}

func (r *Runner) stats() runtime.Stats {
	if r.Stats == nil {
		return runtime.NopStats{}
	}
	return r.Stats
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
