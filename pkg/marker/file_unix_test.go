//go:build unix

package marker_test

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/marker"
)

// TestFileLocksAreByMark holds the in-process lock of one mark (as a caller
// stuck polling flock would) and shows another mark's takeover, refresh and
// removal going ahead meanwhile.
func TestFileLocksAreByMark(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	m := &marker.File{Dir: dir, Timeout: time.Minute}
	held, free := uuid.NewString(), uuid.NewString()
	heldToken, err := m.Mark(context.Background(), held)
	require.NoError(t, err)
	// Another process holds the flock of held's mark.
	lock, err := os.OpenFile(filepath.Join(dir, held+"_in_progress.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	require.NoError(t, err)
	defer lock.Close()
	require.NoError(t, syscall.Flock(int(lock.Fd()), syscall.LOCK_EX))
	blocked := make(chan error, 1)
	go func() { blocked <- m.Unmark(context.Background(), held, heldToken) }()

	token, err := m.Mark(context.Background(), free)
	require.NoError(t, err)
	require.NoError(t, m.Refresh(context.Background(), free, token))
	require.NoError(t, m.Fail(context.Background(), free, token, "x"))
	require.NoError(t, m.Unmark(context.Background(), free, token))
	select {
	case err := <-blocked:
		t.Fatalf("the held mark was cleared under another's lock: %v", err)
	default:
	}
	require.NoError(t, syscall.Flock(int(lock.Fd()), syscall.LOCK_UN))
	require.NoError(t, <-blocked)
}
