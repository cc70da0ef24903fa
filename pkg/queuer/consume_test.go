package queuer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/worker"
)

// Helpers shared by the queue engines' tests.

// testWriter sends log lines to the test's log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

// call is one handler invocation a test saw.
type call struct {
	job types.Job
	d   worker.Delivery
	at  time.Time
}

// recorder is a Handler that records calls and answers with answer.
type recorder struct {
	mu     sync.Mutex
	calls  []call
	notify chan struct{}
	answer func(ctx context.Context, c call) worker.Result
}

func newRecorder(answer func(ctx context.Context, c call) worker.Result) *recorder {
	return &recorder{notify: make(chan struct{}, 1000), answer: answer}
}

func (r *recorder) handle(ctx context.Context, job types.Job, d worker.Delivery) worker.Result {
	c := call{job: job, d: d, at: time.Now()}
	r.mu.Lock()
	r.calls = append(r.calls, c)
	r.mu.Unlock()
	r.notify <- struct{}{}
	return r.answer(ctx, c)
}

func (r *recorder) seen() []call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]call(nil), r.calls...)
}

// wait waits for the nth call (counting from 1) within timeout.
func (r *recorder) wait(t testing.TB, n int, timeout time.Duration) []call {
	t.Helper()
	deadline := time.After(timeout)
	for len(r.seen()) < n {
		select {
		case <-r.notify:
		case <-deadline:
			t.Fatalf("handler called %d times, want %d within %s: %+v", len(r.seen()), n, timeout, r.seen())
		}
	}
	return r.seen()
}

func answer(o worker.Outcome) func(context.Context, call) worker.Result {
	return func(context.Context, call) worker.Result { return worker.Result{Outcome: o} }
}

// consume runs c with h until the test ends, then drains it.
func consume(t testing.TB, c worker.Consumer, h worker.Handler) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, h) }()
	t.Cleanup(func() {
		dctx, dcancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer dcancel()
		_ = c.Drain(dctx)
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("Run: %v", err)
		}
	})
}

// jobN is a distinct job for n.
func jobN(n int) types.Job {
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(n) * time.Hour)
	return types.Job{ID: fmt.Sprintf("8e0b8d9c-6b0b-5b0e-9b8a-%012d", n), Start: start, Stop: start.Add(time.Hour)}
}

// eventually waits for cond within timeout.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// handlerOf is a Handler that always answers o.
func handlerOf(o worker.Outcome) worker.Handler {
	return func(context.Context, types.Job, worker.Delivery) worker.Result { return worker.Result{Outcome: o} }
}

// sleep is a handler's work: it waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
}
