package queuer

import (
	"context"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/worker"
)

// natsServer is an embedded nats-server with JetStream on file storage in a
// test folder. Stop and Start keep the port and the folder, so a test can
// take the engine away and bring it back with its streams.
type natsServer struct {
	t    testing.TB
	port int
	dir  string
	// user and password, when set, are required of every client.
	user, password string
	mu             sync.Mutex
	srv            *server.Server
}

// startNATS starts a server on a free loopback port and stops it when the
// test ends.
func startNATS(t testing.TB) *natsServer {
	t.Helper()
	return startNATSAs(t, "", "")
}

// startNATSAs is startNATS with a user and password required of clients.
func startNATSAs(t testing.TB, user, password string) *natsServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	s := &natsServer{t: t, port: port, dir: t.TempDir(), user: user, password: password}
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// URL is the server's client URL.
func (s *natsServer) URL() string { return "nats://127.0.0.1:" + strconv.Itoa(s.port) }

// Start starts the server (again) and waits until it takes connections.
func (s *natsServer) Start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	srv, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: s.port, JetStream: true, StoreDir: s.dir,
		NoLog: true, NoSigs: true, ServerName: "grapherd-test",
		Username: s.user, Password: s.password,
	})
	require.NoError(s.t, err)
	go srv.Start()
	require.True(s.t, srv.ReadyForConnections(10*time.Second), "nats-server did not start")
	s.srv = srv
}

// Stop shuts the server down and waits until it has.
func (s *natsServer) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv == nil {
		return
	}
	s.srv.Shutdown()
	s.srv.WaitForShutdown()
	s.srv = nil
}

// jsOptions are options for fast tests against s.
func (s *natsServer) jsOptions(t testing.TB) JetStreamOptions {
	return JetStreamOptions{
		URL:            s.URL(),
		MaxDeliver:     3,
		AckWait:        time.Second,
		Workers:        2,
		RetryDelay:     50 * time.Millisecond,
		PollWait:       200 * time.Millisecond,
		ReconnectWait:  50 * time.Millisecond,
		PublishTimeout: 2 * time.Second,
		Logger:         slog.New(slog.NewTextHandler(testWriter{t}, nil)),
	}
}

// newJS builds a JetStream on s and closes it when the test ends.
func newJS(t testing.TB, o JetStreamOptions) *JetStream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	j, err := NewJetStream(ctx, o)
	require.NoError(t, err)
	t.Cleanup(func() { _ = j.Close() })
	return j
}

// streamMsgs is how many messages the named stream holds.
func streamMsgs(t testing.TB, j *JetStream, name string) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := j.js.Stream(ctx, name)
	require.NoError(t, err)
	info, err := s.Info(ctx)
	require.NoError(t, err)
	return info.State.Msgs
}

// jsQueues numbers the streams of one server's tests.
var jsQueues atomic.Int64

func TestJetStreamConsumer(t *testing.T) {
	t.Parallel()
	s := startNATS(t)
	runConsumerSuite(t, engineHarness{
		window:     time.Second,
		retryDelay: 200 * time.Millisecond,
		maxDeliver: 3,
		open: func(t *testing.T, window time.Duration) engineQueue {
			n := strconv.FormatInt(jsQueues.Add(1), 10)
			o := s.jsOptions(t)
			o.AckWait = window
			o.MaxDeliver = 3
			o.RetryDelay = 200 * time.Millisecond
			o.Stream, o.Subject, o.Consumer = "JOBS_"+n, "jobs."+n, "workers"
			o.DeadLetterStream, o.DeadLetterSubject = "DEAD_"+n, "dead."+n
			first := newJS(t, o)
			return engineQueue{
				connect: func(t *testing.T) engine { return newJS(t, o) },
				pending: func(t *testing.T) int { return int(streamMsgs(t, first, o.Stream)) },
				dead:    func(t *testing.T) int { return int(streamMsgs(t, first, o.DeadLetterStream)) },
				sendRaw: func(t *testing.T, body string) {
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					defer cancel()
					_, err := first.js.Publish(ctx, o.Subject, []byte(body))
					require.NoError(t, err)
				},
			}
		},
	})
}

