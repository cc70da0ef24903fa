package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/graph/formats/dot"
	"gonum.org/v1/gonum/graph/formats/dot/ast"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/awss3/s3test"
	v1 "github.com/asecurityteam/vpcflow-grapherd/pkg/handlers/v1"
)

// binary is the service built once for the end-to-end tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "grapherd-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "vpcflow-grapherd")
	build := exec.Command("go", "build", "-race", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const sampleWindow = "start=2026-11-01T10:00:00Z&stop=2026-11-01T11:00:00Z"

// proc is one run of the service binary.
type proc struct {
	cmd    *exec.Cmd
	url    string
	addr   string
	stdout *lockedBuffer
	stderr *lockedBuffer
	done   chan error
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// startService runs the binary with exactly env (plus PATH) on addr and waits
// until /healthz answers.
func startService(t *testing.T, addr string, env map[string]string) *proc {
	t.Helper()
	p := &proc{addr: addr, url: "http://" + addr, stdout: &lockedBuffer{}, stderr: &lockedBuffer{}, done: make(chan error, 1)}
	p.cmd = exec.Command(binary)
	p.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "RUNTIME_HTTPSERVER_ADDRESS=" + addr, "RUNTIME_STATS_OUTPUT=NULLSTAT"}
	for k, v := range env {
		p.cmd.Env = append(p.cmd.Env, k+"="+v)
	}
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	require.NoError(t, p.cmd.Start())
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("service stdout:\n%s\nstderr:\n%s", p.stdout, p.stderr)
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		res, err := http.Get(p.url + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case err := <-p.done:
			t.Fatalf("service exited before it was ready: %v\nstdout:\n%s\nstderr:\n%s", err, p.stdout, p.stderr)
		default:
		}
		require.True(t, time.Now().Before(deadline), "service not ready in time")
		time.Sleep(20 * time.Millisecond)
	}
}

// stop sends sig and returns the exit error (nil for status 0).
func (p *proc) stop(t *testing.T, sig os.Signal) error {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(sig))
	select {
	case err := <-p.done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("service did not stop within 30s")
		return nil
	}
}

func (p *proc) do(t *testing.T, method, path string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, p.url+path, nil)
	require.NoError(t, err)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res.StatusCode, string(b)
}

// waitGraph polls GET until it answers other than 204, recording whether
// it ever saw 204.
func (p *proc) waitGraph(t *testing.T, query string) (status int, body string, saw204 bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		status, body = p.do(t, http.MethodGet, "/?"+query)
		if status != http.StatusNoContent {
			return status, body, saw204
		}
		saw204 = true
		require.True(t, time.Now().Before(deadline), "graph not made in time")
		time.Sleep(25 * time.Millisecond)
	}
}

// digesterd is a stand-in for vpcflow-digesterd: POST answers 202, GET
// answers 204 for the first polls and then the gzipped digest.
type digesterd struct {
	digest  string
	notYet  int32
	polls   atomic.Int32
	creates atomic.Int32
}

func (d *digesterd) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, err := time.Parse(time.RFC3339Nano, r.URL.Query().Get("start")); err != nil {
		http.Error(w, "bad start", http.StatusBadRequest)
		return
	}
	switch r.Method {
	case http.MethodPost:
		d.creates.Add(1)
		w.WriteHeader(http.StatusAccepted)
	case http.MethodGet:
		if d.polls.Add(1) <= d.notYet {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.WriteHeader(http.StatusOK)
		gz := gzip.NewWriter(w)
		_, _ = io.WriteString(gz, d.digest)
		_ = gz.Close()
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
}

// edges parses a DOT graph into "src dst attr=value..." lines, one per edge,
// with node ids resolved to their labels.
func edges(t *testing.T, graph string) []string {
	t.Helper()
	f, err := dot.ParseString(graph)
	require.NoError(t, err, "graph does not parse")
	require.Len(t, f.Graphs, 1)
	labels := map[string]string{}
	var out []string
	for _, st := range f.Graphs[0].Stmts {
		if n, ok := st.(*ast.NodeStmt); ok {
			for _, a := range n.Attrs {
				if a.Key == "label" {
					labels[n.Node.ID] = strings.Trim(a.Val, `"`)
				}
			}
		}
	}
	for _, st := range f.Graphs[0].Stmts {
		e, ok := st.(*ast.EdgeStmt)
		if !ok {
			continue
		}
		from := labels[e.From.(*ast.Node).ID]
		to := labels[e.To.Vertex.(*ast.Node).ID]
		require.NotEmpty(t, from)
		require.NotEmpty(t, to)
		attrs := map[string]string{}
		for _, a := range e.Attrs {
			attrs[a.Key] = strings.Trim(a.Val, `"`)
		}
		action := map[string]string{"green": "ACCEPT", "red": "REJECT"}[attrs["color"]]
		require.NotEmpty(t, action, "edge colour %q", attrs["color"])
		out = append(out, strings.Join([]string{"2", attrs["govpc_accountID"], attrs["govpc_eniID"], from, to,
			attrs["govpc_srcPort"], attrs["govpc_dstPort"], attrs["govpc_protocol"], attrs["govpc_packets"],
			attrs["govpc_bytes"], attrs["govpc_start"], attrs["govpc_end"], action, "OK"}, " "))
	}
	sort.Strings(out)
	return out
}

func digestLines(t *testing.T, digest string) []string {
	t.Helper()
	var out []string
	sc := bufio.NewScanner(strings.NewReader(digest))
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			out = append(out, line)
		}
	}
	sort.Strings(out)
	return out
}

