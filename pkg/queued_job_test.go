package grapherd

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	v1 "github.com/asecurityteam/vpcflow-grapherd/pkg/handlers/v1"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/marker"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/queuer"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/runtime"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/storage"
)

// TestQueuedJobsCheckedAsTheWorkerRouteChecksThem publishes, on a real
// JetStream server the service takes its jobs from, a job with one
// window's id and another window's times, and one of ten years: each is
// rejected as the worker route would refuse it, and never made, where a
// review found the first stored one window's graph under another's id,
// which GET then served for good, and the second handed to the digester.
// A valid job published after them is made, so the consumer was running.
func TestQueuedJobsCheckedAsTheWorkerRouteChecksThem(t *testing.T) {
	t.Parallel()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	require.NoError(t, err)
	go ns.Start()
	require.True(t, ns.ReadyForConnections(10*time.Second))
	t.Cleanup(ns.Shutdown)
	cfg, err := runtime.Load(func(k string) string {
		return map[string]string{"GRAPHERD_QUEUE_URL": ns.ClientURL()}[k]
	})
	require.NoError(t, err)
	var mu sync.Mutex
	var asked [][2]time.Time
	digest := digestFunc(func(_ context.Context, start, stop time.Time) (io.ReadCloser, error) {
		mu.Lock()
		asked = append(asked, [2]time.Time{start, stop})
		mu.Unlock()
		return io.NopCloser(strings.NewReader(sampleV2)), nil
	})
	store := &storage.Memory{}
	s := &Service{Config: cfg, Storage: store, Marker: &marker.Memory{Timeout: time.Minute}, Digester: digest}
	require.NoError(t, s.BindRoutes(chi.NewRouter()))
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })

	nc, err := nats.Connect(ns.ClientURL())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	publish := func(id string, start, stop time.Time) {
		t.Helper()
		body, err := json.Marshal(map[string]string{"id": id, "start": start.Format(time.RFC3339), "stop": stop.Format(time.RFC3339)})
		require.NoError(t, err)
		_, err = js.Publish(context.Background(), queuer.DefaultJetStreamSubject, body)
		require.NoError(t, err)
	}
	a := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	b := a.Add(24 * time.Hour)
	idA := v1.ComputeID(a, a.Add(time.Hour))
	long := a.AddDate(-10, 0, 0)
	publish(idA, b, b.Add(time.Hour))       // A's id, B's window
	publish(v1.ComputeID(long, a), long, a) // ten years
	valid := v1.ComputeID(b.Add(time.Hour), b.Add(2*time.Hour))
	publish(valid, b.Add(time.Hour), b.Add(2*time.Hour))

	deadline := time.Now().Add(20 * time.Second)
	for {
		made, err := store.Exists(context.Background(), valid)
		require.NoError(t, err)
		stream, err := js.Stream(context.Background(), queuer.DefaultJetStreamStream)
		require.NoError(t, err)
		info, err := stream.Info(context.Background())
		require.NoError(t, err)
		if made && info.State.Msgs == 0 {
			break
		}
		require.True(t, time.Now().Before(deadline), "the valid job was not made and every message settled in time")
		time.Sleep(20 * time.Millisecond)
	}
	made, err := store.Exists(context.Background(), idA)
	require.NoError(t, err)
	require.False(t, made, "a job whose id is not its window's made a graph")
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, [][2]time.Time{{b.Add(time.Hour), b.Add(2 * time.Hour)}}, asked, "only the valid job reached the digester")
}
