// Command loadtest starts the standalone service (files for graphs and
// marks, the in-process queue, the built-in digester reading a folder of
// flow logs) on a free loopback port, drives it with many concurrent clients
// creating and fetching graphs, and reports throughput, latency per
// operation, status codes, errors and the service's peak RSS. It is bounded
// in time and in requests, and talks to loopback only; `make load` runs it.
//
//	go run ./tools/loadtest -bin ./bin/vpcflow-grapherd -flowlogs testdata/flowlogs
//
// Any answer other than 200, 202, 204, 404 and 409, any transport error and
// any 200 whose body is not a whole DOT graph is an error, and the command
// then exits with status 1.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/testproc"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "loadtest:", err)
		}
		os.Exit(1)
	}
}

// options are the command's flags.
type options struct {
	bin      string
	flowLogs string
	clients  int
	duration time.Duration
	requests int
	windows  int
	post     float64
	seed     uint64
	workers  int
}

func parseOptions(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.bin, "bin", "bin/vpcflow-grapherd", "the service `binary` to start")
	fs.StringVar(&o.flowLogs, "flowlogs", "testdata/flowlogs", "`folder` of flow logs for the built-in digester (FLOW_LOGS_DIR)")
	fs.IntVar(&o.clients, "clients", 32, "concurrent clients")
	fs.DurationVar(&o.duration, "duration", 20*time.Second, "longest run")
	fs.IntVar(&o.requests, "requests", 20000, "most requests in all")
	fs.IntVar(&o.windows, "windows", 240, "distinct windows asked for (one graph each)")
	fs.Float64Var(&o.post, "post", 0.25, "share of requests that are POST /; the rest are GET /")
	fs.Uint64Var(&o.seed, "seed", 1, "pseudo-random seed of the request mix")
	fs.IntVar(&o.workers, "workers", 0, "GRAPHERD_WORKERS of the service (0: its default)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	switch {
	case fs.NArg() > 0:
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	case o.clients < 1 || o.clients > 1024:
		return o, errors.New("-clients must be between 1 and 1024")
	case o.duration <= 0 || o.duration > time.Hour:
		return o, errors.New("-duration must be positive and at most 1h")
	case o.requests < 1 || o.requests > 10_000_000:
		return o, errors.New("-requests must be between 1 and 10000000")
	case o.windows < 1 || o.windows > maxWindows:
		return o, fmt.Errorf("-windows must be between 1 and %d", maxWindows)
	case o.post < 0 || o.post > 1:
		return o, errors.New("-post must be between 0 and 1")
	case o.workers < 0:
		return o, errors.New("-workers must not be negative")
	}
	return o, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseOptions(args, stderr)
	if err != nil {
		return err
	}
	svc, err := startService(ctx, o)
	if err != nil {
		return err
	}
	defer svc.cleanup()

	fmt.Fprintf(stdout, "loadtest: %s on %s (pid %d), %d clients, at most %d requests in %s, %d windows\n",
		o.bin, svc.url, svc.cmd.Process.Pid, o.clients, o.requests, o.duration, o.windows)
	rep := drive(ctx, svc.url, o)
	rss, rssErr := testproc.PeakRSS(svc.cmd.Process.Pid)
	stopErr := svc.stop()

	rep.print(stdout)
	if rssErr != nil {
		fmt.Fprintf(stdout, "service peak RSS: unknown (%v)\n", rssErr)
	} else {
		fmt.Fprintf(stdout, "service peak RSS (VmHWM): %.1f MiB\n", float64(rss)/(1<<20))
	}
	if stopErr != nil {
		fmt.Fprintf(stderr, "service log tail:\n%s\n", svc.logTail())
		return fmt.Errorf("service did not stop cleanly: %w", stopErr)
	}
	if n := rep.errorCount(); n > 0 {
		fmt.Fprintf(stderr, "service log tail:\n%s\n", svc.logTail())
		return fmt.Errorf("%d errors", n)
	}
	return nil
}

// service is one run of the binary.
type service struct {
	cmd  *exec.Cmd
	url  string
	dir  string
	log  *os.File
	done chan error
}

