// Package awss3 builds the S3 client the built-in storage, marker and digester
// share, so credentials, endpoint and retry policy are decided in one place
// rather than by every backend.
package awss3

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

const (
	// defaultRegion signs requests when neither the options nor the
	// environment name a region, which is the usual case for an S3-compatible
	// server reached through an endpoint URL.
	defaultRegion = "us-east-1"
	// maxAttempts bounds how often one S3 call is tried, so a dead S3 costs a
	// caller seconds rather than minutes.
	maxAttempts = 3
	// maxBackoff caps the wait between two attempts.
	maxBackoff = 2 * time.Second
	// defaultProfile is the shared-credentials profile used when only a file
	// is named, as the AWS tools do.
	defaultProfile = "default"
)

// Options says how to reach S3 and which credentials to use. It mirrors the
// seed's USE_IAM and AWS_* settings.
type Options struct {
	// Region is the bucket's region; empty means the environment's region,
	// else us-east-1.
	Region string
	// Endpoint is the base URL of an S3-compatible server (AWS_ENDPOINT_URL_S3
	// or AWS_ENDPOINT_URL). When set, buckets are addressed path-style,
	// because such servers rarely resolve bucket subdomains.
	Endpoint string
	// UseIAM selects the SDK's standard credential chain (environment, shared
	// files, web identity, container and instance roles) and ignores the
	// explicit credentials below.
	UseIAM bool
	// CredentialsFile is a shared credentials file to read, when UseIAM is
	// false and no static keys are given.
	CredentialsFile string
	// CredentialsProfile is the profile to read from the shared credentials
	// file; empty means "default".
	CredentialsProfile string
	// AccessKeyID and SecretAccessKey are static keys used when UseIAM is
	// false and both are set.
	AccessKeyID string
	// SecretAccessKey pairs with AccessKeyID.
	SecretAccessKey string
	// HTTPClient, when set, carries every S3 request and owns its TLS
	// settings (AWS_CA_BUNDLE is then not applied to it); nil means the SDK's
	// default client, bounded by Timeout.
	HTTPClient *http.Client
	// Timeout bounds each wait of an S3 call on the SDK's default client: to
	// connect, for the response headers, and for each write of a request
	// body to make progress. An S3 that never accepts, never answers or stops
	// reading an upload then fails the attempt after Timeout (retried a
	// bounded number of times) instead of hanging the caller. On every client,
	// the given HTTPClient included, each read of a response body must also
	// make progress within Timeout, else it fails with an error wrapping
	// ErrBodyStalled. Bodies are not bounded as a whole: graphs are streamed.
	// Zero means no bound.
	Timeout time.Duration
}

// NewClient returns an S3 client configured from o. Calls retry a bounded
// number of times with jittered backoff; it fails only when the credential
// settings themselves cannot be loaded.
func NewClient(ctx context.Context, o Options) (*s3.Client, error) {
	cfg, err := LoadConfig(ctx, o)
	if err != nil {
		return nil, err
	}
	return s3.NewFromConfig(cfg, func(so *s3.Options) {
		if o.HTTPClient != nil {
			// Set here rather than through config.WithHTTPClient: the config
			// loader refuses a plain *http.Client when AWS_CA_BUNDLE is set.
			so.HTTPClient = o.HTTPClient
		}
		if o.Timeout > 0 {
			so.HTTPClient = &idleBodyClient{next: so.HTTPClient, timeout: o.Timeout}
		}
		if o.Endpoint != "" {
			so.BaseEndpoint = aws.String(o.Endpoint)
			so.UsePathStyle = true
			if skipsPayloadSigning(o.Endpoint) {
				so.APIOptions = append(so.APIOptions, addUnsignedPayload)
			}
		}
	}), nil
}

// LoadConfig loads the AWS configuration o asks for: its region, its
// credential source (USE_IAM, static keys or a shared credentials file),
// bounded retries and, without o.HTTPClient, the default client bounded by
// o.Timeout. Other AWS clients (the SQS queue) share it with S3, so every
// service is reached with the same credentials. o.Endpoint and o.HTTPClient
// are for the caller to apply to its own client's options.
func LoadConfig(ctx context.Context, o Options) (aws.Config, error) {
	opts := []func(*config.LoadOptions) error{
		config.WithDefaultRegion(defaultRegion),
		config.WithRetryer(newRetryer),
	}
	if o.Region != "" {
		opts = append(opts, config.WithRegion(o.Region))
	}
	credOpts, err := credentialOptions(ctx, o)
	if err != nil {
		return aws.Config{}, err
	}
	opts = append(opts, credOpts...)
	if o.HTTPClient == nil && o.Timeout > 0 {
		// A BuildableClient, unlike a plain *http.Client, still gets
		// AWS_CA_BUNDLE applied by the config loader.
		opts = append(opts, config.WithHTTPClient(boundedClient(o.Timeout)))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load aws config: %w", err)
	}
	return cfg, nil
}

