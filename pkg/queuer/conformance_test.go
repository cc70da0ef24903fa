package queuer

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/worker"
)

// The queue engines pass one suite of delivery tests: the promises of
// docs/reliability.md ("Delivery on a queue engine") that both keep. Each
// engine's test file runs it through a harness on a real engine, and adds
// the tests of what only that engine does.

// engine is a queue engine's producer and consumer in one value, as the
// service uses it.
type engine interface {
	types.Queuer
	worker.Consumer
}

// engineHarness opens fresh queues on one running engine.
type engineHarness struct {
	// window is the ack wait or visibility timeout of the queues the tests
	// open by default: a delivery silent that long is redelivered.
	window time.Duration
	// retryDelay is the consumers' first retry delay; it doubles.
	retryDelay time.Duration
	// maxDeliver is the queues' limit of deliveries.
	maxDeliver int
	// open makes a fresh queue whose deliveries are limited to maxDeliver,
	// with the given window and a dead-letter destination.
	open func(t *testing.T, window time.Duration) engineQueue
}

// engineQueue is one fresh queue of an engine.
type engineQueue struct {
	// connect builds another producer and consumer on the queue.
	connect func(t *testing.T) engine
	// pending is how many jobs the queue holds, delivered or not.
	pending func(t *testing.T) int
	// dead is how many jobs its dead-letter destination holds.
	dead func(t *testing.T) int
	// sendRaw puts a message body on the queue as another producer would.
	sendRaw func(t *testing.T, body string)
}

