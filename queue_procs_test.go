package main

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/awss3"
	v1 "github.com/asecurityteam/vpcflow-grapherd/pkg/handlers/v1"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/queuer"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/queuer/sqstest"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
)

// The settings every process of the queue tests shares: a short ack wait
// and retry delay so redeliveries come within seconds, and a progress mark
// shorter than two thirds of the ack wait, so a killed worker's mark has
// expired by the time its job is redelivered (its last keep-alive was at
// most a third of the ack wait before the kill).
const (
	queueAckWait    = "6s"
	queueMarkMillis = "1200"
	queueWindows    = 100
)

// queueTestEngine is a queue engine the processes share, started by the
// test: what to tell the service, and the engine's side of each check.
type queueTestEngine interface {
	// env points the service at the engine, GRAPHERD_QUEUE_MAX_DELIVER
	// included.
	env() map[string]string
	// maxDeliver is GRAPHERD_QUEUE_MAX_DELIVER; runs is how many times a
	// job that always fails is run before it is dead-lettered.
	maxDeliver() int
	runs() int
	// down makes the engine unreachable; up brings it back on the same
	// address.
	down(t *testing.T)
	up(t *testing.T)
	// durable reports whether jobs waiting in the engine survive down and up.
	durable() bool
	// pending is how many jobs the engine holds, delivered or not.
	pending(t *testing.T) int
	// queueTwice enqueues job twice through the service's own queuer and
	// checks, where the engine can tell, that it holds one message.
	queueTwice(t *testing.T, job types.Job)
	// requireDeadLetter waits until the job id is in the dead-letter
	// destination.
	requireDeadLetter(t *testing.T, id string)
}

// TestQueueProcesses runs the service apart, on each queue engine: one API
// process and two worker processes sharing a data folder, the digests made
// by a stand-in digester that serves each window its own small digest. It
// proves at the process level what docs/reliability.md promises: each
// window's graph is made once and whole, a worker killed mid-job has its
// job finished by the other, a job that keeps failing is dead-lettered
// after GRAPHERD_QUEUE_MAX_DELIVER deliveries with a failure record GET
// shows, a job enqueued twice is made once, and the engine being down
// answers 503 with Retry-After, clears the mark, shows on /readyz and loses
// no job.
func TestQueueProcesses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		start func(t *testing.T) queueTestEngine
	}{
		{"jetstream", startJetStreamEngine},
		{"sqs", startSQSEngine},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			runQueueProcesses(t, tc.start(t))
		})
	}
}

