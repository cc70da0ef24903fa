package queuer

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/worker"
)

// newPool starts a pool that runs each job with run, and stops it when the
// test ends.
func newPool(t *testing.T, run func(ctx context.Context, job types.Job), workers, capacity int) *Memory {
	t.Helper()
	m := NewMemory(workers, capacity)
	stopped := make(chan error, 1)
	go func() {
		stopped <- m.Run(context.Background(), func(ctx context.Context, job types.Job, _ worker.Delivery) worker.Result {
			run(ctx, job)
			return worker.Result{Outcome: worker.Done}
		})
	}()
	<-m.ready
	t.Cleanup(func() {
		require.NoError(t, m.Drain(context.Background()))
		require.NoError(t, <-stopped)
	})
	return m
}

func job(i int) types.Job {
	return types.Job{ID: fmt.Sprintf("job-%d", i)}
}

func TestMemoryRunsEveryJobOnce(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name              string
		workers, capacity int
		jobs              int
	}{
		{name: "one worker", workers: 1, capacity: 50, jobs: 50},
		{name: "many workers", workers: 8, capacity: 100, jobs: 100},
		{name: "zero workers means one", workers: 0, capacity: 10, jobs: 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			ran := map[string]int{}
			m := newPool(t, func(_ context.Context, j types.Job) {
				time.Sleep(time.Millisecond)
				mu.Lock()
				ran[j.ID]++
				mu.Unlock()
			}, tt.workers, tt.capacity)
			for i := range tt.jobs {
				require.NoError(t, m.Queue(context.Background(), job(i)))
			}
			// Drain lets every waiting job run before it returns.
			require.NoError(t, m.Drain(context.Background()))
			require.Len(t, ran, tt.jobs)
			for id, n := range ran {
				require.Equal(t, 1, n, id)
			}
		})
	}
}

func TestMemoryBoundsConcurrency(t *testing.T) {
	t.Parallel()
	const workers = 3
	var now, peak atomic.Int32
	m := newPool(t, func(_ context.Context, _ types.Job) {
		n := now.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(5 * time.Millisecond)
		now.Add(-1)
	}, workers, 30)
	for i := range 30 {
		require.NoError(t, m.Queue(context.Background(), job(i)))
	}
	require.NoError(t, m.Drain(context.Background()))
	require.Equal(t, int32(workers), peak.Load())
}

// blockingPool returns a pool whose jobs block until release is closed or
// their context ends, a channel that receives each job as it starts, and
// counts of jobs cancelled while running and released (handed over with a
// context already done, never started).
func blockingPool(t *testing.T, workers, capacity int) (m *Memory, started chan types.Job, release chan struct{}, cancelled, released *atomic.Int32) {
	started = make(chan types.Job, 100)
	release = make(chan struct{})
	cancelled, released = &atomic.Int32{}, &atomic.Int32{}
	m = newPool(t, func(ctx context.Context, j types.Job) {
		if ctx.Err() != nil {
			released.Add(1)
			return
		}
		started <- j
		select {
		case <-release:
		case <-ctx.Done():
			cancelled.Add(1)
		}
	}, workers, capacity)
	return m, started, release, cancelled, released
}

func TestMemoryQueueFull(t *testing.T) {
	t.Parallel()
	m, started, release, _, _ := blockingPool(t, 1, 2)
	require.NoError(t, m.Queue(context.Background(), job(0)))
	<-started // the worker is busy with job 0
	require.NoError(t, m.Queue(context.Background(), job(1)))
	require.NoError(t, m.Queue(context.Background(), job(2)))
	require.Equal(t, 1, m.Running())

	began := time.Now()
	err := m.Queue(context.Background(), job(3))
	require.ErrorIs(t, err, ErrQueueFull)
	require.ErrorIs(t, err, types.ErrQueueFull, "callers that know only the contract match it")
	require.Contains(t, err.Error(), "job-3")
	require.Less(t, time.Since(began), 100*time.Millisecond, "Queue never waits")

	close(release)
	require.NoError(t, m.Drain(context.Background()))
	require.Len(t, started, 2, "jobs 1 and 2 ran after job 0")
}

func TestMemoryZeroCapacity(t *testing.T) {
	t.Parallel()
	m, started, release, _, _ := blockingPool(t, 1, 0)
	// A job is taken only by an idle worker; the worker may not be waiting yet.
	require.Eventually(t, func() bool {
		return m.Queue(context.Background(), job(0)) == nil
	}, time.Second, time.Millisecond)
	<-started
	require.ErrorIs(t, m.Queue(context.Background(), job(1)), ErrQueueFull)
	close(release)
	require.NoError(t, m.Drain(context.Background()))
}

