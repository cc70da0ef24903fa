// Package s3test starts a real S3 server, the Versity S3 Gateway, for tests.
// Code that talks to S3 is tested against it rather than against a mock of
// the SDK, so the requests, status codes and conditional writes are the ones
// a real server gives. A missing binary fails the test instead of skipping
// it, so a machine without the gateway can never report a silent pass.
package s3test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/awss3"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/testproc"
)

const (
	// binaryEnv names a versitygw binary to use instead of the cached one.
	binaryEnv = "VERSITYGW"
	// startTimeout bounds how long the gateway may take to answer; it
	// usually answers in well under a second.
	startTimeout = 5 * time.Second
	// Region is the region the gateway serves and the clients sign for.
	Region = "us-east-1"
)

// Server is one running gateway with its own root credentials and data
// folder. Stop and Restart keep the port and the folder, so a test can take
// S3 away and bring it back with the same objects.
type Server struct {
	// Endpoint is the gateway's base URL, e.g. http://127.0.0.1:40123.
	Endpoint string
	// AccessKey is the root access key the gateway accepts.
	AccessKey string
	// SecretKey is the root secret key the gateway accepts.
	SecretKey string

	bin  string
	addr string
	dir  string

	proc testproc.Restartable
}

// Start starts a gateway on a free loopback port with a posix backend in a
// temporary folder, waits until it answers and stops it when the test ends.
// It fails the test when the binary cannot be found or does not start.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := findBinary()
	if err != nil {
		t.Fatalf("s3test: %v", err)
	}
	addr, err := testproc.FreeAddr()
	if err != nil {
		t.Fatalf("s3test: pick a port: %v", err)
	}
	s := &Server{
		Endpoint:  "http://" + addr,
		AccessKey: randomHex(t, 10),
		SecretKey: randomHex(t, 20),
		bin:       bin,
		addr:      addr,
		dir:       t.TempDir(),
	}
	s.proc = testproc.Restartable{Command: s.command, ReadyURL: s.Endpoint + "/", Timeout: startTimeout}
	t.Cleanup(func() { _ = s.proc.Kill() })
	if err := s.proc.Start(); err != nil {
		t.Fatalf("s3test: gateway at %s: %v", s.addr, err)
	}
	return s
}

// Client returns an S3 client for the gateway with the root credentials and
// the same settings (path-style, bounded retries) the service uses. Its idle
// connections are closed when the test ends.
func (s *Server) Client(t testing.TB) *s3.Client {
	t.Helper()
	tr, ok := http.DefaultTransport.(*http.Transport)
	if !ok {
		t.Fatalf("s3test: http.DefaultTransport is a %T", http.DefaultTransport)
	}
	transport := tr.Clone()
	t.Cleanup(transport.CloseIdleConnections)
	c, err := awss3.NewClient(context.Background(), awss3.Options{
		Region:          Region,
		Endpoint:        s.Endpoint,
		AccessKeyID:     s.AccessKey,
		SecretAccessKey: s.SecretKey,
		HTTPClient:      &http.Client{Transport: transport},
	})
	if err != nil {
		t.Fatalf("s3test: new client: %v", err)
	}
	return c
}

// CreateBucket creates the bucket name, failing the test if it cannot.
func (s *Server) CreateBucket(t testing.TB, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if _, err := s.Client(t).CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("s3test: create bucket %q: %v", name, err)
	}
}

// NewBucket creates a bucket with a random name and returns the name, so
// parallel tests sharing a server do not see each other's objects.
func (s *Server) NewBucket(t testing.TB) string {
	t.Helper()
	name := "test-" + randomHex(t, 8)
	s.CreateBucket(t, name)
	return name
}

// CPUTime is the CPU time the running gateway has used since it started,
// for benchmarks that count what the S3 server took from the cores it
// shares with the code measured.
func (s *Server) CPUTime(t testing.TB) time.Duration {
	t.Helper()
	pid := s.proc.Pid()
	if pid == 0 {
		t.Fatalf("s3test: CPU time: the gateway is not running")
	}
	d, err := testproc.CPUTime(pid)
	if err != nil {
		t.Fatalf("s3test: CPU time: %v", err)
	}
	return d
}

// Stop kills the gateway, as a crash would, and waits for it to exit.
// Requests fail with connection errors until Restart.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	if err := s.proc.Kill(); err != nil {
		t.Fatalf("s3test: stop: %v", err)
	}
}

// Restart starts the gateway again on the same port over the same folder,
// stopping it first if it still runs, and waits until it answers.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	if err := s.proc.Restart(); err != nil {
		t.Fatalf("s3test: restart the gateway at %s: %v", s.addr, err)
	}
}

// command is one run of the gateway. An unauthenticated request is
// answered 403, which is enough to know the gateway serves requests.
func (s *Server) command() *exec.Cmd {
	cmd := exec.Command(s.bin, "--port", s.addr, "--quiet", "posix", s.dir)
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+s.AccessKey, "ROOT_SECRET_KEY="+s.SecretKey)
	return cmd
}

// findBinary looks for versitygw in $VERSITYGW, the module's .cache/bin and
// then PATH.
func findBinary() (string, error) {
	if p := os.Getenv(binaryEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("versitygw binary not found: %s=%s: %w; unset it or run `make versitygw`", binaryEnv, p, err)
		}
		return p, nil
	}
	if root, err := testproc.ModuleRoot(); err == nil {
		p := filepath.Join(root, ".cache", "bin", "versitygw")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	return "", errors.New("versitygw binary not found (looked at $VERSITYGW, <module root>/.cache/bin/versitygw and PATH): run `make versitygw`")
}

// randomHex returns n random bytes as lower-case hex.
func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("s3test: random: %v", err)
	}
	return hex.EncodeToString(b)
}
