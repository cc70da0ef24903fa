// Package testproc runs a real server process for tests (the S3 gateway,
// the local SQS server): it starts the process, waits until it answers
// HTTP, keeps its output for failure messages and kills it as a crash would.
// The server harnesses (s3test, sqstest) share it instead of each keeping
// its own copy of the process handling.
package testproc

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// pollInterval is how often a starting server is probed.
const pollInterval = 20 * time.Millisecond

// Process is one run of a server.
type Process struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	err  error
}

// Start runs cmd, its output collected, and waits until readyURL answers
// any HTTP response (a 403 or 400 will do: the server serves requests).
// When the process exits first or timeout passes, it is killed and the
// error carries its output.
func Start(cmd *exec.Cmd, readyURL string, timeout time.Duration) (*Process, error) {
	p := &Process{cmd: cmd, out: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout = p.out
	cmd.Stderr = p.out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	if err := p.waitReady(readyURL, timeout); err != nil {
		_ = p.Kill()
		return nil, fmt.Errorf("%s: %w; output:\n%s", filepath.Base(cmd.Path), err, p.out.String())
	}
	return p, nil
}

// Kill kills the process, as a crash would, and waits for it to exit.
func (p *Process) Kill() error {
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill %s: %w", filepath.Base(p.cmd.Path), err)
	}
	<-p.done
	return nil
}

// Stop asks the process to exit with SIGTERM and kills it if it has not
// within grace; it returns once the process has exited.
func (p *Process) Stop(grace time.Duration) error {
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal %s: %w", filepath.Base(p.cmd.Path), err)
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
		return p.Kill()
	}
}

// Output returns what the process has written so far.
func (p *Process) Output() string { return p.out.String() }

// Pid is the process's id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// waitReady polls url until any HTTP answer arrives, the process exits or
// timeout passes.
func (p *Process) waitReady(url string, timeout time.Duration) error {
	transport := &http.Transport{DisableKeepAlives: true}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for {
		resp, err := client.Get(url)
		if err == nil {
			_ = resp.Body.Close()
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("exited before answering: %v", p.err)
		case <-time.After(pollInterval):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer within %s: %w", timeout, err)
		}
	}
}

// ModuleRoot walks up from the working directory, which `go test` sets to
// the package folder, to the folder holding go.mod: where .cache and tools
// are.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("getwd: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// FreeAddr returns a loopback address whose port was free a moment ago.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("listen: %w", err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		return "", fmt.Errorf("close listener: %w", err)
	}
	return addr, nil
}

// syncBuffer collects a server's output; the process writes it from its
// own goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write implements io.Writer.
func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what was written so far.
func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Restartable is a server that a test may kill, as a crash would, and start
// again on the same port: each start runs a fresh command from Command and
// waits until ReadyURL answers.
type Restartable struct {
	// Command builds the command of one run.
	Command func() *exec.Cmd
	// ReadyURL answers once the server serves requests.
	ReadyURL string
	// Timeout bounds the wait for ReadyURL.
	Timeout time.Duration

	mu   sync.Mutex
	proc *Process
}

// Start runs the server and waits until it answers. It fails when the
// server already runs.
func (r *Restartable) Start() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proc != nil {
		return errors.New("server already running")
	}
	p, err := Start(r.Command(), r.ReadyURL, r.Timeout)
	if err != nil {
		return err
	}
	r.proc = p
	return nil
}

// Kill kills the running server, if any, and waits for it to exit.
func (r *Restartable) Kill() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.proc
	r.proc = nil
	if p == nil {
		return nil
	}
	return p.Kill()
}

// Restart kills the server if it runs and starts it again.
func (r *Restartable) Restart() error {
	if err := r.Kill(); err != nil {
		return err
	}
	return r.Start()
}

// Pid is the id of the running server's process, or 0 when none runs.
func (r *Restartable) Pid() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proc == nil {
		return 0
	}
	return r.proc.Pid()
}

// userHZ is the unit of the CPU times in /proc/PID/stat: clock ticks of
// 1/100 s on every Linux the tests run on (sysconf(_SC_CLK_TCK)).
const userHZ = 100

// CPUTime reads the CPU time (user and system) the process pid has used so
// far, to 10 ms, for the whole-process benchmarks: what a server on the same
// cores took from the process measured.
func CPUTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read stat: %w", err)
	}
	// The command name, in parentheses, may hold spaces: the fields that
	// follow it are counted from its closing parenthesis. utime and stime
	// are the stat file's 14th and 15th fields.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("no command name in /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc stat has %d fields after the command name, want 13 or more", len(f))
	}
	var ticks int64
	for _, v := range f[11:13] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse CPU time %q: %w", v, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// PeakRSS reads the peak resident set size (VmHWM) of the process pid, in
// bytes, for the whole-process benchmarks.
func PeakRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read status: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parse VmHWM %q: %w", v, err)
			}
			return kb << 10, nil
		}
	}
	return 0, errors.New("no VmHWM in /proc status")
}
