package queuer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/awss3"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/worker"
)

const (
	// maxWaitTime is SQS's longest long poll.
	maxWaitTime = 20 * time.Second
	// maxReceiveBatch is the most messages one ReceiveMessage returns.
	maxReceiveBatch = 10
	// maxVisibility is SQS's longest visibility timeout, 12 hours.
	maxVisibility = 12 * time.Hour
	// pollSlack is added to a long poll for the response to arrive, when
	// the client's own timeout would cut it short.
	pollSlack = 5 * time.Second
)

// SQSOptions configures an SQS producer and consumer. Zero fields take the
// defaults named on them.
type SQSOptions struct {
	// QueueURL is the queue's URL (GRAPHERD_QUEUE_URL):
	// https://sqs.REGION.amazonaws.com/ACCOUNT/NAME, or a compatible
	// server's. A name ending in .fifo is a FIFO queue.
	QueueURL string
	// AWS holds the credential settings, shared with S3 (USE_IAM, keys,
	// a credentials file), and the endpoint override (AWS_ENDPOINT_URL_SQS,
	// else AWS_ENDPOINT_URL). Its Region is used when the queue URL names
	// none. With no endpoint and a queue URL that is not AWS's, requests
	// go to the queue URL's own scheme and host.
	AWS awss3.Options
	// MaxReceive is the queue's redrive maxReceiveCount
	// (GRAPHERD_QUEUE_MAX_DELIVER): on a delivery received that many times a
	// retryable failure is final and the message is left for the redrive
	// policy to move; default 5.
	MaxReceive int
	// Workers is how many jobs one consumer runs at once (GRAPHERD_WORKERS);
	// default 1.
	Workers int
	// VisibilityTimeout is how long a received job stays hidden from other
	// workers without word from its worker; a running job is kept hidden
	// by extending it every third of it. Zero means the queue's own.
	VisibilityTimeout time.Duration
	// WaitTime is how long one receive waits for jobs (a long poll); at most
	// and by default 20s, in whole seconds rounded up, so at least 1s: a
	// wait of none makes each receive a short poll, answered at once by an
	// empty queue, and the consumer would spin on it. A drain lets the
	// receive under way end (an abandoned long poll may still be handed
	// messages, hidden then until their visibility timeout), so Run
	// returns within WaitTime after Drain: keep it below
	// GRAPHERD_SHUTDOWN_TIMEOUT.
	WaitTime time.Duration
	// RetryDelay is the wait before the next delivery of a job that failed
	// with a retryable error, doubled for each further one up to
	// MaxRetryDelay; defaults 10s and 5m. SQS counts in whole seconds.
	RetryDelay time.Duration
	// MaxRetryDelay caps RetryDelay's doubling.
	MaxRetryDelay time.Duration
	// Logger receives the settings at start and the consumer's events;
	// nil discards them.
	Logger *slog.Logger
	// DecodeJob reads a message's body as a job, refusing one that is
	// not a valid job (pkg's service checks it as the worker route checks
	// its body); nil: as JSON, unchecked. A refused message is rejected
	// as a malformed one is.
	DecodeJob func(body []byte) (types.Job, error)
}

// SQS is a types.Queuer that sends jobs to an Amazon SQS queue, and a
// worker.Consumer that runs them from it: at least once, each job kept
// hidden with ChangeMessageVisibility while it runs, retried with backoff,
// and on its last receive left for the queue's redrive policy to move to
// the dead-letter queue.
//
// On a FIFO queue a job's graph id is its deduplication id (and its message
// group, so jobs still run in parallel): a job sent twice within SQS's
// five-minute window is one message. A standard queue may hold the same job
// twice; that costs one extra run, since a run of a job already done
// finishes at once.
type SQS struct {
	opts       SQSOptions
	log        *slog.Logger
	client     *sqs.Client
	fifo       bool
	visibility time.Duration
	loop       *loop
}

