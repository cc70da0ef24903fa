package storage_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/awss3/s3test"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/marker"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/storage"
)

// TestPing covers the readiness checks of the S3 and file backends of both
// storage and marker, which share their mechanism.
func TestPing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	gw := s3test.Start(t)
	client := gw.Client(t)
	bucket := gw.NewBucket(t)

	require.NoError(t, (&storage.S3{Bucket: bucket, Client: client}).Ping(ctx))
	require.NoError(t, (&marker.S3{Bucket: bucket, Client: client}).Ping(ctx))
	require.ErrorContains(t, (&storage.S3{Bucket: "no-such-bucket", Client: client}).Ping(ctx), `"no-such-bucket"`)
	require.Error(t, (&marker.S3{Bucket: "no-such-bucket", Client: client}).Ping(ctx))

	gw.Stop(t)
	require.Error(t, (&storage.S3{Bucket: bucket, Client: client}).Ping(ctx), "a stopped server is not ready")
	gw.Restart(t)
	require.NoError(t, (&storage.S3{Bucket: bucket, Client: client}).Ping(ctx))

	dir := t.TempDir()
	require.NoError(t, (&storage.File{Dir: filepath.Join(dir, "graphs")}).Ping(ctx))
	require.DirExists(t, filepath.Join(dir, "graphs"))
	require.NoError(t, (&marker.File{Dir: filepath.Join(dir, "progress")}).Ping(ctx))
	require.NoError(t, (&storage.File{Dir: dir}).Store(ctx, "6357a262-b301-5f60-a2d4-644e10c814ea", strings.NewReader("digraph {}")))
	require.FileExists(t, filepath.Join(dir, "6357a262-b301-5f60-a2d4-644e10c814ea.dot"))
	require.Error(t, (&storage.File{Dir: filepath.Join(dir, "6357a262-b301-5f60-a2d4-644e10c814ea.dot", "x")}).Ping(ctx), "a folder that cannot be made is not ready")
	require.Error(t, (&marker.File{Dir: filepath.Join(dir, "6357a262-b301-5f60-a2d4-644e10c814ea.dot", "x")}).Ping(ctx))
}
