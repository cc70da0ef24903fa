package grapher

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
)

// FuzzGraph checks that no input makes the converter panic, and that
// whatever it accepts comes out as DOT that gonum parses, with one edge per
// used record and one node per distinct address.
//
//	go test ./pkg/grapher -run '^$' -fuzz FuzzGraph -fuzztime 30s
func FuzzGraph(f *testing.F) {
	inputs, err := filepath.Glob(filepath.Join(goldenDir, "*.log*"))
	require.NoError(f, err)
	for _, in := range inputs {
		data, err := os.ReadFile(in)
		require.NoError(f, err)
		f.Add(data)
	}
	f.Add([]byte(line))
	f.Add([]byte("version srcaddr dstaddr\n2 ::1 ::2\n"))
	f.Add([]byte("2 a\"b\\ c\xff 10.0.0.1 10.0.0.2 1 2 6 1 2 3 4 ACCEPT OK"))
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write([]byte(line))
	_ = zw.Close()
	f.Add(gz.Bytes())

	f.Fuzz(func(t *testing.T, in []byte) {
		var out bytes.Buffer
		stats, err := (&DOT{MaxLineBytes: 512}).Graph(context.Background(), &out, bytes.NewReader(in))
		if err != nil && !errors.Is(err, types.ErrMalformedDigest) {
			t.Fatalf("unexpected error for in-memory input: %v", err)
		}
		if out.Len() == 0 {
			// Only a corrupt gzip header stops the converter before it
			// starts the graph.
			require.ErrorIs(t, err, types.ErrMalformedDigest)
			return
		}
		if err != nil && stats.Used > 0 {
			// A gzip stream that breaks after some records: the graph is
			// incomplete by design and is never stored.
			return
		}
		if err == nil {
			// Workers rendering lines draw what one goroutine drawing
			// record by record does.
			require.Equal(t, graphSerial(t, in), out.String())
		}
		p := parseGraph(t, out.Bytes())
		require.EqualValues(t, stats.Used, len(p.edges))
		require.EqualValues(t, stats.Nodes, len(p.ids))
		require.LessOrEqual(t, stats.Used+stats.Skipped, stats.Lines)
	})
}
