package storage

import (
	"os"

	"golang.org/x/sys/unix"
)

// startWriteback asks Linux to start writing the range back
// (sync_file_range with SYNC_FILE_RANGE_WRITE), which returns without
// waiting for the disk.
func startWriteback(f *os.File, off, n int64) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SyncFileRange(int(fd), off, n, unix.SYNC_FILE_RANGE_WRITE)
	}); err != nil {
		return err
	}
	return serr
}