func TestJetStreamDeadLetterSaysWhereFrom(t *testing.T) {
	t.Parallel()
	s := startNATS(t)
	o := s.jsOptions(t)
	o.MaxDeliver = 1
	j := newJS(t, o)
	rec := newRecorder(answer(worker.Retry))
	consume(t, j, rec.handle)
	require.NoError(t, j.Queue(context.Background(), testJob()))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := j.js.Publish(ctx, DefaultJetStreamSubject, []byte("not json"))
	require.NoError(t, err)
	eventually(t, 5*time.Second, "both reach the dead-letter stream", func() bool {
		return streamMsgs(t, j, DefaultJetStreamDeadLetterStream) == 2
	})
	require.Len(t, rec.seen(), 1)
	require.True(t, rec.seen()[0].d.Last())

	reasons := map[string]string{}
	for seq := uint64(1); seq <= 2; seq++ {
		dead, err := j.dead.GetMsg(ctx, seq)
		require.NoError(t, err)
		require.Equal(t, DefaultJetStreamStream, dead.Header.Get(headerDeadStream))
		require.NotEmpty(t, dead.Header.Get(headerDeadSequence))
		reasons[string(dead.Data)] = dead.Header.Get(headerDeadReason)
	}
	body, err := encodeJob(testJob())
	require.NoError(t, err)
	require.Equal(t, deliveriesReason(1), reasons[string(body)])
	require.Contains(t, reasons["not json"], "message body is not a job")
}

func TestJetStreamDeadLetterFromAdvisory(t *testing.T) {
	t.Parallel()
	s := startNATS(t)
	o := s.jsOptions(t)
	o.MaxDeliver = 1
	// A worker that dies on the last delivery never settles it; here its
	// run is cut off, which naks it, as an expired ack wait would.
	dying := newJS(t, o)
	blocked := newRecorder(func(ctx context.Context, _ call) worker.Result {
		<-ctx.Done()
		return worker.Result{Outcome: worker.Retry, Err: ctx.Err()}
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- dying.Run(ctx, blocked.handle) }()
	require.NoError(t, dying.Queue(context.Background(), testJob()))
	blocked.wait(t, 1, 5*time.Second)

	other := newJS(t, o)
	rec := newRecorder(answer(worker.Done))
	// Building the JetStream already subscribed to its API replies: Run's
	// first subscription, the advisories', is one more.
	before := other.nc.NumSubscriptions()
	consume(t, other, rec.handle)
	eventually(t, 5*time.Second, "the other worker listens for advisories", func() bool {
		return other.nc.NumSubscriptions() > before
	})
	require.NoError(t, other.nc.Flush())
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)

	eventually(t, 5*time.Second, "the other worker copies it from the advisory", func() bool {
		return streamMsgs(t, other, DefaultJetStreamDeadLetterStream) == 1
	})
	eventually(t, 5*time.Second, "the job leaves the work stream", func() bool {
		return streamMsgs(t, other, DefaultJetStreamStream) == 0
	})
	require.Empty(t, rec.seen(), "a job out of deliveries is not delivered again")
	gctx, gcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer gcancel()
	dead, err := other.dead.GetMsg(gctx, 1)
	require.NoError(t, err)
	require.Equal(t, deliveriesReason(1), dead.Header.Get(headerDeadReason))
}

func TestJetStreamDuplicateEnqueue(t *testing.T) {
	t.Parallel()
	s := startNATS(t)
	j := newJS(t, s.jsOptions(t))
	for range 3 {
		require.NoError(t, j.Queue(context.Background(), testJob()))
	}
	require.EqualValues(t, 1, streamMsgs(t, j, DefaultJetStreamStream), "one window queued thrice is one job")

	rec := newRecorder(answer(worker.Done))
	consume(t, j, rec.handle)
	rec.wait(t, 1, 5*time.Second)
	eventually(t, 5*time.Second, "the job leaves the stream", func() bool {
		return streamMsgs(t, j, DefaultJetStreamStream) == 0
	})
	// Asked for again after it ran, within the duplicate window: a new job.
	require.NoError(t, j.Queue(context.Background(), testJob()))
	rec.wait(t, 2, 5*time.Second)
	require.Equal(t, 1, rec.seen()[1].d.Attempt)
}

