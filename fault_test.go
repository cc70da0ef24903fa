package main

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/stretchr/testify/require"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/awss3/s3test"
	v1 "github.com/asecurityteam/vpcflow-grapherd/pkg/handlers/v1"
)

// The process-level fault tests run the built binary, inject a fault from
// outside (SIGKILL, a digester that stops mid-body, hostile clients) and
// check what a client of the real process sees. Every test ends with
// SIGTERM and exit status 0: the process survived what was done to it.

// sampleID is the graph id of sampleWindow.
func sampleID(t *testing.T) string {
	t.Helper()
	start, stop, err := v1.ParseWindow(sampleWindow, 0)
	require.NoError(t, err)
	return v1.ComputeID(start, stop)
}

// manyLines returns a digest of n distinct flow records, about 400 bytes of
// DOT each once graphed.
func manyLines(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "2 123456789012 eni-%05x 10.%d.%d.%d 172.16.%d.%d 0 %d 6 %d %d 1793527200 1793527260 ACCEPT OK\n",
			i%97, (i>>16)&255, (i>>8)&255, i&255, (i>>8)&255, i&255, 1+i%1024, i+1, 40*(i+1))
	}
	return b.String()
}

// stallingDigesterd is vpcflow-digesterd that, while stalling, sends the
// first partLines lines of the digest and then blocks mid-body until the
// client goes away; otherwise it sends the whole digest.
type stallingDigesterd struct {
	digest    string
	partLines int
	stalling  atomic.Bool
	sent      chan struct{} // closed once a partial body was sent
	once      sync.Once
	quit      chan struct{}
}

func newStallingDigesterd(t *testing.T, digest string, partLines int) (*stallingDigesterd, *httptest.Server) {
	t.Helper()
	d := &stallingDigesterd{digest: digest, partLines: partLines, sent: make(chan struct{}), quit: make(chan struct{})}
	d.stalling.Store(true)
	srv := httptest.NewServer(d)
	t.Cleanup(func() {
		close(d.quit)
		srv.Close()
	})
	return d, srv
}

func (d *stallingDigesterd) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		w.WriteHeader(http.StatusAccepted)
		return
	}
	w.WriteHeader(http.StatusOK)
	zw := gzip.NewWriter(w)
	if !d.stalling.Load() {
		_, _ = io.WriteString(zw, d.digest)
		_ = zw.Close()
		return
	}
	cut := 0
	for range d.partLines {
		cut += strings.IndexByte(d.digest[cut:], '\n') + 1
	}
	_, _ = io.WriteString(zw, d.digest[:cut])
	_ = zw.Flush()
	w.(http.Flusher).Flush()
	d.once.Do(func() { close(d.sent) })
	select {
	case <-r.Context().Done():
	case <-d.quit:
	}
}

// kill sends SIGKILL, as a crash or the OOM killer would, and waits.
func (p *proc) kill(t *testing.T) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGKILL))
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatal("service did not die on SIGKILL")
	}
}

// remakeAfterCrash restarts the service killed at killed on the same
// address and data, with the digester answering in full: the dead job's
// mark holds the window until it expires, then a POST makes the whole graph.
func remakeAfterCrash(t *testing.T, addr string, env map[string]string, dd *stallingDigesterd, killed time.Time) {
	t.Helper()
	dd.stalling.Store(false)
	p := startService(t, addr, env)
	waitExpiry(t, p, killed, 3*time.Second, time.Second)

	status, body := p.do(t, http.MethodPost, "/?"+sampleWindow)
	require.Equal(t, http.StatusAccepted, status, body)
	status, body, _ = p.waitGraph(t, sampleWindow)
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, digestLines(t, dd.digest), edges(t, body))
	require.NoError(t, p.stop(t, syscall.SIGTERM))
}

