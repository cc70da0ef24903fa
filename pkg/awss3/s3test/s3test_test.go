package s3test_test

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/awss3/s3test"
)

func TestStartServesObjects(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t)
	require.True(t, strings.HasPrefix(srv.Endpoint, "http://127.0.0.1:"), srv.Endpoint)
	require.NotEmpty(t, srv.AccessKey)
	require.NotEmpty(t, srv.SecretKey)
	c := srv.Client(t)
	bucket := srv.NewBucket(t)
	ctx := context.Background()
	_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("k"), Body: strings.NewReader("v")})
	require.NoError(t, err)
	srv.CreateBucket(t, "named-bucket")
	_, err = c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("named-bucket")})
	require.NoError(t, err)
}

func TestServersAreIsolated(t *testing.T) {
	t.Parallel()
	a, b := s3test.Start(t), s3test.Start(t)
	require.NotEqual(t, a.Endpoint, b.Endpoint)
	require.NotEqual(t, a.AccessKey, b.AccessKey)
	a.CreateBucket(t, "only-in-a")
	_, err := b.Client(t).HeadBucket(context.Background(), &s3.HeadBucketInput{Bucket: aws.String("only-in-a")})
	require.Error(t, err)
}

// TestStopRestart shows Stop takes the server away and Restart brings it
// back on the same endpoint with the same objects.
func TestStopRestart(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t)
	c := srv.Client(t)
	bucket := srv.NewBucket(t)
	ctx := context.Background()
	_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("k"), Body: strings.NewReader("kept")})
	require.NoError(t, err)
	endpoint := srv.Endpoint

	srv.Stop(t)
	srv.Stop(t) // stopping twice is harmless
	_, err = c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(bucket)})
	require.Error(t, err)

	srv.Restart(t)
	require.Equal(t, endpoint, srv.Endpoint)
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("k")})
	require.NoError(t, err)
	b, err := io.ReadAll(out.Body)
	require.NoError(t, err)
	require.NoError(t, out.Body.Close())
	require.Equal(t, "kept", string(b))

	srv.Restart(t) // restarting a running server restarts it
	_, err = c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(bucket)})
	require.NoError(t, err)
}

// fatalRecorder captures the message of a Fatalf and ends the goroutine, as
// testing.T does, without failing the real test.
type fatalRecorder struct {
	testing.TB
	mu  sync.Mutex
	msg string
}

func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.msg = fmt.Sprintf(format, args...)
	f.mu.Unlock()
	runtime.Goexit()
}

func (f *fatalRecorder) Helper() {}

// TestMissingBinaryFails shows a missing gateway fails the test with the
// command that builds it; it never skips.
func TestMissingBinaryFails(t *testing.T) {
	tests := []struct {
		name string
		env  string
		path string
	}{
		{"VERSITYGW names a missing file", "/nonexistent/versitygw", ""},
		{"nowhere to be found", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Chdir(t.TempDir()) // no module root, so no .cache/bin
			t.Setenv("VERSITYGW", tc.env)
			t.Setenv("PATH", tc.path)
			rec := &fatalRecorder{TB: t}
			done := make(chan struct{})
			go func() {
				defer close(done)
				s3test.Start(rec)
				t.Error("Start returned without failing")
			}()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("Start hung")
			}
			rec.mu.Lock()
			defer rec.mu.Unlock()
			require.Contains(t, rec.msg, "make versitygw")
			require.False(t, t.Skipped())
		})
	}
}
