package flowtable_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/flowlog"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/flowlog/flowlogtest"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/flowtable"
)

// benchSpec is the graph of the speed target: a million records of random
// pairs between 20,000 addresses, so nearly a million distinct pairs.
var benchSpec = flowlogtest.Spec{Lines: 1_000_000, Addrs: 20000, Seed: 1}

var benchTable = sync.OnceValue(func() []byte {
	var b bytes.Buffer
	w := flowtable.NewWriter(&b)
	if err := flowlogtest.Records(benchSpec, w.Add); err != nil {
		panic(err)
	}
	if err := w.Close(); err != nil {
		panic(err)
	}
	return b.Bytes()
})

// BenchmarkTableWrite encodes the million records, as the worker does
// beside the DOT.
func BenchmarkTableWrite(b *testing.B) {
	var recs []flowlog.Record
	_ = flowlogtest.Records(flowlogtest.Spec{Lines: 100_000, Addrs: 20000, Seed: 1}, func(r *flowlog.Record) error {
		recs = append(recs, *r)
		return nil
	})
	var size int64
	for b.Loop() {
		cw := &countingWriter{}
		w := flowtable.NewWriter(cw)
		for i := range recs {
			_ = w.Add(&recs[i])
		}
		_ = w.Close()
		size = cw.n
	}
	b.SetBytes(size)
	b.ReportMetric(float64(size)/float64(len(recs)), "table-B/record")
}

type countingWriter struct{ n int64 }

func (c *countingWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// BenchmarkAggregate aggregates the million-record table into the views of
// the speed target, and writes their JSON.
func BenchmarkAggregate(b *testing.B) {
	table := benchTable()
	for _, query := range []string{"group=addr&top=1000", "group=cidr:24", "group=cidr:16&action=REJECT", "group=eni&top=1000"} {
		b.Run(query, func(b *testing.B) {
			p := mustParams(&testing.T{}, query)
			b.SetBytes(int64(len(table)))
			defer reportCPU(b)()
			for b.Loop() {
				v, err := flowtable.Aggregate(context.Background(), fromTable(table), p, flowtable.Limits{MaxNodes: 1 << 30, MaxEdges: 1 << 30})
				if err != nil {
					b.Fatal(err)
				}
				if err := flowtable.WriteJSON(io.Discard, v, testMeta); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkTableRead decodes the million-record table.
func BenchmarkTableRead(b *testing.B) {
	table := benchTable()
	b.SetBytes(int64(len(table)))
	for b.Loop() {
		r := flowtable.NewReader(bytes.NewReader(table))
		for r.Next() {
		}
		if r.Err() != nil {
			b.Fatal(r.Err())
		}
	}
}

// reportCPU reports the process CPU time per op: on a shared machine wall
// time says more about the neighbours than about the code.
func reportCPU(b *testing.B) func() {
	before := cpuTime()
	return func() {
		b.ReportMetric(float64((cpuTime()-before).Milliseconds())/float64(b.N), "cpu-ms/op")
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkRenderSVG lays out random views of growing size with each
// Graphviz engine: where dot stops being quick is where RenderSVG switches
// to sfdp (DotMaxNodes).
func BenchmarkRenderSVG(b *testing.B) {
	for _, c := range []struct {
		engine string
		nodes  int
	}{{"dot", 25}, {"dot", 50}, {"sfdp", 50}, {"sfdp", 200}, {"sfdp", 2000}} {
		b.Run(fmt.Sprintf("%s/%d", c.engine, c.nodes), func(b *testing.B) {
			v := randomView(b, c.nodes)
			for b.Loop() {
				if _, err := flowtable.RenderSVG(context.Background(), v, testMeta, flowtable.SVGOptions{Engine: c.engine, Timeout: 10 * time.Minute}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// randomView is a view of n addresses with three edges from each.
func randomView(b *testing.B, n int) *flowtable.View {
	rng := newRand()
	recs := randomRecords(rng, 3*n)
	for i := range recs {
		recs[i].SrcAddr = addrN(i % n)
		recs[i].DstAddr = addrN(rng.IntN(n))
	}
	v, err := flowtable.Aggregate(context.Background(), fromRecords(recs), flowtable.Params{}, flowtable.Limits{})
	if err != nil {
		b.Fatal(err)
	}
	return v
}