// waitExpiry polls GET after a crash: it must answer 204 while the dead
// job's mark lives and 404 once it expired, never anything else, and the
// expiry must come when the mark's timeout says.
func waitExpiry(t *testing.T, p *proc, killed time.Time, timeout, refresh time.Duration) {
	t.Helper()
	status, body := p.do(t, http.MethodGet, "/?"+sampleWindow)
	require.Equal(t, http.StatusNoContent, status, "the dead job's mark still holds the window: %s", body)
	for {
		status, body = p.do(t, http.MethodGet, "/?"+sampleWindow)
		if status != http.StatusNoContent {
			break
		}
		require.Less(t, time.Since(killed), timeout+5*time.Second, "the mark never expired")
		time.Sleep(25 * time.Millisecond)
	}
	require.Equal(t, http.StatusNotFound, status, "nothing partial is ever served: %s", body)
	// The mark was refreshed at most one interval before the kill.
	require.GreaterOrEqual(t, time.Since(killed), timeout-refresh-200*time.Millisecond, "the mark expired early")
}

// TestFaultCrashFileStorage kills the service with SIGKILL while a job is
// writing a graph to the filesystem: no <id>.dot exists afterwards (only a
// temporary file that is never served), the restarted service answers 204
// until the mark expires and 404 after, and a new POST makes the graph.
func TestFaultCrashFileStorage(t *testing.T) {
	t.Parallel()
	const lines = 6000
	digest := manyLines(lines)
	dd, stub := newStallingDigesterd(t, digest, lines/2)
	dataDir := t.TempDir()
	env := map[string]string{
		"GRAPHERD_DATA_DIR":         dataDir,
		"DIGESTER_ENDPOINT":         stub.URL,
		"DIGESTER_POLLING_INTERVAL": "20",
		"GRAPH_PROGRESS_TIMEOUT":    "3000",
		"RUNTIME_LOGGER_LEVEL":      "WARN",
	}
	addr := freeAddr(t)
	p := startService(t, addr, env)
	id := sampleID(t)
	graphs := filepath.Join(dataDir, "graphs")

	status, body := p.do(t, http.MethodPost, "/?"+sampleWindow)
	require.Equal(t, http.StatusAccepted, status, body)
	<-dd.sent
	// Wait until part of the graph is on disk, in a temporary file.
	var partial string
	require.Eventually(t, func() bool {
		tmps, _ := filepath.Glob(filepath.Join(graphs, ".graph-*.tmp"))
		for _, tmp := range tmps {
			if fi, err := os.Stat(tmp); err == nil && fi.Size() > 0 {
				partial = tmp
				return true
			}
		}
		return false
	}, 20*time.Second, 10*time.Millisecond)
	status, _ = p.do(t, http.MethodGet, "/?"+sampleWindow)
	require.Equal(t, http.StatusNoContent, status)

	p.kill(t)
	killed := time.Now()
	_, err := os.Stat(filepath.Join(graphs, id+".dot"))
	require.ErrorIs(t, err, fs.ErrNotExist, "a crash mid-job leaves no graph under its name")
	_, err = os.Stat(partial)
	require.NoError(t, err, "the partial graph stays in its temporary file")
	_, err = os.Stat(filepath.Join(dataDir, "progress", id+"_in_progress"))
	require.NoError(t, err, "the dead job's mark is left to expire")

	remakeAfterCrash(t, addr, env, dd, killed)
}

