package queuer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
)

var (
	// ErrQueueFull is returned (wrapped) by Memory.Queue when capacity jobs
	// already wait for a worker. The caller should answer with a retryable
	// error rather than wait: a full queue means workers are behind. It is
	// types.ErrQueueFull, so callers that know only the contract match it too.
	ErrQueueFull = types.ErrQueueFull
	// ErrClosed is returned (wrapped) by Memory.Queue after Close was called.
	ErrClosed = errors.New("job queue closed")
)

// Memory is a types.Queuer that runs jobs in this process on a bounded pool
// of workers, with a bounded number of jobs waiting. Queue never blocks, so a
// request handler that queues stays fast however slow the jobs are. Jobs do
// not survive the process: one lost to a crash leaves its progress mark to
// expire, after which the window can be made again.
type Memory struct {
	run     func(ctx context.Context, job types.Job)
	jobs    chan types.Job
	ctx     context.Context // passed to jobs; cancelled when Close gives up waiting
	cancel  context.CancelFunc
	done    chan struct{} // closed when every worker has returned
	mu      sync.RWMutex  // guards closed against sends on a closed channel
	closed  bool
	running atomic.Int64
	dropped atomic.Int64
}

var _ types.Queuer = (*Memory)(nil)

// NewMemory starts workers goroutines (at least 1) that call run for each
// queued job, and accepts up to capacity jobs waiting for a worker (0: a job is
// accepted only when a worker is idle). run receives a context that is
// cancelled when Close stops waiting; it should return soon after, and it
// should recover its own panics, as in any goroutine. Call Close to stop the
// workers.
func NewMemory(run func(ctx context.Context, job types.Job), workers, capacity int) *Memory {
	workers = max(workers, 1)
	capacity = max(capacity, 0)
	ctx, cancel := context.WithCancel(context.Background())
	m := &Memory{
		run:    run,
		jobs:   make(chan types.Job, capacity),
		ctx:    ctx,
		cancel: cancel,
		done:   make(chan struct{}),
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(m.work)
	}
	go func() {
		wg.Wait()
		close(m.done)
	}()
	return m
}

// work runs jobs until the channel is closed and drained. Once the pool's
// context is cancelled, jobs still waiting are dropped rather than started
// with a dead context.
func (m *Memory) work() {
	for job := range m.jobs {
		if m.ctx.Err() != nil {
			m.dropped.Add(1)
			continue
		}
		m.running.Add(1)
		m.run(m.ctx, job)
		m.running.Add(-1)
	}
}

// Queue hands the job to the pool and returns at once. It returns an error
// wrapping ErrQueueFull when capacity jobs are already waiting, ErrClosed after
// Close, and ctx's error when ctx is already done.
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

// Pending returns the number of jobs waiting for a worker.
func (m *Memory) Pending() int { return len(m.jobs) }

// Running returns the number of jobs being run.
func (m *Memory) Running() int { return int(m.running.Load()) }

// Close stops accepting jobs and waits for the waiting and running jobs to
// finish. If ctx ends first, it cancels the context passed to running jobs,
// drops the jobs still waiting, waits for the running ones to return and
// returns an error wrapping ctx's error that says how many were dropped.
// Calling Close again waits again and returns nil once all workers are gone.
func (m *Memory) Close(ctx context.Context) error {
	m.mu.Lock()
	if !m.closed {
		m.closed = true
		close(m.jobs)
	}
	m.mu.Unlock()

	select {
	case <-m.done:
		m.cancel()
		return nil
	case <-ctx.Done():
	}
	running := m.Running()
	m.cancel()
	<-m.done
	return fmt.Errorf("close job queue: cancelled %d running jobs, dropped %d waiting: %w",
		running, m.dropped.Load(), ctx.Err())
}
