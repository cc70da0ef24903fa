package awss3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// ErrBodyStalled is returned (wrapped) by a Read of an S3 response body that
// received nothing for Options.Timeout: the peer stays connected but stopped
// sending. The request is cancelled, which closes its connection.
var ErrBodyStalled = errors.New("s3 response body stalled")

// idleBodyClient bounds every wait for more of a response body, so that a
// GetObject reader (a graph being served, a flow log being digested) fails
// after timeout without progress instead of blocking for good. The bound is
// per Read: a slow but moving body and a slow consumer are not cut.
type idleBodyClient struct {
	next    s3.HTTPClient
	timeout time.Duration
}

// Do implements s3.HTTPClient. Each request runs under its own cancellable
// context; the body's watchdog cancels it when a Read stalls, which is what
// unblocks the Read.
func (c *idleBodyClient) Do(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancel(req.Context())
	resp, err := c.next.Do(req.WithContext(ctx))
	if err != nil {
		cancel()
		return resp, err
	}
	b := &idleBody{body: resp.Body, timeout: c.timeout, cancel: cancel}
	b.timer = time.AfterFunc(c.timeout, b.stall)
	b.timer.Stop()
	resp.Body = b
	return resp, nil
}

// idleBody is a response body whose Reads each have timeout to return.
type idleBody struct {
	body    io.ReadCloser
	timeout time.Duration
	cancel  context.CancelFunc
	timer   *time.Timer
	stalled atomic.Bool
}

func (b *idleBody) stall() {
	b.stalled.Store(true)
	b.cancel()
}

// Read implements io.Reader.
func (b *idleBody) Read(p []byte) (int, error) {
	if b.stalled.Load() {
		return 0, b.stallError()
	}
	b.timer.Reset(b.timeout)
	n, err := b.body.Read(p)
	if !b.timer.Stop() {
		return n, b.stallError()
	}
	return n, err
}

func (b *idleBody) stallError() error {
	return fmt.Errorf("read s3 response: no data for %s: %w", b.timeout, ErrBodyStalled)
}

// Close implements io.Closer: it closes the body and releases the request's
// context.
func (b *idleBody) Close() error {
	b.timer.Stop()
	err := b.body.Close()
	b.cancel()
	return err
}
