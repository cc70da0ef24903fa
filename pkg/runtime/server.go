package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// Defaults of the HTTP server's limits. WriteTimeout is deliberately absent:
// a graph is streamed from storage and may take longer than any fixed bound.
const (
	// DefaultReadHeaderTimeout cuts off clients that send headers slowly
	// (slowloris).
	DefaultReadHeaderTimeout = 5 * time.Second
	// DefaultReadTimeout bounds reading a whole request, body included; the
	// bodies this service takes are small.
	DefaultReadTimeout = 30 * time.Second
	// DefaultIdleTimeout closes keep-alive connections left unused.
	DefaultIdleTimeout = 120 * time.Second
	// DefaultMaxHeaderBytes bounds the request line and headers together,
	// which also bounds the query string.
	DefaultMaxHeaderBytes = 16 << 10
	// DefaultShutdownTimeout bounds the graceful shutdown when the Config
	// leaves it zero.
	DefaultShutdownTimeout = 30 * time.Second
	// DefaultConnStateReportInterval is used when the Config leaves the
	// report interval zero.
	DefaultConnStateReportInterval = 5 * time.Second
)

// Server is the service's HTTP server: net/http with timeouts against slow
// clients, connection-state metrics and a graceful, bounded shutdown tied to
// a context. The exported fields start from the Config and the defaults
// above and may be changed before Serve (tests shorten them); a Server
// serves once.
type Server struct {
	// ReadHeaderTimeout bounds reading the request line and headers.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request.
	ReadTimeout time.Duration
	// IdleTimeout bounds how long a keep-alive connection waits for the
	// next request.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds the request line and headers.
	MaxHeaderBytes int
	// ShutdownTimeout bounds the wait for in-flight requests once the
	// context is done.
	ShutdownTimeout time.Duration
	// ReportInterval is how often connection gauges and counters are sent.
	ReportInterval time.Duration

	handler http.Handler
	stats   Stats
	logger  *slog.Logger
	names   connStateNames

	mu          sync.Mutex
	conns       map[net.Conn]http.ConnState
	current     [numConnStates]int64
	transitions [numConnStates]int64
}

// numConnStates is the number of http.ConnState values (New, Active, Idle,
// Hijacked, Closed), which index the counters.
const numConnStates = int(http.StateClosed) + 1

// connStateNames are the metric names, from the RUNTIME_CONNSTATE_*
// variables.
type connStateNames struct {
	counter [numConnStates]string
	gauge   [numConnStates]string
}

// NewServer returns a Server for h configured from c. stats may be nil
// (NopStats) and logger may be nil (discarded); empty metric names fall back
// to the seed's.
func NewServer(c *Config, h http.Handler, stats Stats, logger *slog.Logger) *Server {
	if stats == nil {
		stats = NopStats{}
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		ReadHeaderTimeout: DefaultReadHeaderTimeout,
		ReadTimeout:       DefaultReadTimeout,
		IdleTimeout:       DefaultIdleTimeout,
		MaxHeaderBytes:    DefaultMaxHeaderBytes,
		ShutdownTimeout:   orDuration(c.ShutdownTimeout, DefaultShutdownTimeout),
		ReportInterval:    orDuration(c.ConnStateReportInterval, DefaultConnStateReportInterval),
		handler:           h,
		stats:             stats,
		logger:            logger,
		conns:             make(map[net.Conn]http.ConnState),
	}
	s.names.counter[http.StateNew] = orString(c.ConnStateNewCounter, "http.server.connstate.new")
	s.names.counter[http.StateActive] = orString(c.ConnStateActiveCounter, "http.server.connstate.active")
	s.names.counter[http.StateIdle] = orString(c.ConnStateIdleCounter, "http.server.connstate.idle")
	s.names.counter[http.StateHijacked] = orString(c.ConnStateHijackedCounter, "http.server.connstate.hijacked")
	s.names.counter[http.StateClosed] = orString(c.ConnStateClosedCounter, "http.server.connstate.closed")
	s.names.gauge[http.StateNew] = orString(c.ConnStateNewGauge, "http.server.connstate.new.gauge")
	s.names.gauge[http.StateActive] = orString(c.ConnStateActiveGauge, "http.server.connstate.active.gauge")
	s.names.gauge[http.StateIdle] = orString(c.ConnStateIdleGauge, "http.server.connstate.idle.gauge")
	return s
}

