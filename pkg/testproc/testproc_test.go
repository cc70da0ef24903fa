package testproc

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestStartReportsAnEarlyExitWithItsOutput(t *testing.T) {
	t.Parallel()
	addr, err := FreeAddr()
	require.NoError(t, err)
	_, err = Start(exec.Command("sh", "-c", "echo cannot bind; exit 3"), "http://"+addr+"/", 5*time.Second)
	require.ErrorContains(t, err, "exited before answering")
	require.ErrorContains(t, err, "cannot bind")
}

func TestStartGivesUpOnASilentServer(t *testing.T) {
	t.Parallel()
	addr, err := FreeAddr()
	require.NoError(t, err)
	start := time.Now()
	_, err = Start(exec.Command("sleep", "30"), "http://"+addr+"/", 300*time.Millisecond)
	require.ErrorContains(t, err, "no answer within 300ms")
	require.Less(t, time.Since(start), 5*time.Second, "the process is killed, not waited for")
}

func TestModuleRoot(t *testing.T) {
	t.Parallel()
	root, err := ModuleRoot()
	require.NoError(t, err)
	require.FileExists(t, filepath.Join(root, "go.mod"))
}

func TestPeakRSS(t *testing.T) {
	t.Parallel()
	rss, err := PeakRSS(os.Getpid())
	require.NoError(t, err)
	require.Greater(t, rss, int64(1<<20))
	_, err = PeakRSS(1 << 30)
	require.Error(t, err)
}

// TestCPUTime checks the /proc reading against getrusage, which counts the
// same time another way, across a stretch of busy work.
func TestCPUTime(t *testing.T) {
	before, err := CPUTime(os.Getpid())
	require.NoError(t, err)
	r0 := rusageCPU(t)
	for rusageCPU(t)-r0 < 300*time.Millisecond {
		for i := 0; i < 1e6; i++ {
			spin += i
		}
	}
	after, err := CPUTime(os.Getpid())
	require.NoError(t, err)
	used := rusageCPU(t) - r0
	// /proc counts in 10 ms ticks, and the other goroutines of the test
	// binary add a little to both.
	require.InDelta(t, used.Seconds(), (after - before).Seconds(), 0.1,
		"/proc says %s, getrusage %s", after-before, used)
	_, err = CPUTime(1 << 30)
	require.Error(t, err)
}

var spin int

func rusageCPU(t *testing.T) time.Duration {
	var ru syscall.Rusage
	require.NoError(t, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
