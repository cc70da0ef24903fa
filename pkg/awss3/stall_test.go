package awss3_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/awss3"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/awss3/s3test"
)

// stallTimeout is the no-progress bound the tests give the client.
const stallTimeout = 300 * time.Millisecond

// TestGetObjectBodyStallFails: a peer that sends the headers and the first
// bytes of a GetObject body and then nothing fails the read after the
// timeout without progress, on the SDK's default client and on a given one,
// and the connection is closed.
func TestGetObjectBodyStallFails(t *testing.T) {
	t.Parallel()
	for _, given := range []bool{false, true} {
		t.Run(fmt.Sprintf("given-client=%t", given), func(t *testing.T) {
			t.Parallel()
			peer := s3test.StartStall(t)
			var hc *http.Client
			if given {
				tr := http.DefaultTransport.(*http.Transport).Clone()
				t.Cleanup(tr.CloseIdleConnections)
				hc = &http.Client{Transport: tr}
			}
			c := peer.Client(t, stallTimeout, hc)
			out, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String("b"), Key: aws.String("k")})
			require.NoError(t, err)
			began := time.Now()
			got, err := s3test.ReadAllWithin(t, out.Body, 10*time.Second)
			require.ErrorIs(t, err, awss3.ErrBodyStalled)
			require.Equal(t, peer.Prefix, got, "what arrived before the stall is delivered")
			require.GreaterOrEqual(t, time.Since(began), stallTimeout)
			require.NoError(t, out.Body.Close())
			select {
			case <-peer.Closed:
			case <-time.After(5 * time.Second):
				t.Fatal("the stalled connection was not closed")
			}
		})
	}
}

// TestGetObjectSlowBodyIsNotCut: a body that keeps moving, each piece well
// within the timeout, is read whole even though the whole read takes several
// times the timeout.
func TestGetObjectSlowBodyIsNotCut(t *testing.T) {
	t.Parallel()
	const pieces = 8
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer func() { _ = c.Close() }()
		if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
			return
		}
		_, _ = fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", pieces)
		for range pieces {
			time.Sleep(stallTimeout / 3)
			if _, err := c.Write([]byte("x")); err != nil {
				return
			}
		}
	}()
	c, err := awss3.NewClient(context.Background(), awss3.Options{
		Endpoint: "http://" + ln.Addr().String(), AccessKeyID: "a", SecretAccessKey: "b",
		Region: "us-east-1", Timeout: stallTimeout,
	})
	require.NoError(t, err)
	out, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String("b"), Key: aws.String("k")})
	require.NoError(t, err)
	defer func() { _ = out.Body.Close() }()
	got, err := s3test.ReadAllWithin(t, out.Body, 30*time.Second)
	require.NoError(t, err)
	require.Equal(t, "xxxxxxxx", string(got))
}

// TestGetObjectSlowConsumerIsNotCut: time the caller spends between two
// reads is not a stall; against a real S3 server, a reader that pauses
// longer than the timeout still reads the object.
func TestGetObjectSlowConsumerIsNotCut(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t)
	bucket := srv.NewBucket(t)
	c, err := awss3.NewClient(context.Background(), awss3.Options{
		Endpoint: srv.Endpoint, AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey,
		Region: s3test.Region, Timeout: stallTimeout,
	})
	require.NoError(t, err)
	ctx := context.Background()
	body := make([]byte, 256<<10)
	for i := range body {
		body[i] = byte('a' + i%26)
	}
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("k"), Body: bytes.NewReader(body)})
	require.NoError(t, err)
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("k")})
	require.NoError(t, err)
	defer func() { _ = out.Body.Close() }()
	first := make([]byte, 1024)
	_, err = io.ReadFull(out.Body, first)
	require.NoError(t, err)
	time.Sleep(2 * stallTimeout)
	rest, err := io.ReadAll(out.Body)
	require.NoError(t, err)
	require.Equal(t, body, append(first, rest...))
}

// TestIsNotFound covers the answers that mean "no such key", from a real
// server, and that other errors are not taken for them.
func TestIsNotFound(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t)
	bucket := srv.NewBucket(t)
	c := srv.Client(t)
	ctx := context.Background()
	_, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("missing")})
	require.True(t, awss3.IsNotFound(err), "GetObject NoSuchKey: %v", err)
	_, err = c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("missing")})
	require.True(t, awss3.IsNotFound(err), "HeadObject NotFound: %v", err)
	_, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("no-such-bucket-here"), Key: aws.String("k")})
	require.Error(t, err)
	require.False(t, awss3.IsNotFound(err), "a missing bucket is not a missing key: %v", err)
	require.False(t, awss3.IsNotFound(errors.New("NoSuchKey")), "strings are never compared")
	require.False(t, awss3.IsNotFound(nil))
}