// Serve serves HTTP on ln until ctx is done, then stops accepting, lets
// in-flight requests finish within ShutdownTimeout and returns nil. Requests
// see ctx's values but not its cancellation, so a shutdown signal does not
// abort them; if the timeout passes, their contexts are cancelled, the
// connections closed and an error returned. An error is also returned when
// the listener fails. Serve closes ln.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	baseCtx, cancelBase := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelBase()
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: s.ReadHeaderTimeout,
		ReadTimeout:       s.ReadTimeout,
		IdleTimeout:       s.IdleTimeout,
		MaxHeaderBytes:    s.MaxHeaderBytes,
		ConnState:         s.connState,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return baseCtx },
	}

	stopReports := make(chan struct{})
	reportsDone := make(chan struct{})
	go s.reportLoop(stopReports, reportsDone)
	defer func() {
		close(stopReports)
		<-reportsDone
		s.report()
	}()

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	s.logger.LogAttrs(ctx, slog.LevelInfo, "http server listening", slog.String("address", ln.Addr().String()))

	select {
	case err := <-serveErr:
		// The listener failed: still let the requests it accepted finish.
		return errors.Join(fmt.Errorf("serve http on %s: %w", ln.Addr(), err), s.shutdown(ctx, srv, cancelBase))
	case <-ctx.Done():
	}

	s.logger.LogAttrs(ctx, slog.LevelInfo, "http server shutting down", slog.Duration("timeout", s.ShutdownTimeout))
	if err := s.shutdown(ctx, srv, cancelBase); err != nil {
		<-serveErr
		return err
	}
	if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve http on %s: %w", ln.Addr(), err)
	}
	s.logger.LogAttrs(ctx, slog.LevelInfo, "http server stopped")
	return nil
}

// shutdown stops srv gracefully within ShutdownTimeout; past it, it cancels
// the requests' contexts and closes every connection.
func (s *Server) shutdown(ctx context.Context, srv *http.Server, cancelRequests context.CancelFunc) error {
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), orDuration(s.ShutdownTimeout, DefaultShutdownTimeout))
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		cancelRequests()
		return fmt.Errorf("shut down http server: %w", errors.Join(err, srv.Close()))
	}
	return nil
}

// connState is the http.Server hook: it keeps each connection's current
// state so the gauges are exact, and counts every transition.
func (s *Server) connState(c net.Conn, state http.ConnState) {
	if int(state) < 0 || int(state) >= numConnStates {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if prev, ok := s.conns[c]; ok {
		s.current[prev]--
	}
	switch state {
	case http.StateHijacked, http.StateClosed:
		delete(s.conns, c)
	default:
		s.conns[c] = state
		s.current[state]++
	}
	s.transitions[state]++
}

// reportLoop reports on every interval until stop is closed.
func (s *Server) reportLoop(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(orDuration(s.ReportInterval, DefaultConnStateReportInterval))
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			s.report()
		}
	}
}

// report sends the transitions counted since the last report as counters
// and the current number of connections per state as gauges.
func (s *Server) report() {
	s.mu.Lock()
	transitions := s.transitions
	current := s.current
	s.transitions = [numConnStates]int64{}
	s.mu.Unlock()
	for st, name := range s.names.counter {
		s.stats.Count(name, transitions[st])
	}
	for st, name := range s.names.gauge {
		if name != "" {
			s.stats.Gauge(name, float64(current[st]))
		}
	}
}

// orDuration returns d, or def when d is not positive.
func orDuration(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// orString returns s, or def when s is empty.
func orString(s, def string) string {
	if s != "" {
		return s
	}
	return def
}