func TestMemoryClosed(t *testing.T) {
	t.Parallel()
	m := newPool(t, func(context.Context, types.Job) {}, 2, 2)
	require.NoError(t, m.Drain(context.Background()))
	require.ErrorIs(t, m.Queue(context.Background(), job(0)), ErrClosed)
	require.NoError(t, m.Drain(context.Background()), "Drain twice")
}

func TestMemoryQueueDoneContext(t *testing.T) {
	t.Parallel()
	ran := make(chan struct{}, 1)
	m := newPool(t, func(context.Context, types.Job) { ran <- struct{}{} }, 1, 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, m.Queue(ctx, job(0)), context.Canceled)
	require.NoError(t, m.Drain(context.Background()))
	require.Empty(t, ran)
}

func TestMemoryCloseDeadline(t *testing.T) {
	t.Parallel()
	m, started, _, cancelled, released := blockingPool(t, 2, 5)
	require.NoError(t, m.Queue(context.Background(), job(0)))
	require.NoError(t, m.Queue(context.Background(), job(1)))
	<-started
	<-started // both workers are busy
	for i := 2; i < 6; i++ {
		require.NoError(t, m.Queue(context.Background(), job(i)))
	}
	// Timed from before the deadline is set, which the drain waits for.
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := m.Drain(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Contains(t, err.Error(), "cancelled 2 running jobs, released 4 waiting")
	require.GreaterOrEqual(t, time.Since(began), 50*time.Millisecond, "Drain waited for the running jobs")
	require.EqualValues(t, 2, cancelled.Load(), "running jobs saw their context cancelled")
	require.Empty(t, started, "waiting jobs were released, not started")
	require.EqualValues(t, 4, released.Load(), "every waiting job went to the handler to be released")
	require.Zero(t, m.Running())
}

func TestMemoryCloseWaitsForRunningJobs(t *testing.T) {
	t.Parallel()
	var finished atomic.Int32
	m := newPool(t, func(ctx context.Context, _ types.Job) {
		select {
		case <-time.After(30 * time.Millisecond):
			finished.Add(1)
		case <-ctx.Done():
		}
	}, 2, 4)
	for i := range 4 {
		require.NoError(t, m.Queue(context.Background(), job(i)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, m.Drain(ctx))
	require.EqualValues(t, 4, finished.Load())
}

// TestMemoryQueueRacesClose queues from many goroutines while Drain runs:
// no send on a closed channel, and every accepted job runs exactly once.
func TestMemoryQueueRacesClose(t *testing.T) {
	t.Parallel()
	var ran, accepted atomic.Int32
	m := newPool(t, func(context.Context, types.Job) { ran.Add(1) }, 4, 1000)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				err := m.Queue(context.Background(), job(g*1000+i))
				if err == nil {
					accepted.Add(1)
					continue
				}
				require.ErrorIs(t, err, ErrClosed)
			}
		})
	}
	time.Sleep(time.Millisecond)
	require.NoError(t, m.Drain(context.Background()))
	wg.Wait()
	require.Equal(t, accepted.Load(), ran.Load())
}

// TestMemoryDoSharesTheBound shows a job run at once through Do taking a
// worker like a queued one: with every worker busy Do answers Retry at once
// instead of running a job beyond the bound.
func TestMemoryDoSharesTheBound(t *testing.T) {
	t.Parallel()
	m, started, release, _, _ := blockingPool(t, 1, 2)
	require.NoError(t, m.Queue(context.Background(), job(0)))
	<-started

	res := m.Do(context.Background(), job(1), worker.Delivery{})
	require.Equal(t, worker.Retry, res.Outcome)
	require.ErrorIs(t, res.Err, ErrQueueFull)
	require.Equal(t, FullRetryAfter, res.RetryAfter)
	require.Empty(t, started, "the job did not run")

	close(release)
	require.Eventually(t, func() bool { return m.Running() == 0 }, 5*time.Second, time.Millisecond)
	require.Equal(t, worker.Done, m.Do(context.Background(), job(2), worker.Delivery{}).Outcome)
	require.Equal(t, job(2), <-started)
}

// TestMemoryDrainCancelsDo shows a drain that runs out of time cancelling a
// job run through Do as well as the pool's own.
func TestMemoryDrainCancelsDo(t *testing.T) {
	t.Parallel()
	m, started, _, cancelled, _ := blockingPool(t, 2, 0)
	done := make(chan worker.Result, 1)
	go func() { done <- m.Do(context.Background(), job(0), worker.Delivery{}) }()
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, m.Drain(ctx), context.DeadlineExceeded)
	<-done
	require.EqualValues(t, 1, cancelled.Load())
	res := m.Do(context.Background(), job(1), worker.Delivery{})
	require.ErrorIs(t, res.Err, ErrClosed)
}
