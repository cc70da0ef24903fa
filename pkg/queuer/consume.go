package queuer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/worker"
)

// The queue engines (jetstream.go, sqs.go) share one consumer loop: it takes
// up to a fixed number of deliveries at once, runs each through the
// worker.Handler, keeps it alive while the handler runs, settles it by the
// Result, and drains on shutdown. Each engine supplies a source and its
// messages, which speak its own words.

const (
	// defaultRetryDelay is the wait before the second delivery of a job
	// whose first failed with a retryable error; it doubles with each
	// further delivery.
	defaultRetryDelay = 10 * time.Second
	// defaultMaxRetryDelay caps the doubling of the retry wait.
	defaultMaxRetryDelay = 5 * time.Minute
	// defaultBusyDelay is the wait before a delivery that found the window
	// being made by another run comes again, when the handler names none.
	defaultBusyDelay = 30 * time.Second
	// settleTimeout bounds one call that settles a delivery, made after the
	// handler returned, even during a drain whose deadline has passed.
	settleTimeout = 5 * time.Second
	// minReceiveBackoff and maxReceiveBackoff bound the wait between two
	// failed receives, while the engine is unreachable.
	minReceiveBackoff = 100 * time.Millisecond
	maxReceiveBackoff = 5 * time.Second
)

// message is one delivery of a job, as the consumer loop sees it.
type message interface {
	// body is the job as JSON.
	body() []byte
	// attempt counts deliveries of this message, starting at 1.
	attempt() int
	// ref names the delivery in logs.
	ref() string
	// keepAlive tells the engine the job still runs, so it is not
	// redelivered to another worker.
	keepAlive(ctx context.Context) error
	// remove settles the delivery for good: the job is done or failed
	// permanently.
	remove(ctx context.Context) error
	// release hands the job back for redelivery after delay (zero: at once).
	release(ctx context.Context, delay time.Duration) error
	// giveUp settles a retryable failure of the last delivery: the engine
	// moves the job to its dead-letter destination.
	giveUp(ctx context.Context) error
	// reject settles a delivery whose body is not a job: no delivery can
	// ever run it.
	reject(ctx context.Context, reason error) error
}

// source receives deliveries from one engine.
type source interface {
	// receive waits, until ctx ends or the engine's poll time passes, for
	// at most n deliveries and hands each to take as it arrives.
	receive(ctx context.Context, n int, take func(message)) error
}

// loopConfig is what the consumer loop needs from an engine's options.
type loopConfig struct {
	engine        string
	workers       int
	maxAttempts   int
	keepAlive     time.Duration
	retryDelay    time.Duration
	maxRetryDelay time.Duration
	log           *slog.Logger
	decode        func(body []byte) (types.Job, error) // nil: decodeJSON
}

// loop runs deliveries from a source through a worker.Handler. It
// implements the Run and Drain halves of worker.Consumer.
//
// A drain stops the loop from starting another receive but does not cut
// off the one under way: a receive abandoned mid-poll may still be handed
// messages by the engine, which would then stay hidden from every worker
// until their ack wait or visibility timeout, the very delay a drain is to
// avoid. Whatever that last receive brings is released at once.
type loop struct {
	cfg loopConfig
	src source

	draining chan struct{} // closed by the first drain

	mu       sync.Mutex
	started  bool
	drained  bool
	running  int           // handlers running
	idle     chan struct{} // closed once drained and no handler runs
	idleOnce sync.Once
	cancel   context.CancelFunc // cancels the handlers' contexts
	inFlight sync.WaitGroup     // run's handlers; only run waits on it
}

func newLoop(cfg loopConfig, src source) *loop {
	if cfg.workers < 1 {
		cfg.workers = 1
	}
	if cfg.retryDelay <= 0 {
		cfg.retryDelay = defaultRetryDelay
	}
	if cfg.maxRetryDelay <= 0 {
		cfg.maxRetryDelay = defaultMaxRetryDelay
	}
	if cfg.log == nil {
		cfg.log = slog.New(slog.DiscardHandler)
	}
	if cfg.decode == nil {
		cfg.decode = decodeJSON
	}
	return &loop{cfg: cfg, src: src, draining: make(chan struct{}), idle: make(chan struct{})}
}