// runConsumerSuite runs the shared delivery tests against h.
func runConsumerSuite(t *testing.T, h engineHarness) {
	t.Run("settled once", func(t *testing.T) {
		t.Parallel()
		for _, outcome := range []worker.Outcome{worker.Done, worker.Permanent} {
			t.Run(outcome.String(), func(t *testing.T) {
				t.Parallel()
				q := h.open(t, h.window)
				e := q.connect(t)
				require.NoError(t, e.Queue(context.Background(), testJob()))
				require.Equal(t, 1, q.pending(t))

				rec := newRecorder(answer(outcome))
				consume(t, e, rec.handle)
				calls := rec.wait(t, 1, 10*time.Second)
				require.Equal(t, testJob().ID, calls[0].job.ID)
				require.True(t, testJob().Start.Equal(calls[0].job.Start))
				require.True(t, testJob().Stop.Equal(calls[0].job.Stop))
				require.Equal(t, worker.Delivery{Attempt: 1, MaxAttempts: h.maxDeliver}, calls[0].d)
				eventually(t, 5*time.Second, "the job leaves the queue", func() bool { return q.pending(t) == 0 })
				// Windows later it has not come again.
				time.Sleep(2 * h.window)
				require.Len(t, rec.seen(), 1)
				require.Equal(t, 0, q.dead(t))
			})
		}
	})

	t.Run("retried with backoff, then dead-lettered", func(t *testing.T) {
		t.Parallel()
		q := h.open(t, h.window)
		e := q.connect(t)
		rec := newRecorder(answer(worker.Retry))
		consume(t, e, rec.handle)
		require.NoError(t, e.Queue(context.Background(), testJob()))

		eventually(t, 30*time.Second, "the last delivery", func() bool {
			calls := rec.seen()
			return len(calls) > 0 && calls[len(calls)-1].d.Last()
		})
		// local-aws-sqs 2.0.2 counts a ChangeMessageVisibility as a receive
		// (AWS and JetStream do not), so the count may rise by more than one
		// per retry; what must hold is that it rises, the waits follow the
		// backoff, and the last delivery knows it is the last.
		calls := rec.seen()
		require.GreaterOrEqual(t, len(calls), 2)
		require.Equal(t, worker.Delivery{Attempt: 1, MaxAttempts: h.maxDeliver}, calls[0].d)
		for i := 1; i < len(calls); i++ {
			require.Greater(t, calls[i].d.Attempt, calls[i-1].d.Attempt)
			require.GreaterOrEqual(t, calls[i].at.Sub(calls[i-1].at), h.retryDelay<<(i-1))
		}
		eventually(t, 20*time.Second, "the job reaches the dead-letter destination", func() bool { return q.dead(t) == 1 })
		eventually(t, 5*time.Second, "the job leaves the queue", func() bool { return q.pending(t) == 0 })
		time.Sleep(h.window)
		require.Len(t, rec.seen(), len(calls), "a dead-lettered job is not delivered again")
	})

	t.Run("busy comes back after RetryAfter", func(t *testing.T) {
		t.Parallel()
		q := h.open(t, 30*time.Second)
		e := q.connect(t)
		wait := max(h.retryDelay, time.Second)
		rec := newRecorder(func(_ context.Context, c call) worker.Result {
			if c.d.Attempt == 1 {
				return worker.Result{Outcome: worker.Busy, RetryAfter: wait}
			}
			return worker.Result{Outcome: worker.Done}
		})
		consume(t, e, rec.handle)
		require.NoError(t, e.Queue(context.Background(), testJob()))
		calls := rec.wait(t, 2, 10*time.Second)
		gap := calls[1].at.Sub(calls[0].at)
		require.GreaterOrEqual(t, gap, wait)
		require.Less(t, gap, 30*time.Second, "Busy sets its own wait, not the window")
		eventually(t, 5*time.Second, "the job leaves the queue", func() bool { return q.pending(t) == 0 })
	})

	t.Run("a long job is kept alive", func(t *testing.T) {
		t.Parallel()
		q := h.open(t, h.window)
		e := q.connect(t)
		rec := newRecorder(func(ctx context.Context, _ call) worker.Result {
			sleep(ctx, 3*h.window)
			return worker.Result{Outcome: worker.Done}
		})
		consume(t, e, rec.handle)
		require.NoError(t, e.Queue(context.Background(), testJob()))
		rec.wait(t, 1, 10*time.Second)
		eventually(t, 20*time.Second, "the job leaves the queue", func() bool { return q.pending(t) == 0 })
		require.Len(t, rec.seen(), 1, "a job kept alive is not redelivered under its worker")
	})

	t.Run("drain lets running jobs finish", func(t *testing.T) {
		t.Parallel()
		q := h.open(t, h.window)
		e := q.connect(t)
		rec := newRecorder(func(ctx context.Context, _ call) worker.Result {
			sleep(ctx, 300*time.Millisecond)
			return worker.Result{Outcome: worker.Done}
		})
		done := make(chan error, 1)
		go func() { done <- e.Run(context.Background(), rec.handle) }()
		require.NoError(t, e.Queue(context.Background(), testJob()))
		rec.wait(t, 1, 10*time.Second)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		require.NoError(t, e.Drain(ctx))
		require.NoError(t, <-done)
		require.Equal(t, 0, q.pending(t))
	})

	t.Run("drain releases a job cut off at once", func(t *testing.T) {
		t.Parallel()
		const window = 30 * time.Second // redelivery must not wait for it
		q := h.open(t, window)
		first := q.connect(t)
		blocked := newRecorder(func(ctx context.Context, _ call) worker.Result {
			<-ctx.Done()
			return worker.Result{Outcome: worker.Retry, Err: ctx.Err()}
		})
		done := make(chan error, 1)
		go func() { done <- first.Run(context.Background(), blocked.handle) }()
		require.NoError(t, first.Queue(context.Background(), testJob()))
		blocked.wait(t, 1, 10*time.Second)

		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		began := time.Now()
		require.ErrorIs(t, first.Drain(ctx), context.DeadlineExceeded)
		require.Less(t, time.Since(began), 2*time.Second, "Drain is bounded by its deadline, not by the job")
		require.NoError(t, <-done)

		second := q.connect(t)
		rec := newRecorder(answer(worker.Done))
		consume(t, second, rec.handle)
		calls := rec.wait(t, 1, 10*time.Second)
		// At least the second delivery: an aborted long poll may count one more.
		require.GreaterOrEqual(t, calls[0].d.Attempt, 2)
		require.Less(t, calls[0].at.Sub(blocked.seen()[0].at), window)
	})

	t.Run("drain before run", func(t *testing.T) {
		t.Parallel()
		e := h.open(t, h.window).connect(t)
		require.NoError(t, e.Drain(context.Background()))
		require.NoError(t, e.Run(context.Background(), handlerOf(worker.Done)))
	})

	t.Run("a panicking handler is retried, the process unharmed", func(t *testing.T) {
		t.Parallel()
		q := h.open(t, h.window)
		e := q.connect(t)
		rec := newRecorder(func(_ context.Context, c call) worker.Result {
			if c.d.Attempt == 1 {
				panic("module bug")
			}
			return worker.Result{Outcome: worker.Done}
		})
		consume(t, e, rec.handle)
		require.NoError(t, e.Queue(context.Background(), testJob()))
		calls := rec.wait(t, 2, 20*time.Second)
		require.Greater(t, calls[1].d.Attempt, 1)
		eventually(t, 5*time.Second, "the job leaves the queue", func() bool { return q.pending(t) == 0 })
	})

	t.Run("a body that is not a job never reaches the handler", func(t *testing.T) {
		t.Parallel()
		q := h.open(t, h.window)
		e := q.connect(t)
		rec := newRecorder(answer(worker.Done))
		consume(t, e, rec.handle)
		q.sendRaw(t, "not json")
		eventually(t, 10*time.Second, "the message leaves the queue", func() bool { return q.pending(t) == 0 })
		require.Empty(t, rec.seen())
	})
}