func runQueueProcesses(t *testing.T, eng queueTestEngine) {
	dd := newWindowDigesterd(t)
	data := t.TempDir()
	env := func(digesterPath string, role string) map[string]string {
		e := map[string]string{
			"GRAPHERD_ROLE":              role,
			"GRAPHERD_DATA_DIR":          data,
			"DIGESTER_ENDPOINT":          dd.url + "/" + digesterPath,
			"DIGESTER_POLLING_INTERVAL":  "10",
			"GRAPHERD_HTTP_RETRIES":      "0",
			"GRAPHERD_WORKERS":           "2",
			"GRAPHERD_SHUTDOWN_TIMEOUT":  "4s",
			"GRAPHERD_QUEUE_ACK_WAIT":    queueAckWait,
			"GRAPHERD_QUEUE_RETRY_DELAY": "1s",
			"GRAPH_PROGRESS_TIMEOUT":     queueMarkMillis,
		}
		for k, v := range eng.env() {
			e[k] = v
		}
		return e
	}
	api := startService(t, freeAddr(t), env("api", "api"))
	workers := map[string]*proc{
		"a": startService(t, freeAddr(t), env("a", "worker")),
		"b": startService(t, freeAddr(t), env("b", "worker")),
	}
	for _, p := range []*proc{api, workers["a"], workers["b"]} {
		require.Eventually(t, func() bool {
			status, _, _ := request(t, http.MethodGet, p.url+"/readyz")
			return status == http.StatusOK
		}, 20*time.Second, 50*time.Millisecond, "a process did not get ready")
	}

	// The hundred windows, on both workers.
	const stalled, poison, dup, later = 1000, 1001, 1002, 3000
	t.Run("hundred windows", func(t *testing.T) {
		for i := range queueWindows {
			requirePost(t, api, i, http.StatusAccepted)
		}
		by := map[string]int{}
		for i := range queueWindows {
			requireGraph(t, api, i)
			for _, w := range dd.servedBy(i) {
				by[w]++
			}
		}
		require.Positive(t, by["a"], "worker a made none of the graphs")
		require.Positive(t, by["b"], "worker b made none of the graphs")
	})

	// A window whose first digest stalls until the worker that took it is
	// killed; the workers are idle otherwise, so the kill cuts only that
	// job short.
	survivor := ""
	t.Run("worker killed mid-job", func(t *testing.T) {
		dd.stall(stalled)
		requirePost(t, api, stalled, http.StatusAccepted)
		var by string
		select {
		case by = <-dd.stalledBy:
		case <-time.After(30 * time.Second):
			t.Fatal("the stalled window's digest was never asked for")
		}
		workers[by].kill(t)
		survivor = map[string]string{"a": "b", "b": "a"}[by]
		requireGraph(t, api, stalled)
		require.Equal(t, []string{survivor}, dd.servedBy(stalled), "the job finishes on the other worker")
	})
	require.NotEmpty(t, survivor)

	t.Run("duplicate enqueues", func(t *testing.T) {
		// Straight into the engine, as two API processes racing past each
		// other's mark would; the tally at the end counts its digests.
		eng.queueTwice(t, windowJob(t, dup))
		requireGraph(t, api, dup)
	})

	t.Run("poison job dead-lettered", func(t *testing.T) {
		dd.fail(poison)
		requirePost(t, api, poison, http.StatusAccepted)
		var body string
		require.Eventually(t, func() bool {
			// The record of a failure that will be retried shows first.
			var status int
			status, _, body = request(t, http.MethodGet, api.url+"/?"+windowQuery(poison))
			return status == http.StatusFailedDependency && strings.Contains(body, "gave up")
		}, 30*time.Second, 50*time.Millisecond, "the poison job's final failure record never showed")
		require.Contains(t, body, fmt.Sprintf("gave up after %d tries: the digester answered 500", eng.maxDeliver()))
		require.NotContains(t, body, dd.url, "the digester's address is internal")
		eng.requireDeadLetter(t, windowJob(t, poison).ID)
	})

	var batch []int
	t.Run("engine down and back", func(t *testing.T) {
		// Jobs still waiting in the engine when it goes down: the digests of
		// this batch wait until the engine is back, so the running ones
		// hold the worker and the rest stay queued across the restart.
		if eng.durable() {
			for i := range 8 {
				batch = append(batch, 2000+i)
			}
		}
		release := dd.hold(batch...)
		for _, i := range batch {
			requirePost(t, api, i, http.StatusAccepted)
		}
		if len(batch) > 0 {
			require.Eventually(t, func() bool { return dd.held() > 0 }, 20*time.Second, 10*time.Millisecond)
			require.Equal(t, len(batch), eng.pending(t), "the batch is in the engine, running or waiting")
		}
		eng.down(t)

		status, header, body := request(t, http.MethodPost, api.url+"/?"+windowQuery(later))
		require.Equal(t, http.StatusServiceUnavailable, status, body)
		require.NotEmpty(t, header.Get("Retry-After"))
		status, _, _ = request(t, http.MethodGet, api.url+"/?"+windowQuery(later))
		require.Equal(t, http.StatusNotFound, status, "the mark of a job that could not be queued is cleared")
		for _, p := range []*proc{api, workers[survivor]} {
			var body string
			require.Eventually(t, func() bool {
				var status int
				status, _, body = request(t, http.MethodGet, p.url+"/readyz")
				var rb struct{ Checks map[string]string }
				return status == http.StatusServiceUnavailable && json.Unmarshal([]byte(body), &rb) == nil &&
					rb.Checks["queuer"] == "unavailable"
			}, 10*time.Second, 50*time.Millisecond, "/readyz of %s does not name the queuer as down: %s", p.url, body)
		}

		eng.up(t)
		release()
		require.Eventually(t, func() bool {
			status, _, _ := request(t, http.MethodPost, api.url+"/?"+windowQuery(later))
			return status == http.StatusAccepted
		}, 20*time.Second, 100*time.Millisecond, "POST never answered 202 once the engine was back")
		for _, i := range append(batch, later) {
			requireGraph(t, api, i)
		}
	})

	// Every window's digest was served whole once, the poison's asked for
	// once per run, and one graph file per window was stored.
	made := append([]int{stalled, dup, later}, batch...)
	for i := range queueWindows {
		made = append(made, i)
	}
	for _, i := range made {
		require.Len(t, dd.servedBy(i), 1, "window %d digested %d times", i, len(dd.servedBy(i)))
	}
	require.Equal(t, eng.runs(), dd.failures(poison), "runs of the poison job")
	graphs, err := filepath.Glob(filepath.Join(data, "graphs", "*.dot"))
	require.NoError(t, err)
	require.Len(t, graphs, len(made))
}

