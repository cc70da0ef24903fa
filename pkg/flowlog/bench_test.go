package flowlog_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	kgzip "github.com/klauspost/compress/gzip"
	"github.com/parquet-go/parquet-go"

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

// readBench reads benchLines records from r, the reader just opened.
func readBench(b *testing.B, r *flowlog.Reader, err error) {
	b.Helper()
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
				readBench(b, r, err)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchLines), "ns/line")
		})
	}
	// Lines parsed on two workers and handed to a LineRender that does
	// nothing: the fast parse alone, as the converter runs it.
	b.Run("plain/line-render", func(b *testing.B) {
		b.SetBytes(int64(len(plain)))
		b.ReportAllocs()
		var mu sync.Mutex
		var renders []*countLines
		newRender := func() flowlog.LineRender {
			mu.Lock()
			defer mu.Unlock()
			renders = append(renders, new(countLines))
			return renders[len(renders)-1]
		}
		cpu := cpuTime(b)
		for b.Loop() {
			r, err := flowlog.NewReader(bytes.NewReader(plain), flowlog.WithWorkers(2), flowlog.WithLineRender(newRender))
			if err != nil {
				b.Fatal(err)
			}
			for {
				if _, ok := r.NextBatch(); !ok {
					break
				}
			}
			r.Close()
			if r.Err() != nil || r.Stats().Used != benchLines {
				b.Fatalf("read %d records: %v", r.Stats().Used, r.Err())
			}
		}
		b.ReportMetric(float64((cpuTime(b)-cpu).Nanoseconds())/float64(b.N*benchLines), "cpu-ns/line")
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchLines), "ns/line")
		mu.Lock() // a worker may make its LineRender late
		defer mu.Unlock()
		lines := 0
		for _, r := range renders {
			lines += r.n
		}
		if lines != b.N*benchLines {
			b.Fatalf("%d lines rendered, want %d", lines, b.N*benchLines)
		}
	})
}

// countLines is a LineRender that counts the Lines it is handed. Each
// fills a cache line of its own, so that two workers' counts do not share
// one.
type countLines struct {
	n int
	_ [56]byte
}

func (*countLines) Start(*flowlog.Batch)   {}
func (c *countLines) Line(*flowlog.Line)   { c.n++ }
func (*countLines) Record(*flowlog.Record) {}

// cpuTime is the CPU time the process has used, user and system.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
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

