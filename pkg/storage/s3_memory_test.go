package storage_test

import (
	"context"
	"io"
	"runtime"
	"runtime/debug"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/awss3/s3test"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/storage"
)

// zeros is an endless reader of zero bytes that allocates nothing.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestS3StoreMemoryBounded streams a 64 MiB graph through a pipe and samples
// the heap meanwhile: an upload that held the graph whole would grow it by
// 64 MiB, a streamed one by a few parts. It does not run in parallel, so the
// heap it samples is its own.
func TestS3StoreMemoryBounded(t *testing.T) {
	const (
		size  = 64 << 20
		bound = 40 << 20
	)
	srv := s3test.Start(t)
	s := &storage.S3{Bucket: srv.NewBucket(t), Client: srv.Client(t)}

	defer debug.SetGCPercent(debug.SetGCPercent(10))
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			if m.HeapAlloc > peak.Load() {
				peak.Store(m.HeapAlloc)
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()

	pr, pw := io.Pipe()
	go func() {
		_, err := io.Copy(pw, io.LimitReader(zeros{}, size))
		pw.CloseWithError(err)
	}()
	err := s.Store(context.Background(), uuid.NewString(), pr)
	close(stop)
	<-sampled
	require.NoError(t, err)
	growth := int64(peak.Load()) - int64(base.HeapAlloc)
	t.Logf("heap grew by %.1f MiB while storing %d MiB", float64(growth)/(1<<20), size>>20)
	require.Less(t, growth, int64(bound), "Store appears to hold the graph in memory")
}
