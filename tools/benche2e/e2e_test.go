package benche2e

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/awss3/s3test"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/flowlog"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/flowlog/flowlogtest"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/testproc"
)

const (
	records = 1_000_000
	addrs   = 20_000
	files   = 100
	// base is the start of the windows the jobs ask for; each job asks
	// for its own hour, so each makes a new graph.
	base = 1793527200 // 2026-11-01T10:00:00Z
)

// BenchmarkE2E runs the real binary and times one graph job from POST / to
// the GET / that answers 200, reporting the worker's peak RSS and the
// job's own phases from its job-done log lines (the mean over the jobs).
// The digest holds 1,000,000 records between 20,000 addresses.
func BenchmarkE2E(b *testing.B) {
	bin := buildBinary(b)
	digest := gzipDigest(b)
	b.Run("s3-storage-http-digester", func(b *testing.B) {
		gw := s3test.Start(b)
		gw.CreateBucket(b, "graphs")
		gw.CreateBucket(b, "progress")
		stub := serveDigest(b, digest)
		runJobs(b, bin, func() time.Duration { return gw.CPUTime(b) }, map[string]string{
			"GRAPH_STORAGE_BUCKET": "graphs", "GRAPH_STORAGE_BUCKET_REGION": s3test.Region,
			"GRAPH_PROGRESS_BUCKET": "progress", "GRAPH_PROGRESS_BUCKET_REGION": s3test.Region,
			"USE_IAM": "false", "AWS_ACCESS_KEY_ID": gw.AccessKey, "AWS_SECRET_ACCESS_KEY": gw.SecretKey,
			"AWS_ENDPOINT_URL_S3": gw.Endpoint,
			"DIGESTER_ENDPOINT":   stub, "DIGESTER_POLLING_INTERVAL": "20",
		})
	})
	b.Run("file-storage-http-digester", func(b *testing.B) {
		runJobs(b, bin, nil, map[string]string{"DIGESTER_ENDPOINT": serveDigest(b, digest), "DIGESTER_POLLING_INTERVAL": "20"})
	})
	b.Run("file-storage-builtin-digester", func(b *testing.B) {
		runJobs(b, bin, nil, map[string]string{"FLOW_LOGS_DIR": flowLogTree(b)})
	})
}

// buildBinary builds the service, or takes GRAPHERD_BIN.
func buildBinary(b *testing.B) string {
	if bin := os.Getenv("GRAPHERD_BIN"); bin != "" {
		abs, err := filepath.Abs(bin)
		if err != nil {
			b.Fatal(err)
		}
		return abs
	}
	bin := filepath.Join(b.TempDir(), "vpcflow-grapherd")
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, ".")
	cmd.Dir = "../.."
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0") // as make build and the Dockerfile build it
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// gzipDigest is the 1,000,000-record digest, gzip-compressed as
// vpcflow-digesterd serves it.
func gzipDigest(b *testing.B) []byte {
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	if _, err := flowlogtest.WriteDigest(zw, flowlogtest.Spec{Lines: records, Addrs: addrs, Seed: 1}); err != nil {
		b.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		b.Fatal(err)
	}
	return out.Bytes()
}

// serveDigest stands in for vpcflow-digesterd on loopback: POST creates a
// digest, GET answers it at once, whatever the window.
func serveDigest(b *testing.B, digest []byte) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodPost:
			w.WriteHeader(http.StatusAccepted)
		case http.MethodGet:
			w.Header().Set("Content-Type", "text/plain")
			w.Header().Set("Content-Encoding", "gzip")
			_, _ = w.Write(digest)
		default:
			w.WriteHeader(http.StatusMethodNotAllowed)
		}
	}))
	b.Cleanup(srv.Close)
	return srv.URL
}

