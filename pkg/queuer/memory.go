package queuer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/worker"
)

var (
	// ErrQueueFull is returned (wrapped) by Memory.Queue when capacity jobs
	// already wait for a worker, and is the error of Memory.Do's Retry when
	// every worker is busy. The caller should answer with a retryable error
	// rather than wait: a full queue means workers are behind. It is
	// types.ErrQueueFull, so callers that know only the contract match it too.
	ErrQueueFull = types.ErrQueueFull
	// ErrClosed is returned (wrapped) by Memory.Queue after Drain was called.
	ErrClosed = errors.New("job queue closed")
)

// FullRetryAfter is the Result.RetryAfter of a job Memory.Do could not run
// because every worker was busy.
const FullRetryAfter = 5 * time.Second

// Memory is a types.Queuer and a worker.Consumer that runs jobs in this
// process on a bounded pool of workers, with a bounded number of jobs
// waiting. Queue never blocks, so a request handler that queues stays fast
// however slow the jobs are; Do runs a job at once in its caller's goroutine
// when a worker is free, so synchronous jobs share the pool's bound. Jobs do
// not survive the process: one lost to a crash leaves its progress mark to
// expire, after which the window can be made again.
type Memory struct {
	jobs    chan types.Job
	slots   chan struct{} // one token per worker; a running job holds one
	workers int
	ctx     context.Context // passed to jobs; cancelled when a drain gives up waiting
	cancel  context.CancelFunc

	mu      sync.RWMutex // guards closed and handler against sends on a closed channel
	closed  bool
	handler worker.Handler
	ready   chan struct{} // closed once Run has a handler
	done    chan struct{} // closed when Run's workers have returned
	calls   sync.WaitGroup
	running atomic.Int64
	dropped atomic.Int64
}

var (
	_ types.Queuer    = (*Memory)(nil)
	_ worker.Consumer = (*Memory)(nil)
)

// NewMemory returns a pool of workers (at least 1) that accepts up to
// capacity jobs waiting for a worker (0: a job is accepted only when a
// worker is idle). No job runs before Run is called.
func NewMemory(workers, capacity int) *Memory {
	workers = max(workers, 1)
	ctx, cancel := context.WithCancel(context.Background())
	return &Memory{
		jobs:    make(chan types.Job, max(capacity, 0)),
		slots:   make(chan struct{}, workers),
		workers: workers,
		ctx:     ctx,
		cancel:  cancel,
		ready:   make(chan struct{}),
		done:    make(chan struct{}),
	}
}

// Run starts the workers, which call h for each queued job, and blocks until
// a Drain has finished with them or ctx is done (which cancels the running
// jobs and hands the waiting ones to h with a cancelled context, so that h
// releases them). A job the pool gives up on during a drain is handed to h
// the same way, never silently dropped. Run may be called once.
func (m *Memory) Run(ctx context.Context, h worker.Handler) error {
	m.mu.Lock()
	if m.handler != nil {
		m.mu.Unlock()
		return errors.New("job pool: Run called twice")
	}
	m.handler = h
	close(m.ready)
	m.mu.Unlock()
	stop := context.AfterFunc(ctx, func() {
		m.close()
		m.cancel()
	})
	defer stop()

	var wg sync.WaitGroup
	for range m.workers {
		wg.Go(func() { m.work(h) })
	}
	wg.Wait()
	close(m.done)
	return ctx.Err()
}

// work runs jobs until the channel is closed and drained. Once the pool's
// context is cancelled, waiting jobs go to h with that dead context, which
// releases them rather than making their graphs.
func (m *Memory) work(h worker.Handler) {
	for job := range m.jobs {
		if m.ctx.Err() != nil {
			m.dropped.Add(1)
			_ = h(m.ctx, job, worker.Delivery{})
			continue
		}
		m.slots <- struct{}{}
		m.running.Add(1)
		_ = h(m.ctx, job, worker.Delivery{})
		m.running.Add(-1)
		<-m.slots
	}
}

// Queue hands the job to the pool and returns at once. It returns an error
// wrapping ErrQueueFull when capacity jobs are already waiting, ErrClosed after
// Drain, and ctx's error when ctx is already done.
func (m *Memory) Queue(ctx context.Context, job types.Job) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("queue job %s: %w", job.ID, err)
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return fmt.Errorf("queue job %s: %w", job.ID, ErrClosed)
	}
	select {
	case m.jobs <- job:
		return nil
	default:
		return fmt.Errorf("queue job %s: %d jobs waiting: %w", job.ID, cap(m.jobs), ErrQueueFull)
	}
}

// Do runs job now, in the caller's goroutine, on a free worker of the pool,
// through the handler Run was given, and returns its result. When every
// worker is busy it returns at once a Retry wrapping ErrQueueFull with
// RetryAfter FullRetryAfter; after Drain, a Retry wrapping ErrClosed. The
// job's context ends when ctx does or when a drain gives up waiting.
func (m *Memory) Do(ctx context.Context, job types.Job, d worker.Delivery) worker.Result {
	select {
	case <-m.ready:
	case <-ctx.Done():
		return worker.Result{Outcome: worker.Retry, Err: fmt.Errorf("run job %s: %w", job.ID, ctx.Err())}
	}
	select {
	case m.slots <- struct{}{}:
	default:
		return worker.Result{Outcome: worker.Retry, RetryAfter: FullRetryAfter,
			Err: fmt.Errorf("run job %s: all %d workers are busy: %w", job.ID, m.workers, ErrQueueFull)}
	}
	defer func() { <-m.slots }()
	m.mu.RLock()
	if m.closed {
		m.mu.RUnlock()
		return worker.Result{Outcome: worker.Retry, Err: fmt.Errorf("run job %s: %w", job.ID, ErrClosed)}
	}
	m.calls.Add(1)
	h := m.handler
	m.mu.RUnlock()
	defer m.calls.Done()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(m.ctx, cancel)
	defer stop()
	m.running.Add(1)
	defer m.running.Add(-1)
	return h(ctx, job, d)
}

// Running returns the number of jobs being run.
func (m *Memory) Running() int { return int(m.running.Load()) }

// close stops accepting jobs.
func (m *Memory) close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.closed {
		m.closed = true
		close(m.jobs)
	}
}

// Drain stops accepting jobs and waits for the waiting and running ones to
// finish. If ctx ends first, it cancels the context passed to running jobs,
// hands the jobs still waiting to the handler with that cancelled context
// (which clears their marks), waits for all of them to return and returns an
// error wrapping ctx's error that says how many were cancelled and
// released. Calling Drain again waits again and returns nil once all workers
// are gone. Drain before Run returns at once; a later Run then releases the
// jobs already queued through its handler and returns.
func (m *Memory) Drain(ctx context.Context) error {
	m.close()
	m.mu.RLock()
	started := m.handler != nil
	m.mu.RUnlock()
	if !started {
		m.cancel()
		return nil
	}
	all := make(chan struct{})
	go func() {
		<-m.done
		m.calls.Wait()
		close(all)
	}()
	select {
	case <-all:
		m.cancel()
		return nil
	case <-ctx.Done():
	}
	running := m.Running()
	m.cancel()
	<-all
	return fmt.Errorf("drain job pool: cancelled %d running jobs, released %d waiting: %w",
		running, m.dropped.Load(), ctx.Err())
}