// run implements worker.Consumer.Run.
func (l *loop) run(ctx context.Context, h worker.Handler) error {
	handlerCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	l.mu.Lock()
	if l.started {
		l.mu.Unlock()
		return errors.New(l.cfg.engine + " consumer: Run called twice")
	}
	l.started = true
	l.cancel = cancel
	l.mu.Unlock()

	slots := make(chan struct{}, l.cfg.workers)
	backoff := minReceiveBackoff
	for ctx.Err() == nil && !l.isDraining() {
		free := l.reserve(ctx, slots)
		if free == 0 {
			break
		}
		taken := 0
		err := l.src.receive(ctx, free, func(m message) {
			if taken == free || !l.begin() {
				// The engine sent more than asked, or it arrived once the
				// drain began: hand it back for another worker.
				sctx, cancel := settleContext(ctx)
				defer cancel()
				l.settle(m, "release", m.release(sctx, 0))
				return
			}
			taken++
			go l.handle(handlerCtx, h, m, slots)
		})
		for range free - taken {
			<-slots
		}
		if err != nil && ctx.Err() == nil && !l.isDraining() {
			l.cfg.log.Warn("queue_receive_failed", "engine", l.cfg.engine, "error", err.Error(), "retry_in", backoff.String())
			if !l.pause(ctx, backoff) {
				break
			}
			backoff = min(2*backoff, maxReceiveBackoff)
			continue
		}
		backoff = minReceiveBackoff
	}
	l.inFlight.Wait()
	if l.isDraining() {
		return nil
	}
	return fmt.Errorf("%s consumer: %w", l.cfg.engine, ctx.Err())
}

// begin counts a handler about to start; false once a drain has begun.
// Only run's goroutine calls it, so inFlight is never added to while run
// waits on it.
func (l *loop) begin() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.drained {
		return false
	}
	l.running++
	l.inFlight.Add(1)
	return true
}

// end counts a handler that has returned and settled its delivery.
func (l *loop) end() {
	l.mu.Lock()
	l.running--
	if l.drained && l.running == 0 {
		l.idleOnce.Do(func() { close(l.idle) })
	}
	l.mu.Unlock()
	l.inFlight.Done()
}

func (l *loop) isDraining() bool {
	select {
	case <-l.draining:
		return true
	default:
		return false
	}
}

// pause waits for d, unless ctx ends or a drain begins first; it reports
// whether d passed.
func (l *loop) pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
	case <-l.draining:
	}
	return false
}

// reserve waits for at least one free slot and takes every other one free,
// returning how many it took; zero when ctx ended or a drain began first.
func (l *loop) reserve(ctx context.Context, slots chan struct{}) int {
	select {
	case slots <- struct{}{}:
	case <-ctx.Done():
		return 0
	case <-l.draining:
		return 0
	}
	free := 1
	for free < cap(slots) {
		select {
		case slots <- struct{}{}:
			free++
		default:
			return free
		}
	}
	return free
}

// drain implements worker.Consumer.Drain: it returns once no handler runs.
func (l *loop) drain(ctx context.Context) error {
	l.mu.Lock()
	if !l.drained {
		l.drained = true
		close(l.draining)
		if l.running == 0 {
			l.idleOnce.Do(func() { close(l.idle) })
		}
	}
	cancel := l.cancel
	l.mu.Unlock()
	select {
	case <-l.idle:
		return nil
	case <-ctx.Done():
	}
	// Past the deadline: cancel the running handlers; each clears its mark
	// and returns Retry, and is released at once.
	if cancel != nil {
		cancel()
	}
	<-l.idle
	return fmt.Errorf("%s consumer drain: %w", l.cfg.engine, ctx.Err())
}

// decodeJSON reads a message's body as a job's JSON, unchecked.
func decodeJSON(body []byte) (types.Job, error) {
	var job types.Job
	err := json.Unmarshal(body, &job)
	return job, err
}

