// Command benchqueue measures jobs per second through a queue engine with
// API and workers apart, as separate processes of the service binary: one
// API (GRAPHERD_ROLE=api) and 1, 2 and 4 workers (GRAPHERD_ROLE=worker)
// sharing one data folder, fed by an embedded NATS JetStream server or by
// local-aws-sqs, all on loopback. It queues -jobs small windows of the
// sample flow logs, waits until every graph is stored, checks each is whole
// and stored once, and prints the throughput. `make bench-queue-procs`
// runs it.
//
//	go run ./tools/benchqueue -bin ./bin/vpcflow-grapherd -flowlogs testdata/flowlogs
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/nats-io/nats-server/v2/server"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/awss3"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/testproc"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "benchqueue:", err)
		}
		os.Exit(1)
	}
}

// options are the command's flags.
type options struct {
	bin      string
	flowLogs string
	engines  []string
	workers  []int
	jobs     int
	slots    int
	timeout  time.Duration
}

func parseOptions(args []string) (options, error) {
	fs := flag.NewFlagSet("benchqueue", flag.ContinueOnError)
	var o options
	var engines, workers string
	fs.StringVar(&o.bin, "bin", "bin/vpcflow-grapherd", "service binary")
	fs.StringVar(&o.flowLogs, "flowlogs", "testdata/flowlogs", "flow-log folder the workers graph")
	fs.StringVar(&engines, "engines", "jetstream,sqs", "queue engines to measure")
	fs.StringVar(&workers, "workers", "1,2,4", "numbers of worker processes to measure")
	fs.IntVar(&o.jobs, "jobs", 100, "windows to queue per run (at most 600)")
	fs.IntVar(&o.slots, "slots", 2, "GRAPHERD_WORKERS of each worker process")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Minute, "bound of one run")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if o.jobs < 1 || o.jobs > 600 {
		return o, fmt.Errorf("-jobs %d: want 1 to 600", o.jobs)
	}
	o.engines = strings.Split(engines, ",")
	for _, e := range o.engines {
		if e != "jetstream" && e != "sqs" {
			return o, fmt.Errorf("-engines: unknown engine %q", e)
		}
	}
	for _, w := range strings.Split(workers, ",") {
		n, err := strconv.Atoi(w)
		if err != nil || n < 1 || n > 16 {
			return o, fmt.Errorf("-workers: %q is not a number from 1 to 16", w)
		}
		o.workers = append(o.workers, n)
	}
	return o, nil
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	o, err := parseOptions(args)
	if err != nil {
		return err
	}
	if o.flowLogs, err = filepath.Abs(o.flowLogs); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "engine\tworkers\tjobs\tseconds\tjobs/s\t\n")
	for _, e := range o.engines {
		for _, n := range o.workers {
			rctx, cancel := context.WithTimeout(ctx, o.timeout)
			elapsed, err := measure(rctx, o, e, n)
			cancel()
			if err != nil {
				return fmt.Errorf("%s with %d workers: %w", e, n, err)
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\t%.2f\t%.1f\t\n", e, n, o.jobs, elapsed.Seconds(), float64(o.jobs)/elapsed.Seconds())
		}
	}
	return tw.Flush()
}

