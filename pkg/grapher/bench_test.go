package grapher

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"runtime"
	"testing"

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
			b.ResetTimer()
			for b.Loop() {
				if _, err := g.Graph(ctx, io.Discard, bytes.NewReader(data)); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			runtime.ReadMemStats(&after)
			total := float64(b.N) * float64(lines)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/total, "ns/line")
			b.ReportMetric(float64(after.Mallocs-before.Mallocs)/total, "allocs/line")
			b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/total, "B/line")
		})
	}
}
