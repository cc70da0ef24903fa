package queuer

// Tests of holes a review found in the queue engines, each fixed.

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/queuer/sqstest"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/runtime"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/worker"
)

// TestJetStreamResumesAfterAuthRefusedInARestart restarts the server
// with the service's credentials refused for a while, then accepted: the
// consumer takes jobs again. nats.go gives up reconnecting for good when a
// server refuses the same credentials twice in a row, unless told to
// ignore it (nats.IgnoreAuthErrorAbort), and the consumer then retried
// Fetch on a closed connection for ever while the process stayed up.
func TestJetStreamResumesAfterAuthRefusedInARestart(t *testing.T) {
	t.Parallel()
	s := startNATSAs(t, "grapherd", "right-pass")
	o := s.jsOptions(t)
	o.URL = "nats://grapherd:right-pass@127.0.0.1:" + strconv.Itoa(s.port)
	j := newJS(t, o)
	rec := newRecorder(answer(worker.Done))
	consume(t, j, rec.handle)
	require.NoError(t, j.Queue(context.Background(), jobN(1)))
	rec.wait(t, 1, 5*time.Second)

	// The server comes back refusing the service's credentials for a
	// moment, then accepting them again.
	s.Stop()
	s.password = "being-rotated"
	s.Start()
	time.Sleep(time.Second) // ReconnectWait is 50ms: a handful of refused attempts
	s.Stop()
	s.password = "right-pass"
	s.Start()

	producer := newJS(t, o)
	require.NoError(t, producer.Queue(context.Background(), jobN(2)))
	deadline := time.Now().Add(10 * time.Second)
	for len(rec.seen()) < 2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	assert.Len(t, rec.seen(), 2, "the consumer takes jobs again once the server accepts it; its connection is %s", j.nc.Status())
}

