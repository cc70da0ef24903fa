package digester

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
)

const (
	// DefaultPollInterval is used when HTTP.PollInterval is not positive; the
	// seed's documented example is one second.
	DefaultPollInterval = time.Second

	// drainBytes bounds how much of a body is read before closing it, so the
	// connection can be reused without letting a peer make us read forever.
	drainBytes = 64 << 10
)

// ErrDigestNotReady is returned (wrapped) by HTTP.Digest when the digest is
// still not ready once PollTimeout has passed. It is not permanent: the
// digester may finish later.
var ErrDigestNotReady = errors.New("digest not ready")

// HTTP is a types.Digester that asks a running vpcflow-digesterd for digests:
// it creates the digest with a POST and polls it with GET until it is ready.
type HTTP struct {
	// Endpoint is vpcflow-digesterd's base URL (DIGESTER_ENDPOINT). Its path is
	// kept; start and stop are added to its query.
	Endpoint *url.URL
	// Client makes the calls; nil means http.DefaultClient. It should carry a
	// per-call deadline and bounded retries of its own.
	Client *http.Client
	// PollInterval is the wait between two polls (DIGESTER_POLLING_INTERVAL);
	// not positive means DefaultPollInterval.
	PollInterval time.Duration
	// PollTimeout bounds the time spent waiting for the digest to be ready
	// (DIGESTER_POLLING_TIMEOUT); not positive means poll until ctx ends. It
	// does not bound reading a digest that is ready.
	PollTimeout time.Duration
	// MaxBytes bounds the size of the (decompressed) digest; reading past it
	// fails with an error wrapping types.ErrDigestTooLarge. 0 means no limit.
	MaxBytes int64
	// ReadTimeout bounds each wait for more of a ready digest's body: a
	// digester that stops sending mid-body fails the read after this long
	// instead of holding the job (and its progress mark) forever. It is not
	// a bound on the whole body, which may be large. Not positive means no
	// bound.
	ReadTimeout time.Duration
}

var _ types.Digester = (*HTTP)(nil)

// Digest asks vpcflow-digesterd for the digest of [start, stop) and waits for
// it. The returned reader streams the digest from the response body,
// decompressing it when it is gzip; the caller closes it. Errors that no retry
// can fix (the digester rejects the window as invalid) are permanent
// (types.IsPermanent). A nil Endpoint gives an error wrapping types.ErrNoSource.
func (h *HTTP) Digest(ctx context.Context, start, stop time.Time) (io.ReadCloser, error) {
	if h.Endpoint == nil {
		return nil, fmt.Errorf("digester: no DIGESTER_ENDPOINT: %w", types.ErrNoSource)
	}
	u := digestURL(h.Endpoint, start, stop)

	res, err := h.do(ctx, http.MethodPost, u)
	if err != nil {
		return nil, fmt.Errorf("digester: create digest: %w", err)
	}
	switch res.StatusCode {
	case http.StatusAccepted, http.StatusConflict:
		drainClose(res.Body)
	default:
		return nil, statusError("create digest", res)
	}
	return h.poll(ctx, u)
}