var (
	_ types.Queuer    = (*SQS)(nil)
	_ worker.Consumer = (*SQS)(nil)
)

// NewSQS builds the client and reads the queue's attributes: its
// visibility timeout (unless o sets one) and its redrive policy, logged
// with the other settings. The queue, its dead-letter queue and redrive
// policy are the operator's to create. The error wraps
// types.ErrInvalidInput when the options are wrong, and
// types.ErrQueueUnavailable when the queue cannot be reached.
func NewSQS(ctx context.Context, o SQSOptions) (*SQS, error) {
	u, err := url.Parse(o.QueueURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.Trim(u.Path, "/") == "" {
		return nil, fmt.Errorf("sqs: %w: queue URL %q is not an http(s):// queue URL", types.ErrInvalidInput, o.QueueURL)
	}
	if o.MaxReceive <= 0 {
		o.MaxReceive = defaultMaxDeliver
	}
	if o.Workers <= 0 {
		o.Workers = 1
	}
	if o.WaitTime <= 0 || o.WaitTime > maxWaitTime {
		o.WaitTime = maxWaitTime
	}
	o.WaitTime = (o.WaitTime + time.Second - 1).Truncate(time.Second)
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	aopts := o.AWS
	if region := regionOf(u.Host); region != "" {
		aopts.Region = region
	}
	if aopts.Endpoint == "" && !strings.HasSuffix(hostOnly(u.Host), ".amazonaws.com") && !strings.HasSuffix(hostOnly(u.Host), ".amazonaws.com.cn") {
		aopts.Endpoint = u.Scheme + "://" + u.Host
	}
	if aopts.Timeout > 0 && aopts.Timeout < o.WaitTime+pollSlack {
		// A long poll answers only after WaitTime when the queue is empty.
		aopts.Timeout = o.WaitTime + pollSlack
	}
	cfg, err := awss3.LoadConfig(ctx, aopts)
	if err != nil {
		return nil, fmt.Errorf("sqs: %w", err)
	}
	q := &SQS{
		opts: o,
		log:  log,
		fifo: strings.HasSuffix(u.Path, ".fifo"),
		client: sqs.NewFromConfig(cfg, func(so *sqs.Options) {
			if aopts.HTTPClient != nil {
				so.HTTPClient = aopts.HTTPClient
			}
			if aopts.Endpoint != "" {
				so.BaseEndpoint = aws.String(aopts.Endpoint)
			}
		}),
	}
	if err := q.setUp(ctx, cfg.Region, aopts.Endpoint); err != nil {
		return nil, err
	}
	q.loop = newLoop(loopConfig{
		engine:        "sqs",
		workers:       o.Workers,
		maxAttempts:   o.MaxReceive,
		keepAlive:     q.visibility / 3,
		retryDelay:    o.RetryDelay,
		maxRetryDelay: min(orDefault(o.MaxRetryDelay, defaultMaxRetryDelay), maxVisibility),
		log:           log,
		decode:        o.DecodeJob,
	}, q)
	return q, nil
}

// setUp reads the queue's attributes and logs the settings in force.
func (q *SQS) setUp(ctx context.Context, region, endpoint string) error {
	out, err := q.client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(q.opts.QueueURL),
		AttributeNames: []sqstypes.QueueAttributeName{
			sqstypes.QueueAttributeNameVisibilityTimeout, sqstypes.QueueAttributeNameRedrivePolicy,
			sqstypes.QueueAttributeNameQueueArn,
		},
	})
	if err != nil {
		return fmt.Errorf("sqs: queue %s: %w", q.opts.QueueURL, sqsError(err))
	}
	q.visibility = q.opts.VisibilityTimeout
	if q.visibility <= 0 {
		secs, err := strconv.Atoi(out.Attributes[string(sqstypes.QueueAttributeNameVisibilityTimeout)])
		if err != nil || secs <= 0 {
			secs = 30
		}
		q.visibility = time.Duration(secs) * time.Second
	}
	q.visibility = max(q.visibility, time.Second)
	redrive := out.Attributes[string(sqstypes.QueueAttributeNameRedrivePolicy)]
	if redrive == "" {
		q.log.Warn("queue_no_redrive_policy", "engine", "sqs", "queue", q.opts.QueueURL,
			"hint", "a job failing its last try comes back every visibility timeout until the queue's retention drops it; give the queue a redrive policy")
	}
	q.log.Info("queue_ready", "engine", "sqs", "queue", q.opts.QueueURL, "arn", out.Attributes[string(sqstypes.QueueAttributeNameQueueArn)],
		"region", region, "endpoint", redactURL(endpoint), "fifo", q.fifo, "visibility_timeout", q.visibility.String(),
		"redrive_policy", redrive, "max_receive", q.opts.MaxReceive, "wait_time", q.opts.WaitTime.String(), "workers", q.opts.Workers)
	return nil
}

