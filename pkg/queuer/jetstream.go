package queuer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/worker"
)

// Defaults of JetStreamOptions.
const (
	// DefaultJetStreamStream is the work-queue stream jobs are kept in.
	DefaultJetStreamStream = "GRAPHERD_JOBS"
	// DefaultJetStreamSubject is the subject jobs are published on.
	DefaultJetStreamSubject = "grapherd.jobs"
	// DefaultJetStreamConsumer is the durable pull consumer workers share.
	DefaultJetStreamConsumer = "grapherd-workers"
	// DefaultJetStreamDeadLetterStream keeps jobs delivered MaxDeliver times
	// without success.
	DefaultJetStreamDeadLetterStream = "GRAPHERD_DEAD_LETTERS"
	// DefaultJetStreamDeadLetterSubject is the dead-letter stream's subject.
	DefaultJetStreamDeadLetterSubject = "grapherd.dead-letters"

	defaultMaxDeliver      = 5
	defaultAckWait         = 30 * time.Second
	defaultDuplicateWindow = 2 * time.Minute
	defaultPollWait        = 5 * time.Second
	defaultPublishTimeout  = 5 * time.Second
	defaultReconnectWait   = time.Second
	// deadLetterMaxAge is how long dead letters are kept for an operator to
	// look at or replay.
	deadLetterMaxAge = 14 * 24 * time.Hour
	// deadLetterQueueGroup makes one worker, not all, copy each job that
	// ran out of deliveries.
	deadLetterQueueGroup = "grapherd-dead-letter"
	// advisoryMaxDeliveries is the prefix of the subject on which the server
	// announces a message that reached its consumer's MaxDeliver.
	advisoryMaxDeliveries = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES"
)

// Headers of a dead letter, saying where it came from and why.
const (
	headerDeadStream   = "Grapherd-Stream"
	headerDeadSequence = "Grapherd-Stream-Sequence"
	headerDeadReason   = "Grapherd-Reason"
	// headerDeadTruncated is the length of a body cut short to fit the
	// server's largest message beside the headers.
	headerDeadTruncated = "Grapherd-Truncated"
)

// deadLetterHeaderRoom is the room a dead letter keeps for its headers when
// its body is as long as the server takes.
const deadLetterHeaderRoom = 4 << 10

// JetStreamOptions configures a JetStream producer and consumer. Zero fields
// take the defaults named on them.
type JetStreamOptions struct {
	// URL is the server's address: nats://host:4222, with user:password@ or
	// token@ credentials when the server wants them, tls:// for TLS with the
	// system's roots; several servers separated by commas.
	URL string
	// CredsFile is a NATS credentials file (JWT and NKey seed); empty means
	// none.
	CredsFile string
	// RootCAs are PEM files of the CAs that sign the server's certificate,
	// when it is not signed by one the system trusts.
	RootCAs []string
	// Name is the connection's name in the server's monitoring; default
	// "vpcflow-grapherd".
	Name string
	// Stream is the work-queue stream of jobs; default DefaultJetStreamStream.
	Stream string
	// Subject is the subject jobs are published on; default
	// DefaultJetStreamSubject.
	Subject string
	// Consumer is the durable pull consumer the workers share; default
	// DefaultJetStreamConsumer.
	Consumer string
	// DeadLetterStream keeps jobs that ran out of deliveries; default
	// DefaultJetStreamDeadLetterStream.
	DeadLetterStream string
	// DeadLetterSubject is the dead-letter stream's subject; default
	// DefaultJetStreamDeadLetterSubject.
	DeadLetterSubject string
	// MaxDeliver bounds the deliveries of one job (GRAPHERD_QUEUE_MAX_DELIVER);
	// default 5.
	MaxDeliver int
	// AckWait is how long a delivery may go without word from its worker
	// before the server redelivers it; a running job is kept alive every
	// AckWait/3. It is how soon a killed worker's jobs go to another
	// worker; default 30s.
	AckWait time.Duration
	// DuplicateWindow is how long a second enqueue of a job still waiting
	// is dropped as a duplicate; default 2m.
	DuplicateWindow time.Duration
	// Workers is how many jobs one consumer runs at once (GRAPHERD_WORKERS);
	// default 1.
	Workers int
	// RetryDelay is the wait before the second delivery of a job that
	// failed with a retryable error, doubled for each further one up to
	// MaxRetryDelay; defaults 10s and 5m.
	RetryDelay time.Duration
	// MaxRetryDelay caps RetryDelay's doubling.
	MaxRetryDelay time.Duration
	// PollWait is how long one pull waits for jobs; default 5s. A drain
	// lets the pull under way end, so Run returns within PollWait after
	// Drain: keep it below GRAPHERD_SHUTDOWN_TIMEOUT.
	PollWait time.Duration
	// PublishTimeout bounds one enqueue, including the server's
	// acknowledgement; default 5s.
	PublishTimeout time.Duration
	// ReconnectWait is the wait between two attempts to reconnect; default 1s.
	ReconnectWait time.Duration
	// Logger receives the settings at start and the consumer's events;
	// nil discards them.
	Logger *slog.Logger
	// DecodeJob reads a message's body as a job, refusing one that is
	// not a valid job (pkg's service checks it as the worker route checks
	// its body); nil: as JSON, unchecked. A refused message is rejected
	// as a malformed one is.
	DecodeJob func(body []byte) (types.Job, error)
}