// startService starts the binary on a free loopback port with its own data
// folder and nothing but the variables it needs, so no AWS setting of the
// caller's environment can change what is measured, and waits until it is
// ready.
func startService(ctx context.Context, o options) (*service, error) {
	flowLogs, err := filepath.Abs(o.flowLogs)
	if err != nil {
		return nil, fmt.Errorf("flow logs folder: %w", err)
	}
	if fi, err := os.Stat(flowLogs); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("flow logs folder %q is not a folder", o.flowLogs)
	}
	addr, err := freeLoopbackAddr()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "grapherd-load")
	if err != nil {
		return nil, fmt.Errorf("data folder: %w", err)
	}
	log, err := os.Create(filepath.Join(dir, "service.log"))
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("service log: %w", err)
	}
	cmd := exec.CommandContext(ctx, o.bin)
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"RUNTIME_HTTPSERVER_ADDRESS=" + addr,
		"RUNTIME_STATS_OUTPUT=NULLSTAT",
		"GRAPHERD_DATA_DIR=" + filepath.Join(dir, "data"),
		"FLOW_LOGS_DIR=" + flowLogs,
	}
	if o.workers > 0 {
		cmd.Env = append(cmd.Env, "GRAPHERD_WORKERS="+strconv.Itoa(o.workers))
	}
	cmd.Stdout, cmd.Stderr = log, log
	s := &service{cmd: cmd, url: "http://" + addr, dir: dir, log: log, done: make(chan error, 1)}
	if err := cmd.Start(); err != nil {
		s.cleanup()
		return nil, fmt.Errorf("start %s: %w", o.bin, err)
	}
	go func() { s.done <- cmd.Wait() }()
	if err := s.waitReady(15 * time.Second); err != nil {
		s.cleanup()
		return nil, err
	}
	return s, nil
}

func (s *service) waitReady(timeout time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for {
		res, err := client.Get(s.url + "/readyz")
		if err == nil {
			_, _ = io.Copy(io.Discard, res.Body)
			_ = res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-s.done:
			s.done <- err
			return fmt.Errorf("service exited before it was ready: %v\n%s", err, s.logTail())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("service not ready within %s\n%s", timeout, s.logTail())
		}
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (s *service) stop() error {
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("signal: %w", err)
	}
	select {
	case err := <-s.done:
		s.done <- err
		return err
	case <-time.After(60 * time.Second):
		return errors.New("no exit within 60s of SIGTERM")
	}
}

// cleanup kills the service if it still runs and removes its folder.
func (s *service) cleanup() {
	if s.cmd.Process != nil && s.cmd.ProcessState == nil {
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	_ = s.log.Close()
	_ = os.RemoveAll(s.dir)
}

// logTail returns the end of the service's log.
func (s *service) logTail() string {
	b, err := os.ReadFile(s.log.Name())
	if err != nil {
		return err.Error()
	}
	const tail = 4 << 10
	if len(b) > tail {
		b = b[len(b)-tail:]
	}
	return string(b)
}

func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("pick a loopback port: %w", err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		return "", fmt.Errorf("pick a loopback port: %w", err)
	}
	return addr, nil
}

// maxWindows bounds -windows: every window lies inside the sample's day.
const maxWindows = 600

// windowQuery is the query of window i: windows start a minute apart
// between 09:00Z and 10:59Z and last 15 to 75 minutes (longer every 120
// windows), around the sample's hour (10:00-11:00Z), so each names its own
// graph and most of them have edges.
func windowQuery(i int) string {
	first := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	start := first.Add(time.Duration(i%120) * time.Minute)
	stop := start.Add(time.Duration(15+15*(i/120)) * time.Minute)
	q := url.Values{}
	q.Set("start", start.Format(time.RFC3339))
	q.Set("stop", stop.Format(time.RFC3339))
	return q.Encode()
}

// Operations measured.
const (
	opPost = "POST"
	opGet  = "GET"
)

// expected are the answers that are not errors: created, exists or being
// made, the graph, still being made, none yet.
var expected = map[int]bool{
	http.StatusOK:        true,
	http.StatusAccepted:  true,
	http.StatusNoContent: true,
	http.StatusNotFound:  true,
	http.StatusConflict:  true,
}

// report is what a run measured.
type report struct {
	elapsed   time.Duration
	latencies map[string][]time.Duration
	statuses  map[string]map[int]int
	transport int      // requests that got no (whole) answer
	badGraphs int      // 200 answers whose body is not a whole graph
	samples   []string // the first few errors
	graphs    int      // distinct windows fetched with 200
}

func (r *report) errorCount() int {
	n := r.transport + r.badGraphs
	for _, byStatus := range r.statuses {
		for status, c := range byStatus {
			if !expected[status] {
				n += c
			}
		}
	}
	return n
}

// result is one request's outcome.
type result struct {
	op      string
	window  int
	status  int
	latency time.Duration
	err     error
}

// drive runs o.clients clients against base until o.requests were sent or
// o.duration passed, and returns what they saw.
func drive(ctx context.Context, base string, o options) *report {
	ctx, cancel := context.WithTimeout(ctx, o.duration)
	defer cancel()
	transport := &http.Transport{
		MaxIdleConns:        o.clients,
		MaxIdleConnsPerHost: o.clients,
		IdleConnTimeout:     30 * time.Second,
	}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: 30 * time.Second}

	var issued atomic.Int64
	results := make([][]result, o.clients)
	began := time.Now()
	var wg sync.WaitGroup
	for c := range o.clients {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(o.seed, uint64(c)))
			for ctx.Err() == nil && issued.Add(1) <= int64(o.requests) {
				w := rng.IntN(o.windows)
				op := opGet
				if rng.Float64() < o.post {
					op = opPost
				}
				results[c] = append(results[c], request(ctx, client, base, op, w))
			}
		})
	}
	wg.Wait()

	rep := &report{
		elapsed:   time.Since(began),
		latencies: map[string][]time.Duration{},
		statuses:  map[string]map[int]int{opPost: {}, opGet: {}},
	}
	made := map[int]bool{}
	for _, rs := range results {
		for _, res := range rs {
			switch {
			case res.err != nil && errors.Is(res.err, errBadGraph):
				rep.badGraphs++
			case res.err != nil && ctx.Err() != nil && errors.Is(res.err, context.DeadlineExceeded):
				continue // cut by the end of the run: not an answer
			case res.err != nil:
				rep.transport++
			}
			if res.status != 0 {
				rep.statuses[res.op][res.status]++
				rep.latencies[res.op] = append(rep.latencies[res.op], res.latency)
			}
			if (res.err != nil || !expected[res.status]) && len(rep.samples) < 5 {
				rep.samples = append(rep.samples, fmt.Sprintf("%s %s: status %d: %v", res.op, windowQuery(res.window), res.status, res.err))
			}
			if res.op == opGet && res.status == http.StatusOK && res.err == nil {
				made[res.window] = true
			}
		}
	}
	rep.graphs = len(made)
	return rep
}

