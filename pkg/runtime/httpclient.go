package runtime

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-retryablehttp"
)

// Defaults of the outbound HTTP client.
const (
	// DefaultMinBackoff is the wait before the first retry.
	DefaultMinBackoff = 100 * time.Millisecond
	// DefaultMaxBackoff caps the wait between two attempts, Retry-After
	// included.
	DefaultMaxBackoff = 2 * time.Second
	// DefaultMaxIdleConnsPerHost is how many keep-alive connections are kept
	// per peer: the digester and the event bus are single hosts polled
	// often.
	DefaultMaxIdleConnsPerHost = 16
	// maxRedirects matches net/http's own limit.
	maxRedirects = 10
)

// errTooManyRedirects stops a redirect loop; it is not retried.
var errTooManyRedirects = errors.New("stopped after too many redirects")

// ClientOptions configure NewHTTPClient. Zero values pick the defaults: no
// whole-call timeout, no response-header timeout, no retry, DefaultMinBackoff
// and DefaultMaxBackoff, no logging.
type ClientOptions struct {
	// Timeout bounds the whole call: every attempt, the waits between them
	// and reading the response body. 0 leaves it to the request's context;
	// use 0 for a caller that streams a large body.
	Timeout time.Duration
	// ResponseHeaderTimeout bounds the wait for the response headers of one
	// attempt, after the request is written.
	ResponseHeaderTimeout time.Duration
	// Retries is how many times a failed attempt is repeated.
	Retries int
	// MinBackoff is the base of the exponential backoff.
	MinBackoff time.Duration
	// MaxBackoff caps each wait.
	MaxBackoff time.Duration
	// Logger receives the retry library's messages at debug level; nil
	// silences them. The caller logs the final outcome, once.
	Logger *slog.Logger
}

// NewHTTPClient returns an *http.Client that retries, with exponential
// backoff and jitter, what can succeed on a retry: transport errors (refused
// or dropped connections, timeouts of one attempt) and 500, 502 and 503
// answers. Context cancellation, TLS verification failures and every other
// status are returned at once. Redirects are followed only for GET and HEAD
// and only on the same host (see checkRedirect). After the last attempt the
// last response is returned as is, so the caller sees the status; the body
// of a request is buffered and sent again on each attempt, so keep bodies
// small. Waits end
// early when the request's context is done. Connections are kept alive and
// reused (up to DefaultMaxIdleConnsPerHost idle per host).
//
// The client's CloseIdleConnections closes the pooled connections; call it
// when the client is no longer used.
func NewHTTPClient(o ClientOptions) *http.Client {
	minWait := orDuration(o.MinBackoff, DefaultMinBackoff)
	maxWait := max(orDuration(o.MaxBackoff, DefaultMaxBackoff), minWait)

	base := &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   10 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   DefaultMaxIdleConnsPerHost,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		ResponseHeaderTimeout: max(o.ResponseHeaderTimeout, 0),
	}

	rc := retryablehttp.NewClient()
	rc.HTTPClient = &http.Client{
		Transport: base,
		// The outer client below follows redirects, each hop retried on its
		// own; this one hands every 3xx up to it.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	rc.Logger = nil
	if o.Logger != nil {
		rc.Logger = retryLogger{l: o.Logger}
	}
	rc.RetryMax = max(o.Retries, 0)
	rc.RetryWaitMin = minWait
	rc.RetryWaitMax = maxWait
	rc.CheckRetry = retryPolicy
	rc.Backoff = backoff
	rc.ErrorHandler = retryablehttp.PassthroughErrorHandler

	c := rc.StandardClient()
	c.Transport = &retryingTransport{rt: c.Transport, base: base}
	c.CheckRedirect = checkRedirect
	c.Timeout = max(o.Timeout, 0)
	return c
}

// checkRedirect follows a redirect only for a GET or HEAD and only to the
// same scheme and host: a POST is never sent on (its body to wherever the
// peer points), and no redirect hands the call to another host, which could
// answer with anything it likes. Otherwise the 3xx answer itself is
// returned, for the caller to treat as an unexpected status.
func checkRedirect(req *http.Request, via []*http.Request) error {
	first := via[0]
	if first.Method != http.MethodGet && first.Method != http.MethodHead {
		return http.ErrUseLastResponse
	}
	if req.URL.Scheme != first.URL.Scheme || req.URL.Host != first.URL.Host {
		return http.ErrUseLastResponse
	}
	if len(via) >= maxRedirects {
		return errTooManyRedirects
	}
	return nil
}