// JetStream is a types.Queuer that publishes jobs to a NATS JetStream
// work-queue stream, and a worker.Consumer that runs them from a durable
// pull consumer: at least once, each job kept alive with in-progress acks
// while it runs, retried with backoff up to MaxDeliver deliveries and then
// copied to a dead-letter stream.
type JetStream struct {
	opts JetStreamOptions
	log  *slog.Logger
	nc   *nats.Conn
	js   jetstream.JetStream
	work jetstream.Stream
	dead jetstream.Stream
	cons jetstream.Consumer
	loop *loop
}

var (
	_ types.Queuer    = (*JetStream)(nil)
	_ worker.Consumer = (*JetStream)(nil)
)

// NewJetStream connects to the server and creates, when missing, the
// work-queue stream (file storage, deduplication window), the durable pull
// consumer (explicit ack, MaxDeliver, AckWait) and the dead-letter stream.
// Existing ones are used as they are, so an operator's own settings stay;
// what is in force is logged. After the first connection the client
// reconnects on its own, forever, ReconnectWait apart. The error wraps
// types.ErrQueueUnavailable when the server cannot be reached, and
// types.ErrInvalidInput when the options are wrong.
func NewJetStream(ctx context.Context, o JetStreamOptions) (*JetStream, error) {
	o = jetStreamDefaults(o)
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if o.URL == "" {
		return nil, fmt.Errorf("jetstream: %w: no server URL", types.ErrInvalidInput)
	}
	nopts := []nats.Option{
		nats.Name(o.Name),
		nats.MaxReconnects(-1),
		// A server that refuses the credentials twice in a row (being
		// restarted, its auth not ready, keys being rotated) would
		// otherwise close the connection for good, and the consumer with
		// it, while the process stays up.
		nats.IgnoreAuthErrorAbort(),
		nats.ReconnectWait(o.ReconnectWait),
		// While disconnected, publishing fails at once (the API answers
		// 503) instead of piling up in a buffer that a crash would lose.
		nats.ReconnectBufSize(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("queue_disconnected", "engine", "jetstream", "error", err.Error())
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("queue_reconnected", "engine", "jetstream", "server", redactURL(nc.ConnectedUrl()))
		}),
	}
	if o.CredsFile != "" {
		nopts = append(nopts, nats.UserCredentials(o.CredsFile))
	}
	if len(o.RootCAs) > 0 {
		nopts = append(nopts, nats.RootCAs(o.RootCAs...))
	}
	nc, err := nats.Connect(o.URL, nopts...)
	if err != nil {
		return nil, fmt.Errorf("jetstream: connect to %s: %w: %w", redactURL(o.URL), types.ErrQueueUnavailable, err)
	}
	j := &JetStream{opts: o, log: log, nc: nc}
	if err := j.setUp(ctx); err != nil {
		nc.Close()
		return nil, err
	}
	// The consumer's own settings count, which an operator may have chosen
	// differently from ours when creating it.
	cc := j.cons.CachedInfo().Config
	j.loop = newLoop(loopConfig{
		engine:        "jetstream",
		workers:       o.Workers,
		maxAttempts:   max(cc.MaxDeliver, 0),
		keepAlive:     max(cc.AckWait/3, time.Millisecond),
		retryDelay:    o.RetryDelay,
		maxRetryDelay: o.MaxRetryDelay,
		log:           log,
		decode:        o.DecodeJob,
	}, j)
	return j, nil
}

