package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/stretchr/testify/require"

	grapherd "github.com/asecurityteam/vpcflow-grapherd/pkg"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/marker"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/runtime"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/storage"
)

const digest = "2 123456789012 eni-0a1 10.0.0.1 10.0.0.2 0 443 6 10 840 1793527200 1793527260 ACCEPT OK\n"

// staticDigester hands every job the same digest.
type staticDigester struct{}

func (staticDigester) Digest(context.Context, time.Time, time.Time) (io.ReadCloser, error) {
	return io.NopCloser(strings.NewReader(digest)), nil
}

// serve runs the real service in-process on memory backends.
func serve(t *testing.T) string {
	t.Helper()
	cfg, err := runtime.Load(func(string) string { return "" })
	require.NoError(t, err)
	s := &grapherd.Service{Config: cfg, Storage: &storage.Memory{}, Marker: &marker.Memory{Timeout: time.Minute}, Digester: staticDigester{}}
	router := chi.NewRouter()
	require.NoError(t, s.BindRoutes(router))
	srv := httptest.NewServer(router)
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, s.Shutdown(ctx))
	})
	return srv.URL
}

func TestDriveAgainstTheService(t *testing.T) {
	t.Parallel()
	o := options{clients: 4, duration: 20 * time.Second, requests: 600, windows: 10, post: 0.3, seed: 7}
	rep := drive(context.Background(), serve(t), o)
	require.Zero(t, rep.errorCount(), rep.samples)
	answers := 0
	for _, byStatus := range rep.statuses {
		for _, n := range byStatus {
			answers += n
		}
	}
	require.Equal(t, o.requests, answers, "bounded in requests")
	require.Equal(t, 10, rep.statuses[opPost][http.StatusAccepted], "one job per window")
	require.Positive(t, rep.graphs)
	var out strings.Builder
	rep.print(&out)
	require.Contains(t, out.String(), "errors: 0")
	require.Contains(t, out.String(), "202=10")
}

func TestDriveCountsErrors(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch n.Add(1) % 3 {
		case 0:
			http.Error(w, "boom", http.StatusInternalServerError)
		case 1:
			if r.Method == http.MethodGet {
				_, _ = io.WriteString(w, "digraph {\n\tn0a000001 -> ") // cut short
				return
			}
			w.WriteHeader(http.StatusAccepted)
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	defer srv.Close()
	rep := drive(context.Background(), srv.URL, options{clients: 2, duration: 10 * time.Second, requests: 90, windows: 3, post: 0.5, seed: 1})
	require.Equal(t, 30, rep.statuses[opPost][http.StatusInternalServerError]+rep.statuses[opGet][http.StatusInternalServerError])
	require.Positive(t, rep.badGraphs)
	require.Equal(t, 30+rep.badGraphs, rep.errorCount())
	require.NotEmpty(t, rep.samples)
}

func TestDriveIsBoundedInTime(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	defer srv.Close()
	began := time.Now()
	rep := drive(context.Background(), srv.URL, options{clients: 2, duration: 200 * time.Millisecond, requests: 1000, windows: 1, seed: 1})
	require.Less(t, time.Since(began), 3*time.Second)
	require.Zero(t, rep.errorCount(), "requests cut by the end of the run are not errors")
}

func TestParseOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		err  string
	}{
		{args: nil},
		{args: []string{"-clients", "0"}, err: "-clients"},
		{args: []string{"-duration", "0s"}, err: "-duration"},
		{args: []string{"-requests", "0"}, err: "-requests"},
		{args: []string{"-windows", "601"}, err: "-windows"},
		{args: []string{"-post", "1.5"}, err: "-post"},
		{args: []string{"extra"}, err: "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			o, err := parseOptions(tt.args, io.Discard)
			if tt.err != "" {
				require.ErrorContains(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, 32, o.clients)
			require.Equal(t, 20*time.Second, o.duration)
			require.Equal(t, 20000, o.requests)
		})
	}
}

func TestWindowsAreDistinctAndValid(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for i := range maxWindows {
		q := windowQuery(i)
		require.False(t, seen[q], "window %d repeats", i)
		seen[q] = true
		require.True(t, strings.HasPrefix(q, "start=2026-11-01T"), q)
		require.Contains(t, q, "stop=2026-11-01T")
	}
}

func TestPercentile(t *testing.T) {
	t.Parallel()
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	require.Equal(t, 50*time.Millisecond, percentile(d, 50))
	require.Equal(t, 99*time.Millisecond, percentile(d, 99))
	require.Equal(t, 100*time.Millisecond, percentile(d, 100))
	require.Zero(t, percentile(nil, 50))
}
