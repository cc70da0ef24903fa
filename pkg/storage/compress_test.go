package storage_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/awss3/s3test"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/marker"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/storage"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/storage/storagetest"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
)

func TestGzipConformance(t *testing.T) {
	t.Parallel()
	t.Run("file", func(t *testing.T) {
		t.Parallel()
		storagetest.Run(t, func(t *testing.T) types.Storage { return &storage.Gzip{Storage: &storage.File{Dir: t.TempDir()}} })
	})
	t.Run("s3", func(t *testing.T) {
		t.Parallel()
		srv := s3test.Start(t)
		client := srv.Client(t)
		storagetest.Run(t, func(t *testing.T) types.Storage {
			return &storage.Gzip{Storage: &storage.S3{Bucket: srv.NewBucket(t), Client: client}}
		})
	})
	t.Run("memory", func(t *testing.T) {
		t.Parallel()
		storagetest.Run(t, func(t *testing.T) types.Storage { return &storage.Gzip{Storage: &storage.Memory{}} })
	})
}

const graph = "digraph {\n  n0a000001 [label=\"10.0.0.1\"];\n}\n"

func gunzip(t *testing.T, b []byte) string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	require.NoError(t, err)
	out, err := io.ReadAll(zr)
	require.NoError(t, err)
	return string(out)
}

func readCloser(t *testing.T, rc io.ReadCloser) []byte {
	t.Helper()
	b, err := io.ReadAll(rc)
	require.NoError(t, err)
	require.NoError(t, rc.Close())
	return b
}

// TestGzipLayout checks what is stored (gzip under <id>.dot), that Get
// serves plain DOT and GetEncoded the stored bytes, and that a graph
// stored plain before compression was turned on is still served.
func TestGzipLayout(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	plain := &storage.File{Dir: dir}
	g := &storage.Gzip{Storage: plain}
	ctx := context.Background()
	big := strings.Repeat(graph, 20000)

	id := uuid.NewString()
	require.NoError(t, g.Store(ctx, id, strings.NewReader(big)))
	onDisk, err := os.ReadFile(filepath.Join(dir, id+".dot"))
	require.NoError(t, err)
	require.Less(t, len(onDisk), len(big)/10, "stored compressed")
	require.Equal(t, big, gunzip(t, onDisk))

	rc, err := g.Get(ctx, id)
	require.NoError(t, err)
	require.Equal(t, big, string(readCloser(t, rc)))

	rc, enc, err := g.GetEncoded(ctx, id)
	require.NoError(t, err)
	require.Equal(t, storage.EncodingGzip, enc)
	require.Equal(t, onDisk, readCloser(t, rc))

	old := uuid.NewString()
	require.NoError(t, plain.Store(ctx, old, strings.NewReader(graph)))
	rc, err = g.Get(ctx, old)
	require.NoError(t, err)
	require.Equal(t, graph, string(readCloser(t, rc)))
	rc, enc, err = g.GetEncoded(ctx, old)
	require.NoError(t, err)
	require.Empty(t, enc)
	require.Equal(t, graph, string(readCloser(t, rc)))

	// A corrupt compressed graph fails the read rather than serving junk.
	bad := uuid.NewString()
	require.NoError(t, plain.Store(ctx, bad, bytes.NewReader(onDisk[:len(onDisk)/2])))
	rc, err = g.Get(ctx, bad)
	require.NoError(t, err)
	_, err = io.ReadAll(rc)
	require.Error(t, err)
	_ = rc.Close()
}

// TestInProgressGetEncoded reports marks through GetEncoded as Get does,
// and passes the stored encoding through.
func TestInProgressGetEncoded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := &marker.Memory{}
	s := &storage.InProgress{Storage: &storage.Gzip{Storage: &storage.Memory{}}, Marker: m}
	id := uuid.NewString()
	_, _, err := s.GetEncoded(ctx, id)
	require.ErrorIs(t, err, types.ErrNotFound)
	_, err = m.Mark(ctx, id)
	require.NoError(t, err)
	_, _, err = s.GetEncoded(ctx, id)
	require.ErrorIs(t, err, types.ErrInProgress)
	require.NoError(t, s.Store(ctx, id, strings.NewReader(graph)))
	rc, enc, err := s.GetEncoded(ctx, id)
	require.NoError(t, err)
	require.Equal(t, storage.EncodingGzip, enc)
	require.Equal(t, graph, gunzip(t, readCloser(t, rc)))

	plain := &storage.InProgress{Storage: &storage.Memory{}, Marker: m}
	require.NoError(t, plain.Store(ctx, id, strings.NewReader(graph)))
	rc, enc, err = plain.GetEncoded(ctx, id)
	require.NoError(t, err)
	require.Empty(t, enc)
	require.Equal(t, graph, string(readCloser(t, rc)))
}