// jetStreamDefaults fills in the zero fields of o.
func jetStreamDefaults(o JetStreamOptions) JetStreamOptions {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&o.Name, "vpcflow-grapherd")
	def(&o.Stream, DefaultJetStreamStream)
	def(&o.Subject, DefaultJetStreamSubject)
	def(&o.Consumer, DefaultJetStreamConsumer)
	def(&o.DeadLetterStream, DefaultJetStreamDeadLetterStream)
	def(&o.DeadLetterSubject, DefaultJetStreamDeadLetterSubject)
	defDur := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	defDur(&o.AckWait, defaultAckWait)
	defDur(&o.DuplicateWindow, defaultDuplicateWindow)
	defDur(&o.PollWait, defaultPollWait)
	defDur(&o.PublishTimeout, defaultPublishTimeout)
	defDur(&o.ReconnectWait, defaultReconnectWait)
	if o.MaxDeliver <= 0 {
		o.MaxDeliver = defaultMaxDeliver
	}
	if o.Workers <= 0 {
		o.Workers = 1
	}
	return o
}

// setUp finds or creates the streams and the consumer, and logs them.
func (j *JetStream) setUp(ctx context.Context) error {
	js, err := jetstream.New(j.nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	j.js = js
	o := j.opts
	j.work, err = j.stream(ctx, jetstream.StreamConfig{
		Name:        o.Stream,
		Description: "vpcflow-grapherd graph jobs",
		Subjects:    []string{o.Subject},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Duplicates:  o.DuplicateWindow,
	})
	if err != nil {
		return err
	}
	j.dead, err = j.stream(ctx, jetstream.StreamConfig{
		Name:        o.DeadLetterStream,
		Description: "vpcflow-grapherd graph jobs delivered too often without success",
		Subjects:    []string{o.DeadLetterSubject},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		MaxAge:      deadLetterMaxAge,
		Duplicates:  o.DuplicateWindow,
	})
	if err != nil {
		return err
	}
	j.cons, err = j.work.Consumer(ctx, o.Consumer)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		j.cons, err = j.work.CreateConsumer(ctx, jetstream.ConsumerConfig{
			Durable:       o.Consumer,
			Description:   "vpcflow-grapherd workers",
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       o.AckWait,
			MaxDeliver:    o.MaxDeliver,
			FilterSubject: o.Subject,
		})
	}
	if err != nil {
		return fmt.Errorf("jetstream: consumer %s on stream %s: %w", o.Consumer, o.Stream, unavailable(err))
	}
	ci := j.cons.CachedInfo()
	if ci.Config.MaxDeliver != o.MaxDeliver {
		j.log.Warn("queue_setting_differs", "engine", "jetstream", "consumer", o.Consumer,
			"max_deliver", ci.Config.MaxDeliver, "GRAPHERD_QUEUE_MAX_DELIVER", o.MaxDeliver)
	}
	ws, ds := j.work.CachedInfo().Config, j.dead.CachedInfo().Config
	j.log.Info("queue_ready", "engine", "jetstream", "server", redactURL(j.nc.ConnectedUrl()),
		"stream", ws.Name, "subject", o.Subject, "retention", ws.Retention.String(), "storage", ws.Storage.String(),
		"duplicates", ws.Duplicates.String(),
		"consumer", ci.Name, "ack_wait", ci.Config.AckWait.String(), "max_deliver", ci.Config.MaxDeliver,
		"dead_letter_stream", ds.Name, "dead_letter_subject", o.DeadLetterSubject, "workers", o.Workers)
	return nil
}

