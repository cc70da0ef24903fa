package convert

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/parquet-go/parquet-go"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/graph/formats/dot"
	"gonum.org/v1/gonum/graph/formats/dot/ast"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/flowlog"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/flowlog/flowlogtest"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
)

const (
	lineA = "2 123456789012 eni-1 10.0.0.1 10.0.0.2 50000 443 6 1 100 1600000000 1600000060 ACCEPT OK\n"
	lineB = "2 123456789012 eni-1 10.0.0.1 10.0.0.2 50001 443 6 2 200 1600000030 1600000090 ACCEPT OK\n"
	lineC = "2 123456789012 eni-1 10.0.0.3 10.0.0.2 50002 22 6 3 300 1600000010 1600000020 REJECT OK\n"
	bad   = "not a flow record\n"
)

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, data, 0o600))
	return p
}

func gzipped(t *testing.T, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	_, err := zw.Write([]byte(s))
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	return b.Bytes()
}

// edges parses a DOT graph with gonum and returns its edges' attributes.
func edges(t *testing.T, graph string) []map[string]string {
	t.Helper()
	f, err := dot.ParseString(graph)
	require.NoError(t, err, graph)
	var out []map[string]string
	for _, s := range f.Graphs[0].Stmts {
		if e, ok := s.(*ast.EdgeStmt); ok {
			m := map[string]string{}
			for _, a := range e.Attrs {
				m[a.Key] = strings.Trim(a.Val, `"`)
			}
			out = append(out, m)
		}
	}
	return out
}

func TestRun(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a := writeFile(t, dir, "a.log", []byte(lineA+bad))
	b := writeFile(t, dir, "b.log.gz", gzipped(t, "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n"+lineB+lineC))

	tests := []struct {
		name    string
		args    []string
		stdin   string
		edges   int
		dstPort []string
		summary string
	}{
		{
			name: "stdin", stdin: lineA + lineB, edges: 2, dstPort: []string{"443", "443"},
			summary: "used 2, skipped 0 lines; drew 2 edges between 2 nodes\n",
		},
		{
			name: "dash is stdin", args: []string{"-"}, stdin: lineC, edges: 1, dstPort: []string{"22"},
			summary: "used 1, skipped 0 lines; drew 1 edges between 2 nodes\n",
		},
		{
			name: "files in order, plain and gzip", args: []string{a, b}, edges: 3, dstPort: []string{"443", "443", "22"},
			summary: "used 3, skipped 1 lines (first skipped: " + a + ":2); drew 3 edges between 3 nodes\n",
		},
		{
			name: "file then stdin", args: []string{b, "-"}, stdin: lineA, edges: 3, dstPort: []string{"443", "22", "443"},
			summary: "used 3, skipped 0 lines; drew 3 edges between 3 nodes\n",
		},
		{
			name: "digest compacts across files", args: []string{"--digest", a, b}, edges: 2, dstPort: []string{"443", "22"},
			summary: "used 3, skipped 1 lines (first skipped: " + a + ":2); compacted into 2 flows; drew 2 edges between 3 nodes\n",
		},
		{
			name: "single-dash digest flag", args: []string{"-digest", "-"}, stdin: lineB + lineA, edges: 1, dstPort: []string{"443"},
			summary: "used 2, skipped 0 lines; compacted into 1 flows; drew 1 edges between 2 nodes\n",
		},
		{
			name: "empty stdin", stdin: "", edges: 0,
			summary: "used 0, skipped 0 lines; drew 0 edges between 0 nodes\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			err := Run(context.Background(), tt.args, strings.NewReader(tt.stdin), &stdout, &stderr)
			require.NoError(t, err)
			require.Equal(t, tt.summary, stderr.String())
			got := edges(t, stdout.String())
			require.Len(t, got, tt.edges)
			for i, port := range tt.dstPort {
				require.Equal(t, port, got[i]["govpc_dstPort"], "edge %d", i)
			}
		})
	}
}

func TestRunDigestSums(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	err := Run(context.Background(), []string{"--digest"}, strings.NewReader(lineB+lineC+lineA), &stdout, &stderr)
	require.NoError(t, err)
	got := edges(t, stdout.String())
	require.Equal(t, []map[string]string{
		{
			"govpc_accountID": "123456789012", "govpc_eniID": "eni-1", "govpc_srcPort": "0", "govpc_dstPort": "443",
			"govpc_protocol": "6", "govpc_packets": "3", "govpc_bytes": "300", "govpc_start": "1600000000",
			"govpc_end": "1600000090", "color": "green",
			"label": `accountID=123456789012\neniID=eni-1\nsrcPort=0\ndstPort=443\nprotocol=6\npackets=3\nbytes=300\nstart=1600000000\nend=1600000090`,
		},
		{
			"govpc_accountID": "123456789012", "govpc_eniID": "eni-1", "govpc_srcPort": "0", "govpc_dstPort": "22",
			"govpc_protocol": "6", "govpc_packets": "3", "govpc_bytes": "300", "govpc_start": "1600000010",
			"govpc_end": "1600000020", "color": "red",
			"label": `accountID=123456789012\neniID=eni-1\nsrcPort=0\ndstPort=22\nprotocol=6\npackets=3\nbytes=300\nstart=1600000010\nend=1600000020`,
		},
	}, got)
}

