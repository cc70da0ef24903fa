// Package storagetest is the conformance suite every types.Storage backend
// runs, so the S3, filesystem and memory backends are held to one contract:
// graphs round-trip, a failed or cancelled Store leaves nothing (or the
// previous graph) visible, large graphs stream, and ids that cannot be keys
// are refused.
package storagetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
)

// LargeSize is the size of the graph the large-graph test streams: larger
// than several multipart parts, so a backend that buffers whole graphs or
// mishandles parts shows it.
const LargeSize = 20 << 20

// NewStorage returns an empty Storage for one test; it is called once per
// subtest, and the subtests run in parallel.
type NewStorage func(t *testing.T) types.Storage

// Run runs the suite against the backend newStorage makes.
func Run(t *testing.T, newStorage NewStorage) {
	t.Helper()
	tests := []struct {
		name string
		test func(t *testing.T, s types.Storage)
	}{
		{"RoundTrip", testRoundTrip},
		{"NotFound", testNotFound},
		{"Overwrite", testOverwrite},
		{"FailingReader", testFailingReader},
		{"FailingReaderKeepsPrevious", testFailingReaderKeepsPrevious},
		{"LargeStreamed", testLargeStreamed},
		{"InvalidIDs", testInvalidIDs},
		{"ValidIDs", testValidIDs},
		{"CancelledContext", testCancelledContext},
		{"CancelledMidway", testCancelledMidway},
		{"ConcurrentStores", testConcurrentStores},
		{"IndependentIDs", testIndependentIDs},
		{"ObjectRoundTrip", testObjectRoundTrip},
		{"ObjectFailingReader", testObjectFailingReader},
		{"ObjectInvalidKeys", testObjectInvalidKeys},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.test(t, newStorage(t))
		})
	}
}

// errBoom is the error a failing reader returns.
var errBoom = errors.New("reader failed on purpose")

func newID() string { return uuid.NewString() }

// readAll reads the graph id whole.
func readAll(t *testing.T, s types.Storage, id string) []byte {
	t.Helper()
	rc, err := s.Get(context.Background(), id)
	require.NoError(t, err)
	defer func() { require.NoError(t, rc.Close()) }()
	b, err := io.ReadAll(rc)
	require.NoError(t, err)
	return b
}

// requireAbsent asserts that no graph is visible under id.
func requireAbsent(t *testing.T, s types.Storage, id string) {
	t.Helper()
	ok, err := s.Exists(context.Background(), id)
	require.NoError(t, err)
	require.False(t, ok, "Exists reports a graph that should not be there")
	rc, err := s.Get(context.Background(), id)
	if rc != nil {
		_ = rc.Close()
	}
	require.ErrorIs(t, err, types.ErrNotFound)
}

func testRoundTrip(t *testing.T, s types.Storage) {
	cases := []struct {
		name  string
		graph []byte
	}{
		{"empty", nil},
		{"small", []byte("digraph {\n  \"10.0.0.1\" -> \"10.0.0.2\" [label=\"443/tcp\"];\n}\n")},
		{"binary", []byte{0, 1, 2, 0xff, '\n', '\r', 0x80}},
		{"one byte under a part", bytes.Repeat([]byte("a"), 5<<20-1)},
		{"exactly a part", bytes.Repeat([]byte("b"), 5<<20)},
		{"a part and a byte", bytes.Repeat([]byte("c"), 5<<20+1)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := newID()
			ok, err := s.Exists(context.Background(), id)
			require.NoError(t, err)
			require.False(t, ok)
			require.NoError(t, s.Store(context.Background(), id, bytes.NewReader(tc.graph)))
			ok, err = s.Exists(context.Background(), id)
			require.NoError(t, err)
			require.True(t, ok)
			got := readAll(t, s, id)
			require.Equal(t, len(tc.graph), len(got))
			require.True(t, bytes.Equal(tc.graph, got), "stored graph differs from the one read back")
		})
	}
}

func testNotFound(t *testing.T, s types.Storage) {
	requireAbsent(t, s, newID())
}