// TestFaultCrashS3Storage kills the service while a graph larger than one
// part is being uploaded to S3 in a multipart upload: the object never
// exists, the restarted service answers 204 until the mark expires and 404
// after, and a new POST makes the graph.
func TestFaultCrashS3Storage(t *testing.T) {
	t.Parallel()
	gw := s3test.Start(t)
	gw.CreateBucket(t, "graphs")
	gw.CreateBucket(t, "graph-progress")
	// About 400 bytes of DOT per edge: the first half is past the 5 MiB
	// multipart threshold.
	const lines = 30000
	digest := manyLines(lines)
	dd, stub := newStallingDigesterd(t, digest, lines/2)
	env := map[string]string{
		"GRAPH_STORAGE_BUCKET":         "graphs",
		"GRAPH_STORAGE_BUCKET_REGION":  s3test.Region,
		"GRAPH_PROGRESS_BUCKET":        "graph-progress",
		"GRAPH_PROGRESS_BUCKET_REGION": s3test.Region,
		"GRAPH_PROGRESS_TIMEOUT":       "3000",
		"DIGESTER_ENDPOINT":            stub.URL,
		"DIGESTER_POLLING_INTERVAL":    "20",
		"USE_IAM":                      "false",
		"AWS_ACCESS_KEY_ID":            gw.AccessKey,
		"AWS_SECRET_ACCESS_KEY":        gw.SecretKey,
		"AWS_ENDPOINT_URL_S3":          gw.Endpoint,
		"RUNTIME_LOGGER_LEVEL":         "WARN",
	}
	addr := freeAddr(t)
	p := startService(t, addr, env)
	key := sampleID(t) + ".dot"
	client := gw.Client(t)
	ctx := context.Background()

	status, body := p.do(t, http.MethodPost, "/?"+sampleWindow)
	require.Equal(t, http.StatusAccepted, status, body)
	<-dd.sent
	require.Eventually(t, func() bool {
		out, err := client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String("graphs")})
		return err == nil && len(out.Uploads) > 0
	}, 30*time.Second, 20*time.Millisecond, "a multipart upload is in flight")

	p.kill(t)
	killed := time.Now()
	_, err := client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("graphs"), Key: aws.String(key)})
	var notFound *s3types.NotFound
	require.ErrorAs(t, err, &notFound, "an upload cut short leaves no object")

	remakeAfterCrash(t, addr, env, dd, killed)
}

// TestFaultConcurrentCreatesS3 sends 50 POSTs for one window at once to
// the seed's deployment (S3 storage and marks, jobs through the service's
// own HTTP endpoint): the conditional write lets exactly one queue a job.
func TestFaultConcurrentCreatesS3(t *testing.T) {
	t.Parallel()
	gw := s3test.Start(t)
	gw.CreateBucket(t, "graphs")
	gw.CreateBucket(t, "graph-progress")
	digest := "2 123456789012 eni-0a1 10.0.0.1 10.0.0.2 0 443 6 10 840 1793527200 1793527260 ACCEPT OK\n"
	dd := &digesterd{digest: digest, notYet: 2}
	stub := httptest.NewServer(dd)
	defer stub.Close()
	addr := freeAddr(t)
	p := startService(t, addr, map[string]string{
		"GRAPH_STORAGE_BUCKET":         "graphs",
		"GRAPH_STORAGE_BUCKET_REGION":  s3test.Region,
		"GRAPH_PROGRESS_BUCKET":        "graph-progress",
		"GRAPH_PROGRESS_BUCKET_REGION": s3test.Region,
		"DIGESTER_ENDPOINT":            stub.URL,
		"DIGESTER_POLLING_INTERVAL":    "20",
		"STREAM_APPLIANCE_ENDPOINT":    "http://" + addr,
		"USE_IAM":                      "false",
		"AWS_ACCESS_KEY_ID":            gw.AccessKey,
		"AWS_SECRET_ACCESS_KEY":        gw.SecretKey,
		"AWS_ENDPOINT_URL_S3":          gw.Endpoint,
		"RUNTIME_LOGGER_LEVEL":         "WARN",
	})

	const clients = 50
	codes := make(chan int, clients)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			<-start
			status, _ := p.do(t, http.MethodPost, "/?"+sampleWindow)
			codes <- status
		})
	}
	close(start)
	wg.Wait()
	close(codes)
	counts := map[int]int{}
	for c := range codes {
		counts[c]++
	}
	require.Equal(t, map[int]int{http.StatusAccepted: 1, http.StatusConflict: clients - 1}, counts)
	status, body, _ := p.waitGraph(t, sampleWindow)
	require.Equal(t, http.StatusOK, status, body)
	require.Equal(t, digestLines(t, digest), edges(t, body))
	require.Equal(t, int32(1), dd.creates.Load(), "one job, one digest")
	require.NoError(t, p.stop(t, syscall.SIGTERM))
}