// newRetryer is the standard retryer with fewer, shorter waits and no client
// side retry quota: the quota would turn every call into a single attempt
// for a while after an outage, which is when retries matter most.
func newRetryer() aws.Retryer {
	return retry.NewStandard(func(so *retry.StandardOptions) {
		so.MaxAttempts = maxAttempts
		so.MaxBackoff = maxBackoff
		so.RateLimiter = ratelimit.None
	})
}

// credentialOptions picks the credential source the seed's settings ask for.
func credentialOptions(ctx context.Context, o Options) ([]func(*config.LoadOptions) error, error) {
	switch {
	case o.UseIAM:
		return nil, nil
	case o.AccessKeyID != "" && o.SecretAccessKey != "":
		return []func(*config.LoadOptions) error{
			config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(o.AccessKeyID, o.SecretAccessKey, "")),
		}, nil
	case o.CredentialsFile != "" || o.CredentialsProfile != "":
		return sharedFileOptions(ctx, o)
	default:
		return nil, nil
	}
}

// sharedFileOptions reads the named profile. Keys found in it are used as
// they are, so an AWS_ACCESS_KEY_ID left in the environment cannot override
// the file the operator chose; a profile without keys (a role, SSO or
// credential_process) is handed to the SDK to resolve.
func sharedFileOptions(ctx context.Context, o Options) ([]func(*config.LoadOptions) error, error) {
	profile := o.CredentialsProfile
	if profile == "" {
		profile = defaultProfile
	}
	var files []string
	if o.CredentialsFile != "" {
		files = []string{o.CredentialsFile}
	}
	shared, err := config.LoadSharedConfigProfile(ctx, profile, func(lo *config.LoadSharedConfigOptions) {
		if files != nil {
			lo.CredentialsFiles = files
		}
	})
	if err != nil {
		return nil, fmt.Errorf("load aws credentials profile %q (file %q): %w", profile, o.CredentialsFile, err)
	}
	if shared.Credentials.HasKeys() {
		return []func(*config.LoadOptions) error{
			config.WithCredentialsProvider(credentials.StaticCredentialsProvider{Value: shared.Credentials}),
		}, nil
	}
	opts := []func(*config.LoadOptions) error{config.WithSharedConfigProfile(profile)}
	if files != nil {
		opts = append(opts, config.WithSharedCredentialsFiles(files))
	}
	return opts, nil
}

// boundedClient is the SDK's default client with its waits bounded by
// timeout; see Options.Timeout.
func boundedClient(timeout time.Duration) *awshttp.BuildableClient {
	return awshttp.NewBuildableClient().WithDialerOptions(func(d *net.Dialer) {
		if d.Timeout <= 0 || timeout < d.Timeout {
			d.Timeout = timeout
		}
	}).WithTransportOptions(func(t *http.Transport) {
		t.ResponseHeaderTimeout = timeout
		dial := t.DialContext
		if dial == nil {
			return
		}
		t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dial(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &writeDeadlineConn{Conn: c, timeout: timeout}, nil
		}
	})
}

// writeChunk is how much of a write must go out within the timeout: a
// progress bound (a few KiB/s at the default timeout), not one on the size
// of a part.
const writeChunk = 64 << 10

// writeDeadlineConn fails a write that makes no progress: a peer that stops
// reading (its window closed) fails the write after timeout rather than
// blocking it for good, which no response-header timeout can catch because
// the request is never fully sent. Large writes go out in chunks, each with
// its own deadline, so a slow link is not mistaken for a dead one.
type writeDeadlineConn struct {
	net.Conn
	timeout time.Duration
}

func (c *writeDeadlineConn) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		if err := c.Conn.SetWriteDeadline(time.Now().Add(c.timeout)); err != nil {
			return n, err
		}
		m, err := c.Conn.Write(p[:min(len(p), writeChunk)])
		n += m
		if err != nil {
			return n, err
		}
		p = p[m:]
	}
	return n, nil
}
