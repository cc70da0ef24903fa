package v1

import (
	"context"
	"errors"
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

type healthBody struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks,omitempty"`
}

// Live answers 200 while the process serves requests.
func (h *Health) Live(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, healthBody{Status: "ok"})
}

// Ready runs the checks concurrently and answers 200 when all pass, 503
// naming the failing dependencies otherwise.
func (h *Health) Ready(w http.ResponseWriter, r *http.Request) {
	timeout := h.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	results := make(map[string]string, len(h.Checks))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, c := range h.Checks {
		wg.Go(func() {
			res := "ok"
			if err := c.Ping(ctx); err != nil {
				res = err.Error()
			}
			mu.Lock()
			results[c.Name] = res
			mu.Unlock()
		})
	}
	wg.Wait()
	status, code := "ok", http.StatusOK
	for name, res := range results {
		if res != "ok" {
			status, code = "unavailable", http.StatusServiceUnavailable
			runtime.LogEvent(r.Context(), LoggerFrom(r.Context(), h.Logger), slog.LevelWarn, runtime.EventDependencyFailure,
				errors.New("not ready: "+res), slog.String(runtime.AttrDependency, name))
		}
	}
	writeJSON(w, code, healthBody{Status: status, Checks: results})
}