// stream returns the named stream, creating it with cfg when missing.
func (j *JetStream) stream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	s, err := j.js.Stream(ctx, cfg.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		s, err = j.js.CreateStream(ctx, cfg)
	}
	if err != nil {
		return nil, fmt.Errorf("jetstream: stream %s: %w", cfg.Name, unavailable(err))
	}
	return s, nil
}

// Queue publishes the job, with the graph id as its message id so that a
// second enqueue of a job still waiting is dropped by the server. When the
// server reports a duplicate whose original was already consumed (the job
// ran and failed, and is asked for again within the duplicate window), the
// job is published again under a fresh id, so a new request is never
// swallowed. Errors wrap types.ErrQueueUnavailable: the API answers 503.
func (j *JetStream) Queue(ctx context.Context, job types.Job) error {
	body, err := encodeJob(job)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, j.opts.PublishTimeout)
	defer cancel()
	ack, err := j.js.Publish(ctx, j.opts.Subject, body, jetstream.WithMsgID(job.ID), jetstream.WithExpectStream(j.opts.Stream))
	if err != nil {
		return fmt.Errorf("jetstream: queue job %s: %w: %w", job.ID, types.ErrQueueUnavailable, err)
	}
	if !ack.Duplicate {
		return nil
	}
	_, err = j.work.GetMsg(ctx, ack.Sequence)
	switch {
	case err == nil:
		return nil // the original still waits or runs
	case !errors.Is(err, jetstream.ErrMsgNotFound):
		return fmt.Errorf("jetstream: queue job %s: look up its duplicate: %w: %w", job.ID, types.ErrQueueUnavailable, err)
	}
	if _, err := j.js.Publish(ctx, j.opts.Subject, body, jetstream.WithMsgID(job.ID+"/"+nuid.Next()), jetstream.WithExpectStream(j.opts.Stream)); err != nil {
		return fmt.Errorf("jetstream: queue job %s again: %w: %w", job.ID, types.ErrQueueUnavailable, err)
	}
	return nil
}

// Run implements worker.Consumer: it pulls up to Workers jobs at once and
// runs them through h. A job whose last delivery fails is copied into the
// dead-letter stream by its worker; one that ran out of deliveries without
// its worker settling it (the worker died) is copied by one of the running
// consumers, from the server's max-deliveries advisory (a queue
// subscription, so one copy per job).
func (j *JetStream) Run(ctx context.Context, h worker.Handler) error {
	subject := advisoryMaxDeliveries + "." + j.opts.Stream + "." + j.opts.Consumer
	sub, err := j.nc.QueueSubscribe(subject, deadLetterQueueGroup, j.deadLetter)
	if err != nil {
		return fmt.Errorf("jetstream: subscribe to %s: %w", subject, unavailable(err))
	}
	// Drained, not dropped: an advisory already handed to this consumer is
	// still copied.
	defer func() { _ = sub.Drain() }()
	return j.loop.run(ctx, h)
}

// Drain implements worker.Consumer: it stops pulling, lets running jobs
// finish until ctx ends, then cancels them, and naks every job taken but not
// finished so that another worker gets it at once. The pull under way is
// let end (within PollWait), and what it brings is nak'd at once; Run
// returns then.
func (j *JetStream) Drain(ctx context.Context) error { return j.loop.drain(ctx) }

// Ping reports whether the server is connected and answers, for /readyz.
func (j *JetStream) Ping(ctx context.Context) error {
	if s := j.nc.Status(); s != nats.CONNECTED {
		return fmt.Errorf("jetstream: %w: connection %s", types.ErrQueueUnavailable, s)
	}
	if _, err := j.js.AccountInfo(ctx); err != nil {
		return fmt.Errorf("jetstream: %w: %w", types.ErrQueueUnavailable, err)
	}
	return nil
}