// windowStart is the start of window i: ten-minute windows a minute apart.
func windowStart(i int) time.Time {
	return time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Minute)
}

func windowQuery(i int) string {
	q := url.Values{}
	q.Set("start", windowStart(i).Format(time.RFC3339))
	q.Set("stop", windowStart(i).Add(10*time.Minute).Format(time.RFC3339))
	return q.Encode()
}

func windowJob(t *testing.T, i int) types.Job {
	t.Helper()
	from, to, err := v1.ParseWindow(windowQuery(i), 0)
	require.NoError(t, err)
	return types.Job{ID: v1.ComputeID(from, to), Start: from, Stop: to}
}

// windowEdges is how many edges window i's digest has: 1 to 3.
func windowEdges(i int) int { return 1 + i%3 }

func windowDigest(i int) string {
	var b strings.Builder
	for j := range windowEdges(i) {
		fmt.Fprintf(&b, "2 123456789012 eni-0a1 10.0.0.1 10.9.%d.%d 0 443 6 10 840 1793527200 1793527260 ACCEPT OK\n", j, i%250)
	}
	return b.String()
}

func requirePost(t *testing.T, p *proc, i, want int) {
	t.Helper()
	status, _, body := request(t, http.MethodPost, p.url+"/?"+windowQuery(i))
	require.Equal(t, want, status, "POST window %d: %s", i, body)
}

// requireGraph waits until window i's graph is served whole, with the
// edges of its digest.
func requireGraph(t *testing.T, p *proc, i int) {
	t.Helper()
	var status int
	var body string
	require.Eventually(t, func() bool {
		status, _, body = request(t, http.MethodGet, p.url+"/?"+windowQuery(i))
		return status != http.StatusNoContent && status != http.StatusNotFound
	}, 30*time.Second, 20*time.Millisecond, "window %d: no graph in time", i)
	require.Equal(t, http.StatusOK, status, "window %d: %s", i, body)
	require.Len(t, edges(t, body), windowEdges(i), "window %d", i)
}

// request makes one call and returns its status, headers and body; status
// 0 and the error as the body when the call failed. It does not fail the
// test itself, so require.Eventually's conditions may call it.
func request(t *testing.T, method, u string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		return 0, nil, err.Error()
	}
	client := &http.Client{Timeout: 10 * time.Second}
	res, err := client.Do(req)
	if err != nil {
		return 0, nil, err.Error()
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return 0, nil, err.Error()
	}
	return res.StatusCode, res.Header, string(b)
}