// measure runs one API and n workers on a fresh engine and data folder and
// returns how long the jobs took from the first POST to the last graph.
func measure(ctx context.Context, o options, engine string, n int) (time.Duration, error) {
	dir, err := os.MkdirTemp("", "grapherd-benchqueue")
	if err != nil {
		return 0, err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	env, stopEngine, err := startEngine(ctx, engine, dir)
	if err != nil {
		return 0, err
	}
	defer stopEngine()
	env = append(env,
		"PATH="+os.Getenv("PATH"),
		"RUNTIME_STATS_OUTPUT=NULLSTAT",
		"RUNTIME_LOGGER_LEVEL=WARN",
		"GRAPHERD_DATA_DIR="+filepath.Join(dir, "data"),
		"FLOW_LOGS_DIR="+o.flowLogs,
		"GRAPHERD_WORKERS="+strconv.Itoa(o.slots),
		"GRAPHERD_SHUTDOWN_TIMEOUT=10s",
	)
	api, err := startService(ctx, o.bin, dir, "api", append(env, "GRAPHERD_ROLE=api"))
	if err != nil {
		return 0, err
	}
	defer api.stop()
	for i := range n {
		w, err := startService(ctx, o.bin, dir, "worker-"+strconv.Itoa(i), append(env, "GRAPHERD_ROLE=worker"))
		if err != nil {
			return 0, err
		}
		defer w.stop()
	}

	client := &http.Client{Timeout: 10 * time.Second}
	start := time.Now()
	for i := range o.jobs {
		status, _, err := call(ctx, client, http.MethodPost, api.url+"/?"+windowQuery(i))
		if err != nil {
			return 0, err
		}
		if status != http.StatusAccepted {
			return 0, fmt.Errorf("POST window %d: status %d", i, status)
		}
	}
	for i := range o.jobs {
		if err := waitGraph(ctx, client, api.url+"/?"+windowQuery(i)); err != nil {
			return 0, fmt.Errorf("window %d: %w", i, err)
		}
	}
	elapsed := time.Since(start)
	graphs, err := filepath.Glob(filepath.Join(dir, "data", "graphs", "*.dot"))
	if err != nil {
		return 0, err
	}
	if len(graphs) != o.jobs {
		return 0, fmt.Errorf("%d graphs stored for %d windows", len(graphs), o.jobs)
	}
	return elapsed, nil
}

// waitGraph polls GET until the window's graph is served whole.
func waitGraph(ctx context.Context, client *http.Client, u string) error {
	for {
		status, body, err := call(ctx, client, http.MethodGet, u)
		if err != nil {
			return err
		}
		switch status {
		case http.StatusOK:
			if !strings.HasPrefix(body, "digraph") || !strings.HasSuffix(strings.TrimSpace(body), "}") {
				return fmt.Errorf("GET: 200 with a body that is not a whole graph (%d bytes)", len(body))
			}
			return nil
		case http.StatusNoContent, http.StatusNotFound:
		default:
			return fmt.Errorf("GET: status %d: %s", status, body)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func call(ctx context.Context, client *http.Client, method, u string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return 0, "", err
	}
	res, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer func() { _ = res.Body.Close() }()
	b, err := io.ReadAll(io.LimitReader(res.Body, 16<<20))
	return res.StatusCode, string(b), err
}

// windowQuery is the query of window i: 15 minute windows a minute apart
// from 09:00Z on the sample's day, each its own graph.
func windowQuery(i int) string {
	start := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Minute)
	q := url.Values{}
	q.Set("start", start.Format(time.RFC3339))
	q.Set("stop", start.Add(15*time.Minute).Format(time.RFC3339))
	return q.Encode()
}

// startEngine starts the queue engine and returns the settings that point
// the service at it.
func startEngine(ctx context.Context, engine, dir string) ([]string, func(), error) {
	if engine == "jetstream" {
		return startNATS(dir)
	}
	return startSQS(ctx)
}

// startNATS runs an embedded nats-server with JetStream on file storage.
func startNATS(dir string) ([]string, func(), error) {
	addr, err := testproc.FreeAddr()
	if err != nil {
		return nil, nil, err
	}
	host, portText, _ := strings.Cut(addr, ":")
	port, err := strconv.Atoi(portText)
	if err != nil {
		return nil, nil, err
	}
	srv, err := server.NewServer(&server.Options{
		Host: host, Port: port, JetStream: true, StoreDir: filepath.Join(dir, "nats"), NoLog: true, NoSigs: true,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("nats-server: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, nil, errors.New("nats-server did not start")
	}
	stop := func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	}
	return []string{"GRAPHERD_QUEUE_URL=nats://" + addr}, stop, nil
}

// startSQS runs local-aws-sqs from $LOCAL_AWS_SQS (`make sqs-server`) and
// creates a queue with a dead-letter queue behind a redrive policy.
func startSQS(ctx context.Context) ([]string, func(), error) {
	root, err := testproc.ModuleRoot()
	if err != nil {
		return nil, nil, err
	}
	install := os.Getenv("LOCAL_AWS_SQS")
	if install == "" {
		install = filepath.Join(root, ".cache", "sqsserver")
	}
	addr, err := testproc.FreeAddr()
	if err != nil {
		return nil, nil, err
	}
	_, port, _ := strings.Cut(addr, ":")
	endpoint := "http://" + addr
	cmd := exec.Command("node", filepath.Join(root, "tools", "sqsserver", "server.js"), port)
	cmd.Env = append(os.Environ(), "NODE_PATH="+filepath.Join(install, "node_modules"))
	p, err := testproc.Start(cmd, endpoint+"/", 10*time.Second)
	if err != nil {
		return nil, nil, fmt.Errorf("local-aws-sqs (run `make sqs-server`): %w", err)
	}
	stop := func() { _ = p.Kill() }
	cfg, err := awss3.LoadConfig(ctx, awss3.Options{Region: "us-east-1", AccessKeyID: "bench", SecretAccessKey: "bench"})
	if err != nil {
		stop()
		return nil, nil, err
	}
	client := sqs.NewFromConfig(cfg, func(o *sqs.Options) { o.BaseEndpoint = aws.String(endpoint) })
	_, err = client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("grapherd-jobs-dead")})
	if err != nil {
		stop()
		return nil, nil, fmt.Errorf("create dead-letter queue: %w", err)
	}
	policy := `{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:123456789012:grapherd-jobs-dead","maxReceiveCount":"5"}`
	jobs, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{
		QueueName:  aws.String("grapherd-jobs"),
		Attributes: map[string]string{"VisibilityTimeout": "30", "RedrivePolicy": policy},
	})
	if err != nil {
		stop()
		return nil, nil, fmt.Errorf("create queue: %w", err)
	}
	return []string{
		"GRAPHERD_QUEUE_URL=" + aws.ToString(jobs.QueueUrl),
		"AWS_ENDPOINT_URL_SQS=" + endpoint,
		"USE_IAM=false", "AWS_ACCESS_KEY_ID=bench", "AWS_SECRET_ACCESS_KEY=bench",
	}, stop, nil
}

// service is one process of the binary.
type service struct {
	url  string
	proc *testproc.Process
}

// startService starts the binary on a free loopback port with env and
// waits until /readyz answers 200.
func startService(ctx context.Context, bin, dir, name string, env []string) (*service, error) {
	addr, err := testproc.FreeAddr()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin)
	cmd.Env = append(env, "RUNTIME_HTTPSERVER_ADDRESS="+addr)
	p, err := testproc.Start(cmd, "http://"+addr+"/healthz", 15*time.Second)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	s := &service{url: "http://" + addr, proc: p}
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		status, body, err := call(ctx, client, http.MethodGet, s.url+"/readyz")
		if err == nil && status == http.StatusOK {
			return s, nil
		}
		if ctx.Err() != nil {
			s.stop()
			return nil, fmt.Errorf("%s not ready: %d %s %v", name, status, body, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop shuts the process down, killing it if it takes more than 15s.
func (s *service) stop() { _ = s.proc.Stop(15 * time.Second) }