// flowLogTree writes 100 gzip flow-log files holding the 1,000,000
// records, in AWS's plain layout, for the windows runJobs asks for.
func flowLogTree(b *testing.B) string {
	root := b.TempDir()
	var recs []flowlog.Record
	err := flowlogtest.Records(flowlogtest.Spec{Lines: records, Addrs: addrs, Seed: 1}, func(r *flowlog.Record) error {
		recs = append(recs, *r)
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	per := len(recs) / files
	for f := range files {
		// Each job's window is an hour from base; spread every file's
		// records over the first hours so that each window reads files.
		chunk := recs[f*per : (f+1)*per]
		name := time.Unix(base, 0).UTC().Add(time.Duration(f%60) * time.Minute)
		dir := filepath.Join(root, "AWSLogs", "123456789012", "vpcflowlogs", "us-east-1", name.Format("2006/01/02"))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		path := filepath.Join(dir, fmt.Sprintf("123456789012_vpcflowlogs_us-east-1_fl-0123_%s_%08x.log.gz", name.Format("20060102T1504Z"), f))
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		bw := bufio.NewWriter(zw)
		_, _ = bw.WriteString(strings.Join(flowlog.DefaultFields(), " ") + "\n")
		var line []byte
		for i := range chunk {
			r := chunk[i]
			// The generator's records start at its own epoch; move them
			// into the windows asked for.
			d := r.End - r.Start
			r.Start = base + (r.Start % 3000)
			r.End = r.Start + d
			line = flowlog.AppendDigestLine(line[:0], &r)
			_, _ = bw.Write(line)
		}
		if err := bw.Flush(); err != nil {
			b.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	return root
}

// service is one run of the binary.
type service struct {
	cmd  *exec.Cmd
	url  string
	log  logFile
	done chan error
}

// logFile is the service's output, written by the process to a file and
// read back by the benchmark.
type logFile string

func (l logFile) String() string {
	b, err := os.ReadFile(string(l))
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// runJobs starts the service with env and runs b.N jobs, one window each.
// server, when not nil, reads the CPU time of a server process the jobs
// use on the same cores (the S3 gateway), to report beside the worker's.
func runJobs(b *testing.B, bin string, server func() time.Duration, env map[string]string) {
	s := startService(b, bin, env)
	client := &http.Client{Timeout: time.Minute}
	cpu := func() (worker, srv time.Duration) {
		worker, err := testproc.CPUTime(s.cmd.Process.Pid)
		if err != nil {
			b.Fatal(err)
		}
		if server != nil {
			srv = server()
		}
		return worker, srv
	}
	// The job's CPU is counted while it is polled for every 5 ms; each
	// poll's cost, measured on a window no job makes, is taken away.
	pollWorker, pollServer := pollCost(b, s, client, cpu)
	var workerCPU, serverCPU time.Duration
	polls := 0
	b.ResetTimer()
	var total time.Duration
	for i := 0; b.Loop(); i++ {
		start := time.Unix(base, 0).UTC().Add(time.Duration(i) * time.Minute)
		q := "?start=" + start.Format(time.RFC3339) + "&stop=" + start.Add(time.Hour).Format(time.RFC3339)
		worker0, server0 := cpu()
		began := time.Now()
		res, err := client.Post(s.url+"/"+q, "", nil)
		if err != nil {
			b.Fatal(err)
		}
		_ = res.Body.Close()
		if res.StatusCode != http.StatusAccepted {
			b.Fatalf("POST: %d", res.StatusCode)
		}
		for {
			res, err := client.Get(s.url + "/" + q)
			if err != nil {
				b.Fatal(err)
			}
			if res.StatusCode == http.StatusOK {
				total += time.Since(began)
				// The job's CPU, without the serving of the graph
				// read below.
				worker1, server1 := cpu()
				workerCPU += worker1 - worker0
				serverCPU += server1 - server0
				n, err := io.Copy(io.Discard, res.Body)
				_ = res.Body.Close()
				if err != nil || n == 0 {
					b.Fatalf("GET graph: %d bytes, %v", n, err)
				}
				break
			}
			_ = res.Body.Close()
			if res.StatusCode != http.StatusNoContent {
				b.Fatalf("GET: %d\n%s", res.StatusCode, s.log.String())
			}
			polls++
			time.Sleep(5 * time.Millisecond)
		}
	}
	b.StopTimer()
	rss, err := testproc.PeakRSS(s.cmd.Process.Pid)
	if err != nil {
		b.Fatal(err)
	}
	phases, line := jobPhases(b, s.log.String())
	s.stop(b)
	b.ReportMetric(total.Seconds()/float64(b.N), "s/job")
	b.ReportMetric(float64(rss)/(1<<20), "MB-peak-RSS")
	// What the job cost the two cores: a job cannot take less than the
	// sum over two, however well its parts overlap.
	workerCPU -= time.Duration(polls) * pollWorker
	serverCPU -= time.Duration(polls) * pollServer
	b.ReportMetric(workerCPU.Seconds()/float64(b.N), "worker-cpu-s/job")
	b.ReportMetric(float64(polls)/float64(b.N), "polls/job")
	if server != nil {
		b.ReportMetric(serverCPU.Seconds()/float64(b.N), "server-cpu-s/job")
	}
	// The least wall time the job's work allows on this machine's cores,
	// were its parts to overlap perfectly: the 1.5 s goal is out of reach
	// wherever this exceeds it.
	b.ReportMetric((workerCPU+serverCPU).Seconds()/float64(runtime.NumCPU())/float64(b.N), "cpu-floor-s/job")
	for _, p := range []string{"digest_duration", "graph_duration", "store_duration"} {
		b.ReportMetric(phases[p].Seconds(), strings.TrimSuffix(p, "_duration")+"-s")
	}
	b.Logf("last job-done line: %s", line)
}

// pollSamples is how many GETs pollCost times: enough that the 10 ms
// ticks of the CPU counts are a few percent of the total.
const pollSamples = 300

// pollCost is the CPU one GET of a window with no graph takes the worker
// and the server (the graph and its mark looked up, as for a job still
// being made), measured over pollSamples GETs of a window before base.
func pollCost(b *testing.B, s *service, client *http.Client, cpu func() (time.Duration, time.Duration)) (worker, server time.Duration) {
	start := time.Unix(base, 0).UTC().Add(-24 * time.Hour)
	q := "?start=" + start.Format(time.RFC3339) + "&stop=" + start.Add(time.Hour).Format(time.RFC3339)
	worker0, server0 := cpu()
	for range pollSamples {
		res, err := client.Get(s.url + "/" + q)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		_ = res.Body.Close()
		if res.StatusCode != http.StatusNotFound {
			b.Fatalf("GET of a window no job makes: %d, want 404", res.StatusCode)
		}
	}
	worker1, server1 := cpu()
	return (worker1 - worker0) / pollSamples, (server1 - server0) / pollSamples
}

func startService(b *testing.B, bin string, env map[string]string) *service {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	cmd := exec.Command(bin)
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"RUNTIME_HTTPSERVER_ADDRESS=" + addr,
		"RUNTIME_STATS_OUTPUT=NULLSTAT",
		"GRAPHERD_DATA_DIR=" + b.TempDir(),
	}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	// BENCH_SERVICE_X=v sets X=v in the service's environment, to measure
	// a setting (a memory budget, GOGC) without editing the benchmark.
	for _, kv := range os.Environ() {
		if rest, ok := strings.CutPrefix(kv, "BENCH_SERVICE_"); ok {
			cmd.Env = append(cmd.Env, rest)
		}
	}
	log := logFile(filepath.Join(b.TempDir(), "service.log"))
	out, err := os.Create(string(log))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = out.Close() })
	cmd.Stdout, cmd.Stderr = out, out
	s := &service{cmd: cmd, url: "http://" + addr, log: log, done: make(chan error, 1)}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	go func() { s.done <- cmd.Wait() }()
	b.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-s.done
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		res, err := http.Get(s.url + "/readyz")
		if err == nil {
			_ = res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return s
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("service not ready: %v\n%s", err, log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *service) stop(b *testing.B) {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		b.Fatal("no exit within 30s of SIGTERM")
	}
}

// jobPhases reads the job-done lines of the service's JSON log and returns
// the mean of each duration they hold (the phases, over the jobs run), and
// the last line.
func jobPhases(b *testing.B, log string) (map[string]time.Duration, string) {
	var lastLine string
	sums := map[string]time.Duration{}
	jobs := 0
	for _, line := range strings.Split(log, "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil || m["message"] != "job-done" {
			continue
		}
		jobs++
		lastLine = line
		for k, v := range m {
			switch v := v.(type) {
			case string:
				if d, err := time.ParseDuration(v); err == nil {
					sums[k] += d
				}
			case float64:
				sums[k] += time.Duration(v)
			}
		}
	}
	if jobs == 0 {
		b.Fatalf("no job-done line in the log:\n%s", log)
	}
	out := map[string]time.Duration{}
	for k, d := range sums {
		out[k] = d / time.Duration(jobs)
	}
	for _, k := range []string{"digest_duration", "graph_duration", "store_duration"} {
		if _, ok := out[k]; !ok {
			b.Fatal(errors.New("job-done line lacks " + k))
		}
	}
	return out, lastLine
}
