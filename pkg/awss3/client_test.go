package awss3_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/awss3"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/awss3/s3test"
)

// isolate points the SDK's shared files at nothing and clears the
// environment's credentials, so only what a test sets is used. It uses
// t.Setenv, so its tests cannot run in parallel.
func isolate(t *testing.T) {
	t.Helper()
	missing := filepath.Join(t.TempDir(), "missing")
	t.Setenv("AWS_CONFIG_FILE", missing)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", missing)
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION"} {
		t.Setenv(k, "")
		require.NoError(t, os.Unsetenv(k))
	}
}

// writeCredentials writes a shared credentials file with a default profile
// holding wrong keys and a named profile holding keys.
func writeCredentials(t *testing.T, profile, access, secret string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "credentials")
	body := fmt.Sprintf("[default]\naws_access_key_id = wrong\naws_secret_access_key = wrong\n\n[%s]\naws_access_key_id = %s\naws_secret_access_key = %s\n", profile, access, secret)
	require.NoError(t, os.WriteFile(path, []byte(body), 0o600))
	return path
}

// canList reports whether the client's credentials are accepted.
func canList(t *testing.T, c *s3.Client) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := c.ListBuckets(ctx, &s3.ListBucketsInput{})
	return err
}

// TestNewClientCredentials covers the seed's credential settings against a
// real server: which source wins, and that wrong keys are refused. The
// environment holds wrong keys throughout, so a client that fell back to it
// would be refused.
func TestNewClientCredentials(t *testing.T) {
	isolate(t)
	srv := s3test.Start(t)
	good := writeCredentials(t, "grapher", srv.AccessKey, srv.SecretKey)
	goodDefault := filepath.Join(t.TempDir(), "credentials")
	require.NoError(t, os.WriteFile(goodDefault, fmt.Appendf(nil, "[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n", srv.AccessKey, srv.SecretKey), 0o600))

	tests := []struct {
		name    string
		env     map[string]string
		opts    awss3.Options
		wantErr bool
	}{
		{
			name: "static keys",
			env:  map[string]string{"AWS_ACCESS_KEY_ID": "wrong", "AWS_SECRET_ACCESS_KEY": "wrong"},
			opts: awss3.Options{AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey},
		},
		{
			name:    "wrong static keys are refused",
			opts:    awss3.Options{AccessKeyID: "nobody", SecretAccessKey: "nothing"},
			wantErr: true,
		},
		{
			name: "shared file and profile",
			env:  map[string]string{"AWS_ACCESS_KEY_ID": "wrong", "AWS_SECRET_ACCESS_KEY": "wrong"},
			opts: awss3.Options{CredentialsFile: good, CredentialsProfile: "grapher"},
		},
		{
			name: "shared file, default profile",
			opts: awss3.Options{CredentialsFile: goodDefault},
		},
		{
			name:    "shared file, profile with wrong keys",
			opts:    awss3.Options{CredentialsFile: good, CredentialsProfile: "default"},
			wantErr: true,
		},
		{
			name: "static keys win over the file",
			opts: awss3.Options{AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey, CredentialsFile: good, CredentialsProfile: "default"},
		},
		{
			name: "IAM uses the standard chain and ignores explicit keys",
			env:  map[string]string{"AWS_ACCESS_KEY_ID": srv.AccessKey, "AWS_SECRET_ACCESS_KEY": srv.SecretKey},
			opts: awss3.Options{UseIAM: true, AccessKeyID: "wrong", SecretAccessKey: "wrong", CredentialsFile: good, CredentialsProfile: "default"},
		},
		{
			name:    "IAM with wrong keys in the environment is refused",
			env:     map[string]string{"AWS_ACCESS_KEY_ID": "wrong", "AWS_SECRET_ACCESS_KEY": "wrong"},
			opts:    awss3.Options{UseIAM: true, AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey},
			wantErr: true,
		},
		{
			name: "no settings use the standard chain",
			env:  map[string]string{"AWS_ACCESS_KEY_ID": srv.AccessKey, "AWS_SECRET_ACCESS_KEY": srv.SecretKey},
			opts: awss3.Options{},
		},
		{
			name: "only one static key falls back to the chain",
			env:  map[string]string{"AWS_ACCESS_KEY_ID": srv.AccessKey, "AWS_SECRET_ACCESS_KEY": srv.SecretKey},
			opts: awss3.Options{AccessKeyID: "wrong"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			tc.opts.Endpoint = srv.Endpoint
			c, err := awss3.NewClient(context.Background(), tc.opts)
			require.NoError(t, err)
			err = canList(t, c)
			if tc.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
		})
	}
}

func TestNewClientBadSettings(t *testing.T) {
	isolate(t)
	good := writeCredentials(t, "grapher", "a", "b")
	tests := []struct {
		name string
		opts awss3.Options
	}{
		{"missing profile", awss3.Options{CredentialsFile: good, CredentialsProfile: "nobody"}},
		{"unreadable file", awss3.Options{CredentialsFile: filepath.Join(t.TempDir(), "none"), CredentialsProfile: "grapher"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := awss3.NewClient(context.Background(), tc.opts)
			require.Error(t, err)
			require.Contains(t, err.Error(), "credentials profile")
		})
	}
}

// TestNewClientEndpoint shows the endpoint is used path-style (a bucket
// subdomain of 127.0.0.1 would not resolve) with the default region, and
// that objects round-trip through it.
func TestNewClientEndpoint(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t)
	c, err := awss3.NewClient(context.Background(), awss3.Options{
		Endpoint: srv.Endpoint, AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey,
	})
	require.NoError(t, err)
	require.Equal(t, "us-east-1", c.Options().Region)
	require.True(t, c.Options().UsePathStyle)
	ctx := context.Background()
	_, err = c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("path-style")})
	require.NoError(t, err)
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("path-style"), Key: aws.String("k"), Body: strings.NewReader("v")})
	require.NoError(t, err)

	plain, err := awss3.NewClient(context.Background(), awss3.Options{Region: "eu-west-1", UseIAM: true})
	require.NoError(t, err)
	require.Equal(t, "eu-west-1", plain.Options().Region)
	require.False(t, plain.Options().UsePathStyle, "AWS itself is addressed virtual-host style")
}

// countingTransport counts the requests it carries.
type countingTransport struct {
	n    atomic.Int32
	next http.RoundTripper
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.next.RoundTrip(r)
}

// TestNewClientRetriesAreBounded points the client at a server that always
// answers 503 and counts the attempts of one call; it also shows the given
// HTTP client carries the requests.
func TestNewClientRetriesAreBounded(t *testing.T) {
	t.Parallel()
	var served atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		served.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer ts.Close()
	tr := &countingTransport{next: http.DefaultTransport}
	c, err := awss3.NewClient(context.Background(), awss3.Options{
		Endpoint: ts.URL, AccessKeyID: "a", SecretAccessKey: "b",
		HTTPClient: &http.Client{Transport: tr},
	})
	require.NoError(t, err)
	start := time.Now()
	_, err = c.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String("b"), Key: aws.String("k")})
	require.Error(t, err)
	require.Equal(t, int32(3), served.Load(), "one call makes exactly three attempts")
	require.Equal(t, int32(3), tr.n.Load(), "requests go through the given HTTP client")
	require.Less(t, time.Since(start), 10*time.Second)
}