// handle runs one delivery through h, keeping it alive meanwhile, and
// settles it by the result.
func (l *loop) handle(ctx context.Context, h worker.Handler, m message, slots chan struct{}) {
	defer func() {
		<-slots
		l.end()
	}()
	job, err := l.cfg.decode(m.body())
	if err != nil {
		sctx, cancel := settleContext(ctx)
		defer cancel()
		reason := fmt.Errorf("%w: message body is not a job: %w", types.ErrInvalidInput, err)
		l.cfg.log.Error("job_rejected", "engine", l.cfg.engine, "message", m.ref(), "error", reason.Error(), "body", snippet(m.body()))
		l.settle(m, "reject", m.reject(sctx, reason))
		return
	}
	d := worker.Delivery{Attempt: m.attempt(), MaxAttempts: l.cfg.maxAttempts}

	keepCtx, stopKeeping := context.WithCancel(context.WithoutCancel(ctx))
	kept := make(chan struct{})
	go func() {
		defer close(kept)
		l.keepAlive(keepCtx, m)
	}()
	r := l.call(ctx, h, job, d)
	stopKeeping()
	<-kept

	sctx, cancel := settleContext(ctx)
	defer cancel()
	switch r.Outcome {
	case worker.Done, worker.Permanent:
		l.settle(m, "remove", m.remove(sctx))
	case worker.Busy:
		delay := r.RetryAfter
		if delay <= 0 {
			delay = defaultBusyDelay
		}
		if ctx.Err() != nil {
			delay = 0
		}
		l.settle(m, "release", m.release(sctx, delay))
	default: // worker.Retry, and any outcome this loop does not know
		switch {
		case ctx.Err() != nil:
			// Cancelled by a drain or a stop: another worker may take it now.
			l.settle(m, "release", m.release(sctx, 0))
		case d.Last():
			l.cfg.log.Warn("job_dead_lettered", "engine", l.cfg.engine, "message", m.ref(), "id", job.ID, "attempt", d.Attempt)
			l.settle(m, "give_up", m.giveUp(sctx))
		default:
			delay := r.RetryAfter
			if delay <= 0 {
				delay = l.retryDelay(d.Attempt)
			}
			l.settle(m, "release", m.release(sctx, delay))
		}
	}
}

// call runs h, turning a panic into a retryable failure, so that one bad
// run neither kills the process nor loses its delivery.
func (l *loop) call(ctx context.Context, h worker.Handler, job types.Job, d worker.Delivery) (r worker.Result) {
	defer func() {
		if p := recover(); p != nil {
			err := fmt.Errorf("job handler panicked: %v", p)
			l.cfg.log.Error("job_panicked", "engine", l.cfg.engine, "id", job.ID, "error", err.Error())
			r = worker.Result{Outcome: worker.Retry, Err: err}
		}
	}()
	return h(ctx, job, d)
}

// keepAlive tells the engine every keepAlive interval that m still runs,
// until ctx ends.
func (l *loop) keepAlive(ctx context.Context, m message) {
	t := time.NewTicker(l.cfg.keepAlive)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			kctx, cancel := context.WithTimeout(ctx, settleTimeout)
			err := m.keepAlive(kctx)
			cancel()
			if err != nil && ctx.Err() == nil {
				l.cfg.log.Warn("job_keepalive_failed", "engine", l.cfg.engine, "message", m.ref(), "error", err.Error())
			}
		}
	}
}

// retryDelay is the wait after the given failed attempt: retryDelay,
// doubled for each attempt after the first, capped at maxRetryDelay.
func (l *loop) retryDelay(attempt int) time.Duration {
	d := l.cfg.retryDelay
	for i := 1; i < attempt && d < l.cfg.maxRetryDelay; i++ {
		d *= 2
	}
	return min(d, l.cfg.maxRetryDelay)
}

// settle logs a failure to settle a delivery; the engine then redelivers it
// after its ack wait or visibility timeout, which the runner's idempotence
// makes harmless.
func (l *loop) settle(m message, action string, err error) {
	if err != nil {
		l.cfg.log.Warn("job_settle_failed", "engine", l.cfg.engine, "message", m.ref(), "action", action, "error", err.Error())
	}
}

// settleContext bounds a settling call by settleTimeout, and keeps it
// going when ctx, the handler's, was cancelled: a cancelled job must still
// be released.
func settleContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
}

// encodeJob is the message body of a job: types.Job as JSON, every field
// kept, times in UTC, RFC 3339, as the HTTP queuer sends it.
func encodeJob(job types.Job) ([]byte, error) {
	job.Start, job.Stop = job.Start.UTC(), job.Stop.UTC()
	b, err := json.Marshal(job)
	if err != nil {
		return nil, fmt.Errorf("queue job %s: encode: %w", job.ID, err)
	}
	return b, nil
}

// logSnippetBytes bounds how much of an unreadable body reaches a log line.
const logSnippetBytes = 512

// snippet cuts b to logSnippetBytes for a log line.
func snippet(b []byte) string {
	if len(b) > logSnippetBytes {
		b = b[:logSnippetBytes]
	}
	return string(b)
}
