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

	service := &grapherd.Service{Config: cfg, Logger: logger, Stats: stats}
	router := chi.NewRouter()
	if err := service.BindRoutes(router); err != nil {
		return err
	}

	ctx, stop := runtime.SignalContext(ctx, cfg)
	defer stop()
	ln, err := net.Listen("tcp", cfg.HTTPServerAddress)
	if err != nil {
		return fmt.Errorf("RUNTIME_HTTPSERVER_ADDRESS: %w", err)
	}
	logger.Info("listening", slog.String("address", ln.Addr().String()))
	server := runtime.NewServer(cfg, router, stats, logger)
	serveErr := server.Serve(ctx, ln)

	// The server has drained its requests; now let queued jobs finish.
	drainCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	started := time.Now()
	shutdownErr := service.Shutdown(drainCtx)
	logger.Info("stopped", slog.Duration("drain", time.Since(started)))
	return errors.Join(serveErr, shutdownErr)
}