func TestJetStreamEngineRestartLosesNoJob(t *testing.T) {
	t.Parallel()
	s := startNATS(t)
	j := newJS(t, s.jsOptions(t))
	const jobs = 20
	release := make(chan struct{})
	var once sync.Once
	rec := newRecorder(func(ctx context.Context, c call) worker.Result {
		if c.job.ID == jobN(0).ID {
			// The first job holds its worker until the engine is back.
			select {
			case <-release:
			case <-ctx.Done():
				return worker.Result{Outcome: worker.Retry, Err: ctx.Err()}
			}
		}
		return worker.Result{Outcome: worker.Done}
	})
	for i := range jobs {
		require.NoError(t, j.Queue(context.Background(), jobN(i)))
	}
	consume(t, j, rec.handle)
	rec.wait(t, 1, 5*time.Second)

	s.Stop()
	err := j.Queue(context.Background(), jobN(99))
	require.ErrorIs(t, err, types.ErrQueueUnavailable)
	require.ErrorIs(t, j.Ping(context.Background()), types.ErrQueueUnavailable)
	time.Sleep(300 * time.Millisecond)
	s.Start()
	once.Do(func() { close(release) })

	eventually(t, 20*time.Second, "every job is handled after the restart", func() bool {
		seen := map[string]bool{}
		for _, c := range rec.seen() {
			seen[c.job.ID] = true
		}
		return len(seen) == jobs
	})
	deadline := time.Now().Add(10 * time.Second)
	for streamMsgs(t, j, DefaultJetStreamStream) != 0 {
		if time.Now().After(deadline) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			ci, err := j.cons.Info(ctx)
			require.NoError(t, err)
			t.Fatalf("the work stream still holds %d jobs; dead letters %d; consumer %+v",
				streamMsgs(t, j, DefaultJetStreamStream), streamMsgs(t, j, DefaultJetStreamDeadLetterStream), *ci)
		}
		time.Sleep(20 * time.Millisecond)
	}
	require.NoError(t, j.Ping(context.Background()))
}

func TestJetStreamUnreachable(t *testing.T) {
	t.Parallel()
	s := startNATS(t)
	o := s.jsOptions(t)
	s.Stop()
	_, err := NewJetStream(context.Background(), o)
	require.ErrorIs(t, err, types.ErrQueueUnavailable)

	_, err = NewJetStream(context.Background(), JetStreamOptions{})
	require.ErrorIs(t, err, types.ErrInvalidInput)
}

func TestJetStreamCredentialsInURL(t *testing.T) {
	t.Parallel()
	s := startNATSAs(t, "grapherd", "s3cret-pass")
	o := s.jsOptions(t)
	o.URL = "nats://grapherd:s3cret-pass@127.0.0.1:" + strconv.Itoa(s.port)
	j := newJS(t, o)
	require.NoError(t, j.Queue(context.Background(), testJob()))
	require.NoError(t, j.Ping(context.Background()))

	o.URL = "nats://grapherd:wrong-pass@127.0.0.1:" + strconv.Itoa(s.port)
	_, err := NewJetStream(context.Background(), o)
	require.ErrorIs(t, err, types.ErrQueueUnavailable)
	require.NotContains(t, err.Error(), "wrong-pass", "a password never reaches a message")
	require.Contains(t, err.Error(), "grapherd:xxxxx@127.0.0.1")

	o.URL = s.URL()
	_, err = NewJetStream(context.Background(), o)
	require.Error(t, err, "the server wants credentials")
}

func TestJetStreamKeepsExistingSettings(t *testing.T) {
	t.Parallel()
	s := startNATS(t)
	nc, err := nats.Connect(s.URL())
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: "OPS_JOBS", Subjects: []string{"ops.jobs"}, Retention: jetstream.WorkQueuePolicy,
		Storage: jetstream.MemoryStorage,
	})
	require.NoError(t, err)
	_, err = stream.CreateConsumer(ctx, jetstream.ConsumerConfig{
		Durable: "ops-workers", AckPolicy: jetstream.AckExplicitPolicy, MaxDeliver: 7, AckWait: time.Minute,
	})
	require.NoError(t, err)
	o := s.jsOptions(t)
	o.Stream, o.Subject, o.Consumer = "OPS_JOBS", "ops.jobs", "ops-workers"
	j := newJS(t, o)
	info, err := j.work.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, jetstream.MemoryStorage, info.Config.Storage, "an operator's stream is used as it is")
	require.NoError(t, j.Queue(ctx, testJob()))
	require.EqualValues(t, 1, streamMsgs(t, j, "OPS_JOBS"))

	// The operator's consumer, with its own MaxDeliver, sets the last attempt.
	rec := newRecorder(answer(worker.Done))
	consume(t, j, rec.handle)
	calls := rec.wait(t, 1, 5*time.Second)
	require.Equal(t, worker.Delivery{Attempt: 1, MaxAttempts: 7}, calls[0].d)
}
