package storage_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/storage"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/storage/storagetest"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
)

func TestFileConformance(t *testing.T) {
	t.Parallel()
	storagetest.Run(t, func(t *testing.T) types.Storage { return &storage.File{Dir: t.TempDir()} })
}

func TestFileLayout(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		dir  func(t *testing.T) string
	}{
		{"existing folder", func(t *testing.T) string { return t.TempDir() }},
		{"missing nested folder", func(t *testing.T) string { return filepath.Join(t.TempDir(), "a", "b") }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := tc.dir(t)
			s := &storage.File{Dir: dir}
			id := uuid.NewString()
			require.NoError(t, s.Store(context.Background(), id, strings.NewReader("digraph {}")))
			b, err := os.ReadFile(filepath.Join(dir, id+".dot"))
			require.NoError(t, err)
			require.Equal(t, "digraph {}", string(b))
			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			require.Len(t, entries, 1, "a temporary file was left behind")
		})
	}
}

// TestFileNothingVisibleWhileWriting holds a Store midway and shows that the
// graph is not visible under its name until the reader ends, and that a
// failed Store removes its temporary file.
func TestFileNothingVisibleWhileWriting(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := &storage.File{Dir: dir}
	id := uuid.NewString()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- s.Store(context.Background(), id, pr) }()

	_, err := pw.Write([]byte("digraph { half"))
	require.NoError(t, err)
	_, err = s.Get(context.Background(), id)
	require.ErrorIs(t, err, types.ErrNotFound)
	ok, err := s.Exists(context.Background(), id)
	require.NoError(t, err)
	require.False(t, ok)

	pw.CloseWithError(io.ErrUnexpectedEOF)
	require.ErrorIs(t, <-done, io.ErrUnexpectedEOF)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, entries, "a failed Store left a file behind")
}

func TestFileUnreadableFolder(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// A regular file where the folder should be: every operation fails, and
	// none reports a missing graph as if all were well.
	path := filepath.Join(dir, "not-a-folder")
	require.NoError(t, os.WriteFile(path, []byte("x"), 0o600))
	s := &storage.File{Dir: path}
	id := uuid.NewString()
	err := s.Store(context.Background(), id, strings.NewReader("digraph {}"))
	require.Error(t, err)
	require.NotErrorIs(t, err, types.ErrNotFound)
	_, err = s.Get(context.Background(), id)
	require.Error(t, err)
	require.NotErrorIs(t, err, types.ErrNotFound)
	_, err = s.Exists(context.Background(), id)
	require.Error(t, err)
}