func TestRunOutputFile(t *testing.T) {
	t.Parallel()
	t.Run("written atomically", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		out := filepath.Join(dir, "graph.dot")
		var stdout, stderr bytes.Buffer
		require.NoError(t, Run(context.Background(), []string{"-o", out}, strings.NewReader(lineA), &stdout, &stderr))
		require.Empty(t, stdout.String())
		data, err := os.ReadFile(out)
		require.NoError(t, err)
		require.Len(t, edges(t, string(data)), 1)
		info, err := os.Stat(out)
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o644), info.Mode().Perm())
		entries, err := os.ReadDir(dir)
		require.NoError(t, err)
		require.Len(t, entries, 1, "no temporary file left behind")
	})
	t.Run("failure keeps the previous file and leaves no temporary", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		out := writeFile(t, dir, "graph.dot", []byte("previous"))
		corrupt := writeFile(t, dir, "bad.gz", gzipped(t, strings.Repeat(lineA, 100))[:60])
		var stdout, stderr bytes.Buffer
		err := Run(context.Background(), []string{"-o", out, corrupt}, strings.NewReader(""), &stdout, &stderr)
		require.ErrorIs(t, err, types.ErrMalformedDigest)
		require.Contains(t, err.Error(), corrupt)
		data, err := os.ReadFile(out)
		require.NoError(t, err)
		require.Equal(t, "previous", string(data))
		entries, err := os.ReadDir(dir)
		require.NoError(t, err)
		require.Len(t, entries, 2)
	})
	t.Run("unwritable directory", func(t *testing.T) {
		t.Parallel()
		var stdout, stderr bytes.Buffer
		err := Run(context.Background(), []string{"-o", filepath.Join(t.TempDir(), "missing", "g.dot")}, strings.NewReader(lineA), &stdout, &stderr)
		require.ErrorIs(t, err, os.ErrNotExist)
	})
}

func TestRunErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := writeFile(t, dir, "good.log", []byte(lineA))
	onlyBad := writeFile(t, dir, "bad.log", []byte(bad+bad))
	tests := []struct {
		name     string
		args     []string
		is       error
		contains string
	}{
		{name: "missing file", args: []string{good, filepath.Join(dir, "nope.log")}, is: os.ErrNotExist, contains: "nope.log"},
		{name: "directory", args: []string{dir}, contains: "is a directory"},
		{name: "only malformed lines", args: []string{onlyBad}, is: types.ErrMalformedDigest},
		{name: "unknown flag", args: []string{"--frobnicate"}, contains: "frobnicate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			err := Run(context.Background(), tt.args, strings.NewReader(""), &stdout, &stderr)
			require.Error(t, err)
			if tt.is != nil {
				require.ErrorIs(t, err, tt.is)
			}
			require.Contains(t, err.Error(), tt.contains)
		})
	}
	t.Run("unreadable file writes nothing", func(t *testing.T) {
		t.Parallel()
		var stdout, stderr bytes.Buffer
		err := Run(context.Background(), []string{good, filepath.Join(dir, "nope.log")}, strings.NewReader(""), &stdout, &stderr)
		require.Error(t, err)
		require.Empty(t, stdout.String())
	})
}

func TestRunHelp(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	require.NoError(t, Run(context.Background(), []string{"-h"}, strings.NewReader(""), &stdout, &stderr))
	require.Contains(t, stderr.String(), "usage: vpcflow-grapherd convert [-o FILE] [--digest] [FILE...]")
	require.Contains(t, stderr.String(), "-digest")
	require.Empty(t, stdout.String())
}

func TestRunCancelled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, args := range [][]string{nil, {"--digest"}} {
		var stdout, stderr bytes.Buffer
		err := Run(ctx, args, strings.NewReader(strings.Repeat(lineA, 10000)), &stdout, &stderr)
		require.ErrorIs(t, err, context.Canceled)
	}
}

