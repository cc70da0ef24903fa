package grapherd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/awss3"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/digester"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/grapher"
	v1 "github.com/asecurityteam/vpcflow-grapherd/pkg/handlers/v1"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/marker"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/queuer"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/runtime"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/storage"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/worker"
	"github.com/asecurityteam/vpcflow-grapherd/web"
)

// Service is vpcflow-grapherd: its modules, the background consumers that
// run jobs and the routes that use them. A nil module is replaced by the
// built-in default for the configuration in Init, so a program embedding the
// service sets only the fields it wants to change.
//
// Its lifecycle is explicit: Init builds the modules, Start starts the
// background consumers (the in-process pool, a queue engine's consumer),
// BindRoutes mounts the routes of the configured role, and Shutdown drains
// the consumers. BindRoutes calls Init and Start itself when they were not
// called, so an embedder may call BindRoutes alone, then Shutdown once its
// server has stopped.
type Service struct {
	// Config chooses the built-in modules and limits; nil means the defaults
	// of an empty environment.
	Config *runtime.Config
	// Logger receives the service's structured logs; nil discards them.
	Logger *slog.Logger
	// Stats receives metrics; nil drops them.
	Stats runtime.Stats
	// Middleware wraps every route, outermost first.
	Middleware []func(http.Handler) http.Handler

	// Storage stores graphs. Default: S3 when GRAPH_STORAGE_BUCKET is set,
	// else files under GRAPHERD_DATA_DIR.
	Storage types.Storage
	// Marker records graphs in progress and failed. Default: S3 when
	// GRAPH_PROGRESS_BUCKET is set, else files under GRAPHERD_DATA_DIR.
	Marker types.Marker
	// Queuer hands jobs to a worker. Default: the queue engine at
	// GRAPHERD_QUEUE_URL when set, else HTTP POST to
	// STREAM_APPLIANCE_ENDPOINT when set, else the in-process pool.
	Queuer types.Queuer
	// Digester makes digests. Default: vpcflow-digesterd at
	// DIGESTER_ENDPOINT when set, else the built-in digester reading
	// FLOW_LOGS_DIR or VPC_FLOW_LOGS_BUCKET.
	Digester types.Digester
	// Grapher converts digests to graphs. Default: the streaming DOT writer.
	Grapher types.Grapher
	// QueuerHTTPClient is the client of the default Queuer; nil means a
	// retrying client with the configured timeout.
	QueuerHTTPClient *http.Client
	// DigesterHTTPClient is the client of the default Digester; nil means a
	// retrying client with the configured timeout.
	DigesterHTTPClient *http.Client

	mu        sync.Mutex
	inited    bool
	started   bool
	bound     bool
	runner    *worker.Runner
	pool      *queuer.Memory    // nil in the api role
	consumers []worker.Consumer // started by Start, drained by Shutdown
	stopped   chan error        // one value per consumer when its Run returns
	engine    io.Closer         // the queue engine's connection, closed by Shutdown
	checks    []v1.Check
}

// Init fills in the default modules for the configuration and builds the
// job runner and the consumers of the role. It does nothing when called
// again.
func (s *Service) Init(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.initLocked(ctx)
}

// Start initialises the service if needed and starts its background
// consumers: the in-process pool (roles all and worker) and the queue
// engine's consumer (GRAPHERD_QUEUE_URL, roles all and worker). They run
// until Shutdown drains them; ctx ending cancels their running jobs at once
// (main passes the context a second signal cancels). Calling Start again
// does nothing.
func (s *Service) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.initLocked(ctx); err != nil {
		return err
	}
	if s.started {
		return nil
	}
	s.started = true
	s.stopped = make(chan error, len(s.consumers))
	for _, c := range s.consumers {
		go func() { s.stopped <- c.Run(ctx, s.runner.Handle) }()
	}
	return nil
}