// windowDigesterd is a stand-in for vpcflow-digesterd serving each window
// its own digest at once, under /{worker}/ so that it knows which process
// asked. It records who was served each window whole; a failing window
// answers 500 to every create, a stalling window's first poll sends part of
// the digest and hangs until the asking process dies, and held windows
// wait until released.
type windowDigesterd struct {
	url       string
	stalledBy chan string // the worker the stalled window's first poll came from

	mu       sync.Mutex
	served   map[int][]string
	failing  map[int]int // window -> creates answered 500
	stalling map[int]bool
	holding  map[int]bool
	gate     chan struct{} // closed by release
	released sync.Once
	waiting  int
}

func newWindowDigesterd(t *testing.T) *windowDigesterd {
	t.Helper()
	d := &windowDigesterd{
		stalledBy: make(chan string, 1),
		served:    map[int][]string{}, failing: map[int]int{}, stalling: map[int]bool{}, holding: map[int]bool{},
		gate: make(chan struct{}),
	}
	srv := httptest.NewServer(d)
	t.Cleanup(srv.Close)
	t.Cleanup(d.release)
	d.url = srv.URL
	return d
}

func (d *windowDigesterd) fail(i int)  { d.mu.Lock(); d.failing[i] = 0; d.mu.Unlock() }
func (d *windowDigesterd) stall(i int) { d.mu.Lock(); d.stalling[i] = true; d.mu.Unlock() }

// hold makes the windows' polls wait until the returned function is called.
func (d *windowDigesterd) hold(windows ...int) func() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, i := range windows {
		d.holding[i] = true
	}
	return d.release
}

// release lets held polls go on.
func (d *windowDigesterd) release() { d.released.Do(func() { close(d.gate) }) }

func (d *windowDigesterd) held() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.waiting
}

func (d *windowDigesterd) servedBy(i int) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.served[i]...)
}

func (d *windowDigesterd) failures(i int) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.failing[i]
}

func (d *windowDigesterd) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start, err := time.Parse(time.RFC3339Nano, r.URL.Query().Get("start"))
	if err != nil {
		http.Error(w, "bad start", http.StatusBadRequest)
		return
	}
	i := int(start.Sub(windowStart(0)) / time.Minute)
	by := strings.Trim(r.URL.Path, "/")
	d.mu.Lock()
	_, failing := d.failing[i]
	if failing && r.Method == http.MethodPost {
		d.failing[i]++
	}
	stall := d.stalling[i] && r.Method == http.MethodGet
	if stall {
		delete(d.stalling, i)
	}
	hold := d.holding[i] && r.Method == http.MethodGet
	if hold {
		d.waiting++
	}
	gate := d.gate
	d.mu.Unlock()

	switch {
	case failing:
		http.Error(w, "digest failed", http.StatusInternalServerError)
		return
	case r.Method == http.MethodPost:
		w.WriteHeader(http.StatusAccepted)
		return
	case r.Method != http.MethodGet:
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	if hold {
		select {
		case <-gate:
		case <-r.Context().Done():
			return
		}
	}
	w.WriteHeader(http.StatusOK)
	zw := gzip.NewWriter(w)
	digest := windowDigest(i)
	if stall {
		first, _, _ := strings.Cut(digest, "\n")
		_, _ = io.WriteString(zw, first+"\n")
		_ = zw.Flush()
		w.(http.Flusher).Flush()
		d.stalledBy <- by
		<-r.Context().Done() // the worker died
		return
	}
	_, _ = io.WriteString(zw, digest)
	if zw.Close() == nil {
		d.mu.Lock()
		d.served[i] = append(d.served[i], by)
		d.mu.Unlock()
	}
}

// jetStreamEngine is an embedded nats-server with JetStream on a file store
// in the test's folder; the service processes connect to it over loopback.
// Down shuts it down; up starts it again on the same port and store.
type jetStreamEngine struct {
	port int
	dir  string
	srv  *server.Server
}

