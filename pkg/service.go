package grapherd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"runtime/debug"
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
)

// Service is vpcflow-grapherd: its modules and the routes that use them. A
// nil module is replaced by the built-in default for the configuration when
// the routes are bound, so a program embedding the service sets only the
// fields it wants to change.
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
	// Queuer hands jobs to a worker. Default: HTTP POST to
	// STREAM_APPLIANCE_ENDPOINT when set, else an in-process queue.
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

	pool   *queuer.Memory
	checks []v1.Check
	worker *v1.Worker
}

// BindRoutes fills in the default modules and mounts the routes on r:
// POST / and GET / (the API), POST /{topic}/{event} (the worker), GET
// /healthz and GET /readyz. Call Shutdown when the server has stopped.
func (s *Service) BindRoutes(r chi.Router) error {
	if err := s.init(context.Background()); err != nil {
		return err
	}
	cfg := s.Config
	graph := &v1.Graph{
		Storage:   &storage.InProgress{Storage: s.Storage, Marker: s.Marker},
		Marker:    s.Marker,
		Queuer:    s.Queuer,
		Logger:    s.Logger,
		MaxWindow: cfg.MaxWindow,
		// A client gets as long to take each part of a graph as a dependency
		// gets to answer.
		WriteTimeout: cfg.RequestTimeout,
	}
	health := &v1.Health{Checks: s.checks, Logger: s.Logger}

	r.Use(middleware.RequestID, v1.RequestLogger(s.Logger, s.Stats), middleware.Recoverer)
	r.Use(s.Middleware...)
	r.NotFound(v1.NotFound)
	r.MethodNotAllowed(v1.MethodNotAllowed)
	r.Get("/healthz", health.Live)
	r.Get("/readyz", health.Ready)
	r.Post("/", graph.Post)
	r.Get("/", graph.Get)
	r.Post("/{topic}/{event}", s.worker.ServeHTTP)
	return nil
}

// Shutdown stops the in-process job pool: queued and running jobs get until
// ctx is done to finish, then running ones are cancelled (their marks are
// cleared so the windows can be asked for again).
func (s *Service) Shutdown(ctx context.Context) error {
	if s.pool == nil {
		return nil
	}
	return s.pool.Close(ctx)
}

func (s *Service) init(ctx context.Context) error {
	if s.worker != nil {
		return errors.New("grapherd: routes are already bound")
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
		if s.Config.GraphStorageCompression == runtime.CompressionGzip {
			s.Logger.Info("graphs are stored gzip-compressed")
			s.Storage = &storage.Gzip{Storage: s.Storage}
		}
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
	s.worker = &v1.Worker{
		Storage:        s.Storage,
		Marker:         s.Marker,
		Digester:       s.Digester,
		Grapher:        s.Grapher,
		Logger:         s.Logger,
		Stats:          s.Stats,
		MaxBodyBytes:   cfg.MaxBodyBytes,
		MaxDigestBytes: cfg.MaxDigestBytes,
		MaxWindow:      cfg.MaxWindow,
		// Refresh the mark well before it expires.
		RefreshInterval: cfg.GraphProgressTimeout / 3,
	}
	s.pool = queuer.NewMemory(s.runJob, cfg.Workers, cfg.QueueCapacity)
	s.worker.Async = s.pool
	if s.Queuer == nil {
		s.Queuer = s.pool
		if cfg.StreamApplianceEndpoint != nil {
			s.Queuer = &queuer.HTTP{Endpoint: cfg.StreamApplianceEndpoint, Client: s.QueuerHTTPClient}
		}
	}
	s.checks = s.readinessChecks()
	return nil
}

// runJob runs one job of the in-process pool. Run logs and records its own
// failures; a panic in a module (a custom one, say) is turned into a failed
// job here rather than taking the whole process down.
func (s *Service) runJob(ctx context.Context, job types.Job) {
	defer func() {
		if r := recover(); r != nil {
			err := fmt.Errorf("graph job panicked: %v", r)
			runtime.LogEvent(ctx, s.Logger, slog.LevelError, runtime.EventJobFailed, err,
				slog.String("id", job.ID), slog.String("stack", string(debug.Stack())))
			failCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			if ferr := s.Marker.Fail(failCtx, job.ID, "internal error while making the graph"); ferr != nil {
				runtime.LogDependencyFailure(ctx, s.Logger, runtime.DependencyMarker, ferr, slog.String("id", job.ID))
			}
		}
	}()
	_ = s.worker.Run(ctx, job)
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
		return &storage.File{Dir: dir}, nil
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
		Logger:       s.Logger,
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
