package testproc

import (
	"os"
	"os/exec"
	"path/filepath"
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