func startJetStreamEngine(t *testing.T) queueTestEngine {
	_, port, _ := strings.Cut(freeAddr(t), ":")
	e := &jetStreamEngine{dir: t.TempDir()}
	e.port, _ = strconv.Atoi(port)
	e.up(t)
	t.Cleanup(func() { e.down(t) })
	return e
}

func (e *jetStreamEngine) url() string { return "nats://127.0.0.1:" + strconv.Itoa(e.port) }

func (e *jetStreamEngine) env() map[string]string {
	return map[string]string{"GRAPHERD_QUEUE_URL": e.url(), "GRAPHERD_QUEUE_MAX_DELIVER": strconv.Itoa(e.maxDeliver())}
}

func (e *jetStreamEngine) maxDeliver() int { return 2 }
func (e *jetStreamEngine) runs() int       { return 2 }

func (e *jetStreamEngine) durable() bool { return true }

func (e *jetStreamEngine) up(t *testing.T) {
	t.Helper()
	srv, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: e.port, JetStream: true, StoreDir: e.dir, NoLog: true, NoSigs: true,
		ServerName: "grapherd-procs",
	})
	require.NoError(t, err)
	go srv.Start()
	require.True(t, srv.ReadyForConnections(10*time.Second), "nats-server did not start")
	e.srv = srv
}

func (e *jetStreamEngine) down(*testing.T) {
	if e.srv == nil {
		return
	}
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
	e.srv = nil
}

// client connects to the server as a bystander, closed when the test ends.
func (e *jetStreamEngine) client(t *testing.T) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(e.url())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	return js
}

func (e *jetStreamEngine) queueTwice(t *testing.T, job types.Job) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	q, err := queuer.NewJetStream(ctx, queuer.JetStreamOptions{URL: e.url(), MaxDeliver: e.maxDeliver()})
	require.NoError(t, err)
	defer q.Close()
	stream, err := e.client(t).Stream(ctx, queuer.DefaultJetStreamStream)
	require.NoError(t, err)
	before, err := stream.Info(ctx)
	require.NoError(t, err)
	require.NoError(t, q.Queue(ctx, job))
	require.NoError(t, q.Queue(ctx, job))
	after, err := stream.Info(ctx)
	require.NoError(t, err)
	switch after.State.LastSeq - before.State.LastSeq {
	case 1:
		// The second enqueue was dropped as a duplicate (Nats-Msg-Id).
	case 2:
		// A worker took and settled the first before the second came: the
		// queuer then queues the window again, under a new id, rather
		// than lose it. Only then may a second message be stored.
		_, err := stream.GetMsg(ctx, before.State.LastSeq+1)
		require.ErrorIs(t, err, jetstream.ErrMsgNotFound, "a second message while the first still waits")
	default:
		t.Fatalf("two enqueues of one job stored %d messages", after.State.LastSeq-before.State.LastSeq)
	}
}

func (e *jetStreamEngine) pending(t *testing.T) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := e.client(t).Stream(ctx, queuer.DefaultJetStreamStream)
	require.NoError(t, err)
	info, err := stream.Info(ctx)
	require.NoError(t, err)
	return int(info.State.Msgs)
}

func (e *jetStreamEngine) requireDeadLetter(t *testing.T, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dead, err := e.client(t).Stream(ctx, queuer.DefaultJetStreamDeadLetterStream)
	require.NoError(t, err)
	var msg *jetstream.RawStreamMsg
	require.Eventually(t, func() bool {
		msg, err = dead.GetLastMsgForSubject(ctx, queuer.DefaultJetStreamDeadLetterSubject)
		return err == nil
	}, 10*time.Second, 50*time.Millisecond, "no dead letter")
	require.Contains(t, string(msg.Data), id)
	require.Contains(t, msg.Header.Get("Grapherd-Reason"), fmt.Sprintf("%d deliveries", e.maxDeliver()))
	info, err := dead.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(1), info.State.Msgs, "one dead letter")
}