// TestJetStreamURLSecretsNotShown connects with a token URL and with a
// list of URLs whose later one holds a password: neither the connect error
// nor the queue_ready log shows them, where only the first URL of a list
// was masked, and a token (token@host) never was.
func TestJetStreamURLSecretsNotShown(t *testing.T) {
	t.Parallel()
	t.Run("connect error, password of a later server", func(t *testing.T) {
		t.Parallel()
		p1, p2 := closedPort(t), closedPort(t)
		_, err := NewJetStream(context.Background(), JetStreamOptions{
			URL: "nats://127.0.0.1:" + p1 + ",nats://grapherd:s3cret-pass@127.0.0.1:" + p2,
		})
		require.Error(t, err)
		assert.NotContains(t, err.Error(), "s3cret-pass")
	})
	t.Run("connect error, token", func(t *testing.T) {
		t.Parallel()
		_, err := NewJetStream(context.Background(), JetStreamOptions{URL: "nats://S3CRET-TOKEN@127.0.0.1:" + closedPort(t)})
		require.Error(t, err)
		assert.NotContains(t, err.Error(), "S3CRET-TOKEN")
	})
	t.Run("queue_ready log, token", func(t *testing.T) {
		t.Parallel()
		port := closedPort(t)
		srv, err := server.NewServer(&server.Options{
			Host: "127.0.0.1", Port: mustAtoi(t, port), JetStream: true, StoreDir: t.TempDir(),
			NoLog: true, NoSigs: true, Authorization: "S3CRET-TOKEN",
		})
		require.NoError(t, err)
		go srv.Start()
		require.True(t, srv.ReadyForConnections(10*time.Second))
		t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
		var logs syncBuffer
		j := newJS(t, JetStreamOptions{URL: "nats://S3CRET-TOKEN@127.0.0.1:" + port, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		require.NoError(t, j.Ping(context.Background()))
		assert.NotContains(t, logs.String(), "S3CRET-TOKEN")
	})
}

// TestSQSShortWaitTimeDoesNotSpin consumes an empty queue with a wait of
// 500 ms, as a GRAPHERD_SHUTDOWN_TIMEOUT of 1 s makes it: the wait is
// rounded up to a second, so receives come a second apart, where it was
// truncated to none and every receive was a short poll, answered at once:
// the worker asked the queue in a tight loop.
func TestSQSShortWaitTimeDoesNotSpin(t *testing.T) {
	t.Parallel()
	srv := sqstest.Start(t)
	qs := newSQSQueues(t, srv, 30*time.Second, false, 3)
	o := qs.options(t)
	var receives atomic.Int64
	base := &http.Transport{}
	t.Cleanup(base.CloseIdleConnections)
	o.AWS.HTTPClient = &http.Client{Transport: countReceives{base: base, n: &receives}}
	o.WaitTime = 500 * time.Millisecond // GRAPHERD_SHUTDOWN_TIMEOUT=1s
	q := newSQS(t, o)
	consume(t, q, handlerOf(worker.Done))
	time.Sleep(2 * time.Second)
	n := receives.Load()
	assert.LessOrEqual(t, n, int64(10), "%d ReceiveMessage calls in 2s on an empty queue with a 500ms wait time", n)
}

type countReceives struct {
	base http.RoundTripper
	n    *atomic.Int64
}

func (c countReceives) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.HasSuffix(r.Header.Get("X-Amz-Target"), ".ReceiveMessage") || r.URL.Query().Get("Action") == "ReceiveMessage" {
		c.n.Add(1)
	}
	return c.base.RoundTrip(r)
}

// closedPort is a loopback port nothing listens on a moment after.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	require.NoError(t, l.Close())
	return port
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	require.NoError(t, err)
	return n
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestJetStreamOversizedPoisonMessageIsRemoved publishes a body that is
// no job and as long as the server takes: it is dead-lettered, cut short
// to fit beside the headers, and removed from the work stream, where its
// copy could not be stored and it stayed there for good, delivered again
// every ack wait.
func TestJetStreamOversizedPoisonMessageIsRemoved(t *testing.T) {
	t.Parallel()
	s := startNATS(t)
	j := newJS(t, s.jsOptions(t))
	rec := newRecorder(answer(worker.Done))
	consume(t, j, rec.handle)
	body := bytes.Repeat([]byte("x"), int(j.nc.MaxPayload())-64)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := j.js.Publish(ctx, DefaultJetStreamSubject, body)
	require.NoError(t, err)
	deadline := time.Now().Add(8 * time.Second) // AckWait 1s, MaxDeliver 3
	for streamMsgs(t, j, DefaultJetStreamStream) != 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	assert.EqualValues(t, 0, streamMsgs(t, j, DefaultJetStreamStream), "the poison message is still in the work stream")
	assert.EqualValues(t, 1, streamMsgs(t, j, DefaultJetStreamDeadLetterStream), "the poison message reached no dead-letter stream")
	require.Empty(t, rec.seen())
	dead, err := j.js.Stream(ctx, DefaultJetStreamDeadLetterStream)
	require.NoError(t, err)
	m, err := dead.GetMsg(ctx, 1)
	require.NoError(t, err)
	require.Equal(t, strconv.Itoa(len(body)), m.Header.Get(headerDeadTruncated))
	require.Equal(t, body[:len(m.Data)], m.Data, "the dead letter keeps the body's start")
}

// TestQueueURLPasswordNotInStartupLog checks the configuration logged at
// start: GRAPHERD_QUEUE_URL's password and token are masked, where it was
// logged as it was.
func TestQueueURLPasswordNotInStartupLog(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"GRAPHERD_ROLE":      "worker",
		"GRAPHERD_QUEUE_URL": "nats://grapherd:S3CRET-PASS@nats-1:4222,nats://T0KEN@nats-2:4222",
	}
	cfg, err := runtime.Load(func(k string) string { return env[k] })
	require.NoError(t, err)
	var logs syncBuffer
	slog.New(slog.NewJSONHandler(&logs, nil)).LogAttrs(context.Background(), slog.LevelInfo, "configuration", cfg.LogAttrs()...)
	var line map[string]any
	require.NoError(t, json.Unmarshal([]byte(logs.String()), &line))
	assert.NotContains(t, line["GRAPHERD_QUEUE_URL"], "S3CRET-PASS", "the start-up configuration log")
	assert.NotContains(t, line["GRAPHERD_QUEUE_URL"], "T0KEN", "the start-up configuration log")
	assert.Contains(t, line["GRAPHERD_QUEUE_URL"], "nats-2:4222")
}