// TestServeSeedDeployment runs the seed's standalone deployment: S3 storage
// and marks on a real S3 server, vpcflow-digesterd over HTTP, and the queuer
// posting jobs to the service's own address.
func TestServeSeedDeployment(t *testing.T) {
	t.Parallel()
	gw := s3test.Start(t)
	gw.CreateBucket(t, "graphs")
	gw.CreateBucket(t, "graph-progress")
	digest := "2 123456789012 eni-0a1 10.0.0.1 10.0.0.2 0 443 6 10 840 1793527200 1793527260 ACCEPT OK\n" +
		"2 123456789012 eni-0a1 10.0.0.3 10.0.0.1 0 22 6 2 120 1793527300 1793527320 REJECT OK\n" +
		"2 123456789012 eni-0a1 2001:db8::10 2001:db8:1:: 0 53 17 1 80 1793527300 1793527320 ACCEPT OK\n"
	dd := &digesterd{digest: digest, notYet: 20}
	stub := httptest.NewServer(dd)
	defer stub.Close()

	addr := freeAddr(t)
	p := startService(t, addr, map[string]string{
		"GRAPH_STORAGE_BUCKET":         "graphs",
		"GRAPH_STORAGE_BUCKET_REGION":  s3test.Region,
		"GRAPH_PROGRESS_BUCKET":        "graph-progress",
		"GRAPH_PROGRESS_BUCKET_REGION": s3test.Region,
		"GRAPH_PROGRESS_TIMEOUT":       "60000",
		"DIGESTER_ENDPOINT":            stub.URL,
		"DIGESTER_POLLING_INTERVAL":    "20",
		"DIGESTER_POLLING_TIMEOUT":     "20000",
		"STREAM_APPLIANCE_ENDPOINT":    "http://" + addr,
		"USE_IAM":                      "false",
		"AWS_ACCESS_KEY_ID":            gw.AccessKey,
		"AWS_SECRET_ACCESS_KEY":        gw.SecretKey,
		"AWS_ENDPOINT_URL_S3":          gw.Endpoint,
	})

	status, body := p.do(t, http.MethodGet, "/readyz")
	require.Equal(t, http.StatusOK, status, body)
	require.JSONEq(t, `{"status":"ok","checks":{"storage":"ok","marker":"ok","queuer":"ok","digester":"ok"}}`, body)

	started := time.Now()
	status, body = p.do(t, http.MethodPost, "/?"+sampleWindow)
	require.Equal(t, http.StatusAccepted, status, body)
	require.Less(t, time.Since(started), time.Second, "POST / must not wait for the digest")

	status, body, saw204 := p.waitGraph(t, sampleWindow)
	require.Equal(t, http.StatusOK, status, body)
	require.True(t, saw204, "GET answers 204 while the graph is made")
	require.Equal(t, digestLines(t, digest), edges(t, body))
	require.Equal(t, int32(1), dd.creates.Load())
	graph := body

	status, body = p.do(t, http.MethodPost, "/?"+sampleWindow)
	require.Equal(t, http.StatusConflict, status, body)
	require.Contains(t, body, "2026-11-01T10:00:00Z to 2026-11-01T11:00:00Z already exists")
	status, body = p.do(t, http.MethodGet, "/?start=tomorrow&stop=2026-11-01T11:00:00Z")
	require.Equal(t, http.StatusBadRequest, status, body)
	require.Contains(t, body, `not an RFC 3339 time`)

	// The graph is an object <id>.dot in the graph bucket; the mark is gone.
	start, stop, err := v1.ParseWindow(sampleWindow, 0)
	require.NoError(t, err)
	id := v1.ComputeID(start, stop)
	client := gw.Client(t)
	obj, err := client.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String("graphs"), Key: aws.String(id + ".dot")})
	require.NoError(t, err)
	stored, err := io.ReadAll(obj.Body)
	obj.Body.Close()
	require.NoError(t, err)
	require.Equal(t, graph, string(stored))
	_, err = client.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String("graph-progress"), Key: aws.String(id + "_in_progress")})
	require.Error(t, err, "the progress mark is removed once the graph is stored")

	require.NoError(t, p.stop(t, syscall.SIGTERM), "SIGTERM exits with status 0")
	require.Contains(t, p.stdout.String(), `"message":"stopped"`)
}