// BindRoutes mounts the routes of the configured role on r: POST / and GET
// / (the API; roles all and api), GET /ui/ (the web page; roles all and
// api), POST /{topic}/{event} (the worker route; role all), and GET
// /healthz and GET /readyz (every role). It calls Init
// and Start first unless they were called. Call Shutdown when the server
// has stopped.
func (s *Service) BindRoutes(r chi.Router) error {
	if err := s.Start(context.Background()); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.bound {
		return errors.New("grapherd: routes are already bound")
	}
	s.bound = true
	cfg := s.Config
	health := &v1.Health{Checks: s.checks, Logger: s.Logger}

	r.Use(v1.RequestID, v1.RequestLogger(s.Logger, s.Stats), middleware.Recoverer)
	r.Use(s.Middleware...)
	r.NotFound(v1.NotFound)
	r.MethodNotAllowed(v1.MethodNotAllowed)
	r.Get("/healthz", health.Live)
	r.Get("/readyz", health.Ready)
	if cfg.Role == runtime.RoleWorker {
		return nil
	}
	graph := &v1.Graph{
		Storage:   &storage.InProgress{Storage: s.Storage, Marker: s.Marker},
		Marker:    s.Marker,
		Queuer:    s.Queuer,
		Logger:    s.Logger,
		MaxWindow: cfg.MaxWindow,
		// A client gets as long to take each part of a graph as a dependency
		// gets to answer.
		WriteTimeout: cfg.RequestTimeout,
		Views: v1.ViewLimits{
			MaxNodes: cfg.ViewMaxNodes, MaxEdges: cfg.ViewMaxEdges,
			MaxSVGNodes: cfg.ViewMaxSVGNodes, MaxSVGEdges: cfg.ViewMaxSVGEdges, SVGTimeout: cfg.ViewSVGTimeout,
		},
	}
	r.Post("/", graph.Post)
	// A browser opening the root with no window is sent to the page.
	r.With(web.RedirectBrowsers).Get("/", graph.Get)
	r.Mount(web.Path, web.Handler())
	if cfg.Role == runtime.RoleAll {
		w := &v1.Worker{
			Logger:       s.Logger,
			Run:          s.pool.Do,
			Async:        s.pool,
			Marker:       s.Marker,
			MaxBodyBytes: cfg.MaxBodyBytes,
			MaxWindow:    cfg.MaxWindow,
			Token:        cfg.WorkerToken,
		}
		r.Post("/{topic}/{event}", w.ServeHTTP)
	}
	return nil
}

// Shutdown drains the background consumers within ctx: they stop taking
// jobs, and running jobs get until ctx is done to finish; then they are
// cancelled and every job not finished has its mark cleared, so its window
// can be asked for again at once (a queue engine redelivers it). It returns
// an error wrapping ctx's error when jobs had to be cancelled. Shutdown
// before Start does nothing.
func (s *Service) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	started, consumers, stopped := s.started, s.consumers, s.stopped
	s.mu.Unlock()
	if !started {
		return nil
	}
	errs := make([]error, len(consumers))
	var wg sync.WaitGroup
	for i, c := range consumers {
		wg.Go(func() { errs[i] = c.Drain(ctx) })
	}
	wg.Wait()
	// A drained consumer's Run returns within its poll time; the deadline
	// still bounds the wait, so one stuck consumer cannot hold the exit.
wait:
	for range consumers {
		select {
		case err := <-stopped:
			if err != nil {
				errs = append(errs, err)
			}
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("a job consumer was still running at the shutdown deadline: %w", ctx.Err()))
			break wait
		}
	}
	if s.engine != nil {
		if err := s.engine.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close the queue engine: %w", err))
		}
	}
	// Every Run has returned; a later Shutdown has nothing to wait for.
	s.mu.Lock()
	s.consumers = nil
	s.mu.Unlock()
	return errors.Join(errs...)
}

