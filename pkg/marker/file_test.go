package marker_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/marker"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/marker/markertest"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
)

func TestFileConformance(t *testing.T) {
	t.Parallel()
	markertest.Run(t, func(t *testing.T, timeout time.Duration, now func() time.Time) types.Marker {
		return &marker.File{Dir: t.TempDir(), Timeout: timeout, Now: now}
	})
}

// TestFileSeparateInstances races markers that share only the folder, as
// separate processes would: the file lock, not the in-process mutex, has to
// keep exactly one winner.
func TestFileSeparateInstances(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		setup func(t *testing.T, m types.Marker, c *markertest.Clock, id string)
	}{
		{"fresh mark", func(*testing.T, types.Marker, *markertest.Clock, string) {}},
		{"expired mark", func(t *testing.T, m types.Marker, c *markertest.Clock, id string) {
			require.NoError(t, second(m.Mark(context.Background(), id)))
			c.Advance(time.Hour)
		}},
		{"failed mark", func(t *testing.T, m types.Marker, _ *markertest.Clock, id string) {
			require.NoError(t, m.Fail(context.Background(), id, "t1", "boom"))
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			c := markertest.NewClock(time.Now())
			newMarker := func() types.Marker { return &marker.File{Dir: dir, Timeout: time.Minute, Now: c.Now} }
			id := uuid.NewString()
			tc.setup(t, newMarker(), c, id)

			require.Equal(t, 1, markertest.Race(t, newMarker, id), "exactly one of separate File values may take the mark")
			requireOnlyMarks(t, dir, id)
		})
	}
}

// requireOnlyMarks asserts the folder holds the marks of ids and nothing
// else: no temporary or lock file is left behind.
func requireOnlyMarks(t *testing.T, dir string, ids ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names, want []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	for _, id := range ids {
		want = append(want, id+"_in_progress")
	}
	require.ElementsMatch(t, want, names)
}

// TestFileFormat checks the files are what the S3 marker stores, so a mark
// folder can be read by either.
func TestFileFormat(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "marks")
	at := time.Date(2024, 5, 6, 7, 8, 9, 10, time.UTC)
	m := &marker.File{Dir: dir, Timeout: time.Minute, Now: func() time.Time { return at }}
	id := uuid.NewString()

	token, err := m.Mark(context.Background(), id)
	require.NoError(t, err)
	b, err := os.ReadFile(filepath.Join(dir, id+"_in_progress"))
	require.NoError(t, err)
	require.Equal(t, "2024-05-06T07:08:09.00000001Z\n"+token, string(b), "the S3 body, then the owner")

	require.NoError(t, m.Fail(context.Background(), id, token, `bad "digest"`))
	b, err = os.ReadFile(filepath.Join(dir, id+"_in_progress"))
	require.NoError(t, err)
	require.JSONEq(t, `{"state":"failed","at":"2024-05-06T07:08:09.00000001Z","reason":"bad \"digest\"","owner":"`+token+`"}`, string(b))
	requireOnlyMarks(t, dir, id)

	require.NoError(t, m.Unmark(context.Background(), id, token))
	requireOnlyMarks(t, dir)
}

// TestFileMarkWithoutOwner reads a mark holding only the timestamp, as the
// original service's S3 marks do, as a live mark owned by the empty token.
func TestFileMarkWithoutOwner(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	m := &marker.File{Dir: dir, Timeout: time.Minute}
	id := uuid.NewString()
	require.NoError(t, os.WriteFile(filepath.Join(dir, id+"_in_progress"), []byte(time.Now().UTC().Format(time.RFC3339)), 0o600))
	_, err := m.Claim(context.Background(), id, "someone")
	require.ErrorIs(t, err, types.ErrInProgress)
	token, err := m.Claim(context.Background(), id, "")
	require.NoError(t, err)
	require.NoError(t, m.Unmark(context.Background(), id, token))
	requireOnlyMarks(t, dir)
}

// TestFileForeignContent shows an unreadable mark is treated as no mark and
// replaced, rather than blocking its window forever.
func TestFileForeignContent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
	}{
		{"empty", ""},
		{"garbage", "not a time"},
		{"broken record", `{"state":"failed"`},
		{"unknown state", `{"state":"paused","at":"2024-01-01T00:00:00Z"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			m := &marker.File{Dir: dir, Timeout: time.Minute}
			id := uuid.NewString()
			require.NoError(t, os.WriteFile(filepath.Join(dir, id+"_in_progress"), []byte(tc.body), 0o600))
			mark, err := m.Check(context.Background(), id)
			require.NoError(t, err)
			require.Equal(t, types.MarkNone, mark.State)
			require.NoError(t, second(m.Mark(context.Background(), id)))
			mark, err = m.Check(context.Background(), id)
			require.NoError(t, err)
			require.Equal(t, types.MarkInProgress, mark.State)
		})
	}
}

func TestFileUnusableFolder(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(path, []byte("x"), 0o600))
	m := &marker.File{Dir: path, Timeout: time.Minute}
	id := uuid.NewString()
	_, err := m.Mark(context.Background(), id)
	require.Error(t, err)
	require.NotErrorIs(t, err, types.ErrInProgress)
	require.Error(t, m.Fail(context.Background(), id, "t1", "x"))
	_, err = m.Check(context.Background(), id)
	require.Error(t, err)
	require.True(t, strings.Contains(err.Error(), "file check"), err.Error())
}