func TestRunOutputNotRegular(t *testing.T) {
	t.Parallel()
	t.Run("dev null stays a device", func(t *testing.T) {
		t.Parallel()
		var stdout, stderr bytes.Buffer
		require.NoError(t, Run(context.Background(), []string{"-o", os.DevNull}, strings.NewReader(lineA), &stdout, &stderr))
		info, err := os.Stat(os.DevNull)
		require.NoError(t, err)
		require.NotZero(t, info.Mode()&os.ModeCharDevice)
	})
	t.Run("fifo is written in place", func(t *testing.T) {
		t.Parallel()
		fifo := filepath.Join(t.TempDir(), "graph.fifo")
		require.NoError(t, syscall.Mkfifo(fifo, 0o600))
		got := make(chan string, 1)
		go func() {
			f, err := os.Open(fifo)
			if err != nil {
				got <- err.Error()
				return
			}
			defer f.Close()
			data, _ := io.ReadAll(f)
			got <- string(data)
		}()
		var stdout, stderr bytes.Buffer
		require.NoError(t, Run(context.Background(), []string{"-o", fifo}, strings.NewReader(lineA), &stdout, &stderr))
		require.Len(t, edges(t, <-got), 1)
		info, err := os.Stat(fifo)
		require.NoError(t, err)
		require.NotZero(t, info.Mode()&os.ModeNamedPipe)
	})
	t.Run("symlink target replaced, link kept", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		target := writeFile(t, dir, "real.dot", []byte("old"))
		link := filepath.Join(dir, "link.dot")
		require.NoError(t, os.Symlink(target, link))
		var stdout, stderr bytes.Buffer
		require.NoError(t, Run(context.Background(), []string{"-o", link}, strings.NewReader(lineA), &stdout, &stderr))
		info, err := os.Lstat(link)
		require.NoError(t, err)
		require.NotZero(t, info.Mode()&os.ModeSymlink)
		data, err := os.ReadFile(target)
		require.NoError(t, err)
		require.Len(t, edges(t, string(data)), 1)
	})
	t.Run("directory", func(t *testing.T) {
		t.Parallel()
		var stdout, stderr bytes.Buffer
		err := Run(context.Background(), []string{"-o", t.TempDir()}, strings.NewReader(lineA), &stdout, &stderr)
		require.ErrorContains(t, err, "is a directory")
	})
}

// TestRunParquet converts a Parquet file beside a text one into the graph
// the same records give in text, skipping a truncated Parquet file.
func TestRunParquet(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fields := flowlog.DefaultFields()
	var rows [][]any
	for _, line := range []string{lineB, lineC} {
		r, err := flowlog.NewReader(strings.NewReader(line))
		require.NoError(t, err)
		require.True(t, r.Next())
		rows = append(rows, flowlogtest.RecordValues(r.Record(), fields))
	}
	var pq bytes.Buffer
	require.NoError(t, flowlogtest.WriteParquet(&pq, flowlogtest.ParquetFile{Fields: fields, Int32: true, Optional: true, Codec: &parquet.Snappy}, rows))
	text := writeFile(t, dir, "a.log", []byte(lineA))
	par := writeFile(t, dir, "b.log.parquet", pq.Bytes())
	broken := writeFile(t, dir, "c.log.parquet", pq.Bytes()[:pq.Len()/2])
	all := writeFile(t, dir, "all.log", []byte(lineA+lineB+lineC))

	for _, digest := range []bool{false, true} {
		args := func(files ...string) []string {
			if digest {
				return append([]string{"--digest"}, files...)
			}
			return files
		}
		var got, want, stderr bytes.Buffer
		require.NoError(t, Run(context.Background(), args(text, par, broken), nil, &got, &stderr))
		require.Contains(t, stderr.String(), "used 3, skipped 1 lines (first skipped: "+broken+" (malformed Parquet))")
		require.NoError(t, Run(context.Background(), args(all), nil, &want, io.Discard))
		require.Equal(t, want.String(), got.String())
	}

	var stderr bytes.Buffer
	err := Run(context.Background(), []string{broken}, nil, io.Discard, &stderr)
	require.ErrorIs(t, err, types.ErrMalformedDigest)
}

// TestDigestSummaryOnError names the flows the inputs read so far were
// compacted into when a later input fails.
func TestDigestSummaryOnError(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := writeFile(t, dir, "good.log", []byte(lineA+lineB+lineC))
	gz := gzipped(t, strings.Repeat(lineA, 1000))
	broken := writeFile(t, dir, "broken.log.gz", gz[:len(gz)/2])
	var stdout, stderr bytes.Buffer
	err := Run(context.Background(), []string{"--digest", good, broken}, strings.NewReader(""), &stdout, &stderr)
	require.Error(t, err)
	require.Contains(t, stderr.String(), "compacted into 2 flows")
}