var errBadGraph = errors.New("200 answer is not a whole DOT graph")

// request sends one request and reads its answer whole; a 200 must be a
// complete digraph.
func request(ctx context.Context, client *http.Client, base, op string, window int) result {
	res := result{op: op, window: window}
	method := http.MethodGet
	if op == opPost {
		method = http.MethodPost
	}
	req, err := http.NewRequestWithContext(ctx, method, base+"/?"+windowQuery(window), nil)
	if err != nil {
		res.err = err
		return res
	}
	began := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		res.err = err
		return res
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	res.latency = time.Since(began)
	res.status = resp.StatusCode
	switch {
	case err != nil:
		res.err = fmt.Errorf("read body: %w", err)
	case op == opGet && resp.StatusCode == http.StatusOK:
		if !strings.HasPrefix(string(body), "digraph {\n") || !strings.HasSuffix(string(body), "}\n") {
			res.err = errBadGraph
		}
	}
	return res
}

// percentile returns the p-th percentile (0-100) of sorted durations by
// the nearest-rank method.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(p/100*float64(len(sorted))+0.5) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}

func (r *report) print(w io.Writer) {
	total := 0
	for _, l := range r.latencies {
		total += len(l)
	}
	fmt.Fprintf(w, "%d answers in %s: %.0f requests/s\n", total, r.elapsed.Round(time.Millisecond), float64(total)/r.elapsed.Seconds())
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "op\tcount\tp50\tp95\tp99\tmax\tstatuses")
	for _, op := range []string{opPost, opGet} {
		l := slices.Clone(r.latencies[op])
		slices.Sort(l)
		var codes []int
		for c := range r.statuses[op] {
			codes = append(codes, c)
		}
		sort.Ints(codes)
		var parts []string
		for _, c := range codes {
			parts = append(parts, fmt.Sprintf("%d=%d", c, r.statuses[op][c]))
		}
		maxL := time.Duration(0)
		if len(l) > 0 {
			maxL = l[len(l)-1]
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\n", op, len(l), round(percentile(l, 50)), round(percentile(l, 95)),
			round(percentile(l, 99)), round(maxL), strings.Join(parts, " "))
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "graphs fetched: %d distinct windows\n", r.graphs)
	fmt.Fprintf(w, "errors: %d (transport %d, bad graphs %d, unexpected statuses %d)\n",
		r.errorCount(), r.transport, r.badGraphs, r.errorCount()-r.transport-r.badGraphs)
	for _, s := range r.samples {
		fmt.Fprintf(w, "  %s\n", s)
	}
}

func round(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	default:
		return d.Round(time.Microsecond)
	}
}