// poll GETs the digest until it is ready, the poll timeout passes or ctx ends.
func (h *HTTP) poll(ctx context.Context, u string) (io.ReadCloser, error) {
	interval := h.PollInterval
	if interval <= 0 {
		interval = DefaultPollInterval
	}
	began := time.Now()

	// The poll timeout must also cut a poll request that hangs, but must not cut
	// the body of a ready digest: the requests run under pollCtx, which a timer
	// cancels; once a digest is ready the timer is stopped and pollCtx lives
	// until the body is closed.
	pollCtx, cancel := context.WithCancel(ctx)
	var timedOut atomic.Bool
	var timer *time.Timer
	if h.PollTimeout > 0 {
		timer = time.AfterFunc(h.PollTimeout, func() {
			timedOut.Store(true)
			cancel()
		})
	}
	stopTimer := func() bool { return timer == nil || timer.Stop() }
	fail := func(polls int, err error) (io.ReadCloser, error) {
		stopTimer()
		cancel()
		if timedOut.Load() && ctx.Err() == nil {
			return nil, fmt.Errorf("digester: %w after %s (%d polls, timeout %s)",
				ErrDigestNotReady, time.Since(began).Round(time.Millisecond), polls, h.PollTimeout)
		}
		return nil, err
	}

	for polls := 1; ; polls++ {
		res, err := h.do(pollCtx, http.MethodGet, u)
		if err != nil {
			return fail(polls, fmt.Errorf("digester: poll %d after %s: %w",
				polls, time.Since(began).Round(time.Millisecond), err))
		}
		switch res.StatusCode {
		case http.StatusOK:
			if !stopTimer() {
				// The timer fired while the headers arrived: pollCtx is cancelled
				// and the body is unusable.
				drainClose(res.Body)
				return fail(polls, context.DeadlineExceeded)
			}
			r, err := newBodyReader(res.Body, h.MaxBytes, h.ReadTimeout, cancel)
			if err != nil {
				return nil, fmt.Errorf("digester: read digest: %w", err)
			}
			return r, nil
		case http.StatusNoContent:
			drainClose(res.Body)
		default:
			return fail(polls, statusError("poll digest", res))
		}

		wait := time.NewTimer(interval)
		select {
		case <-pollCtx.Done():
			wait.Stop()
			return fail(polls, fmt.Errorf("digester: digest not ready after %s (%d polls): %w",
				time.Since(began).Round(time.Millisecond), polls, context.Cause(ctx)))
		case <-wait.C:
		}
	}
}

func (h *HTTP) do(ctx context.Context, method, u string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, fmt.Errorf("new %s request: %w", method, err)
	}
	// Asked for here, a gzip digest reaches newBodyReader as it was sent,
	// and is decompressed there by klauspost/compress, about a quarter
	// faster than the transport's compress/gzip (BenchmarkGunzip).
	req.Header.Set("Accept-Encoding", "gzip")
	client := h.Client
	if client == nil {
		client = http.DefaultClient
	}
	res, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, u, err)
	}
	return res, nil
}

// digestURL is the endpoint with start and stop (UTC, RFC 3339 with
// nanoseconds) added to its query.
func digestURL(endpoint *url.URL, start, stop time.Time) string {
	u := *endpoint
	if u.Path == "" {
		u.Path = "/"
	}
	q := u.Query()
	q.Set("start", start.UTC().Format(time.RFC3339Nano))
	q.Set("stop", stop.UTC().Format(time.RFC3339Nano))
	u.RawQuery = q.Encode()
	return u.String()
}

// statusError describes an unexpected response by its status alone and
// closes the body: what the digester (or a host it redirected to) wrote is
// never quoted, so it cannot reach a log reader or a client through the
// error. A 4xx that a retry cannot fix (a rejected window, a refused
// request) is permanent.
func statusError(op string, res *http.Response) error {
	drainClose(res.Body)
	var err error = &StatusError{Op: op, Status: res.StatusCode}
	if permanentStatus(res.StatusCode) {
		return types.Permanent(err)
	}
	return err
}

// StatusError is an unexpected answer of the digester, described by its
// status alone so that nothing the digester wrote is carried along.
type StatusError struct {
	// Op is what was asked: "create digest" or "poll digest".
	Op string
	// Status is the HTTP status the digester answered.
	Status int
}

// Error implements error.
func (e *StatusError) Error() string {
	return fmt.Sprintf("digester: %s: unexpected status %d", e.Op, e.Status)
}

// permanentStatus reports whether a response status says the same request can
// never succeed: a 4xx other than not found (the digest may be made again),
// timeout, too early and too many requests.
func permanentStatus(code int) bool {
	switch code {
	case http.StatusNotFound, http.StatusRequestTimeout, http.StatusConflict,
		http.StatusTooEarly, http.StatusTooManyRequests:
		return false
	}
	return code >= 400 && code < 500
}

// drainClose reads what is left of a body, up to a bound, and closes it so
// the connection can be reused.
func drainClose(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, drainBytes))
	_ = body.Close()
}

// errReadAfterClose is returned by a Read after Close.
var errReadAfterClose = errors.New("digester: read after close")

