package grapher

import (
	"bytes"
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/graph/formats/dot"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/grapher")

const goldenDir = "../../testdata/grapher"

// goldenCases lists every input in testdata/grapher with its case name.
func goldenCases(t *testing.T) map[string]string {
	t.Helper()
	inputs, err := filepath.Glob(filepath.Join(goldenDir, "*.log*"))
	require.NoError(t, err)
	require.NotEmpty(t, inputs)
	cases := make(map[string]string, len(inputs))
	for _, in := range inputs {
		name := filepath.Base(in)
		name = name[:strings.Index(name, ".log")]
		cases[name] = in
	}
	return cases
}

// goldenStats are the stats expected for each golden input, and whether it
// is a malformed digest.
var goldenStats = map[string]struct {
	stats     types.GraphStats
	malformed bool
}{
	"basic":          {stats: types.GraphStats{Lines: 5, Used: 5, Nodes: 5}},
	"gzip-members":   {stats: types.GraphStats{Lines: 7, Used: 5, Nodes: 5}},
	"collisions":     {stats: types.GraphStats{Lines: 7, Used: 7, Nodes: 9}},
	"custom-format":  {stats: types.GraphStats{Lines: 7, Used: 3, Nodes: 4}},
	"missing-values": {stats: types.GraphStats{Lines: 2, Used: 2, Nodes: 2}},
	"malformed":      {stats: types.GraphStats{Lines: 6, Used: 1, Skipped: 5, Nodes: 2, FirstSkipped: []int64{1, 2, 3, 4, 6}}},
	"all-malformed":  {stats: types.GraphStats{Lines: 2, Skipped: 2, FirstSkipped: []int64{1, 2}}, malformed: true},
	"empty":          {stats: types.GraphStats{}},
	"nodata-only":    {stats: types.GraphStats{Lines: 2}},
	"escaping":       {stats: types.GraphStats{Lines: 5, Used: 5, Nodes: 6}},
}

// TestGolden converts each testdata/grapher/<case>.log[.gz] and compares the
// result with <case>.dot.golden; run with -update to rewrite them.
func TestGolden(t *testing.T) {
	t.Parallel()
	cases := goldenCases(t)
	require.Len(t, cases, len(goldenStats), "every golden input needs expected stats")
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			want, ok := goldenStats[name]
			require.True(t, ok, "no expected stats for %s", name)
			input, err := os.ReadFile(in)
			require.NoError(t, err)

			var out bytes.Buffer
			stats, err := (&DOT{}).Graph(context.Background(), &out, bytes.NewReader(input))
			if want.malformed {
				require.ErrorIs(t, err, types.ErrMalformedDigest)
			} else {
				require.NoError(t, err)
			}
			require.Equal(t, want.stats, stats)

			golden := filepath.Join(goldenDir, name+".dot.golden")
			if *update {
				require.NoError(t, os.WriteFile(golden, out.Bytes(), 0o644))
			}
			expected, err := os.ReadFile(golden)
			require.NoError(t, err, "run go test ./pkg/grapher -run TestGolden -update")
			require.Equal(t, string(expected), out.String(), "output differs from %s; rerun with -update if intended", golden)

			_, err = dot.ParseBytes(out.Bytes())
			require.NoError(t, err)
		})
	}
}

// TestGoldenGzipMatchesPlain checks that the gzip input (two members, each
// with a header line) draws the same graph as the plain digest it holds.
func TestGoldenGzipMatchesPlain(t *testing.T) {
	t.Parallel()
	plain, err := os.ReadFile(filepath.Join(goldenDir, "basic.dot.golden"))
	require.NoError(t, err)
	gz, err := os.ReadFile(filepath.Join(goldenDir, "gzip-members.dot.golden"))
	require.NoError(t, err)
	require.Equal(t, string(plain), string(gz))
}

// TestGraphvizAcceptsGoldens runs Graphviz on every golden file. Graphviz
// must be installed (make test installs it): a missing dot fails the test.
func TestGraphvizAcceptsGoldens(t *testing.T) {
	t.Parallel()
	goldens, err := filepath.Glob(filepath.Join(goldenDir, "*.dot.golden"))
	require.NoError(t, err)
	require.NotEmpty(t, goldens)
	for _, g := range goldens {
		t.Run(filepath.Base(g), func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(g)
			require.NoError(t, err)
			requireGraphvizAccepts(t, data)
		})
	}
}

// requireGraphvizAccepts fails unless dot renders graph to SVG and gvpr
// reads it, both without a word on stderr.
func requireGraphvizAccepts(t *testing.T, graph []byte) {
	t.Helper()
	dotPath, err := exec.LookPath("dot")
	require.NoError(t, err, "Graphviz is required: apt-get install -y graphviz")
	gvprPath, err := exec.LookPath("gvpr")
	require.NoError(t, err, "Graphviz is required: apt-get install -y graphviz")

	for _, args := range [][]string{
		{dotPath, "-Tsvg", "-o", os.DevNull},
		{gvprPath, "-c", "N{}"},
	} {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Stdin = bytes.NewReader(graph)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		cmd.Stdout = new(bytes.Buffer)
		require.NoError(t, cmd.Run(), "%s rejected the graph: %s", filepath.Base(args[0]), stderr.String())
		require.Empty(t, stderr.String(), "%s complained", filepath.Base(args[0]))
	}
}