// sqsEngine is local-aws-sqs with a job queue and its dead-letter queue,
// moved to after GRAPHERD_QUEUE_MAX_DELIVER receives. local-aws-sqs keeps
// its queues in memory: up after down starts it empty (the queues are
// created again), so jobs waiting in it do not survive, unlike Amazon SQS.
// For SQS the test therefore checks, across the restart, only the API's
// 503, its cleared mark, /readyz, and workers taking jobs again.
type sqsEngine struct {
	srv        *sqstest.Server
	jobs, dead string
}

func startSQSEngine(t *testing.T) queueTestEngine {
	e := &sqsEngine{srv: sqstest.Start(t)}
	e.createQueues(t)
	return e
}

func (e *sqsEngine) createQueues(t *testing.T) {
	t.Helper()
	e.dead = e.srv.CreateQueue(t, "grapherd-jobs-dead", nil)
	policy := fmt.Sprintf(`{"deadLetterTargetArn":%q,"maxReceiveCount":"%d"}`, e.srv.QueueARN(t, e.dead), e.maxDeliver())
	e.jobs = e.srv.CreateQueue(t, "grapherd-jobs", map[string]string{"VisibilityTimeout": "30", "RedrivePolicy": policy})
}

func (e *sqsEngine) env() map[string]string {
	return map[string]string{
		"GRAPHERD_QUEUE_URL": e.jobs, "AWS_ENDPOINT_URL_SQS": e.srv.Endpoint, "AWS_REGION": sqstest.Region,
		"USE_IAM": "false", "AWS_ACCESS_KEY_ID": sqstest.AccessKey, "AWS_SECRET_ACCESS_KEY": sqstest.SecretKey,
		"GRAPHERD_QUEUE_MAX_DELIVER": strconv.Itoa(e.maxDeliver()),
	}
}

// maxDeliver is the redrive policy's maxReceiveCount and
// GRAPHERD_QUEUE_MAX_DELIVER. local-aws-sqs 2.0.2 counts each
// ChangeMessageVisibility as a receive (Amazon SQS does not), so a job
// released once for a retry comes back at its third receive: 3 gives the
// poison job two runs, the second one its last, and leaves a stalled job
// room for one keep-alive before its worker is killed.
func (e *sqsEngine) maxDeliver() int { return 3 }
func (e *sqsEngine) runs() int       { return 2 }

func (e *sqsEngine) durable() bool { return false }

func (e *sqsEngine) down(t *testing.T) { e.srv.Stop(t) }

func (e *sqsEngine) up(t *testing.T) {
	e.srv.Restart(t)
	e.createQueues(t)
}

// queueTwice sends the job twice: a standard queue keeps both, and the
// final tally of the test proves the graph was still made once.
func (e *sqsEngine) queueTwice(t *testing.T, job types.Job) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	q, err := queuer.NewSQS(ctx, queuer.SQSOptions{
		QueueURL: e.jobs, MaxReceive: e.maxDeliver(),
		AWS: awss3.Options{Region: sqstest.Region, Endpoint: e.srv.Endpoint, AccessKeyID: sqstest.AccessKey, SecretAccessKey: sqstest.SecretKey},
	})
	require.NoError(t, err)
	require.NoError(t, q.Queue(ctx, job))
	require.NoError(t, q.Queue(ctx, job))
}

func (e *sqsEngine) pending(t *testing.T) int { return e.srv.Count(t, e.jobs) }

func (e *sqsEngine) requireDeadLetter(t *testing.T, id string) {
	t.Helper()
	client := e.srv.Client(t)
	var bodies []string
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		out, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(e.dead), MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
		if err != nil {
			return false
		}
		for _, m := range out.Messages {
			bodies = append(bodies, aws.ToString(m.Body))
		}
		return len(bodies) > 0
	}, 20*time.Second, 10*time.Millisecond, "nothing reached the dead-letter queue")
	require.Len(t, bodies, 1)
	require.Contains(t, bodies[0], id)
}