// TestServeWithNoConfiguration runs the service on embedded defaults with
// only FLOW_LOGS_DIR set and checks every edge against the sample's
// hand-computed digest.
func TestServeWithNoConfiguration(t *testing.T) {
	t.Parallel()
	want, err := os.ReadFile("testdata/flowlogs/expected-digest.txt")
	require.NoError(t, err)
	p := startService(t, freeAddr(t), map[string]string{
		"FLOW_LOGS_DIR":     "testdata/flowlogs",
		"GRAPHERD_DATA_DIR": t.TempDir(),
	})
	status, body := p.do(t, http.MethodPost, "/?"+sampleWindow)
	require.Equal(t, http.StatusAccepted, status, body)
	status, body, _ = p.waitGraph(t, sampleWindow)
	require.Equal(t, http.StatusOK, status, body)
	require.Equal(t, digestLines(t, string(want)), edges(t, body))
	require.NoError(t, p.stop(t, syscall.SIGINT))
	require.Contains(t, p.stdout.String(), "graphs are stored on the local filesystem")
}

// TestServeWithoutFlowLogSource starts with nothing configured: the service
// runs, and a job fails with a message naming what to set.
func TestServeWithoutFlowLogSource(t *testing.T) {
	t.Parallel()
	p := startService(t, freeAddr(t), map[string]string{"GRAPHERD_DATA_DIR": t.TempDir()})
	status, body := p.do(t, http.MethodGet, "/readyz")
	require.Equal(t, http.StatusServiceUnavailable, status)
	require.Contains(t, body, `"digester":"unavailable"`)
	require.NotContains(t, body, "FLOW_LOGS_DIR", "why is logged, not sent")
	status, _ = p.do(t, http.MethodPost, "/?"+sampleWindow)
	require.Equal(t, http.StatusAccepted, status)
	status, body, _ = p.waitGraph(t, sampleWindow)
	require.Equal(t, http.StatusFailedDependency, status, body)
	require.Contains(t, body, "FLOW_LOGS_DIR")
	require.Contains(t, body, "DIGESTER_ENDPOINT")
	require.NoError(t, p.stop(t, syscall.SIGTERM))
	require.Contains(t, p.stdout.String(), "no flow log source configured: set FLOW_LOGS_DIR", "the readiness log says why")
}

func TestStartupErrorsNameTheVariable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		env  string
		want string
	}{
		{"GRAPH_PROGRESS_TIMEOUT=abc", "GRAPH_PROGRESS_TIMEOUT"},
		{"DIGESTER_POLLING_TIMEOUT=-7", "DIGESTER_POLLING_TIMEOUT"},
		{"DIGESTER_ENDPOINT=::not a url", "DIGESTER_ENDPOINT"},
		{"RUNTIME_LOGGER_LEVEL=LOUD", "RUNTIME_LOGGER_LEVEL"},
		{"USE_IAM=maybe", "USE_IAM"},
		{"GRAPH_STORAGE_BUCKET=graphs", "GRAPH_STORAGE_BUCKET_REGION"},
		{"RUNTIME_HTTPSERVER_ADDRESS=256.0.0.1:http-alt-nope", "RUNTIME_HTTPSERVER_ADDRESS"},
		{"GRAPHERD_SPILL_DIR=/nonexistent/grapherd-spill", "GRAPHERD_SPILL_DIR"},
		{"GRAPHERD_DIGEST_MEMORY_BYTES=4096", "GRAPHERD_DIGEST_MEMORY_BYTES"},
	}
	for _, tt := range tests {
		t.Run(tt.env, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(binary)
			cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "RUNTIME_STATS_OUTPUT=NULLSTAT", "RUNTIME_LOGGER_OUTPUT=NULL", "GRAPHERD_DATA_DIR=" + t.TempDir(), tt.env}
			if !strings.HasPrefix(tt.env, "RUNTIME_HTTPSERVER_ADDRESS") {
				cmd.Env = append(cmd.Env, "RUNTIME_HTTPSERVER_ADDRESS=127.0.0.1:0")
			}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			done := make(chan error, 1)
			require.NoError(t, cmd.Start())
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				var exit *exec.ExitError
				require.ErrorAs(t, err, &exit)
				require.Equal(t, 1, exit.ExitCode())
			case <-time.After(20 * time.Second):
				_ = cmd.Process.Kill()
				t.Fatal("service started despite bad configuration")
			}
			msg := stderr.String()
			require.Contains(t, msg, tt.want)
			require.NotContains(t, msg, "panic")
			require.Equal(t, 1, strings.Count(strings.TrimSpace(msg), "\n")+1, "one line: %q", msg)
		})
	}
}

func TestConvertCommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	in := filepath.Join(dir, "digest.log")
	require.NoError(t, os.WriteFile(in, []byte("2 123456789012 eni-1 10.1.11.1 10.11.1.1 0 443 6 1 40 1793527200 1793527260 ACCEPT OK\nnot a line\n"), 0o600))
	cmd := exec.Command(binary, "convert", in)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), stderr.String())
	require.Equal(t, []string{"2 123456789012 eni-1 10.1.11.1 10.11.1.1 0 443 6 1 40 1793527200 1793527260 ACCEPT OK"}, edges(t, stdout.String()))
	require.Contains(t, stderr.String(), "skipped 1")

	cmd = exec.Command(binary, "convert", filepath.Join(dir, "missing.log"))
	cmd.Stderr = &stderr
	require.Error(t, cmd.Run())
	require.Contains(t, stderr.String(), "missing.log")
}

func TestRunInProcess(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"vpcflow-grapherd", "help"}, os.Getenv, nil, &out, io.Discard))
	require.Contains(t, out.String(), "convert")
	err := run(context.Background(), []string{"vpcflow-grapherd", "frobnicate"}, os.Getenv, nil, io.Discard, io.Discard)
	require.ErrorContains(t, err, `unknown command "frobnicate"`)

	ctx, cancel := context.WithCancel(context.Background())
	env := map[string]string{"RUNTIME_HTTPSERVER_ADDRESS": "127.0.0.1:0", "RUNTIME_STATS_OUTPUT": "NULLSTAT", "GRAPHERD_DATA_DIR": t.TempDir()}
	done := make(chan error, 1)
	var logs lockedBuffer
	go func() {
		done <- run(ctx, []string{"vpcflow-grapherd"}, func(k string) string { return env[k] }, nil, &logs, io.Discard)
	}()
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), `"message":"listening"`) }, 10*time.Second, 10*time.Millisecond)
	cancel()
	require.NoError(t, <-done)
}

// TestServeCompressedGraphs stores graphs gzip-compressed with
// GRAPH_STORAGE_COMPRESSION=gzip and still serves plain DOT.
func TestServeCompressedGraphs(t *testing.T) {
	t.Parallel()
	want, err := os.ReadFile("testdata/flowlogs/expected-digest.txt")
	require.NoError(t, err)
	data := t.TempDir()
	p := startService(t, freeAddr(t), map[string]string{
		"FLOW_LOGS_DIR":             "testdata/flowlogs",
		"GRAPHERD_DATA_DIR":         data,
		"GRAPH_STORAGE_COMPRESSION": "gzip",
	})
	status, body := p.do(t, http.MethodPost, "/?"+sampleWindow)
	require.Equal(t, http.StatusAccepted, status, body)
	status, body, _ = p.waitGraph(t, sampleWindow)
	require.Equal(t, http.StatusOK, status, body)
	require.Equal(t, digestLines(t, string(want)), edges(t, body))
	stored, err := filepath.Glob(filepath.Join(data, "graphs", "*.dot"))
	require.NoError(t, err)
	require.Len(t, stored, 1)
	b, err := os.ReadFile(stored[0])
	require.NoError(t, err)
	require.Equal(t, []byte{0x1f, 0x8b}, b[:2], "stored gzip-compressed")
	tables, err := filepath.Glob(filepath.Join(data, "graphs", "*.table"))
	require.NoError(t, err)
	require.Len(t, tables, 1, "the flow table is stored beside a compressed graph too")
	status, view := p.do(t, http.MethodGet, "/?"+sampleWindow+"&format=csv")
	require.Equal(t, http.StatusOK, status, view)
	rows := strings.Split(strings.TrimSpace(view), "\n")
	require.True(t, strings.HasPrefix(rows[0], "source,target,flows"), view)
	require.Greater(t, len(rows), 10, "the sample's edges, read from the table")

	// A client that accepts gzip gets the stored bytes as they are.
	req, err := http.NewRequest(http.MethodGet, p.url+"/?"+sampleWindow, nil)
	require.NoError(t, err)
	req.Header.Set("Accept-Encoding", "gzip")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	raw, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	require.NoError(t, res.Body.Close())
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, "gzip", res.Header.Get("Content-Encoding"))
	require.Equal(t, b, raw, "the stored gzip stream, not a second compression")
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	require.NoError(t, err)
	plain, err := io.ReadAll(zr)
	require.NoError(t, err)
	require.Equal(t, body, string(plain))
	require.NoError(t, p.stop(t, syscall.SIGINT))
	require.Contains(t, p.stdout.String(), "graphs are stored gzip-compressed")
}
