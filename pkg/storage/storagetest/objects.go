package storagetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
)

// objects returns s as an ObjectStorage; every built-in backend is one.
func objects(t *testing.T, s types.Storage) types.ObjectStorage {
	t.Helper()
	objs, ok := s.(types.ObjectStorage)
	require.True(t, ok, "%T does not implement types.ObjectStorage", s)
	return objs
}

func readObject(t *testing.T, objs types.ObjectStorage, id, kind string) []byte {
	t.Helper()
	rc, err := objs.GetObject(context.Background(), id, kind)
	require.NoError(t, err)
	defer func() { require.NoError(t, rc.Close()) }()
	b, err := io.ReadAll(rc)
	require.NoError(t, err)
	return b
}

// testObjectRoundTrip stores objects of several kinds and sizes beside a
// graph and reads them back; objects and the graph stay apart.
func testObjectRoundTrip(t *testing.T, s types.Storage) {
	objs := objects(t, s)
	ctx := context.Background()
	id := newID()
	_, err := objs.GetObject(ctx, id, "table")
	require.ErrorIs(t, err, types.ErrNotFound)

	require.NoError(t, objs.StoreObject(ctx, id, "table", strings.NewReader("GVT1 table")))
	require.NoError(t, objs.StoreObject(ctx, id, "svg-0123abcd", strings.NewReader("<svg/>")))
	// An object is not a graph: the graph is still missing.
	requireAbsent(t, s, id)
	require.Equal(t, "GVT1 table", string(readObject(t, objs, id, "table")))
	require.Equal(t, "<svg/>", string(readObject(t, objs, id, "svg-0123abcd")))

	require.NoError(t, s.Store(ctx, id, strings.NewReader("digraph {}")))
	require.Equal(t, "digraph {}", string(readAll(t, s, id)))
	require.Equal(t, "GVT1 table", string(readObject(t, objs, id, "table")), "storing the graph changed its table")

	// Overwrite, and a large object that must be streamed in parts.
	want := sha256.New()
	pr, pw := io.Pipe()
	go func() {
		_, err := io.Copy(io.MultiWriter(pw, want), io.LimitReader(newPattern(), 12<<20))
		pw.CloseWithError(err)
	}()
	require.NoError(t, objs.StoreObject(ctx, id, "table", pr))
	got := sha256.Sum256(readObject(t, objs, id, "table"))
	require.Equal(t, want.Sum(nil), got[:])

	// Another graph's objects are its own.
	_, err = objs.GetObject(ctx, newID(), "table")
	require.ErrorIs(t, err, types.ErrNotFound)
}

// testObjectFailingReader shows a failed StoreObject leaves nothing, or the
// previous object, visible.
func testObjectFailingReader(t *testing.T, s types.Storage) {
	objs := objects(t, s)
	ctx := context.Background()
	for _, tc := range failAfter {
		n := tc.n
		id := newID()
		require.ErrorIs(t, objs.StoreObject(ctx, id, "table", newFailingReader(n)), errBoom)
		_, err := objs.GetObject(ctx, id, "table")
		require.ErrorIs(t, err, types.ErrNotFound, "a failed store of %d bytes left an object", n)

		require.NoError(t, objs.StoreObject(ctx, id, "table", bytes.NewReader([]byte("first"))))
		require.ErrorIs(t, objs.StoreObject(ctx, id, "table", newFailingReader(n)), errBoom)
		require.Equal(t, "first", string(readObject(t, objs, id, "table")))
	}
}

// testObjectInvalidKeys refuses ids and kinds that cannot be keys, including
// the graph's own "dot".
func testObjectInvalidKeys(t *testing.T, s types.Storage) {
	objs := objects(t, s)
	ctx := context.Background()
	for _, kind := range []string{"", "dot", "Table", "../x", "a/b", "a.b", strings.Repeat("k", 65), "tab le"} {
		require.ErrorIs(t, objs.StoreObject(ctx, newID(), kind, strings.NewReader("x")), types.ErrInvalidInput, "kind %q", kind)
		_, err := objs.GetObject(ctx, newID(), kind)
		require.ErrorIs(t, err, types.ErrInvalidInput, "kind %q", kind)
	}
	for _, id := range InvalidIDs() {
		require.ErrorIs(t, objs.StoreObject(ctx, id, "table", strings.NewReader("x")), types.ErrInvalidInput, "id %q", id)
		_, err := objs.GetObject(ctx, id, "table")
		require.ErrorIs(t, err, types.ErrInvalidInput, "id %q", id)
	}
}
