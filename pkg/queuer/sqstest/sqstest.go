// Package sqstest starts a real SQS server, local-aws-sqs, for tests. SQS
// code is tested against it rather than against a mock of the SDK, so the
// requests, receive counts, visibility timeouts and redrive are the ones a
// server gives. `make sqs-server` (a step of `make test`) installs it into
// .cache/sqsserver; a missing install fails the test instead of skipping it.
package sqstest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/awss3"
)

const (
	// installEnv names the folder `make sqs-server` installs local-aws-sqs
	// into (its node_modules is used); the Makefile exports it.
	installEnv = "LOCAL_AWS_SQS"
	// startTimeout bounds how long the server may take to answer.
	startTimeout = 10 * time.Second
	// pollInterval is how often a starting server is probed.
	pollInterval = 20 * time.Millisecond
	// Region is the region the clients sign for.
	Region = "us-east-1"
	// AccessKey and SecretKey are the keys the clients sign with; the
	// server accepts any.
	AccessKey = "test-access-key"
	// SecretKey pairs with AccessKey.
	SecretKey = "test-secret-key"
)

// Server is one running local-aws-sqs. Stop and Restart keep the port; the
// server keeps its queues in memory, so a restart starts it empty.
type Server struct {
	// Endpoint is the server's base URL, e.g. http://127.0.0.1:40123, the
	// value of AWS_ENDPOINT_URL_SQS.
	Endpoint string

	node, script, modules string
	port                  int

	mu   sync.Mutex
	proc *process
}

// process is one run of the server.
type process struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	err  error
}

// Start starts a server on a free loopback port, waits until it answers
// and stops it when the test ends. It fails the test when node or the
// installed package cannot be found, or the server does not start.
func Start(t testing.TB) *Server {
	t.Helper()
	node, script, modules, err := find()
	if err != nil {
		t.Fatalf("sqstest: %v", err)
	}
	port, err := freePort()
	if err != nil {
		t.Fatalf("sqstest: pick a port: %v", err)
	}
	s := &Server{
		Endpoint: "http://127.0.0.1:" + strconv.Itoa(port),
		node:     node, script: script, modules: modules, port: port,
	}
	t.Cleanup(func() { _ = s.stop() })
	if err := s.start(); err != nil {
		t.Fatalf("sqstest: %v", err)
	}
	return s
}

// Client returns an SQS client for the server, built from the same AWS
// configuration the service uses. Its idle connections are closed when the
// test ends.
func (s *Server) Client(t testing.TB) *sqs.Client {
	t.Helper()
	transport := &http.Transport{}
	t.Cleanup(transport.CloseIdleConnections)
	cfg, err := awss3.LoadConfig(context.Background(), awss3.Options{
		Region: Region, AccessKeyID: AccessKey, SecretAccessKey: SecretKey,
		HTTPClient: &http.Client{Transport: transport},
	})
	if err != nil {
		t.Fatalf("sqstest: load aws config: %v", err)
	}
	return sqs.NewFromConfig(cfg, func(o *sqs.Options) {
		o.BaseEndpoint = aws.String(s.Endpoint)
		o.HTTPClient = &http.Client{Transport: transport}
	})
}

// CreateQueue creates the queue name with the given attributes and returns
// its URL, failing the test if it cannot.
func (s *Server) CreateQueue(t testing.TB, name string, attrs map[string]string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	out, err := s.Client(t).CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
	if err != nil {
		t.Fatalf("sqstest: create queue %q: %v", name, err)
	}
	return aws.ToString(out.QueueUrl)
}

// QueueARN returns the ARN of the queue at url.
func (s *Server) QueueARN(t testing.TB, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	out, err := s.Client(t).GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(url), AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn},
	})
	if err != nil {
		t.Fatalf("sqstest: queue arn of %s: %v", url, err)
	}
	return out.Attributes["QueueArn"]
}

// Stop kills the server, as a crash would, and waits for it to exit.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	if err := s.stop(); err != nil {
		t.Fatalf("sqstest: stop: %v", err)
	}
}

// Restart starts the server again on the same port, empty, stopping it
// first if it still runs, and waits until it answers.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	if err := s.stop(); err != nil {
		t.Fatalf("sqstest: stop: %v", err)
	}
	if err := s.start(); err != nil {
		t.Fatalf("sqstest: restart: %v", err)
	}
}

// start runs the server and waits until it answers HTTP.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		return errors.New("server already running")
	}
	p := &process{out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(s.node, s.script, strconv.Itoa(s.port))
	p.cmd.Env = append(os.Environ(), "NODE_PATH="+s.modules)
	p.cmd.Stdout = p.out
	p.cmd.Stderr = p.out
	if err := p.cmd.Start(); err != nil {
		return fmt.Errorf("start %s %s: %w", s.node, s.script, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	if err := waitReady(s.Endpoint, p); err != nil {
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("local-aws-sqs on port %d: %w; output:\n%s", s.port, err, p.out.String())
	}
	s.proc = p
	return nil
}

// stop kills the running server, if any, and waits for it to exit.
func (s *Server) stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.proc
	if p == nil {
		return nil
	}
	s.proc = nil
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill server: %w", err)
	}
	<-p.done
	return nil
}

// waitReady polls the endpoint until any HTTP answer arrives, the process
// exits or startTimeout passes.
func waitReady(endpoint string, p *process) error {
	transport := &http.Transport{DisableKeepAlives: true}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: time.Second}
	deadline := time.Now().Add(startTimeout)
	for {
		resp, err := client.Get(endpoint + "/")
		if err == nil {
			_ = resp.Body.Close()
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("exited before answering: %v", p.err)
		case <-time.After(pollInterval):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer within %s: %w", startTimeout, err)
		}
	}
}

// find locates node, the launcher script in tools/sqsserver and the
// installed package: $LOCAL_AWS_SQS, else <module root>/.cache/sqsserver.
func find() (node, script, modules string, err error) {
	root, err := moduleRoot()
	if err != nil {
		return "", "", "", err
	}
	script = filepath.Join(root, "tools", "sqsserver", "server.js")
	dir := os.Getenv(installEnv)
	if dir == "" {
		dir = filepath.Join(root, ".cache", "sqsserver")
	}
	modules = filepath.Join(dir, "node_modules")
	if _, err := os.Stat(filepath.Join(modules, "local-aws-sqs", "package.json")); err != nil {
		return "", "", "", fmt.Errorf("local-aws-sqs is not installed in %s (%s=%q): run `make sqs-server` or `make test`", dir, installEnv, os.Getenv(installEnv))
	}
	node, err = exec.LookPath("node")
	if err != nil {
		return "", "", "", errors.New("node not found on PATH: run `make sqs-server` or `make test`, which install it")
	}
	return node, script, modules, nil
}

// moduleRoot walks up from the working directory, which `go test` sets to
// the package folder, to the folder holding go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("getwd: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// freePort returns a loopback port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("listen: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return 0, fmt.Errorf("close listener: %w", err)
	}
	return port, nil
}

// syncBuffer collects the server's output for failure messages.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write implements io.Writer.
func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what was written so far.
func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
