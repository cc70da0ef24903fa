package s3test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/awss3"
)

// Stall is a loopback HTTP peer that answers every request with 200, a
// Content-Length of a megabyte and the first bytes of the body, then sends
// nothing more while keeping the connection open: the S3 that hangs in the
// middle of a GetObject body. Closed receives once per connection the
// client closed, so a test can see the client gave the connection up.
type Stall struct {
	// Endpoint is the peer's base URL, for awss3.Options.Endpoint.
	Endpoint string
	// Prefix is the part of the body sent before the stall.
	Prefix []byte
	// Closed receives a value each time a client closes its connection.
	Closed chan struct{}
}

// StartStall starts a Stall on a free loopback port; it stops when the test
// ends, releasing any connection still held.
func StartStall(t testing.TB) *Stall {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("s3test: stall listen: %v", err)
	}
	s := &Stall{
		Endpoint: "http://" + ln.Addr().String(),
		Prefix:   []byte("2 111122223333 eni-0 10.0.0.1 10.0.0.2 443 1024 6 1 40 1 2 ACCEPT OK\n"),
		Closed:   make(chan struct{}, 16),
	}
	done := make(chan struct{})
	t.Cleanup(func() {
		close(done)
		_ = ln.Close()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(c, done)
		}
	}()
	return s
}

func (s *Stall) serve(c net.Conn, done <-chan struct{}) {
	defer func() { _ = c.Close() }()
	go func() {
		<-done
		_ = c.Close()
	}()
	req, err := http.ReadRequest(bufio.NewReader(c))
	if err != nil {
		return
	}
	_, _ = io.Copy(io.Discard, req.Body)
	header := fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nLast-Modified: %s\r\nContent-Length: %d\r\n\r\n",
		time.Now().UTC().Format(http.TimeFormat), 1<<20)
	if _, err := c.Write(append([]byte(header), s.Prefix...)); err != nil {
		return
	}
	// Send nothing more; a read returns only when the client closes.
	if _, err := c.Read(make([]byte, 1)); err != nil {
		select {
		case s.Closed <- struct{}{}:
		default:
		}
	}
}

// Client returns an S3 client for the peer, built as the service builds its
// own (awss3.NewClient), with timeout as Options.Timeout and given as its
// HTTP client when not nil.
func (s *Stall) Client(t testing.TB, timeout time.Duration, given *http.Client) *s3.Client {
	t.Helper()
	c, err := awss3.NewClient(context.Background(), awss3.Options{
		Endpoint: s.Endpoint, AccessKeyID: "stall", SecretAccessKey: "stall",
		Region: Region, Timeout: timeout, HTTPClient: given,
	})
	if err != nil {
		t.Fatalf("s3test: stall client: %v", err)
	}
	return c
}

// ReadAllWithin reads r to its end and fails the test if that takes longer
// than limit, which is what a read without a bound does against a Stall.
func ReadAllWithin(t testing.TB, r io.Reader, limit time.Duration) ([]byte, error) {
	t.Helper()
	type result struct {
		b   []byte
		err error
	}
	ch := make(chan result, 1)
	go func() {
		b, err := io.ReadAll(r)
		ch <- result{b, err}
	}()
	select {
	case res := <-ch:
		return res.b, res.err
	case <-time.After(limit):
		t.Fatalf("s3test: read still blocked after %s", limit)
		return nil, nil
	}
}
