package storage_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"testing"
	"time"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/awss3/s3test"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/storage"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/testproc"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
)

// graphBytes is the size of the graph of 1,000,000 records the end-to-end
// benchmark makes (tools/benche2e): what one job uploads.
const graphBytes = 401_319_033

// BenchmarkStore streams a graph of graphBytes, made before the clock
// starts, through each backend as a job does: written in 64 KiB pieces to
// a pipe the backend reads. It is the upload floor of a job: no digest is
// read and nothing is parsed or formatted, so what it measures is the
// backend alone (for S3, the client and the versitygw process on the same
// cores).
func BenchmarkStore(b *testing.B) {
	piece := bytes.Repeat([]byte(`"10.0.0.1" -> "10.0.0.2" [color=green label="x"];`+"\n"), 64<<10/50+1)[:64<<10]
	for _, bc := range []struct {
		name string
		// new returns the backend and, for S3, the gateway's CPU time so
		// far.
		new func(b *testing.B) (types.Storage, func() time.Duration)
	}{
		{"s3", func(b *testing.B) (types.Storage, func() time.Duration) {
			srv := s3test.Start(b)
			return &storage.S3{Bucket: srv.NewBucket(b), Client: srv.Client(b)}, func() time.Duration { return srv.CPUTime(b) }
		}},
		{"file", func(b *testing.B) (types.Storage, func() time.Duration) {
			return &storage.File{Dir: b.TempDir()}, nil
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s, server := bc.new(b)
			b.SetBytes(graphBytes)
			b.ReportAllocs()
			var server0 time.Duration
			if server != nil {
				server0 = server()
			}
			self0, err := testproc.CPUTime(os.Getpid())
			if err != nil {
				b.Fatal(err)
			}
			n := 0
			for b.Loop() {
				pr, pw := io.Pipe()
				go func() {
					left := graphBytes
					for left > 0 {
						p := piece[:min(len(piece), left)]
						if _, err := pw.Write(p); err != nil {
							return
						}
						left -= len(p)
					}
					_ = pw.Close()
				}()
				if err := s.Store(context.Background(), fmt.Sprintf("bench%d", n), pr); err != nil {
					pr.CloseWithError(err) // the writer is not left blocked
					b.Fatal(err)
				}
				n++
			}
			// The CPU each side used per graph: the store's floor on two
			// cores is at least their sum over two, however they overlap.
			self, err := testproc.CPUTime(os.Getpid())
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric((self-self0).Seconds()/float64(n), "client-cpu-s/op")
			if server != nil {
				b.ReportMetric((server()-server0).Seconds()/float64(n), "server-cpu-s/op")
			}
		})
	}
}
