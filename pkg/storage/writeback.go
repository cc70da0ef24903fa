package storage

import (
	"io"
	"os"
)

// writebackBytes is how much a Store writes between two requests that the
// kernel start writing the file back. A graph is hundreds of megabytes and
// is synced before it is renamed into place; started as the graph is
// written, most of the writeback is done by the time the sync comes, so
// the sync no longer waits for the whole file.
const writebackBytes = 8 << 20

// copyBufferBytes is the buffer a Store copies through: as large as the
// grapher's writes, so each becomes one write to the file.
const copyBufferBytes = 64 << 10

// writeback writes to f and, every writebackBytes, asks the kernel to
// start writing the bytes just written to disk without waiting for it
// (see startWriteback). It changes when the data reaches the disk, never
// what is written or whether Sync is needed.
type writeback struct {
	f *os.File
	// off is the bytes written; from is where the range not yet handed
	// to the kernel starts.
	off, from int64
	// started are the ranges handed to the kernel (offset, length), for
	// tests.
	started [][2]int64
}

// Write implements io.Writer.
func (w *writeback) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.off += int64(n)
	if w.off-w.from >= writebackBytes {
		// A failure only loses the head start: Sync reports any error
		// writing the data back.
		if startWriteback(w.f, w.from, w.off-w.from) == nil {
			w.started = append(w.started, [2]int64{w.from, w.off - w.from})
		}
		w.from = w.off
	}
	return n, err
}

// copyWithWriteback copies r to f as io.Copy does, starting the file's
// writeback as it goes.
func copyWithWriteback(f *os.File, r io.Reader) (int64, *writeback, error) {
	w := &writeback{f: f}
	buf := make([]byte, copyBufferBytes)
	n, err := io.CopyBuffer(w, r, buf)
	return n, w, err
}
