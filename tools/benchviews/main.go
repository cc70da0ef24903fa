// Command benchviews measures views end to end: it starts the service
// binary with a loopback stand-in for vpcflow-digesterd that streams a
// synthetic digest from disk, makes one graph of it through the worker,
// then asks for JSON views of it cold, one after the other, timing each to
// its last byte, and reports the service's peak RSS (VmHWM) over all of it.
// `make bench-views` runs it on a million records.
//
//	go run ./tools/benchviews -bin ./bin/vpcflow-grapherd -lines 1000000 -addrs 20000
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/flowlog/flowlogtest"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/testproc"
)

// window is the graph's window; the digest is served whatever is asked.
const window = "start=2020-09-13T12:00:00Z&stop=2020-09-13T13:00:00Z"

// defaultViews are the views of the speed target.
const defaultViews = "format=json&group=cidr:24,format=json&group=addr&top=1000,format=json&group=addr,format=csv&group=cidr:16,format=json&group=eni&top=1000,format=json&group=cidr:24&action=REJECT&port=22,443"

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "benchviews:", err)
		}
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("benchviews", flag.ContinueOnError)
	fs.SetOutput(stderr)
	bin := fs.String("bin", "bin/vpcflow-grapherd", "the service `binary`")
	lines := fs.Int("lines", 1_000_000, "records in the digest")
	addrs := fs.Int("addrs", 20000, "distinct addresses in the digest")
	work := fs.String("dir", ".cache/bench", "`folder` for the digest and the service's data")
	views := fs.String("views", defaultViews, "comma-free `queries` separated by ',format=' boundaries (see the default)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *lines < 1 || *addrs < 1 || *addrs > flowlogtest.MaxAddrs {
		return errors.New("need -lines >= 1 and 1 <= -addrs <= 16777216")
	}
	if err := os.MkdirAll(*work, 0o755); err != nil {
		return err
	}
	digest := filepath.Join(*work, fmt.Sprintf("digest-%d-%d.log", *lines, *addrs))
	if _, err := os.Stat(digest); err != nil {
		if err := writeDigest(digest, flowlogtest.Spec{Lines: *lines, Addrs: *addrs, Seed: 1}); err != nil {
			return err
		}
	}
	fi, err := os.Stat(digest)
	if err != nil {
		return err
	}
	digester, err := serveDigest(digest)
	if err != nil {
		return err
	}
	defer digester.Close()

	data, err := os.MkdirTemp(*work, "views-data-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(data)
	// The service's log outlives its data folder, for a look afterwards.
	defer func() {
		if b, err := os.ReadFile(filepath.Join(data, "service.log")); err == nil {
			_ = os.WriteFile(filepath.Join(*work, "views-service.log"), b, 0o644)
		}
	}()
	svc, err := start(*bin, data, "http://"+digester.Addr().String())
	if err != nil {
		return err
	}
	defer svc.kill()
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}

	fmt.Fprintf(stdout, "benchviews: %d records between %d addresses (%.0f MB digest), service pid %d\n",
		*lines, *addrs, float64(fi.Size())/1e6, svc.cmd.Process.Pid)
	began := time.Now()
	res, err := client.Post(svc.url+"/?"+window, "", nil)
	if err != nil {
		return err
	}
	_ = res.Body.Close()
	if res.StatusCode != http.StatusAccepted {
		return fmt.Errorf("POST answered %d", res.StatusCode)
	}
	for {
		status, _, err := get(client, svc.url+"/?"+window+"&format=json&top=1")
		if err != nil {
			return err
		}
		if status == http.StatusOK {
			break
		}
		if status != http.StatusNoContent || time.Since(began) > 10*time.Minute {
			return fmt.Errorf("graph not made: GET answered %d\n%s", status, svc.logTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
	rss, _ := testproc.PeakRSS(svc.cmd.Process.Pid)
	fmt.Fprintf(stdout, "graph made in %.2f s (DOT and flow table), peak RSS so far %.1f MiB\n", time.Since(began).Seconds(), float64(rss)/(1<<20))
	tables, _ := filepath.Glob(filepath.Join(data, "graphs", "*.table"))
	dots, _ := filepath.Glob(filepath.Join(data, "graphs", "*.dot"))
	if len(tables) == 1 && len(dots) == 1 {
		ti, _ := os.Stat(tables[0])
		di, _ := os.Stat(dots[0])
		fmt.Fprintf(stdout, "stored: DOT %.1f MB, flow table %.1f MB (%.1f bytes a record)\n",
			float64(di.Size())/1e6, float64(ti.Size())/1e6, float64(ti.Size())/float64(*lines))
	}
	for _, q := range splitViews(*views) {
		t0 := time.Now()
		status, n, err := get(client, svc.url+"/?"+window+"&"+q)
		if err != nil {
			return err
		}
		rss, _ := testproc.PeakRSS(svc.cmd.Process.Pid)
		fmt.Fprintf(stdout, "%-50s %d %9.1f kB %6.3f s  peak RSS %.1f MiB\n", q, status, float64(n)/1e3, time.Since(t0).Seconds(), float64(rss)/(1<<20))
	}
	rss, err = testproc.PeakRSS(svc.cmd.Process.Pid)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "service peak RSS (VmHWM) over making the graph and serving the views: %.1f MiB\n", float64(rss)/(1<<20))
	return svc.stop()
}

// splitViews splits the -views list at each ",format=".
func splitViews(s string) []string {
	parts := strings.Split(s, ",format=")
	for i := 1; i < len(parts); i++ {
		parts[i] = "format=" + parts[i]
	}
	return parts
}

func get(client *http.Client, url string) (int, int64, error) {
	res, err := client.Get(url)
	if err != nil {
		return 0, 0, err
	}
	defer res.Body.Close()
	n, err := io.Copy(io.Discard, res.Body)
	return res.StatusCode, n, err
}

func writeDigest(name string, spec flowlogtest.Spec) error {
	f, err := os.Create(name + ".tmp")
	if err != nil {
		return err
	}
	if _, err := flowlogtest.WriteDigest(f, spec); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(name+".tmp", name)
}

// serveDigest stands in for vpcflow-digesterd on loopback: POST accepts,
// GET streams the digest file.
func serveDigest(name string) (net.Listener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			w.WriteHeader(http.StatusAccepted)
			return
		}
		f, err := os.Open(name)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer f.Close()
		_, _ = io.Copy(w, f)
	})}
	go func() { _ = srv.Serve(ln) }()
	return ln, nil
}