// Close closes the connection. Call it after Drain.
func (j *JetStream) Close() error {
	j.nc.Close()
	return nil
}

// receive implements source: one pull of at most n jobs, handed over as
// they arrive, for at most PollWait.
func (j *JetStream) receive(ctx context.Context, n int, take func(message)) error {
	ctx, cancel := context.WithTimeout(ctx, j.opts.PollWait)
	defer cancel()
	batch, err := j.cons.Fetch(n, jetstream.FetchContext(ctx))
	if err != nil {
		return fmt.Errorf("jetstream: fetch: %w", err)
	}
	for m := range batch.Messages() {
		md, err := m.Metadata()
		if err != nil {
			// Not a JetStream delivery: nothing to settle.
			j.log.Warn("job_rejected", "engine", "jetstream", "subject", m.Subject(), "error", err.Error())
			continue
		}
		take(&jetStreamMsg{msg: m, meta: md, j: j})
	}
	if err := batch.Error(); err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("jetstream: fetch: %w", err)
	}
	return nil
}

// jetStreamMsg is one JetStream delivery of a job.
type jetStreamMsg struct {
	msg  jetstream.Msg
	meta *jetstream.MsgMetadata
	j    *JetStream
}

func (m *jetStreamMsg) body() []byte { return m.msg.Data() }
func (m *jetStreamMsg) attempt() int { return int(m.meta.NumDelivered) }
func (m *jetStreamMsg) ref() string {
	return m.meta.Stream + "/" + strconv.FormatUint(m.meta.Sequence.Stream, 10)
}

// keepAlive sends an in-progress ack: the server restarts the ack wait.
func (m *jetStreamMsg) keepAlive(context.Context) error { return m.msg.InProgress() }

// remove acks the delivery and waits for the server to confirm it, so the
// work-queue stream has dropped the job.
func (m *jetStreamMsg) remove(ctx context.Context) error { return m.msg.DoubleAck(ctx) }

// release naks the delivery: the server delivers it again after delay.
func (m *jetStreamMsg) release(_ context.Context, delay time.Duration) error {
	if delay <= 0 {
		return m.msg.Nak()
	}
	return m.msg.NakWithDelay(delay)
}

// giveUp copies the last delivery into the dead-letter stream and
// terminates it, which removes it from the work-queue stream. Should the
// copy fail, it naks instead: the server then finds MaxDeliver reached and
// announces it with the max-deliveries advisory, from which deadLetter
// copies it, as for a delivery whose worker died on its last try.
func (m *jetStreamMsg) giveUp(ctx context.Context) error {
	if err := m.j.publishDeadLetter(ctx, m.msg.Data(), m.meta.Sequence.Stream, deliveriesReason(m.meta.NumDelivered)); err != nil {
		m.j.log.Warn("job_dead_letter_failed", "engine", "jetstream", "message", m.ref(), "error", err.Error())
		return m.msg.Nak()
	}
	return m.msg.TermWithReason("dead-lettered")
}

// deliveriesReason is the Grapherd-Reason of a job that ran out of
// deliveries.
func deliveriesReason(n uint64) string {
	return "no success in " + strconv.FormatUint(n, 10) + " deliveries (MaxDeliver)"
}

// reject copies the unreadable delivery into the dead-letter stream and
// terminates it, which removes it from the work-queue stream.
func (m *jetStreamMsg) reject(ctx context.Context, reason error) error {
	if err := m.j.publishDeadLetter(ctx, m.msg.Data(), m.meta.Sequence.Stream, reason.Error()); err != nil {
		return err
	}
	return m.msg.TermWithReason("not a job")
}

// maxDeliveriesAdvisory is the part of the server's max-deliveries advisory
// (io.nats.jetstream.advisory.v1.max_deliver) this file reads.
type maxDeliveriesAdvisory struct {
	Stream     string `json:"stream"`
	StreamSeq  uint64 `json:"stream_seq"`
	Deliveries uint64 `json:"deliveries"`
}

