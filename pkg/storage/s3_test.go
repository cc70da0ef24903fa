package storage_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/awss3/s3test"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/storage"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/storage/storagetest"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
)

func TestS3Conformance(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t)
	client := srv.Client(t)
	storagetest.Run(t, func(t *testing.T) types.Storage {
		return &storage.S3{Bucket: srv.NewBucket(t), Client: client}
	})
}

// TestS3Layout checks the object the original service would read: <id>.dot
// with a Graphviz content type, uploaded in parts when large.
func TestS3Layout(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t)
	client := srv.Client(t)
	bucket := srv.NewBucket(t)
	s := &storage.S3{Bucket: bucket, Client: client}
	tests := []struct {
		name      string
		size      int64
		multipart bool
	}{
		{"small graph in one request", 100, false},
		{"large graph in parts", 12 << 20, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			id := uuid.NewString()
			pr, pw := io.Pipe()
			go func() {
				_, err := io.Copy(pw, io.LimitReader(strings.NewReader(strings.Repeat("x", int(tc.size))), tc.size))
				pw.CloseWithError(err)
			}()
			require.NoError(t, s.Store(context.Background(), id, pr))
			head, err := client.HeadObject(context.Background(), &s3.HeadObjectInput{
				Bucket: aws.String(bucket), Key: aws.String(id + ".dot"),
			})
			require.NoError(t, err)
			require.Equal(t, tc.size, aws.ToInt64(head.ContentLength))
			require.Equal(t, storage.ContentType, aws.ToString(head.ContentType))
			// A multipart object's ETag ends in -<number of parts>.
			require.Equal(t, tc.multipart, strings.Contains(aws.ToString(head.ETag), "-"), "ETag %s", aws.ToString(head.ETag))
		})
	}
}

// TestS3FailedUploadIsAborted shows a multipart upload whose reader fails or
// whose context is cancelled is aborted, leaving no upload and no object.
func TestS3FailedUploadIsAborted(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t)
	client := srv.Client(t)
	tests := []struct {
		name  string
		store func(s *storage.S3, id string) error
		want  error
	}{
		{"reader fails", func(s *storage.S3, id string) error {
			return s.Store(context.Background(), id, &failAt{r: strings.NewReader(strings.Repeat("y", 14<<20)), n: 13 << 20})
		}, errFailAt},
		{"context cancelled", func(s *storage.S3, id string) error {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			return s.Store(ctx, id, &failAt{r: strings.NewReader(strings.Repeat("y", 14<<20)), n: 13 << 20, cancel: cancel})
		}, context.Canceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			bucket := srv.NewBucket(t)
			s := &storage.S3{Bucket: bucket, Client: client}
			id := uuid.NewString()
			require.ErrorIs(t, tc.store(s, id), tc.want)
			uploads, err := client.ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
			require.NoError(t, err)
			require.Empty(t, uploads.Uploads, "the failed multipart upload was not aborted")
			objects, err := client.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
			require.NoError(t, err)
			require.Empty(t, objects.Contents)
		})
	}
}

var errFailAt = errors.New("failing at the given offset")

// failAt reads r until n bytes were read, then fails, or cancels and keeps
// reading when cancel is set.
type failAt struct {
	r      io.Reader
	n      int64
	cancel context.CancelFunc
}

func (f *failAt) Read(p []byte) (int, error) {
	if f.n <= 0 {
		if f.cancel == nil {
			return 0, errFailAt
		}
		f.cancel()
	}
	if int64(len(p)) > f.n && f.n > 0 {
		p = p[:f.n]
	}
	n, err := f.r.Read(p)
	f.n -= int64(n)
	return n, err
}

// TestS3ErrorsAreTranslated shows that callers see types.ErrNotFound and no
// S3 error type for a missing graph, and that a missing bucket is not
// mistaken for a missing graph.
func TestS3ErrorsAreTranslated(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t)
	client := srv.Client(t)
	present := &storage.S3{Bucket: srv.NewBucket(t), Client: client}
	missingBucket := &storage.S3{Bucket: "no-such-bucket", Client: client}
	id := uuid.NewString()

	_, err := present.Get(context.Background(), id)
	require.ErrorIs(t, err, types.ErrNotFound)
	var apiErr smithy.APIError
	require.False(t, errors.As(err, &apiErr), "an S3 error escaped the adapter: %v", err)
	var noSuchKey *s3types.NoSuchKey
	require.False(t, errors.As(err, &noSuchKey))

	_, err = missingBucket.Get(context.Background(), id)
	require.Error(t, err)
	require.NotErrorIs(t, err, types.ErrNotFound)
	err = missingBucket.Store(context.Background(), id, strings.NewReader("digraph {}"))
	require.Error(t, err)
	require.NotErrorIs(t, err, types.ErrNotFound)
}

// TestS3SurvivesRestart stops the S3 server between operations: calls made
// while it is down fail with an error (no panic, no false "not found"), and
// once it is back the same storage works and the earlier graph is intact.
func TestS3SurvivesRestart(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t)
	client := srv.Client(t)
	s := &storage.S3{Bucket: srv.NewBucket(t), Client: client}
	id, other := uuid.NewString(), uuid.NewString()
	require.NoError(t, s.Store(context.Background(), id, strings.NewReader("digraph { before }")))

	srv.Stop(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := s.Get(ctx, id)
	require.Error(t, err)
	require.NotErrorIs(t, err, types.ErrNotFound)
	require.Contains(t, err.Error(), "s3 get")
	ok, err := s.Exists(ctx, id)
	require.Error(t, err)
	require.False(t, ok)
	require.NotErrorIs(t, err, types.ErrNotFound)
	err = s.Store(ctx, other, strings.NewReader("digraph { while down }"))
	require.Error(t, err)
	require.Contains(t, err.Error(), "s3 store")

	srv.Restart(t)
	rc, err := s.Get(context.Background(), id)
	require.NoError(t, err)
	b, err := io.ReadAll(rc)
	require.NoError(t, err)
	require.NoError(t, rc.Close())
	require.Equal(t, "digraph { before }", string(b))
	ok, err = s.Exists(context.Background(), other)
	require.NoError(t, err)
	require.False(t, ok, "a Store made while S3 was down became visible")
	require.NoError(t, s.Store(context.Background(), other, strings.NewReader("digraph { after }")))
	ok, err = s.Exists(context.Background(), other)
	require.NoError(t, err)
	require.True(t, ok)
}
