package flowlog_test

import (
	"bytes"
	"compress/gzip"
	"sync"
	"testing"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/flowlog"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/flowlog/flowlogtest"
)

const benchLines = 100_000

func benchDigest(b *testing.B) []byte {
	b.Helper()
	var digest bytes.Buffer
	if _, err := flowlogtest.WriteDigest(&digest, flowlogtest.Spec{Lines: benchLines, Addrs: 20000, Seed: 1}); err != nil {
		b.Fatal(err)
	}
	return digest.Bytes()
}

// BenchmarkReader measures parsing alone, plain and gzip.
func BenchmarkReader(b *testing.B) {
	plain := benchDigest(b)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(plain)
	_ = zw.Close()
	for _, in := range []struct {
		name string
		data []byte
	}{{"plain", plain}, {"gzip", gz.Bytes()}} {
		b.Run(in.name, func(b *testing.B) {
			b.SetBytes(int64(len(plain)))
			b.ReportAllocs()
			for b.Loop() {
				r, err := flowlog.NewReader(bytes.NewReader(in.data))
				if err != nil {
					b.Fatal(err)
				}
				n := 0
				for r.Next() {
					n++
				}
				if r.Err() != nil || n != benchLines {
					b.Fatalf("read %d records: %v", n, r.Err())
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchLines), "ns/line")
		})
	}
}

// BenchmarkCompactorAdd measures compacting 100,000 records added from two
// goroutines at once, as the built-in digester calls Add.
func BenchmarkCompactorAdd(b *testing.B) {
	var recs []flowlog.Record
	_ = flowlogtest.Records(flowlogtest.Spec{Lines: benchLines, Addrs: 2000, Seed: 1}, func(r *flowlog.Record) error {
		recs = append(recs, *r)
		return nil
	})
	const workers = 2
	b.ReportAllocs()
	for b.Loop() {
		c := flowlog.NewCompactor()
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for i := w; i < len(recs); i += workers {
					c.Add(&recs[i])
				}
			})
		}
		wg.Wait()
		if c.Len() == 0 {
			b.Fatal("nothing compacted")
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchLines), "ns/record")
}