type service struct {
	cmd  *exec.Cmd
	url  string
	log  string
	done chan error
}

func start(bin, data, digester string) (*service, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	logName := filepath.Join(data, "service.log")
	log, err := os.Create(logName)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin)
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"RUNTIME_HTTPSERVER_ADDRESS=" + addr,
		"RUNTIME_STATS_OUTPUT=NULLSTAT",
		"GRAPHERD_DATA_DIR=" + data,
		"DIGESTER_ENDPOINT=" + digester,
		"DIGESTER_POLLING_INTERVAL=50",
		"GRAPHERD_HTTP_TIMEOUT=120s",
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &service{cmd: cmd, url: "http://" + addr, log: logName, done: make(chan error, 1)}
	go func() { s.done <- cmd.Wait() }()
	for deadline := time.Now().Add(15 * time.Second); ; {
		if res, err := http.Get(s.url + "/healthz"); err == nil {
			_ = res.Body.Close()
			return s, nil
		}
		if time.Now().After(deadline) {
			s.kill()
			return nil, fmt.Errorf("service not up within 15s\n%s", s.logTail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *service) stop() error {
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case err := <-s.done:
		s.done <- err
		return err
	case <-time.After(60 * time.Second):
		return errors.New("no exit within 60s of SIGTERM")
	}
}

func (s *service) kill() {
	if s.cmd.ProcessState == nil {
		_ = s.cmd.Process.Kill()
	}
}

func (s *service) logTail() string {
	b, _ := os.ReadFile(s.log)
	if len(b) > 4096 {
		b = b[len(b)-4096:]
	}
	return string(b)
}