func testOverwrite(t *testing.T, s types.Storage) {
	id := newID()
	require.NoError(t, s.Store(context.Background(), id, strings.NewReader("digraph { a -> b }")))
	require.NoError(t, s.Store(context.Background(), id, strings.NewReader("digraph { c }")))
	require.Equal(t, "digraph { c }", string(readAll(t, s, id)))
}

// failingReader yields n bytes and then fails.
type failingReader struct {
	r io.Reader
}

func newFailingReader(n int64) *failingReader {
	return &failingReader{r: io.LimitReader(newPattern(), n)}
}

func (f *failingReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if errors.Is(err, io.EOF) {
		return n, errBoom
	}
	return n, err
}

// failAfter lists how much data a failing reader yields first: nothing,
// a little (a single-request upload) and more than two parts (a multipart
// upload that must be aborted).
var failAfter = []struct {
	name string
	n    int64
}{
	{"at once", 0},
	{"after 1 KiB", 1 << 10},
	{"after 12 MiB", 12 << 20},
}

func testFailingReader(t *testing.T, s types.Storage) {
	for _, tc := range failAfter {
		t.Run(tc.name, func(t *testing.T) {
			id := newID()
			err := s.Store(context.Background(), id, newFailingReader(tc.n))
			require.ErrorIs(t, err, errBoom)
			requireAbsent(t, s, id)
		})
	}
}

func testFailingReaderKeepsPrevious(t *testing.T, s types.Storage) {
	for _, tc := range failAfter {
		t.Run(tc.name, func(t *testing.T) {
			id := newID()
			previous := "digraph { previous }"
			require.NoError(t, s.Store(context.Background(), id, strings.NewReader(previous)))
			err := s.Store(context.Background(), id, newFailingReader(tc.n))
			require.ErrorIs(t, err, errBoom)
			require.Equal(t, previous, string(readAll(t, s, id)))
		})
	}
}

// pattern is an endless, deterministic byte stream made on the fly, so a
// large graph is never held by the test either. It repeats a block of DOT
// lines with each block's number stamped at its start, so parts stored out
// of order or twice change what is read back.
type pattern struct {
	block   []byte
	counter uint64
	off     int
}

// patternBlock is the size of one stamped block.
const patternBlock = 64 << 10

func newPattern() *pattern {
	var b []byte
	for i := 0; len(b) < patternBlock; i++ {
		b = fmt.Appendf(b, "\"10.0.%d.%d\" -> \"10.1.%d.%d\";\n", i/256%256, i%256, i%256, i/256%256)
	}
	p := &pattern{block: b[:patternBlock]}
	p.stamp()
	return p
}

// stamp writes the block number over the start of the block.
func (p *pattern) stamp() {
	copy(p.block, fmt.Sprintf("/* %016x */", p.counter))
}

func (p *pattern) Read(b []byte) (int, error) {
	n := 0
	for n < len(b) {
		if p.off == len(p.block) {
			p.counter++
			p.stamp()
			p.off = 0
		}
		c := copy(b[n:], p.block[p.off:])
		p.off += c
		n += c
	}
	return n, nil
}

func testLargeStreamed(t *testing.T, s types.Storage) {
	id := newID()
	want := sha256.New()
	pr, pw := io.Pipe()
	go func() {
		// A pipe is neither seekable nor sized: the backend has to stream.
		_, err := io.Copy(io.MultiWriter(pw, want), io.LimitReader(newPattern(), LargeSize))
		pw.CloseWithError(err)
	}()
	require.NoError(t, s.Store(context.Background(), id, pr))

	rc, err := s.Get(context.Background(), id)
	require.NoError(t, err)
	defer func() { require.NoError(t, rc.Close()) }()
	got := sha256.New()
	n, err := io.Copy(got, rc)
	require.NoError(t, err)
	require.Equal(t, int64(LargeSize), n)
	require.Equal(t, want.Sum(nil), got.Sum(nil), "large graph read back differs")
}

// InvalidIDs returns ids no backend may accept: they could name another
// key, escape a folder or carry control characters.
func InvalidIDs() []string {
	return []string{
		"",
		".",
		"..",
		"../etc/passwd",
		"a/b",
		`a\b`,
		"a.dot",
		"a b",
		"a\x00b",
		"a\nb",
		"héllo",
		"id_in_progress",
		"%2e%2e",
		strings.Repeat("a", 65),
	}
}