// retryingTransport is the retryablehttp round tripper plus
// CloseIdleConnections, which it lacks, so http.Client.CloseIdleConnections
// reaches the pooled connections.
type retryingTransport struct {
	rt   http.RoundTripper
	base *http.Transport
}

// RoundTrip implements http.RoundTripper.
func (t *retryingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.rt.RoundTrip(req)
	if err != nil && resp != nil {
		// Defensive: net/http ignores a response returned with an error,
		// which would leak its connection.
		_ = resp.Body.Close()
		return nil, err
	}
	return resp, err
}

// CloseIdleConnections closes the keep-alive connections not in use.
func (t *retryingTransport) CloseIdleConnections() { t.base.CloseIdleConnections() }

// retryPolicy decides whether an attempt is repeated. It never returns an
// error together with a response: net/http would drop the response without
// closing its body.
func retryPolicy(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		if resp != nil {
			return false, nil
		}
		return false, err
	}
	if err != nil {
		if isPermanentTransportError(err) {
			return false, err
		}
		return true, nil
	}
	switch resp.StatusCode {
	case http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable:
		return true, nil
	}
	return false, nil
}

// isPermanentTransportError reports errors no retry can fix: cancellation,
// an untrusted certificate, a plain-HTTP peer on an https URL, a redirect
// loop. A deadline error with the request's context still live comes from
// one attempt (dial or ResponseHeaderTimeout) and is retried; the call's own
// deadline is caught by the context check in retryPolicy.
func isPermanentTransportError(err error) bool {
	var (
		verifyErr    *tls.CertificateVerificationError
		unknownAuth  x509.UnknownAuthorityError
		hostnameErr  x509.HostnameError
		invalidCert  x509.CertificateInvalidError
		recordHeader tls.RecordHeaderError
	)
	return errors.Is(err, context.Canceled) ||
		errors.Is(err, errTooManyRedirects) ||
		errors.Is(err, http.ErrSchemeMismatch) ||
		errors.As(err, &verifyErr) ||
		errors.As(err, &unknownAuth) ||
		errors.As(err, &hostnameErr) ||
		errors.As(err, &invalidCert) ||
		errors.As(err, &recordHeader)
}

// backoff waits minWait·2^attempt, capped at maxWait, with equal jitter (a
// random point in the upper half) so clients that failed together do not
// retry together. A 503's Retry-After is honoured up to maxWait.
func backoff(minWait, maxWait time.Duration, attempt int, resp *http.Response) time.Duration {
	if resp != nil && resp.StatusCode == http.StatusServiceUnavailable {
		if d, ok := retryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
			return min(d, maxWait)
		}
	}
	d := minWait
	for i := 0; i < attempt && d < maxWait; i++ {
		d *= 2
	}
	d = min(d, maxWait)
	half := d / 2
	return half + rand.N(d-half+1)
}

// retryAfter parses a Retry-After value: seconds or an HTTP date.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 || n > int64(24*time.Hour/time.Second) {
			return 0, false
		}
		return time.Duration(n) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}

// retryLogger adapts slog to retryablehttp's LeveledLogger, all at debug:
// each failed attempt is routine, the caller logs the outcome.
type retryLogger struct {
	l *slog.Logger
}

var _ retryablehttp.LeveledLogger = retryLogger{}

// Error implements retryablehttp.LeveledLogger.
func (r retryLogger) Error(msg string, kv ...any) { r.l.Debug("http client: "+msg, kv...) }

// Info implements retryablehttp.LeveledLogger.
func (r retryLogger) Info(msg string, kv ...any) { r.l.Debug("http client: "+msg, kv...) }

// Debug implements retryablehttp.LeveledLogger.
func (r retryLogger) Debug(msg string, kv ...any) { r.l.Debug("http client: "+msg, kv...) }

// Warn implements retryablehttp.LeveledLogger.
func (r retryLogger) Warn(msg string, kv ...any) { r.l.Debug("http client: "+msg, kv...) }