// Queue sends the job. On a FIFO queue the graph id is the deduplication
// id and the message group. Errors wrap types.ErrQueueUnavailable: the API
// answers 503.
func (q *SQS) Queue(ctx context.Context, job types.Job) error {
	body, err := encodeJob(job)
	if err != nil {
		return err
	}
	in := &sqs.SendMessageInput{QueueUrl: aws.String(q.opts.QueueURL), MessageBody: aws.String(string(body))}
	if q.fifo {
		in.MessageDeduplicationId = aws.String(job.ID)
		in.MessageGroupId = aws.String(job.ID)
	}
	if _, err := q.client.SendMessage(ctx, in); err != nil {
		return fmt.Errorf("sqs: queue job %s: %w: %w", job.ID, types.ErrQueueUnavailable, err)
	}
	return nil
}

// Run implements worker.Consumer: it long-polls for up to Workers jobs at
// once and runs them through h.
func (q *SQS) Run(ctx context.Context, h worker.Handler) error { return q.loop.run(ctx, h) }

// Drain implements worker.Consumer: it stops receiving, lets running jobs
// finish until ctx ends, then cancels them, and makes every job taken but
// not finished visible at once for another worker. The receive under way
// is let end (within WaitTime), and what it brings is made visible at
// once; Run returns then.
func (q *SQS) Drain(ctx context.Context) error { return q.loop.drain(ctx) }

// Ping reports whether the queue answers, for /readyz.
func (q *SQS) Ping(ctx context.Context) error {
	_, err := q.client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl:       aws.String(q.opts.QueueURL),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn},
	})
	if err != nil {
		return fmt.Errorf("sqs: %w", sqsError(err))
	}
	return nil
}

// Close releases nothing: the client holds no connection of its own. It
// is there so both engines close alike.
func (q *SQS) Close() error { return nil }

// receive implements source: one long poll for at most n jobs.
func (q *SQS) receive(ctx context.Context, n int, take func(message)) error {
	out, err := q.client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl:            aws.String(q.opts.QueueURL),
		MaxNumberOfMessages: int32(min(n, maxReceiveBatch)),
		WaitTimeSeconds:     int32(q.opts.WaitTime / time.Second),
		// Each receive hides its messages for the visibility this consumer
		// keeps alive by, whatever an earlier retry's wait set.
		VisibilityTimeout: int32(math.Ceil(q.visibility.Seconds())),
		MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{
			sqstypes.MessageSystemAttributeNameApproximateReceiveCount,
		},
		// The older name of the same request, which SQS still honours and
		// some compatible servers know alone.
		AttributeNames: []sqstypes.QueueAttributeName{
			sqstypes.QueueAttributeName(sqstypes.MessageSystemAttributeNameApproximateReceiveCount),
		},
	})
	if err != nil {
		return fmt.Errorf("sqs: receive: %w", err)
	}
	// One message twice in one answer (a compatible server whose long poll
	// outlived the visibility timeout) is run once, under its latest
	// receipt handle, the only one still valid.
	latest := make(map[string]int, len(out.Messages))
	for i, m := range out.Messages {
		latest[aws.ToString(m.MessageId)] = i
	}
	for i, m := range out.Messages {
		if latest[aws.ToString(m.MessageId)] != i {
			continue
		}
		count, _ := strconv.Atoi(m.Attributes[string(sqstypes.MessageSystemAttributeNameApproximateReceiveCount)])
		take(&sqsMsg{q: q, msg: m, count: max(count, 1)})
	}
	return nil
}

