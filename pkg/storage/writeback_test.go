package storage

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// A graph several writeback ranges long, written in uneven pieces as a
// pipe hands them over, is stored byte for byte through Store, and its
// writeback was started along the way: once a full range, each range
// following the one before from the start of the file.
func TestStoreStartsWriteback(t *testing.T) {
	t.Parallel()
	data := make([]byte, 3*writebackBytes+writebackBytes/2)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte('a' + rng.IntN(26))
	}
	dir := t.TempDir()
	var wb *writeback
	f := &File{Dir: dir, copied: func(w *writeback) { wb = w }}
	id := uuid.NewString()
	require.NoError(t, f.Store(context.Background(), id, &unevenReader{data: data, rng: rng}))
	got, err := os.ReadFile(filepath.Join(dir, id+".dot"))
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, got), "stored graph differs")

	require.NotNil(t, wb, "Store copies through writeback")
	require.Equal(t, int64(len(data)), wb.off)
	if !writebackWorks(t) {
		// Where the system refuses it, the graph is stored all the same
		// and the sync does all the work.
		require.Empty(t, wb.started)
		return
	}
	require.Len(t, wb.started, 3, "one writeback a full range")
	var next int64
	for _, r := range wb.started {
		require.Equal(t, next, r[0], "ranges follow each other: %v", wb.started)
		require.GreaterOrEqual(t, r[1], int64(writebackBytes), "a range is full: %v", wb.started)
		next = r[0] + r[1]
	}
	require.LessOrEqual(t, next, wb.off)
}

// writebackWorks reports whether this system starts writeback when asked:
// Linux does; elsewhere, or in a sandbox that refuses sync_file_range, it
// is not asked for.
func writebackWorks(t *testing.T) bool {
	tmp, err := os.CreateTemp(t.TempDir(), tempPattern)
	require.NoError(t, err)
	defer tmp.Close()
	_, err = tmp.WriteString("x")
	require.NoError(t, err)
	err = startWriteback(tmp, 0, 1)
	if runtime.GOOS == "linux" && err != nil {
		t.Logf("sync_file_range refused here: %v", err)
	}
	return err == nil
}

// A read error after some ranges were handed to the kernel still fails
// the Store and leaves no graph and no temporary file.
func TestStoreWritebackThenReadError(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	f := &File{Dir: dir}
	id := uuid.NewString()
	boom := errors.New("digest cut")
	r := io.MultiReader(bytes.NewReader(make([]byte, 2*writebackBytes+1)), errReader{boom})
	err := f.Store(context.Background(), id, r)
	require.ErrorIs(t, err, boom)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, entries)
}

// unevenReader hands data over in pieces of 1 byte to 100 KiB.
type unevenReader struct {
	data []byte
	rng  *rand.Rand
}

func (u *unevenReader) Read(p []byte) (int, error) {
	if len(u.data) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), len(u.data), 1+u.rng.IntN(100<<10))
	copy(p, u.data[:n])
	u.data = u.data[n:]
	return n, nil
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
