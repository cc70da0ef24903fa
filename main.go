// Command vpcflow-grapherd turns AWS VPC flow log digests into Graphviz DOT
// graphs. With no arguments (or "serve") it runs the HTTP service: the API,
// the worker and the health checks. "convert" turns flow log files or a
// digest into DOT on the command line.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/go-chi/chi/v5"

	grapherd "github.com/asecurityteam/vpcflow-grapherd/pkg"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/convert"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/runtime"
)

func main() {
	if err := run(context.Background(), os.Args, os.Getenv, os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "vpcflow-grapherd:", err)
		os.Exit(1)
	}
}

const usage = `usage:
  vpcflow-grapherd [serve]                 run the service (configured by environment variables)
  vpcflow-grapherd convert [-o FILE] [--digest] [FILE...]
                                           convert flow logs or a digest to DOT
`

// run does the work of main so that tests can start the whole program
// in-process with their own arguments, environment and streams.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 1 {
		cmd = args[1]
	}
	switch cmd {
	case "serve":
		return serve(ctx, getenv, stdout)
	case "convert":
		return convert.Run(ctx, args[2:], stdin, stdout, stderr)
	case "help", "-h", "-help", "--help":
		_, err := io.WriteString(stdout, usage)
		return err
	default:
		return fmt.Errorf("unknown command %q\n%s", cmd, usage)
	}
}

// errForced is run's error when a second signal cut the shutdown short.
var errForced = errors.New("second signal during shutdown: stopped without waiting for requests and jobs")

// serve runs the service until a signal, then shuts it down within one
// GRAPHERD_SHUTDOWN_TIMEOUT for requests and jobs together. It returns nil
// when the shutdown ran to its end, even if requests or jobs had to be
// cancelled at the deadline (their marks are cleared, so their windows can
// be asked for again); errForced when a second signal ended it at once.
func serve(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	cfg, err := runtime.Load(getenv)
	if err != nil {
		return err
	}
	logger := runtime.NewLogger(cfg, stdout)
	stats, err := runtime.NewStats(cfg)
	if err != nil {
		return err
	}
	defer stats.Close()
	logger.LogAttrs(ctx, slog.LevelInfo, "configuration", cfg.LogAttrs()...)

	sigs := runtime.WatchSignals(ctx, cfg)
	defer sigs.Stop()
	service := &grapherd.Service{Config: cfg, Logger: logger, Stats: stats}
	// A second signal cancels the running jobs at once.
	if err := service.Start(sigs.Forced); err != nil {
		return err
	}
	router := chi.NewRouter()
	if err := service.BindRoutes(router); err != nil {
		return errors.Join(err, service.Shutdown(context.Background()))
	}
	ln, err := net.Listen("tcp", cfg.HTTPServerAddress)
	if err != nil {
		return errors.Join(fmt.Errorf("RUNTIME_HTTPSERVER_ADDRESS: %w", err), service.Shutdown(context.Background()))
	}
	logger.Info("listening", slog.String("address", ln.Addr().String()), slog.String("role", cfg.Role))
	server := runtime.NewServer(cfg, router, stats, logger)
	served := make(chan error, 1)
	go func() { served <- server.Serve(sigs.Graceful, ln) }()

	var serveErr error
	listening := true
	select {
	case serveErr = <-served: // the listener failed
		listening = false
	case <-sigs.Graceful.Done():
	}
	// One deadline for the whole shutdown: the server drains requests
	// within the timeout from now, and jobs get what is left of it.
	started := time.Now()
	deadline := started.Add(cfg.ShutdownTimeout)
	finished := make(chan error, 1)
	go func() {
		if listening {
			serveErr = <-served
		}
		drainCtx, cancel := context.WithDeadline(sigs.Forced, deadline)
		defer cancel()
		finished <- service.Shutdown(drainCtx)
	}()
	var drainErr error
	select {
	case drainErr = <-finished:
	case <-sigs.Forced.Done():
		logger.Warn("stopped by a second signal", slog.Duration("shutdown", time.Since(started)))
		return errForced
	}
	// Requests or jobs that outlive the deadline are cancelled, as
	// documented: the shutdown itself still completed.
	for _, err := range []*error{&serveErr, &drainErr} {
		if listening && errors.Is(*err, context.DeadlineExceeded) {
			logger.Warn("shutdown deadline passed: cancelled what was still running", slog.String("reason", (*err).Error()))
			*err = nil
		}
	}
	logger.Info("stopped", slog.Duration("shutdown", time.Since(started)))
	return errors.Join(serveErr, drainErr)
}