// BenchmarkCompactorMemory measures the heap a Compactor holds per distinct
// flow, and the peak while Each sorts them (the digest being written):
// the in-memory cost docs/limits.md sets PartitionedCompactor's budget
// against.
func BenchmarkCompactorMemory(b *testing.B) {
	const flows = 500_000
	recs := make([]flowlog.Record, 0, flows)
	addrs := flowlogtest.Addrs(20000, 1, 10)
	for i := range flows {
		recs = append(recs, flowlog.Record{
			Version: 2, AccountID: "123456789012", InterfaceID: "eni-0a1b2c3d",
			SrcAddr: addrs[i%len(addrs)], DstAddr: addrs[(i/len(addrs)+i*7+1)%len(addrs)],
			SrcPort: 40000 + i%20000, DstPort: 443, Protocol: 6, Packets: 1, Bytes: 100,
			Start: int64(i), End: int64(i + 60), Action: flowlog.ActionAccept, LogStatus: flowlog.StatusOK,
		})
	}
	var held, peak float64
	for b.Loop() {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		c := flowlog.NewCompactor()
		for i := range recs {
			if err := c.Add(&recs[i]); err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		held = float64(after.HeapAlloc-before.HeapAlloc) / float64(c.Len())
		var sorting runtime.MemStats
		err := c.Each(func(*flowlog.Record) error {
			if sorting.HeapAlloc == 0 {
				runtime.ReadMemStats(&sorting)
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		peak = float64(sorting.HeapAlloc-before.HeapAlloc) / float64(c.Len())
		if c.Len() < flows/2 {
			b.Fatalf("only %d distinct flows", c.Len())
		}
		runtime.KeepAlive(c)
	}
	b.ReportMetric(held, "B/flow-held")
	b.ReportMetric(peak, "B/flow-writing")
}

// BenchmarkGunzip decompresses the same gzip digest with the standard
// library and with github.com/klauspost/compress side by side, the choice
// behind the Reader's decompressor.
func BenchmarkGunzip(b *testing.B) {
	plain := benchDigest(b)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(plain)
	_ = zw.Close()
	for _, impl := range []struct {
		name string
		open func(io.Reader) (io.Reader, error)
	}{
		{"stdlib", func(r io.Reader) (io.Reader, error) { return gzip.NewReader(r) }},
		{"klauspost", func(r io.Reader) (io.Reader, error) { return kgzip.NewReader(r) }},
	} {
		b.Run(impl.name, func(b *testing.B) {
			b.SetBytes(int64(len(plain)))
			b.ReportAllocs()
			for b.Loop() {
				zr, err := impl.open(bytes.NewReader(gz.Bytes()))
				if err != nil {
					b.Fatal(err)
				}
				if n, err := io.Copy(io.Discard, zr); err != nil || n != int64(len(plain)) {
					b.Fatalf("%d bytes: %v", n, err)
				}
			}
		})
	}
}

// BenchmarkGzipCompress compresses the same digest at BestSpeed with the
// standard library and with github.com/klauspost/compress side by side,
// the choice behind GRAPH_STORAGE_COMPRESSION=gzip.
func BenchmarkGzipCompress(b *testing.B) {
	plain := benchDigest(b)
	for _, impl := range []struct {
		name string
		open func(io.Writer) (io.WriteCloser, error)
	}{
		{"stdlib", func(w io.Writer) (io.WriteCloser, error) { return gzip.NewWriterLevel(w, gzip.BestSpeed) }},
		{"klauspost", func(w io.Writer) (io.WriteCloser, error) { return kgzip.NewWriterLevel(w, kgzip.BestSpeed) }},
	} {
		b.Run(impl.name, func(b *testing.B) {
			b.SetBytes(int64(len(plain)))
			var out int64
			for b.Loop() {
				cw := &countingWriter{}
				zw, err := impl.open(cw)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := zw.Write(plain); err != nil {
					b.Fatal(err)
				}
				if err := zw.Close(); err != nil {
					b.Fatal(err)
				}
				out = cw.n
			}
			b.ReportMetric(float64(len(plain))/float64(out), "ratio")
		})
	}
}

type countingWriter struct{ n int64 }

func (c *countingWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}

// BenchmarkCompactors compacts the same 1,000,000 records, nearly all of
// them distinct flows, handed over 512 at a time from two goroutines, and
// writes the digest, with Compactor (every flow in one table) and with
// PartitionedCompactor in its default budget (which spills here) and in
// one large enough to hold them, side by side.
func BenchmarkCompactors(b *testing.B) {
	const lines = 1_000_000
	var recs []flowlog.Record
	_ = flowlogtest.Records(flowlogtest.Spec{Lines: lines, Addrs: 20000, Seed: 1}, func(r *flowlog.Record) error {
		recs = append(recs, *r)
		return nil
	})
	type compactor interface {
		AddAll([]flowlog.Record) error
		io.WriterTo
	}
	run := func(b *testing.B, newCompactor func() compactor) {
		b.ReportAllocs()
		for b.Loop() {
			c := newCompactor()
			var wg sync.WaitGroup
			for w := range 2 {
				wg.Go(func() {
					for i := w * 512; i < len(recs); i += 2 * 512 {
						if err := c.AddAll(recs[i:min(i+512, len(recs))]); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			if _, err := c.WriteTo(io.Discard); err != nil {
				b.Fatal(err)
			}
			if p, ok := c.(*flowlog.PartitionedCompactor); ok {
				_ = p.Close()
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*lines), "ns/record")
	}
	b.Run("compactor", func(b *testing.B) {
		run(b, func() compactor { return flowlog.NewCompactor() })
	})
	b.Run("partitioned-32MiB", func(b *testing.B) {
		run(b, func() compactor { return flowlog.NewPartitionedCompactor(flowlog.PartitionOptions{Dir: b.TempDir()}) })
	})
	b.Run("partitioned-in-memory", func(b *testing.B) {
		run(b, func() compactor {
			return flowlog.NewPartitionedCompactor(flowlog.PartitionOptions{MemoryBytes: 1 << 30})
		})
	})
}

// BenchmarkParquetReader measures reading Parquet flow logs of the version
// 5 fields, as AWS writes them (GZIP, nullable columns), and written the
// ways other tools do (dictionaries, delta encodings, Snappy); SetBytes
// is the file's size.
func BenchmarkParquetReader(b *testing.B) {
	var recs [][]any
	fields := []string{
		"version", "account-id", "interface-id", "srcaddr", "dstaddr", "srcport", "dstport",
		"protocol", "packets", "bytes", "start", "end", "action", "log-status",
		"vpc-id", "subnet-id", "instance-id", "tcp-flags", "type", "pkt-srcaddr", "pkt-dstaddr",
		"region", "az-id", "sublocation-type", "sublocation-id", "pkt-src-aws-service",
		"pkt-dst-aws-service", "flow-direction", "traffic-path",
	}
	if err := flowlogtest.Records(flowlogtest.Spec{Lines: benchLines, Addrs: 20000, Seed: 1}, func(r *flowlog.Record) error {
		recs = append(recs, flowlogtest.RecordValues(r, fields))
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	for _, f := range []struct {
		name string
		file flowlogtest.ParquetFile
	}{
		{"gzip", flowlogtest.ParquetFile{Fields: fields, Optional: true, Int32Fields: []string{"version", "srcport", "dstport", "protocol", "tcp-flags", "traffic-path"}, Codec: &parquet.Gzip}},
		{"dict-snappy", flowlogtest.ParquetFile{Fields: fields, Optional: true, Encoding: "dict", PageVersion: 1, Codec: &parquet.Snappy}},
		{"delta-zstd", flowlogtest.ParquetFile{Fields: fields, Optional: true, Encoding: "delta", Codec: &parquet.Zstd}},
	} {
		var buf bytes.Buffer
		if err := flowlogtest.WriteParquet(&buf, f.file, recs); err != nil {
			b.Fatal(err)
		}
		data := buf.Bytes()
		b.Run(f.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				r, err := flowlog.NewParquetReader(bytes.NewReader(data), int64(len(data)))
				readBench(b, r, err)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchLines), "ns/record")
		})
	}
}
