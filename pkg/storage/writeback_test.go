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
// pipe hands them over, is stored byte for byte, and on Linux its
// writeback was started once a range along the way.
func TestStoreStartsWriteback(t *testing.T) {
	t.Parallel()
	data := make([]byte, 3*writebackBytes+writebackBytes/2)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte('a' + rng.IntN(26))
	}

	tmp, err := os.CreateTemp(t.TempDir(), tempPattern)
	require.NoError(t, err)
	defer tmp.Close()
	n, w, err := copyWithWriteback(tmp, &unevenReader{data: data, rng: rng})
	require.NoError(t, err)
	require.Equal(t, int64(len(data)), n)
	require.NoError(t, tmp.Sync())
	got, err := os.ReadFile(tmp.Name())
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, got), "stored bytes differ")
	if runtime.GOOS == "linux" {
		require.Equal(t, 3, w.started, "one writeback a full range")
	} else {
		require.Zero(t, w.started)
	}

	// The same through Store, which renames it into place.
	dir := t.TempDir()
	f := &File{Dir: dir}
	id := uuid.NewString()
	require.NoError(t, f.Store(context.Background(), id, &unevenReader{data: data, rng: rng}))
	got, err = os.ReadFile(filepath.Join(dir, id+".dot"))
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, got), "stored graph differs")
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
