package grapher

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/flowlog"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/flowlog/flowlogtest"
)

// BenchmarkGraph converts synthetic digests of growing size (20,000
// addresses, as in the 1M-line figure) to io.Discard. MB/s is input
// throughput; allocs/line and B/line should fall as lines grow, since memory
// grows with addresses, not lines.
//
//	go test ./pkg/grapher -run '^$' -bench Graph -benchtime 3x
func BenchmarkGraph(b *testing.B) {
	for _, lines := range []int{10_000, 100_000, 1_000_000} {
		b.Run(fmt.Sprintf("lines=%d", lines), func(b *testing.B) {
			var digest bytes.Buffer
			if _, err := flowlogtest.WriteDigest(&digest, flowlogtest.Spec{Lines: lines, Addrs: 20000, Seed: 1}); err != nil {
				b.Fatal(err)
			}
			data := digest.Bytes()
			g := &DOT{}
			ctx := context.Background()
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			cpu := cpuTime(b)
			b.ResetTimer()
			for b.Loop() {
				if _, err := g.Graph(ctx, io.Discard, bytes.NewReader(data)); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			cpu = cpuTime(b) - cpu
			runtime.ReadMemStats(&after)
			total := float64(b.N) * float64(lines)
			b.ReportMetric(float64(cpu.Nanoseconds())/total, "cpu-ns/line")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/total, "ns/line")
			b.ReportMetric(float64(after.Mallocs-before.Mallocs)/total, "allocs/line")
			b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/total, "B/line")
		})
	}
}

// cpuTime is the CPU time the process has used, user and system: beside
// the wall time, it shows what work the parallel parts cost in all.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkRenderChunk measures formatting the edges of one chunk of
// records on the goroutine that parsed it, the work each Render does per
// line, alone: with copied blocks (fast) and with appends (batch).
func BenchmarkRenderChunk(b *testing.B) {
	var digest bytes.Buffer
	if _, err := flowlogtest.WriteDigest(&digest, flowlogtest.Spec{Lines: 20_000, Addrs: 20000, Seed: 1}); err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		edge func([]byte, *flowlog.Batch, int) []byte
	}{
		{"fast", func(t []byte, batch *flowlog.Batch, i int) []byte {
			if t, ok := appendFastEdge(t, batch, i); ok {
				return t
			}
			return appendBatchEdge(t, batch, i)
		}},
		{"batch", appendBatchEdge},
	} {
		b.Run(c.name, func(b *testing.B) {
			var done atomic.Bool
			render := func() flowlog.Render {
				return func(batch *flowlog.Batch) {
					if done.Swap(true) {
						return
					}
					var text []byte
					b.SetBytes(int64(batch.Len()))
					b.ResetTimer()
					for b.Loop() {
						text = text[:0]
						for i := range batch.Records {
							text = c.edge(text, batch, i)
						}
					}
					b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(batch.Records)), "ns/line")
				}
			}
			// Only the first chunk's Render, whichever goroutine runs
			// it, is timed.
			rd, err := flowlog.NewReader(bytes.NewReader(digest.Bytes()), flowlog.WithWorkers(2), flowlog.WithRender(render))
			if err != nil {
				b.Fatal(err)
			}
			defer rd.Close()
			for {
				if _, ok := rd.NextBatch(); !ok {
					break
				}
			}
		})
	}
	// The same for a LineRender: the edges formatted from the Lines of
	// the first chunk, which the Reader hands over first.
	b.Run("line", func(b *testing.B) {
		var started atomic.Bool
		var lines []flowlog.Line
		rd, err := flowlog.NewReader(bytes.NewReader(digest.Bytes()), flowlog.WithWorkers(2),
			flowlog.WithLineRender(func() flowlog.LineRender { return &keepLines{started: &started, lines: &lines} }))
		if err != nil {
			b.Fatal(err)
		}
		defer rd.Close()
		// The first chunk's text stays valid until the next NextBatch.
		batch, ok := rd.NextBatch()
		if !ok || len(lines) == 0 {
			b.Fatalf("no Lines in the first chunk: %v", rd.Err())
		}
		var text []byte
		b.SetBytes(int64(batch.Len()))
		for b.Loop() {
			text = text[:0]
			for i := range lines {
				var fast bool
				if text, fast = appendLineEdge(text, &lines[i]); !fast {
					b.Fatal("a Line of the digest left the fast path")
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(lines)), "ns/line")
	})
}

// keepLines is a LineRender that keeps copies of the Lines of the first
// chunk any LineRender starts.
type keepLines struct {
	started *atomic.Bool
	lines   *[]flowlog.Line
	keeping bool
}

func (k *keepLines) Start(*flowlog.Batch) { k.keeping = !k.started.Swap(true) }

func (k *keepLines) Line(l *flowlog.Line) {
	if k.keeping {
		*k.lines = append(*k.lines, *l)
	}
}

func (k *keepLines) Record(*flowlog.Record) {}