func (s *Service) initLocked(ctx context.Context) error {
	if s.inited {
		return nil
	}
	if s.Config == nil {
		cfg, err := runtime.Load(func(string) string { return "" })
		if err != nil {
			return err
		}
		s.Config = cfg
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	if s.Stats == nil {
		s.Stats = runtime.NopStats{}
	}
	cfg := s.Config
	if s.QueuerHTTPClient == nil {
		s.QueuerHTTPClient = s.httpClient(cfg.RequestTimeout)
	}
	if s.DigesterHTTPClient == nil {
		// A digest is streamed through this client's response body, which the
		// whole-call timeout would cut short; hangs are caught by the
		// response-header timeout and the job's own deadline instead.
		s.DigesterHTTPClient = s.httpClient(0)
	}

	var err error
	if s.Storage == nil {
		if s.Storage, err = s.defaultStorage(ctx); err != nil {
			return err
		}
		// Either way, graphs stored compressed are read as DOT: those
		// stored while the setting was gzip, once it is off again.
		gz := s.Config.GraphStorageCompression == runtime.CompressionGzip
		if gz {
			s.Logger.Info("graphs are stored gzip-compressed")
		}
		s.Storage = &storage.Gzip{Storage: s.Storage, StorePlain: !gz}
	}
	if s.Marker == nil {
		if s.Marker, err = s.defaultMarker(ctx); err != nil {
			return err
		}
	}
	if s.Digester == nil {
		if s.Digester, err = s.defaultDigester(ctx); err != nil {
			return err
		}
	}
	if s.Grapher == nil {
		s.Grapher = &grapher.DOT{Logger: s.Logger, MaxLineBytes: cfg.MaxLineBytes}
	}
	s.runner = &worker.Runner{
		Storage:        s.Storage,
		Marker:         s.Marker,
		Digester:       s.Digester,
		Grapher:        s.Grapher,
		Logger:         s.Logger,
		Stats:          s.Stats,
		MaxDigestBytes: cfg.MaxDigestBytes,
		JobTimeout:     cfg.JobTimeout,
		// Refresh the mark well before it expires.
		RefreshInterval: cfg.GraphProgressTimeout / 3,
	}
	engine, consumer, err := s.queueEngine(ctx)
	if err != nil {
		return err
	}
	if consumer != nil && cfg.Role != runtime.RoleAPI {
		s.consumers = append(s.consumers, consumer)
	}
	if cfg.Role != runtime.RoleAPI {
		// The pool bounds the worker route's jobs and runs the in-process
		// queue's; in the worker role it serves neither and stays idle.
		s.pool = queuer.NewMemory(cfg.Workers, cfg.QueueCapacity)
		s.consumers = append(s.consumers, s.pool)
	}
	if s.Queuer == nil {
		switch {
		case engine != nil:
			s.Queuer = engine
		case cfg.StreamApplianceEndpoint != nil:
			s.Queuer = &queuer.HTTP{Endpoint: cfg.StreamApplianceEndpoint, Client: s.QueuerHTTPClient, Token: cfg.WorkerToken}
		default:
			s.Queuer = s.pool
		}
	}
	s.checks = s.readinessChecks()
	s.inited = true
	return nil
}

// queueEngine connects to the queue engine GRAPHERD_QUEUE_URL names, if
// any: the Queuer the API hands jobs to and the Consumer workers take them
// from.
func (s *Service) queueEngine(ctx context.Context) (types.Queuer, worker.Consumer, error) {
	cfg := s.Config
	u := cfg.QueueURL
	if u == "" {
		return nil, nil, nil
	}
	// A drained consumer ends its receive within its poll time, which must
	// fit in the shutdown deadline.
	poll := cfg.ShutdownTimeout / 2
	// A job from the queue is checked as the worker route checks one.
	decode := func(body []byte) (types.Job, error) { return v1.DecodeQueuedJob(body, cfg.MaxWindow) }
	switch {
	case strings.HasPrefix(u, "nats://") || strings.HasPrefix(u, "tls://"):
		js, err := queuer.NewJetStream(ctx, queuer.JetStreamOptions{
			URL:        u,
			MaxDeliver: cfg.QueueMaxDeliver,
			AckWait:    cfg.QueueAckWait,
			RetryDelay: cfg.QueueRetryDelay,
			Workers:    cfg.Workers,
			PollWait:   min(5*time.Second, poll),
			Logger:     s.Logger,
			DecodeJob:  decode,
		})
		if err != nil {
			return nil, nil, fmt.Errorf("GRAPHERD_QUEUE_URL: %w", err)
		}
		s.engine = js
		return js, js, nil
	default:
		// config.Load accepts only nats://, tls:// and http(s):// URLs; an
		// http(s) one is an SQS queue URL.
		aws := s.s3Options("")
		aws.Endpoint = cfg.SQSEndpoint()
		q, err := queuer.NewSQS(ctx, queuer.SQSOptions{
			QueueURL:          u,
			AWS:               aws,
			MaxReceive:        cfg.QueueMaxDeliver,
			VisibilityTimeout: cfg.QueueAckWait,
			RetryDelay:        cfg.QueueRetryDelay,
			Workers:           cfg.Workers,
			WaitTime:          min(20*time.Second, poll),
			Logger:            s.Logger,
			DecodeJob:         decode,
		})
		if err != nil {
			return nil, nil, fmt.Errorf("GRAPHERD_QUEUE_URL: %w", err)
		}
		s.engine = q
		return q, q, nil
	}
}

func (s *Service) httpClient(timeout time.Duration) *http.Client {
	return runtime.NewHTTPClient(runtime.ClientOptions{
		Timeout:               timeout,
		ResponseHeaderTimeout: s.Config.RequestTimeout,
		Retries:               s.Config.HTTPRetries,
		Logger:                s.Logger,
	})
}

func (s *Service) s3Options(region string) awss3.Options {
	cfg := s.Config
	return awss3.Options{
		Timeout:            cfg.RequestTimeout,
		Region:             region,
		Endpoint:           cfg.S3Endpoint(),
		UseIAM:             cfg.UseIAM,
		CredentialsFile:    cfg.AWSCredentialsFile,
		CredentialsProfile: cfg.AWSCredentialsProfile,
		AccessKeyID:        cfg.AWSAccessKeyID,
		SecretAccessKey:    cfg.AWSSecretAccessKey,
	}
}

func (s *Service) defaultStorage(ctx context.Context) (types.Storage, error) {
	cfg := s.Config
	if cfg.GraphStorageBucket == "" {
		dir := filepath.Join(cfg.DataDir, "graphs")
		s.Logger.Info("graphs are stored on the local filesystem", slog.String("dir", dir))
		files := &storage.File{Dir: dir}
		// What a crash left half-written; a live write is younger.
		n, err := files.CleanTemp(ctx, cfg.GraphProgressTimeout)
		if err != nil {
			s.Logger.Warn("could not remove every leftover temporary graph file", slog.String(runtime.AttrReason, err.Error()))
		}
		s.Logger.Info("removed leftover temporary graph files", slog.Int("count", n), slog.String("dir", dir))
		return files, nil
	}
	client, err := awss3.NewClient(ctx, s.s3Options(cfg.GraphStorageBucketRegion))
	if err != nil {
		return nil, fmt.Errorf("GRAPH_STORAGE_BUCKET: %w", err)
	}
	s.Logger.Info("graphs are stored in S3", slog.String("bucket", cfg.GraphStorageBucket))
	return &storage.S3{Bucket: cfg.GraphStorageBucket, Client: client}, nil
}

func (s *Service) defaultMarker(ctx context.Context) (types.Marker, error) {
	cfg := s.Config
	if cfg.GraphProgressBucket == "" {
		dir := filepath.Join(cfg.DataDir, "progress")
		s.Logger.Info("progress marks are kept on the local filesystem", slog.String("dir", dir))
		return &marker.File{Dir: dir, Timeout: cfg.GraphProgressTimeout}, nil
	}
	client, err := awss3.NewClient(ctx, s.s3Options(cfg.GraphProgressBucketRegion))
	if err != nil {
		return nil, fmt.Errorf("GRAPH_PROGRESS_BUCKET: %w", err)
	}
	s.Logger.Info("progress marks are kept in S3", slog.String("bucket", cfg.GraphProgressBucket))
	return &marker.S3{Bucket: cfg.GraphProgressBucket, Client: client, Timeout: cfg.GraphProgressTimeout}, nil
}

func (s *Service) defaultDigester(ctx context.Context) (types.Digester, error) {
	cfg := s.Config
	builtin := &digester.Builtin{
		Prefix:       cfg.FlowLogsPrefix,
		Accounts:     cfg.FlowLogsScanAccounts,
		Regions:      cfg.FlowLogsScanRegions,
		MaxLineBytes: cfg.MaxLineBytes,
		MaxFlows:     cfg.MaxFlows,
		MemoryBytes:  cfg.DigestMemoryBytes,
		SpillDir:     cfg.SpillDir,
		Logger:       s.Logger,
	}
	if cfg.SpillDir != "" {
		if fi, err := os.Stat(cfg.SpillDir); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("GRAPHERD_SPILL_DIR: %q is not a folder this process can reach", cfg.SpillDir)
		}
	}
	switch {
	case cfg.DigesterEndpoint != nil:
		s.Logger.Info("digests come from vpcflow-digesterd", slog.String("endpoint", cfg.DigesterEndpoint.Redacted()))
		return &digester.HTTP{
			Endpoint:     cfg.DigesterEndpoint,
			Client:       s.DigesterHTTPClient,
			PollInterval: cfg.DigesterPollingInterval,
			PollTimeout:  cfg.DigesterPollingTimeout,
			MaxBytes:     cfg.MaxDigestBytes,
			ReadTimeout:  cfg.RequestTimeout,
		}, nil
	case cfg.FlowLogsBucket != "":
		client, err := awss3.NewClient(ctx, s.s3Options(cfg.FlowLogsBucketRegion))
		if err != nil {
			return nil, fmt.Errorf("VPC_FLOW_LOGS_BUCKET: %w", err)
		}
		s.Logger.Info("digests are made from flow logs in S3", slog.String("bucket", cfg.FlowLogsBucket))
		builtin.Source = &digester.Bucket{Client: client, Bucket: cfg.FlowLogsBucket}
	case cfg.FlowLogsDir != "":
		s.Logger.Info("digests are made from flow logs in a folder", slog.String("dir", cfg.FlowLogsDir))
		builtin.Source = digester.Dir{Path: cfg.FlowLogsDir}
	default:
		s.Logger.Warn("no flow log source: set FLOW_LOGS_DIR, VPC_FLOW_LOGS_BUCKET or DIGESTER_ENDPOINT; graph jobs will fail until then")
	}
	if err := builtin.Validate(); err != nil {
		return nil, err
	}
	return builtin, nil
}

// readinessChecks asks every module that can tell whether its backend is
// reachable.
func (s *Service) readinessChecks() []v1.Check {
	var checks []v1.Check
	for _, m := range []struct {
		name   string
		module any
	}{
		{runtime.DependencyStorage, s.Storage},
		{runtime.DependencyMarker, s.Marker},
		{runtime.DependencyQueuer, s.Queuer},
		{runtime.DependencyDigester, s.Digester},
	} {
		if p, ok := m.module.(v1.Pinger); ok {
			checks = append(checks, v1.Check{Name: m.name, Ping: p.Ping})
		}
	}
	return checks
}
