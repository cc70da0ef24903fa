package digester

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/flowlog"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/flowlog/flowlogtest"
)

// distinctTree writes records generated records, nearly all of them
// distinct flows between 20,000 addresses, as files gzip flow-log files in
// AWS's plain layout, all inside the test window, and returns the folder
// and the bytes of text the files hold.
func distinctTree(tb testing.TB, records, files int) (string, int64) {
	tb.Helper()
	root := tb.TempDir()
	per := records / files
	var total int64
	var line []byte
	f := -1
	var zw *gzip.Writer
	var bw *bufio.Writer
	var out *os.File
	closeFile := func() {
		if out == nil {
			return
		}
		if err := bw.Flush(); err != nil {
			tb.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			tb.Fatal(err)
		}
		if err := out.Close(); err != nil {
			tb.Fatal(err)
		}
	}
	n := 0
	err := flowlogtest.Records(flowlogtest.Spec{Lines: per * files, Addrs: 20000, Seed: 1}, func(r *flowlog.Record) error {
		if n%per == 0 {
			closeFile()
			f++
			stamp := fmt.Sprintf("20261101T10%02dZ", f%60)
			name := filepath.Join(root, filepath.FromSlash(plainKey("123456789012", "us-east-1", stamp, -1, "")))
			name = strings.Replace(name, "_0badc0de", fmt.Sprintf("_%08x", f), 1) + ".log.gz"
			if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
				return err
			}
			var err error
			if out, err = os.Create(name); err != nil {
				return err
			}
			zw = gzip.NewWriter(out)
			bw = bufio.NewWriter(zw)
			if _, err := bw.WriteString(defaultHeader + "\n"); err != nil {
				return err
			}
		}
		n++
		rec := *r
		d := rec.End - rec.Start
		rec.Start = t0 + rec.Start%3000
		rec.End = rec.Start + d
		line = flowlog.AppendDigestLine(line[:0], &rec)
		total += int64(len(line))
		_, err := bw.Write(line)
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	closeFile()
	return root, total
}

// BenchmarkBuiltinDistinct digests 100 gzip files of 1,000,000 records
// holding nearly as many distinct flows, the built-in digester case of
// tools/benche2e, and reports the time to the digest's first byte (the
// files read and compacted) beside the whole digest written.
func BenchmarkBuiltinDistinct(b *testing.B) {
	dir, total := distinctTree(b, 1_000_000, 100)
	d := &Builtin{Source: Dir{Path: dir}}
	b.SetBytes(total)
	b.ReportAllocs()
	var opened time.Duration
	for b.Loop() {
		began := time.Now()
		rc, err := d.Digest(context.Background(), testStart, testStop)
		if err != nil {
			b.Fatal(err)
		}
		opened += time.Since(began)
		n, err := io.Copy(io.Discard, rc)
		if err != nil || n == 0 {
			b.Fatal(n, err)
		}
		_ = rc.Close()
	}
	b.ReportMetric(opened.Seconds()/float64(b.N), "s-to-open")
}

// BenchmarkBuiltinRead reads the digest of BenchmarkBuiltinDistinct's files
// back as records on every core, as a job's grapher does: "records" takes
// the compactor's flows as they are, "text" hides the digest's type, so
// its lines are formatted and parsed again, as before the flows were
// handed over.
func BenchmarkBuiltinRead(b *testing.B) {
	dir, total := distinctTree(b, 1_000_000, 100)
	d := &Builtin{Source: Dir{Path: dir}}
	for _, bc := range []struct {
		name string
		wrap func(io.Reader) io.Reader
	}{
		{"records", func(r io.Reader) io.Reader { return r }},
		{"text", func(r io.Reader) io.Reader { return struct{ io.Reader }{r} }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(total)
			b.ReportAllocs()
			for b.Loop() {
				rc, err := d.Digest(context.Background(), testStart, testStop)
				if err != nil {
					b.Fatal(err)
				}
				rd, err := flowlog.NewReader(bc.wrap(rc), flowlog.WithWorkers(runtime.GOMAXPROCS(0)))
				if err != nil {
					b.Fatal(err)
				}
				n := 0
				for rd.Next() {
					n++
				}
				if rd.Err() != nil || n < 900_000 {
					b.Fatal(n, rd.Err())
				}
				rd.Close()
				_ = rc.Close()
			}
		})
	}
}