// deadLetter handles one max-deliveries advisory: it copies the job from
// the work-queue stream, by its sequence, into the dead-letter stream and
// deletes it there. A job already gone (another worker's copy, a retry of
// this advisory) is left alone; the dead letter's message id is the
// stream sequence, so a second copy is dropped by the server.
func (j *JetStream) deadLetter(msg *nats.Msg) {
	var adv maxDeliveriesAdvisory
	if err := json.Unmarshal(msg.Data, &adv); err != nil || adv.StreamSeq == 0 {
		j.log.Warn("queue_advisory_unreadable", "engine", "jetstream", "subject", msg.Subject, "body", snippet(msg.Data))
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
	defer cancel()
	raw, err := j.work.GetMsg(ctx, adv.StreamSeq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return
	}
	if err == nil {
		err = j.publishDeadLetter(ctx, raw.Data, adv.StreamSeq, deliveriesReason(adv.Deliveries))
	}
	if err == nil {
		err = j.work.DeleteMsg(ctx, adv.StreamSeq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			err = nil
		}
	}
	if err != nil {
		j.log.Error("job_dead_letter_failed", "engine", "jetstream", "stream_seq", adv.StreamSeq, "error", err.Error())
		return
	}
	j.log.Warn("job_dead_lettered", "engine", "jetstream", "stream_seq", adv.StreamSeq,
		"deliveries", adv.Deliveries, "dead_letter_stream", j.opts.DeadLetterStream)
}

// publishDeadLetter stores data in the dead-letter stream with headers
// naming its origin and the reason.
func (j *JetStream) publishDeadLetter(ctx context.Context, data []byte, seq uint64, reason string) error {
	id := j.opts.Stream + "/" + strconv.FormatUint(seq, 10)
	dl := nats.NewMsg(j.opts.DeadLetterSubject)
	if room := max(int(j.nc.MaxPayload())-deadLetterHeaderRoom, 0); len(data) > room {
		// The body fitted alone, not with the headers: a copy that could
		// not be stored would leave the message in the work stream for
		// ever, delivered and failed again. Its start is kept, and its
		// length.
		dl.Header.Set(headerDeadTruncated, strconv.Itoa(len(data)))
		data = data[:room]
	}
	dl.Data = data
	dl.Header.Set(headerDeadStream, j.opts.Stream)
	dl.Header.Set(headerDeadSequence, strconv.FormatUint(seq, 10))
	dl.Header.Set(headerDeadReason, reason)
	if _, err := j.js.PublishMsg(ctx, dl, jetstream.WithMsgID(id), jetstream.WithExpectStream(j.opts.DeadLetterStream)); err != nil {
		return fmt.Errorf("jetstream: dead-letter %s: %w", id, err)
	}
	return nil
}

// unavailable marks a failure to reach the server as types.ErrQueueUnavailable.
func unavailable(err error) error {
	if errors.Is(err, nats.ErrNoResponders) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrConnectionClosed) ||
		errors.Is(err, nats.ErrDisconnected) || errors.Is(err, jetstream.ErrJetStreamNotEnabled) {
		return fmt.Errorf("%w: %w", types.ErrQueueUnavailable, err)
	}
	return err
}

// redactURL returns raw, a server URL or a comma-separated list of them,
// with each one's credentials masked: user:password@ as user:xxxxx@, and
// token@ as xxxxx@.
func redactURL(raw string) string {
	urls := strings.Split(raw, ",")
	for k, one := range urls {
		u, err := url.Parse(strings.TrimSpace(one))
		switch {
		case err != nil:
			urls[k] = "(unparsable URL)"
		default:
			if _, ok := u.User.Password(); u.User != nil && !ok {
				u.User = url.User("xxxxx") // a token
			}
			urls[k] = u.Redacted()
		}
	}
	return strings.Join(urls, ",")
}