// TestFaultHostileInput sends the real binary what a hostile or broken
// client might: each gets a clear 4xx (JSON where the service answers),
// nothing is written outside the data folders, every log line stays one
// JSON object, a slowloris client is cut off, and the process survives.
func TestFaultHostileInput(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	dataDir := filepath.Join(root, "data")
	p := startService(t, freeAddr(t), map[string]string{
		"GRAPHERD_DATA_DIR":       dataDir,
		"FLOW_LOGS_DIR":           "testdata/flowlogs",
		"GRAPHERD_MAX_WINDOW":     "2h",
		"GRAPHERD_MAX_BODY_BYTES": "256",
	})
	id := sampleID(t)
	job := func(id, start, stop string) string {
		b, err := json.Marshal(map[string]string{"id": id, "start": start, "stop": stop})
		require.NoError(t, err)
		return string(b)
	}
	const start, stop = "2026-11-01T10:00:00Z", "2026-11-01T11:00:00Z"
	longStart, longStop, err := v1.ParseWindow("start="+start+"&stop=2026-11-01T13:00:00Z", 0)
	require.NoError(t, err)
	longID := v1.ComputeID(longStart, longStop)
	tests := []struct {
		name, method, path, body string
		status                   int
		msg                      string // in the JSON message; "" when the answer is not JSON
	}{
		{"long query", http.MethodGet, "/?" + sampleWindow + "&pad=" + strings.Repeat("x", 2048), "", http.StatusBadRequest, "longer than the limit of 1024"},
		{"huge query", http.MethodGet, "/?pad=" + strings.Repeat("x", 32<<10), "", http.StatusRequestHeaderFieldsTooLarge, ""},
		{"window too long", http.MethodPost, "/?start=2026-11-01T10:00:00Z&stop=2026-11-01T13:00:00Z", "", http.StatusBadRequest, "window of 3h0m0s is longer than the limit of 2h0m0s"},
		{"newline in a time", http.MethodPost, "/?start=2026-11-01T10:00:00Z%0A%7B%22level%22%3A%22ERROR%22%7D&stop=" + stop, "", http.StatusBadRequest, `not an RFC 3339 time`},
		{"repeated parameter", http.MethodGet, "/?" + sampleWindow + "&start=" + start, "", http.StatusBadRequest, `"start" is given 2 times`},
		{"a valid job", http.MethodPost, "/grapherd/job", job(id, start, stop), http.StatusNoContent, ""},
		{"body too large", http.MethodPost, "/grapherd/job", job(id, start, stop) + strings.Repeat(" ", 512), http.StatusRequestEntityTooLarge, "larger than 256 bytes"},
		{"id escapes the folder", http.MethodPost, "/grapherd/job", job("../../../../"+id, start, stop), http.StatusBadRequest, "is not a graph id"},
		{"id with a slash", http.MethodPost, "/grapherd/job", job(id[:8]+"/"+id[9:], start, stop), http.StatusBadRequest, "is not a graph id"},
		{"id of another window", http.MethodPost, "/grapherd/job", job(id, start, "2026-11-01T11:01:00Z"), http.StatusBadRequest, "is not the id of the window"},
		{"job window too long", http.MethodPost, "/grapherd/job", job(longID, start, "2026-11-01T13:00:00Z"), http.StatusBadRequest, "window of 3h0m0s is longer than the limit of 2h0m0s"},
		{"id with a NUL", http.MethodPost, "/grapherd/job", job(id[:35]+"\x00", start, stop), http.StatusBadRequest, "is not a graph id"},
		{"two objects", http.MethodPost, "/grapherd/job", job(id, start, stop) + job(id, start, stop), http.StatusBadRequest, "data after the JSON object"},
		{"traversal in route and id", http.MethodPost, "/..%2F..%2Ftmp/evil", job("../../tmp/evil", start, stop), http.StatusBadRequest, "is not a graph id"},
		{"three segments", http.MethodPost, "/a/b/c", job(id, start, stop), http.StatusNotFound, "no route for POST"},
		{"unknown route", http.MethodGet, "/no/such/route", "", http.StatusNotFound, "no route for GET"},
		{"GET a worker route", http.MethodGet, "/graphs/" + id, "", http.StatusMethodNotAllowed, "method GET is not allowed"},
		{"unknown method", http.MethodDelete, "/?" + sampleWindow, "", http.StatusMethodNotAllowed, "method DELETE is not allowed"},
		{"GET the worker", http.MethodGet, "/grapherd/job", "", http.StatusMethodNotAllowed, "method GET is not allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req, err := http.NewRequest(tt.method, p.url+tt.path, strings.NewReader(tt.body))
			require.NoError(t, err)
			res, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
			require.NoError(t, err)
			defer res.Body.Close()
			b, err := io.ReadAll(res.Body)
			require.NoError(t, err)
			require.Equal(t, tt.status, res.StatusCode, string(b))
			if tt.msg == "" {
				return
			}
			require.Equal(t, "application/json", res.Header.Get("Content-Type"))
			var m struct{ Message string }
			require.NoError(t, json.Unmarshal(b, &m), string(b))
			require.Contains(t, m.Message, tt.msg)
		})
	}

	t.Run("slowloris", func(t *testing.T) {
		t.Parallel()
		conn, err := net.Dial("tcp", p.addr)
		require.NoError(t, err)
		defer conn.Close()
		began := time.Now()
		_, err = io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
		require.NoError(t, err)
		closed := make(chan error, 1)
		go func() {
			_, err := io.Copy(io.Discard, conn)
			closed <- err
		}()
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-closed:
				// The server's 5s header timeout ends it, long before a
				// trickle could.
				require.Less(t, time.Since(began), 8*time.Second)
				return
			case <-tick.C:
				if _, err := io.WriteString(conn, "a"); err != nil {
					require.Less(t, time.Since(began), 8*time.Second)
					return
				}
				require.Less(t, time.Since(began), 8*time.Second, "a client trickling headers is not cut off")
			}
		}
	})

	t.Cleanup(func() {
		status, body := p.do(t, http.MethodGet, "/healthz")
		require.Equal(t, http.StatusOK, status, "the process survives hostile input: %s", body)
		require.NoError(t, p.stop(t, syscall.SIGTERM))

		// Nothing was written outside the data folders, and only the valid
		// job left a graph (its DOT and its flow table).
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, path)
			switch rel {
			case ".", "data", filepath.Join("data", "graphs"), filepath.Join("data", "progress"),
				filepath.Join("data", "graphs", id+".dot"), filepath.Join("data", "graphs", id+".table"):
				return nil
			}
			return fmt.Errorf("unexpected file %s", rel)
		})
		require.NoError(t, err)

		// Every log line is one JSON object, each key once: input never
		// forges a line or a field.
		sc := bufio.NewScanner(strings.NewReader(p.stdout.String()))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			requireLogLine(t, sc.Bytes())
		}
		require.NoError(t, sc.Err())
		require.NotRegexp(t, regexp.MustCompile(`(?m)^\{"level":"ERROR"\}`), p.stdout.String())
	})
}

// requireLogLine fails unless line is one JSON object whose top-level keys
// are all distinct.
func requireLogLine(t *testing.T, line []byte) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(string(line)))
	tok, err := dec.Token()
	require.NoError(t, err, "log line %q", line)
	require.Equal(t, json.Delim('{'), tok, "log line %q", line)
	seen := map[string]bool{}
	for dec.More() {
		key, err := dec.Token()
		require.NoError(t, err, "log line %q", line)
		k, ok := key.(string)
		require.True(t, ok, "log line %q", line)
		require.False(t, seen[k], "key %q twice in log line %q", k, line)
		seen[k] = true
		var v json.RawMessage
		require.NoError(t, dec.Decode(&v), "log line %q", line)
	}
	_, err = dec.Token()
	require.NoError(t, err, "log line %q", line)
	_, err = dec.Token()
	require.ErrorIs(t, err, io.EOF, "log line %q holds more than one object", line)
}
