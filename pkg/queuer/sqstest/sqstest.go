// Package sqstest starts a real SQS server, local-aws-sqs, for tests. SQS
// code is tested against it rather than against a mock of the SDK, so the
// requests, receive counts, visibility timeouts and redrive are the ones a
// server gives. `make sqs-server` (a step of `make test`) installs it into
// .cache/sqsserver; a missing install fails the test instead of skipping it.
package sqstest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/awss3"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/testproc"
)

const (
	// installEnv names the folder `make sqs-server` installs local-aws-sqs
	// into (its node_modules is used); the Makefile exports it.
	installEnv = "LOCAL_AWS_SQS"
	// startTimeout bounds how long the server may take to answer.
	startTimeout = 10 * time.Second
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

	proc testproc.Restartable
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
	s.proc = testproc.Restartable{Command: s.command, ReadyURL: s.Endpoint + "/", Timeout: startTimeout}
	t.Cleanup(func() { _ = s.proc.Kill() })
	if err := s.proc.Start(); err != nil {
		t.Fatalf("sqstest: local-aws-sqs on port %d: %v", s.port, err)
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

// Count returns how many messages the queue at url holds, visible,
// in flight or delayed, failing the test if it cannot tell.
func (s *Server) Count(t testing.TB, url string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	out, err := s.Client(t).GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(url),
		AttributeNames: []sqstypes.QueueAttributeName{
			sqstypes.QueueAttributeNameApproximateNumberOfMessages,
			sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
			sqstypes.QueueAttributeNameApproximateNumberOfMessagesDelayed,
		},
	})
	if err != nil {
		t.Fatalf("sqstest: count the messages of %s: %v", url, err)
	}
	n := 0
	for name, v := range out.Attributes {
		c, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("sqstest: %s of %s is %q, not a number", name, url, v)
		}
		n += c
	}
	return n
}

// Stop kills the server, as a crash would, and waits for it to exit.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	if err := s.proc.Kill(); err != nil {
		t.Fatalf("sqstest: stop: %v", err)
	}
}

// Restart starts the server again on the same port, empty, stopping it
// first if it still runs, and waits until it answers.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	if err := s.proc.Restart(); err != nil {
		t.Fatalf("sqstest: restart local-aws-sqs on port %d: %v", s.port, err)
	}
}

// command is one run of the server.
func (s *Server) command() *exec.Cmd {
	cmd := exec.Command(s.node, s.script, strconv.Itoa(s.port))
	cmd.Env = append(os.Environ(), "NODE_PATH="+s.modules)
	return cmd
}

// find locates node, the launcher script in tools/sqsserver and the
// installed package: $LOCAL_AWS_SQS, else <module root>/.cache/sqsserver.
func find() (node, script, modules string, err error) {
	root, err := testproc.ModuleRoot()
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

// freePort returns a loopback port that was free a moment ago.
func freePort() (int, error) {
	addr, err := testproc.FreeAddr()
	if err != nil {
		return 0, err
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(port)
}
