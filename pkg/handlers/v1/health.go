package v1

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/runtime"
)

// Pinger is implemented by modules that can tell whether their backend is
// reachable; GET /readyz asks each of them.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Check is one named readiness check.
type Check struct {
	Name string
	Ping func(ctx context.Context) error
}

// Health serves GET /healthz (the process is up) and GET /readyz (every
// dependency answers).
type Health struct {
	Checks []Check
	// Timeout bounds each check; zero means two seconds.
	Timeout time.Duration
	Logger  *slog.Logger
}

// The words of a readiness answer, overall and per check.
const (
	checkOK          = "ok"
	checkUnavailable = "unavailable"
)

type healthBody struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks,omitempty"`
}

// Live answers 200 while the process serves requests.
func (h *Health) Live(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, healthBody{Status: "ok"})
}

// Ready runs the checks concurrently and answers 200 when all pass, 503
// naming the failing dependencies otherwise. The answer says only "ok" or
// "unavailable" per dependency: a check's error names buckets, hosts and
// request ids, so it is logged (once, at warn) and never sent.
func (h *Health) Ready(w http.ResponseWriter, r *http.Request) {
	timeout := h.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	logger := LoggerFrom(r.Context(), h.Logger)
	results := make(map[string]string, len(h.Checks))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, c := range h.Checks {
		wg.Go(func() {
			res := checkOK
			if err := c.Ping(ctx); err != nil {
				res = checkUnavailable
				runtime.LogEvent(r.Context(), logger, slog.LevelWarn, runtime.EventDependencyFailure,
					fmt.Errorf("not ready: %w", err), slog.String(runtime.AttrDependency, c.Name))
			}
			mu.Lock()
			results[c.Name] = res
			mu.Unlock()
		})
	}
	wg.Wait()
	status, code := checkOK, http.StatusOK
	for _, res := range results {
		if res != checkOK {
			status, code = checkUnavailable, http.StatusServiceUnavailable
		}
	}
	writeJSON(w, code, healthBody{Status: status, Checks: results})
}
