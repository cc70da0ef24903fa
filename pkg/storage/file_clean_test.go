package storage_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/storage"
)

// TestFileCleanTemp: leftover temporary graphs older than the bound are
// removed; young ones (a write in progress), graphs, other files, folders
// and links are kept.
func TestFileCleanTemp(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	old := time.Now().Add(-2 * time.Hour)
	write := func(name string, mtime time.Time) string {
		t.Helper()
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte("digraph {"), 0o644))
		require.NoError(t, os.Chtimes(p, mtime, mtime))
		return p
	}
	oldTemps := []string{write(".graph-123.tmp", old), write(".graph-456.tmp", old.Add(-24*time.Hour))}
	young := write(".graph-789.tmp", time.Now())
	graph := write(uuid.NewString()+".dot", old)
	other := write(".mark-1.tmp", old)
	similar := write("graph-1.tmp", old)
	require.NoError(t, os.Mkdir(filepath.Join(dir, ".graph-dir.tmp"), 0o755))
	target := filepath.Join(t.TempDir(), "target")
	require.NoError(t, os.WriteFile(target, []byte("x"), 0o644))
	require.NoError(t, os.Symlink(target, filepath.Join(dir, ".graph-link.tmp")))

	f := &storage.File{Dir: dir}
	n, err := f.CleanTemp(context.Background(), time.Hour)
	require.NoError(t, err)
	require.Equal(t, 2, n)
	for _, p := range oldTemps {
		require.NoFileExists(t, p)
	}
	for _, p := range []string{young, graph, other, similar, target, filepath.Join(dir, ".graph-link.tmp")} {
		_, err := os.Lstat(p)
		require.NoError(t, err, "%s is kept", p)
	}
	require.DirExists(t, filepath.Join(dir, ".graph-dir.tmp"))

	n, err = f.CleanTemp(context.Background(), time.Hour)
	require.NoError(t, err)
	require.Zero(t, n, "nothing left to clean")
}

// TestFileCleanTempMissingFolder: a folder that does not exist yet has
// nothing to clean.
func TestFileCleanTempMissingFolder(t *testing.T) {
	t.Parallel()
	n, err := (&storage.File{Dir: filepath.Join(t.TempDir(), "graphs")}).CleanTemp(context.Background(), time.Hour)
	require.NoError(t, err)
	require.Zero(t, n)
}

// TestFileCleanTempAfterCrash: a Store whose process dies mid-write leaves
// its temporary file; once it is older than the bound, CleanTemp removes it
// and the folder holds only complete graphs.
func TestFileCleanTempAfterCrash(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	f := &storage.File{Dir: dir}
	id := uuid.NewString()
	require.NoError(t, f.Store(context.Background(), id, strings.NewReader("digraph {}\n")))
	// A crashed write, as the kill left it.
	crashed, err := os.CreateTemp(dir, ".graph-*.tmp")
	require.NoError(t, err)
	_, err = crashed.WriteString("digraph { partial")
	require.NoError(t, err)
	require.NoError(t, crashed.Close())
	n, err := f.CleanTemp(context.Background(), time.Hour)
	require.NoError(t, err)
	require.Zero(t, n, "a fresh temporary file may be a live write")
	past := time.Now().Add(-61 * time.Minute)
	require.NoError(t, os.Chtimes(crashed.Name(), past, past))
	n, err = f.CleanTemp(context.Background(), time.Hour)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1)
	require.Equal(t, id+".dot", entries[0].Name())
}
