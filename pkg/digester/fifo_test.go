//go:build unix

package digester

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestDirRefusesFIFOs opens a FIFO named like a flow log file, and lists
// one standing where a day's folder is, through Dir and through a whole
// digest: each is refused at once as what it is, where opening it once
// blocked until something wrote to it, beyond any context or job timeout,
// so that anyone who could write to FLOW_LOGS_DIR could hang every job of
// the window.
func TestDirRefusesFIFOs(t *testing.T) {
	t.Parallel()
	file := plainKey("111122223333", "us-east-1", "20261101T1010Z", -1, ".log")
	day := "AWSLogs/111122223333/vpcflowlogs/us-east-1/2026/11/01"
	for name, tt := range map[string]struct {
		fifo string
		call func(Dir) error
		want string
	}{
		"open a file": {file, func(d Dir) error {
			rc, err := d.Open(context.Background(), file)
			if err == nil {
				_ = rc.Close()
			}
			return err
		}, "not a regular file"},
		"list a folder": {day, func(d Dir) error {
			_, err := d.List(context.Background(), day+"/")
			return err
		}, "not a directory"},
		"digest a file": {file, func(d Dir) error {
			_, err := (&Builtin{Source: d}).Digest(context.Background(), testStart, testStop)
			return err
		}, "not a regular file"},
		"digest a day": {day, func(d Dir) error {
			_, err := (&Builtin{Source: d}).Digest(context.Background(), testStart, testStop)
			return err
		}, "not a directory"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, filepath.FromSlash(tt.fifo))
			require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
			require.NoError(t, syscall.Mkfifo(path, 0o644))
			done := make(chan error, 1)
			go func() { done <- tt.call(Dir{Path: dir}) }()
			select {
			case err := <-done:
				require.ErrorContains(t, err, tt.want)
				return
			case <-time.After(10 * time.Second):
			}
			// Blocked: open the FIFO for writing, so that the call ends
			// and leaves no goroutine behind, and fail.
			if w, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
				_ = w.Close()
			}
			<-done
			t.Fatalf("blocked on a FIFO at %s", tt.fifo)
		})
	}
}
