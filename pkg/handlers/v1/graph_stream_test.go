package v1

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/runtime"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
)

// recordingStats keeps the tags of every counted request.
type recordingStats struct {
	runtime.NopStats
	mu     sync.Mutex
	counts [][]string
	done   chan struct{} // receives once per counted request
}

func newRecordingStats() *recordingStats {
	return &recordingStats{done: make(chan struct{}, 16)}
}

func (s *recordingStats) Count(name string, _ int64, tags ...string) {
	if name != "http.server.requests" {
		return
	}
	s.mu.Lock()
	s.counts = append(s.counts, tags)
	s.mu.Unlock()
	s.done <- struct{}{}
}

// waitCount waits for the next counted request and returns its tags.
func (s *recordingStats) waitCount(t *testing.T) []string {
	t.Helper()
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the request was never counted")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[len(s.counts)-1]
}

// lockedBuffer is a log sink safe for the server's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// records returns the JSON log records written so far.
func (l *lockedBuffer) records(t *testing.T) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(l.b.Bytes()))
	for sc.Scan() {
		var m map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &m))
		out = append(out, m)
	}
	return out
}

// streamStorage serves every graph from a reader that newReader makes.
type streamStorage struct {
	types.Storage
	newReader func() io.ReadCloser
}

func (s streamStorage) Get(context.Context, string) (io.ReadCloser, error) { return s.newReader(), nil }

// endlessGraph never ends, as a large graph would not for a client that
// hangs up early.
type endlessGraph struct{}

func (endlessGraph) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	return len(p), nil
}

func (endlessGraph) Close() error { return nil }

// brokenGraph fails after some bytes, as a dropped storage connection does.
type brokenGraph struct{ left int }

func (b *brokenGraph) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, errors.New("connection reset by storage")
	}
	n := min(len(p), b.left)
	b.left -= n
	return n, nil
}

func (*brokenGraph) Close() error { return nil }

// streamServer serves GET / with the request logger in front, logging
// JSON to the returned buffer.
func streamServer(t *testing.T, st types.Storage) (*httptest.Server, *lockedBuffer, *recordingStats) {
	t.Helper()
	logs := &lockedBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	stats := newRecordingStats()
	g := &Graph{Storage: st, Logger: logger}
	srv := httptest.NewServer(RequestLogger(logger, stats)(http.HandlerFunc(g.Get)))
	t.Cleanup(srv.Close)
	return srv, logs, stats
}

// events returns the level and event name of every record naming a
// dependency or a client.
func events(t *testing.T, logs *lockedBuffer) []string {
	t.Helper()
	var out []string
	for _, r := range logs.records(t) {
		msg, _ := r["msg"].(string)
		if msg == runtime.EventClientGone || msg == runtime.EventDependencyFailure {
			dep, _ := r[runtime.AttrDependency].(string)
			out = append(out, strings.TrimSpace(r["level"].(string)+" "+msg+" "+dep))
		}
	}
	return out
}

// TestGetClientGoneIsNotAStorageFailure: a client that reads the start of a
// graph and hangs up is an info-level client-gone event, not an ERROR
// dependency-failure of the storage, and its request is still counted.
func TestGetClientGoneIsNotAStorageFailure(t *testing.T) {
	t.Parallel()
	srv, logs, stats := streamServer(t, streamStorage{newReader: func() io.ReadCloser { return endlessGraph{} }})
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	require.NoError(t, err)
	_, err = io.WriteString(conn, "GET /?"+orderQuery+" HTTP/1.1\r\nHost: grapherd\r\n\r\n")
	require.NoError(t, err)
	_, err = io.ReadFull(conn, make([]byte, 64<<10))
	require.NoError(t, err)
	require.NoError(t, conn.Close())

	require.Contains(t, stats.waitCount(t), "status:200")
	require.Equal(t, []string{"INFO client-gone"}, events(t, logs))
}

// TestGetStorageReadFailureIsAStorageFailure: a storage stream that breaks
// while the client is still reading is a dependency-failure of the storage,
// and the request is counted.
func TestGetStorageReadFailureIsAStorageFailure(t *testing.T) {
	t.Parallel()
	srv, logs, stats := streamServer(t, streamStorage{newReader: func() io.ReadCloser { return &brokenGraph{left: 100 << 10} }})
	res, err := http.Get(srv.URL + "/?" + orderQuery)
	require.NoError(t, err)
	defer func() { _ = res.Body.Close() }()
	b, err := io.ReadAll(res.Body)
	require.ErrorIs(t, err, io.ErrUnexpectedEOF, "the client sees the stream break")
	require.Len(t, b, 100<<10)

	require.Contains(t, stats.waitCount(t), "status:200")
	require.Equal(t, []string{"ERROR dependency-failure storage"}, events(t, logs))
}
