package flowtable_test

import (
	"bytes"
	"context"
	"flag"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/flowtable"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/views")

const goldenDir = "../../testdata/views"

// goldenViews are the views of testdata/views/basic.log kept as golden
// files: <name>.<format>.golden.
var goldenViews = []struct {
	name, query string
}{
	{"basic", "group=addr"},
	{"basic-cidr24", "group=cidr:24:64"},
	{"basic-rejected", "action=REJECT&group=cidr:16"},
	{"basic-top2", "top=2&protocol=tcp"},
	{"basic-eni", "group=eni"},
	{"basic-account", "group=account"},
	{"basic-filters", "addr=10.0.1.0/24&port=22,440-450&min_bytes=100"},
}

// TestGolden writes each golden view in every text format and compares it
// with testdata/views/<name>.<format>.golden; run with -update to rewrite.
func TestGolden(t *testing.T) {
	t.Parallel()
	dot, table := graphBoth(t, readFile(t, filepath.Join(goldenDir, "basic.log")))
	for _, gv := range goldenViews {
		q, err := url.ParseQuery(gv.query)
		require.NoError(t, err)
		p, err := flowtable.ParseParams(q)
		require.NoError(t, err)
		v, err := flowtable.Aggregate(context.Background(), fromTable(table), p, flowtable.Limits{})
		require.NoError(t, err)
		fromDot, err := flowtable.Aggregate(context.Background(), fromDOT(dot), p, flowtable.Limits{})
		require.NoError(t, err)
		require.Equal(t, v, fromDot, "the DOT and the table give different views for %s", gv.query)
		for _, f := range []struct {
			ext   string
			write func(*bytes.Buffer) error
		}{
			{"json", func(b *bytes.Buffer) error { return flowtable.WriteJSON(b, v, testMeta) }},
			{"csv", func(b *bytes.Buffer) error { return flowtable.WriteCSV(b, v) }},
			{"dot", func(b *bytes.Buffer) error { return flowtable.WriteDOT(b, v, testMeta) }},
		} {
			t.Run(gv.name+"."+f.ext, func(t *testing.T) {
				var got bytes.Buffer
				require.NoError(t, f.write(&got))
				golden := filepath.Join(goldenDir, gv.name+"."+f.ext+".golden")
				if *update {
					require.NoError(t, os.WriteFile(golden, got.Bytes(), 0o644))
				}
				require.Equal(t, string(readFile(t, golden)), got.String())
			})
		}
	}
}
