package queuer

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"path"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/stretchr/testify/require"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/awss3"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/queuer/sqstest"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/worker"
)

// queueSeq makes queue names unique within the test binary.
var queueSeq atomic.Int64

// sqsQueues is a job queue with a dead-letter queue behind its redrive
// policy, on one server.
type sqsQueues struct {
	srv       *sqstest.Server
	url, dlq  string
	maxRecv   int
	visibilty time.Duration
}

// newSQSQueues creates a queue (FIFO when fifo) with the visibility timeout
// and a redrive policy of maxReceive to a fresh dead-letter queue.
// The visibility timeout must outlast the consumer's 1s long poll:
// local-aws-sqs answers a long poll only when it ends (unless it fills the
// batch), and would hand out a message again within the same poll.
func newSQSQueues(t testing.TB, srv *sqstest.Server, visibility time.Duration, fifo bool, maxReceive int) sqsQueues {
	t.Helper()
	name := "grapherd-jobs-" + strconv.FormatInt(queueSeq.Add(1), 10)
	suffix := ""
	attrs := map[string]string{}
	if fifo {
		suffix = ".fifo"
		attrs["FifoQueue"] = "true"
	}
	dlq := srv.CreateQueue(t, name+"-dead"+suffix, attrs)
	policy, err := json.Marshal(map[string]string{"deadLetterTargetArn": srv.QueueARN(t, dlq), "maxReceiveCount": strconv.Itoa(maxReceive)})
	require.NoError(t, err)
	attrs["VisibilityTimeout"] = strconv.Itoa(int(visibility / time.Second))
	attrs["RedrivePolicy"] = string(policy)
	return sqsQueues{srv: srv, url: srv.CreateQueue(t, name+suffix, attrs), dlq: dlq, maxRecv: maxReceive, visibilty: visibility}
}

// options are options for fast tests on qs.
func (qs sqsQueues) options(t testing.TB) SQSOptions {
	transport := &http.Transport{}
	t.Cleanup(transport.CloseIdleConnections)
	return SQSOptions{
		QueueURL: qs.url,
		AWS: awss3.Options{
			Region: sqstest.Region, Endpoint: qs.srv.Endpoint,
			AccessKeyID: sqstest.AccessKey, SecretAccessKey: sqstest.SecretKey,
			HTTPClient: &http.Client{Transport: transport},
		},
		MaxReceive: qs.maxRecv,
		Workers:    2,
		WaitTime:   time.Second,
		RetryDelay: time.Second,
		Logger:     slog.New(slog.NewTextHandler(testWriter{t}, nil)),
	}
}

// newSQS builds an SQS consumer and producer from o.
func newSQS(t testing.TB, o SQSOptions) *SQS {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	q, err := NewSQS(ctx, o)
	require.NoError(t, err)
	return q
}

// count is how many messages the queue holds, visible or not.
func (qs sqsQueues) count(t testing.TB, url string) int {
	t.Helper()
	return qs.srv.Count(t, url)
}

func TestSQSConsumer(t *testing.T) {
	t.Parallel()
	srv := sqstest.Start(t)
	runConsumerSuite(t, engineHarness{
		window:     3 * time.Second,
		retryDelay: time.Second,
		// local-aws-sqs 2.0.2 counts each ChangeMessageVisibility as a
		// receive, so a job released once is at its third receive when it
		// comes back; 5 leaves room for the suite's one release.
		maxDeliver: 5,
		open: func(t *testing.T, window time.Duration) engineQueue {
			qs := newSQSQueues(t, srv, window, false, 5)
			return engineQueue{
				connect: func(t *testing.T) engine { return newSQS(t, qs.options(t)) },
				pending: func(t *testing.T) int { return qs.count(t, qs.url) },
				dead:    func(t *testing.T) int { return qs.count(t, qs.dlq) },
				sendRaw: func(t *testing.T, body string) {
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					defer cancel()
					_, err := srv.Client(t).SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(qs.url), MessageBody: aws.String(body)})
					require.NoError(t, err)
				},
			}
		},
	})
}

func TestSQSFIFODuplicateEnqueue(t *testing.T) {
	t.Parallel()
	srv := sqstest.Start(t)
	qs := newSQSQueues(t, srv, 30*time.Second, true, 3)
	q := newSQS(t, qs.options(t))
	for range 3 {
		require.NoError(t, q.Queue(context.Background(), testJob()))
	}
	require.NoError(t, q.Queue(context.Background(), jobN(2)))
	require.Equal(t, 2, qs.count(t, qs.url), "one window queued thrice is one job")

	rec := newRecorder(answer(worker.Done))
	consume(t, q, rec.handle)
	rec.wait(t, 2, 10*time.Second)
	eventually(t, 5*time.Second, "the jobs are deleted", func() bool { return qs.count(t, qs.url) == 0 })
	ids := map[string]int{}
	for _, c := range rec.seen() {
		ids[c.job.ID]++
	}
	require.Equal(t, map[string]int{testJob().ID: 1, jobN(2).ID: 1}, ids)
}

func TestSQSEngineOutage(t *testing.T) {
	t.Parallel()
	srv := sqstest.Start(t)
	qs := newSQSQueues(t, srv, 30*time.Second, false, 3)
	q := newSQS(t, qs.options(t))
	rec := newRecorder(answer(worker.Done))
	consume(t, q, rec.handle)
	require.NoError(t, q.Queue(context.Background(), jobN(2)))
	rec.wait(t, 1, 10*time.Second)

	srv.Stop(t)
	require.ErrorIs(t, q.Queue(context.Background(), jobN(2)), types.ErrQueueUnavailable)
	require.ErrorIs(t, q.Ping(context.Background()), types.ErrQueueUnavailable)

	// The server keeps queues in memory: it comes back empty, and the
	// queue is made again under the same URL.
	srv.Restart(t)
	require.Equal(t, qs.url, srv.CreateQueue(t, path.Base(qs.url), nil))
	require.NoError(t, q.Ping(context.Background()))
	require.NoError(t, q.Queue(context.Background(), jobN(3)))
	calls := rec.wait(t, 2, 20*time.Second)
	require.Equal(t, jobN(3).ID, calls[1].job.ID, "the consumer receives again once the engine is back")
}

func TestSQSBadSettings(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"", "sqs://x/1/q", "http://127.0.0.1:1", "not a url"} {
		_, err := NewSQS(context.Background(), SQSOptions{QueueURL: u})
		require.ErrorIs(t, err, types.ErrInvalidInput, u)
	}
	srv := sqstest.Start(t)
	qs := newSQSQueues(t, srv, 3*time.Second, false, 3)
	o := qs.options(t)
	o.QueueURL = srv.Endpoint + "/123456789012/no-such-queue"
	_, err := NewSQS(context.Background(), o)
	require.ErrorIs(t, err, types.ErrInvalidInput)
	require.Contains(t, err.Error(), "does not exist")
}

func TestRegionOf(t *testing.T) {
	t.Parallel()
	for host, want := range map[string]string{
		"sqs.eu-west-1.amazonaws.com":       "eu-west-1",
		"sqs.cn-north-1.amazonaws.com.cn":   "cn-north-1",
		"us-east-2.queue.amazonaws.com":     "us-east-2",
		"sqs.us-west-2.amazonaws.com:443":   "us-west-2",
		"127.0.0.1:9324":                    "",
		"localhost":                         "",
		"sqs.amazonaws.com":                 "",
		"vpce-1.sqs.us-east-1.vpce.aws.com": "",
	} {
		require.Equal(t, want, regionOf(host), host)
	}
}