// bodyReader streams a ready digest: it decompresses gzip bodies, enforces
// the size limit and the read timeout and, on Close, drains and closes the
// body and releases the poll context.
type bodyReader struct {
	body    io.ReadCloser
	gz      *gzip.Reader
	r       io.Reader
	release context.CancelFunc
	once    sync.Once
	closed  atomic.Bool
	// stall bounds one Read; when it passes, release cancels the request,
	// which unblocks the read, and stalled records why.
	stall   time.Duration
	stalled atomic.Bool
}

func newBodyReader(body io.ReadCloser, maxBytes int64, stall time.Duration, release context.CancelFunc) (*bodyReader, error) {
	br := &bodyReader{body: body, release: release, stall: stall}
	buf := bufio.NewReader(body)
	magic, err := buf.Peek(2)
	switch {
	case err == nil && magic[0] == 0x1f && magic[1] == 0x8b:
		gz, err := gzip.NewReader(buf)
		if err != nil {
			_ = br.Close()
			return nil, fmt.Errorf("gzip header: %w", err)
		}
		br.gz = gz
		br.r = gz
	case err == nil || errors.Is(err, io.EOF):
		// A body shorter than the magic is a (nearly) empty plain digest.
		br.r = buf
	default:
		_ = br.Close()
		return nil, err
	}
	if maxBytes > 0 {
		br.r = &limitReader{r: br.r, left: maxBytes, max: maxBytes}
	}
	return br, nil
}

// Read reads the (decompressed) digest. Corrupt compressed data is a
// malformed digest (permanent: the digester would send the same bytes
// again); a body cut short or stalled is not.
func (b *bodyReader) Read(p []byte) (int, error) {
	if b.closed.Load() {
		return 0, errReadAfterClose
	}
	if b.stalled.Load() {
		return 0, b.stallError()
	}
	var timer *time.Timer
	if b.stall > 0 {
		timer = time.AfterFunc(b.stall, func() {
			b.stalled.Store(true)
			b.release()
		})
	}
	n, err := b.r.Read(p)
	if timer != nil && !timer.Stop() {
		return n, b.stallError()
	}
	var corrupt flate.CorruptInputError
	var internal flate.InternalError // how some corrupt streams are reported
	switch {
	case err == nil || errors.Is(err, io.EOF):
	case errors.Is(err, gzip.ErrChecksum), errors.Is(err, gzip.ErrHeader), errors.As(err, &corrupt), errors.As(err, &internal):
		err = fmt.Errorf("digester: read digest: %w: %w", types.ErrMalformedDigest, err)
	default:
		err = fmt.Errorf("digester: read digest: %w", err)
	}
	return n, err
}

func (b *bodyReader) stallError() error {
	return fmt.Errorf("digester: read digest: no data for %s: %w", b.stall, context.DeadlineExceeded)
}

// Close drains and closes the response body and releases its context. The
// drain is bounded by the read timeout too, so a digester that stalls after
// the reader stopped early (a digest too large, a failed job) cannot hold
// Close.
func (b *bodyReader) Close() error {
	var err error
	b.once.Do(func() {
		b.closed.Store(true)
		if b.gz != nil {
			_ = b.gz.Close()
		}
		if b.stall > 0 {
			timer := time.AfterFunc(b.stall, b.release)
			defer timer.Stop()
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(b.body, drainBytes))
		err = b.body.Close()
		b.release()
	})
	return err
}

// limitReader returns the first max bytes of r, then an error wrapping
// types.ErrDigestTooLarge if r holds more.
type limitReader struct {
	r         io.Reader
	left, max int64
	err       error
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.err != nil {
		return 0, l.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	// Ask for one byte more than allowed so a digest of exactly max bytes
	// passes and a larger one is caught.
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1]
	}
	n, err := l.r.Read(p)
	if int64(n) <= l.left {
		l.left -= int64(n)
		return n, err
	}
	n = int(l.left)
	l.left = 0
	l.err = fmt.Errorf("digest larger than %d bytes (GRAPHERD_MAX_DIGEST_BYTES): %w", l.max, types.ErrDigestTooLarge)
	return n, l.err
}