// sqsMsg is one SQS delivery of a job.
type sqsMsg struct {
	q     *SQS
	msg   sqstypes.Message
	count int
}

func (m *sqsMsg) body() []byte { return []byte(aws.ToString(m.msg.Body)) }
func (m *sqsMsg) attempt() int { return m.count }
func (m *sqsMsg) ref() string  { return aws.ToString(m.msg.MessageId) }

// keepAlive hides the message for another visibility timeout.
func (m *sqsMsg) keepAlive(ctx context.Context) error { return m.visibility(ctx, m.q.visibility) }

// remove deletes the message.
func (m *sqsMsg) remove(ctx context.Context) error {
	_, err := m.q.client.DeleteMessage(ctx, &sqs.DeleteMessageInput{
		QueueUrl: aws.String(m.q.opts.QueueURL), ReceiptHandle: m.msg.ReceiptHandle,
	})
	if err != nil {
		return fmt.Errorf("sqs: delete %s: %w", m.ref(), err)
	}
	return nil
}

// release makes the message visible again after delay.
func (m *sqsMsg) release(ctx context.Context, delay time.Duration) error {
	return m.visibility(ctx, delay)
}

// giveUp leaves the message as it is: when its visibility timeout ends,
// the next receive finds it past maxReceiveCount and the redrive policy
// moves it to the dead-letter queue.
func (m *sqsMsg) giveUp(context.Context) error { return nil }

// reject deletes a message that is not a job; the loop has logged it.
func (m *sqsMsg) reject(ctx context.Context, _ error) error { return m.remove(ctx) }

// visibility sets the message's visibility timeout to d from now, in whole
// seconds (rounded up), at most SQS's 12 hours.
func (m *sqsMsg) visibility(ctx context.Context, d time.Duration) error {
	secs := int32(math.Ceil(min(d, maxVisibility).Seconds()))
	_, err := m.q.client.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
		QueueUrl: aws.String(m.q.opts.QueueURL), ReceiptHandle: m.msg.ReceiptHandle, VisibilityTimeout: secs,
	})
	if err != nil {
		return fmt.Errorf("sqs: change visibility of %s to %ds: %w", m.ref(), secs, err)
	}
	return nil
}

// regionOf returns the region an AWS queue host names:
// sqs.REGION.amazonaws.com (also .com.cn) or the legacy
// REGION.queue.amazonaws.com; "" for any other host.
func regionOf(host string) string {
	parts := strings.Split(hostOnly(host), ".")
	switch {
	case len(parts) >= 4 && parts[0] == "sqs" && parts[2] == "amazonaws":
		return parts[1]
	case len(parts) >= 4 && parts[1] == "queue" && parts[2] == "amazonaws":
		return parts[0]
	}
	return ""
}

// hostOnly drops the port of host.
func hostOnly(host string) string {
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.Contains(host[i:], "]") {
		return host[:i]
	}
	return host
}

// sqsError marks a failure to reach the queue as types.ErrQueueUnavailable
// and a queue that does not exist as types.ErrInvalidInput, a setting to fix.
func sqsError(err error) error {
	var missing *sqstypes.QueueDoesNotExist
	if errors.As(err, &missing) {
		return fmt.Errorf("%w: the queue does not exist (GRAPHERD_QUEUE_URL): %w", types.ErrInvalidInput, err)
	}
	return fmt.Errorf("%w: %w", types.ErrQueueUnavailable, err)
}

// orDefault returns d, or def when d is not positive.
func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}
