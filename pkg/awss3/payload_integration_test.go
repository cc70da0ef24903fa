package awss3_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/awss3"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/awss3/s3test"
)

// payloadHashes records the X-Amz-Content-Sha256 of each request with a body.
type payloadHashes struct {
	mu     sync.Mutex
	next   http.RoundTripper
	hashes []string
}

func (p *payloadHashes) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPut {
		p.mu.Lock()
		p.hashes = append(p.hashes, req.Header.Get("X-Amz-Content-Sha256"))
		p.mu.Unlock()
	}
	return p.next.RoundTrip(req)
}

// TestLoopbackUploadIsUnsigned puts an object on a real gateway on
// loopback: the request signs UNSIGNED-PAYLOAD instead of the body's
// SHA-256, the gateway accepts the signature and the object reads back
// as written.
func TestLoopbackUploadIsUnsigned(t *testing.T) {
	srv := s3test.Start(t)
	transport := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(transport.CloseIdleConnections)
	rec := &payloadHashes{next: transport}
	c, err := awss3.NewClient(context.Background(), awss3.Options{
		Region: s3test.Region, Endpoint: srv.Endpoint, AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey,
		HTTPClient: &http.Client{Transport: rec},
	})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("graphs")})
	require.NoError(t, err)
	body := bytes.Repeat([]byte("\"10.0.0.1\" -> \"10.0.0.2\";\n"), 1<<16)
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("graphs"), Key: aws.String("g.dot"), Body: bytes.NewReader(body)})
	require.NoError(t, err)

	rec.mu.Lock()
	require.Equal(t, []string{"UNSIGNED-PAYLOAD", "UNSIGNED-PAYLOAD"}, rec.hashes, "CreateBucket and PutObject")
	rec.mu.Unlock()
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("graphs"), Key: aws.String("g.dot")})
	require.NoError(t, err)
	defer func() { _ = out.Body.Close() }()
	got, err := io.ReadAll(out.Body)
	require.NoError(t, err)
	require.True(t, bytes.Equal(body, got))
}