func testInvalidIDs(t *testing.T, s types.Storage) {
	for _, id := range InvalidIDs() {
		t.Run(fmt.Sprintf("%q", id), func(t *testing.T) {
			ctx := context.Background()
			err := s.Store(ctx, id, strings.NewReader("digraph {}"))
			require.ErrorIs(t, err, types.ErrInvalidInput)
			require.True(t, types.IsPermanent(err))
			rc, err := s.Get(ctx, id)
			require.Nil(t, rc)
			require.ErrorIs(t, err, types.ErrInvalidInput)
			ok, err := s.Exists(ctx, id)
			require.False(t, ok)
			require.ErrorIs(t, err, types.ErrInvalidInput)
		})
	}
}

func testValidIDs(t *testing.T, s types.Storage) {
	ids := []string{
		newID(),
		strings.ToUpper(newID()),
		"a",
		strings.Repeat("7", 64),
		"-",
	}
	for _, id := range ids {
		t.Run(id, func(t *testing.T) {
			require.NoError(t, s.Store(context.Background(), id, strings.NewReader(id)))
			require.Equal(t, id, string(readAll(t, s, id)))
		})
	}
}

func testCancelledContext(t *testing.T, s types.Storage) {
	id := newID()
	require.NoError(t, s.Store(context.Background(), id, strings.NewReader("digraph {}")))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	other := newID()
	err := s.Store(ctx, other, strings.NewReader("digraph {}"))
	require.ErrorIs(t, err, context.Canceled)
	requireAbsent(t, s, other)

	rc, err := s.Get(ctx, id)
	if rc != nil {
		_ = rc.Close()
	}
	require.ErrorIs(t, err, context.Canceled)
	_, err = s.Exists(ctx, id)
	require.ErrorIs(t, err, context.Canceled)
}

// cancellingReader cancels its context after n bytes and then keeps
// producing data, so only the backend's own attention to ctx stops Store.
type cancellingReader struct {
	r      io.Reader
	n      int64
	cancel context.CancelFunc
}

func (c *cancellingReader) Read(p []byte) (int, error) {
	if c.n <= 0 {
		c.cancel()
	}
	n, err := c.r.Read(p)
	c.n -= int64(n)
	return n, err
}

func testCancelledMidway(t *testing.T, s types.Storage) {
	for _, tc := range failAfter {
		t.Run(tc.name, func(t *testing.T) {
			id := newID()
			previous := "digraph { previous }"
			require.NoError(t, s.Store(context.Background(), id, strings.NewReader(previous)))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			r := &cancellingReader{r: io.LimitReader(newPattern(), 3*tc.n+(1<<20)), n: tc.n, cancel: cancel}
			err := s.Store(ctx, id, r)
			require.ErrorIs(t, err, context.Canceled)
			require.Equal(t, previous, string(readAll(t, s, id)))
		})
	}
}

func testConcurrentStores(t *testing.T, s types.Storage) {
	const writers = 8
	id := newID()
	graphs := make([]string, writers)
	for i := range graphs {
		graphs[i] = strings.Repeat(fmt.Sprintf("digraph { w%d }\n", i), 1000*(i+1))
	}
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for i := range writers {
		wg.Go(func() {
			errs[i] = s.Store(context.Background(), id, strings.NewReader(graphs[i]))
		})
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	require.Contains(t, graphs, string(readAll(t, s, id)), "the graph is not any one writer's whole graph")
}

func testIndependentIDs(t *testing.T, s types.Storage) {
	a, b := newID(), newID()
	require.NoError(t, s.Store(context.Background(), a, strings.NewReader("digraph { a }")))
	requireAbsent(t, s, b)
	require.NoError(t, s.Store(context.Background(), b, strings.NewReader("digraph { b }")))
	require.Equal(t, "digraph { a }", string(readAll(t, s, a)))
	require.Equal(t, "digraph { b }", string(readAll(t, s, b)))
}
