package queuer

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/queuer/sqstest"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/worker"
)

// The engine benchmarks put b.N jobs through a queue engine on loopback,
// enqueue and consumption both timed, with a handler that does nothing:
// ns/op is the engine's own cost per job (publish, receive, settle), and
// jobs/s the throughput of 1, 2 and 4 consumers in one process, each
// running two jobs at once. For JetStream the embedded server runs in the
// benchmark's process, so allocs/op include the server's; local-aws-sqs
// runs in its own process, so for SQS they are the client's alone.

// benchConsumers are the numbers of concurrent consumers measured.
var benchConsumers = []int{1, 2, 4}

// benchEngine is what a benchmark needs of one engine.
type benchEngine struct {
	queuer   types.Queuer
	consumer func(b *testing.B) worker.Consumer
}

// runQueueBench enqueues b.N distinct jobs, runs n consumers until every
// job was handled, and reports jobs per second.
func runQueueBench(b *testing.B, e benchEngine, n int) {
	consumers := make([]worker.Consumer, n)
	for i := range consumers {
		consumers[i] = e.consumer(b)
	}
	var handled atomic.Int64
	all := make(chan struct{})
	total := int64(b.N)
	h := func(context.Context, types.Job, worker.Delivery) worker.Result {
		if handled.Add(1) == total {
			close(all)
		}
		return worker.Result{Outcome: worker.Done}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		if err := e.queuer.Queue(ctx, jobN(i)); err != nil {
			b.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for _, c := range consumers {
		wg.Go(func() { _ = c.Run(ctx, h) })
	}
	select {
	case <-all:
	case <-time.After(5 * time.Minute):
		b.Fatalf("%d of %d jobs handled", handled.Load(), b.N)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "jobs/s")
	dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer dcancel()
	for _, c := range consumers {
		_ = c.Drain(dctx)
	}
	cancel()
	wg.Wait()
}

func BenchmarkJetStream(b *testing.B) {
	for _, n := range benchConsumers {
		b.Run(fmt.Sprintf("consumers=%d", n), func(b *testing.B) {
			s := startNATS(b)
			o := s.jsOptions(b)
			o.Logger = slog.New(slog.DiscardHandler)
			o.AckWait = 30 * time.Second
			producer := newJS(b, o)
			runQueueBench(b, benchEngine{queuer: producer, consumer: func(b *testing.B) worker.Consumer {
				return newJS(b, o)
			}}, n)
		})
	}
}

func BenchmarkSQS(b *testing.B) {
	srv := sqstest.Start(b)
	for _, n := range benchConsumers {
		b.Run(fmt.Sprintf("consumers=%d", n), func(b *testing.B) {
			qs := newSQSQueues(b, srv, 30*time.Second, false, 3)
			o := qs.options(b)
			o.Logger = slog.New(slog.DiscardHandler)
			producer := newSQS(b, o)
			runQueueBench(b, benchEngine{queuer: producer, consumer: func(b *testing.B) worker.Consumer {
				return newSQS(b, o)
			}}, n)
			require.Equal(b, 0, qs.count(b, qs.url))
		})
	}
}
