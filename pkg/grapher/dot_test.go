package grapher

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/graph/formats/dot"
	"gonum.org/v1/gonum/graph/formats/dot/ast"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/flowlog"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/flowlog/flowlogtest"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
)

const line = "2 123456789012 eni-0a1b2c3d 10.0.0.1 10.0.0.2 49152 443 6 10 840 1600000000 1600000060 ACCEPT OK\n"

// parsed is what a DOT graph holds, as gonum reads it.
type parsed struct {
	ids    map[string]string // node id -> label (unquoted)
	labels map[string]string // label -> node id
	edges  []*ast.EdgeStmt
}

// parseGraph parses out with gonum and fails the test if it cannot.
func parseGraph(t testing.TB, out []byte) parsed {
	t.Helper()
	f, err := dot.ParseBytes(out)
	require.NoError(t, err, "gonum rejected:\n%s", out)
	require.Len(t, f.Graphs, 1)
	g := f.Graphs[0]
	require.True(t, g.Directed)
	p := parsed{ids: map[string]string{}, labels: map[string]string{}}
	for _, s := range g.Stmts {
		switch s := s.(type) {
		case *ast.NodeStmt:
			require.Len(t, s.Attrs, 1)
			require.Equal(t, "label", s.Attrs[0].Key)
			label := unquote(s.Attrs[0].Val)
			_, dup := p.ids[s.Node.ID]
			require.False(t, dup, "node %s declared twice", s.Node.ID)
			p.ids[s.Node.ID] = label
			other, dup := p.labels[label]
			require.False(t, dup, "address %s drawn as %s and %s", label, other, s.Node.ID)
			p.labels[label] = s.Node.ID
		case *ast.EdgeStmt:
			from := s.From.(*ast.Node).ID
			to := s.To.Vertex.(*ast.Node).ID
			require.Contains(t, p.ids, from, "edge from an undeclared node")
			require.Contains(t, p.ids, to, "edge to an undeclared node")
			p.edges = append(p.edges, s)
		default:
			t.Fatalf("unexpected statement %T", s)
		}
	}
	return p
}

// unquote reverses appendEscaped's escaping of a gonum attribute value.
func unquote(v string) string {
	v = strings.TrimSuffix(strings.TrimPrefix(v, `"`), `"`)
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) && (v[i+1] == '"' || v[i+1] == '\\') {
			i++
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

func attrs(e *ast.EdgeStmt) ([]string, map[string]string) {
	keys := make([]string, 0, len(e.Attrs))
	vals := make(map[string]string, len(e.Attrs))
	for _, a := range e.Attrs {
		keys = append(keys, a.Key)
		vals[a.Key] = unquote(a.Val)
	}
	return keys, vals
}

func TestGraphEdgeAttributes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		in    string
		vals  map[string]string
		label string
	}{
		{
			name: "accept",
			in:   line,
			vals: map[string]string{
				"govpc_accountID": "123456789012", "govpc_eniID": "eni-0a1b2c3d", "govpc_srcPort": "49152",
				"govpc_dstPort": "443", "govpc_protocol": "6", "govpc_packets": "10", "govpc_bytes": "840",
				"govpc_start": "1600000000", "govpc_end": "1600000060", "color": "green",
			},
			label: `accountID=123456789012\neniID=eni-0a1b2c3d\nsrcPort=49152\ndstPort=443\nprotocol=6\npackets=10\nbytes=840\nstart=1600000000\nend=1600000060`,
		},
		{
			name: "reject with missing values",
			in:   "2 - - 10.0.0.1 10.0.0.2 - - - - - - - REJECT OK\n",
			vals: map[string]string{
				"govpc_accountID": "-", "govpc_eniID": "-", "govpc_srcPort": "0",
				"govpc_dstPort": "0", "govpc_protocol": "-", "govpc_packets": "0", "govpc_bytes": "0",
				"govpc_start": "0", "govpc_end": "0", "color": "red",
			},
			label: `accountID=-\neniID=-\nsrcPort=0\ndstPort=0\nprotocol=-\npackets=0\nbytes=0\nstart=0\nend=0`,
		},
		{
			name: "no action",
			in:   strings.Replace(line, "ACCEPT", "-", 1),
			vals: map[string]string{"color": "gray"},
		},
		{
			name: "quotes and backslashes survive",
			in:   `2 a"b c\d 10.0.0.1 10.0.0.2 1 2 6 1 2 3 4 ACCEPT OK` + "\n",
			vals: map[string]string{"govpc_accountID": `a"b`, "govpc_eniID": `c\d`},
		},
	}
	wantKeys := []string{
		"govpc_accountID", "govpc_eniID", "govpc_srcPort", "govpc_dstPort", "govpc_protocol",
		"govpc_packets", "govpc_bytes", "govpc_start", "govpc_end", "color", "label",
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			_, err := (&DOT{}).Graph(context.Background(), &out, strings.NewReader(tt.in))
			require.NoError(t, err)
			p := parseGraph(t, out.Bytes())
			require.Len(t, p.edges, 1)
			keys, vals := attrs(p.edges[0])
			require.Equal(t, wantKeys, keys)
			for k, v := range tt.vals {
				require.Equal(t, v, vals[k], k)
			}
			if tt.label != "" {
				require.Equal(t, tt.label, vals["label"])
			}
			require.Equal(t, "10.0.0.1", p.ids[p.edges[0].From.(*ast.Node).ID])
			require.Equal(t, "10.0.0.2", p.ids[p.edges[0].To.Vertex.(*ast.Node).ID])
		})
	}
}

// TestNodeIDsInjective is the property that distinct addresses never share a
// node: the seed's ids (dots and colons deleted) merged 10.1.11.1 with
// 10.11.1.1 and 2001:db8::10 with 2001:db8:1::0.
func TestNodeIDsInjective(t *testing.T) {
	t.Parallel()
	named := []string{
		"10.1.11.1", "10.11.1.1", "10.1.1.11", "101.1.1.1", "10.111.1.1", "101.11.1.1",
		"2001:db8::10", "2001:db8:1::0", "2001:db8::1:0", "2001:db8:0:1::",
		"10.0.0.1", "::ffff:10.0.0.1", "::a00:1", "::", "0.0.0.0", "::ffff:0.0.0.0",
		"255.255.255.255", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "::ffff:255.255.255.255",
	}
	addrs := make([]netip.Addr, 0, 20000)
	for _, s := range named {
		addrs = append(addrs, netip.MustParseAddr(s))
	}
	rng := rand.New(rand.NewPCG(7, 7))
	for range 10000 {
		var b16 [16]byte
		for i := range b16 {
			// Few distinct byte values make near-collisions likely.
			b16[i] = []byte{0, 1, 10, 11, 0xff}[rng.IntN(5)]
		}
		addrs = append(addrs, netip.AddrFrom16(b16), netip.AddrFrom4([4]byte(b16[:4])))
	}

	ids := make(map[string]netip.Addr, len(addrs))
	for _, a := range addrs {
		id := string(appendNodeID(nil, a))
		if other, ok := ids[id]; ok {
			require.Equal(t, other, a, "%v and %v share id %s", other, a, id)
		}
		ids[id] = a
		require.Equal(t, byte('n'), id[0])
		require.Len(t, strings.Trim(id[1:], "0123456789abcdef"), 0, id)
	}

	// The same property through the whole converter, read back with gonum:
	// one node per distinct address, and every edge between the right nodes.
	var in strings.Builder
	for i := 0; i+1 < len(addrs) && i < 2000; i += 2 {
		in.WriteString("2 1 eni-1 " + addrs[i].String() + " " + addrs[i+1].String() + " 1 2 6 1 1 1 1 ACCEPT OK\n")
	}
	var out bytes.Buffer
	stats, err := (&DOT{}).Graph(context.Background(), &out, strings.NewReader(in.String()))
	require.NoError(t, err)
	p := parseGraph(t, out.Bytes())
	distinct := map[netip.Addr]bool{}
	for i := 0; i+1 < len(addrs) && i < 2000; i += 2 {
		distinct[addrs[i]], distinct[addrs[i+1]] = true, true
		e := p.edges[i/2]
		require.Equal(t, addrs[i].String(), p.ids[e.From.(*ast.Node).ID])
		require.Equal(t, addrs[i+1].String(), p.ids[e.To.Vertex.(*ast.Node).ID])
	}
	require.Len(t, p.ids, len(distinct))
	require.EqualValues(t, len(distinct), stats.Nodes)
}

// TestGraphvizAcceptsHostileStrings draws ids made of every byte value and
// checks that Graphviz and gonum read the result.
func TestGraphvizAcceptsHostileStrings(t *testing.T) {
	t.Parallel()
	var in bytes.Buffer
	for b := 0; b < 256; b += 8 {
		var tok []byte
		for c := b; c < b+8; c++ {
			if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
				tok = append(tok, byte(c))
			}
		}
		in.WriteString("2 ")
		in.Write(tok)
		in.WriteString(" x")
		in.Write(tok)
		in.WriteString("\\ 10.0.0.1 10.0.0.2 1 2 6 1 1 1 1 ACCEPT OK\n")
	}
	in.WriteString("2 \xef\xbf\xbd\xed\xa0\x80\xf4\x90\x80\x80 \"\\\"\\\\\" 10.0.0.1 10.0.0.2 1 2 6 1 1 1 1 ACCEPT OK\n")
	var out bytes.Buffer
	stats, err := (&DOT{}).Graph(context.Background(), &out, &in)
	require.NoError(t, err)
	require.EqualValues(t, 33, stats.Used)
	p := parseGraph(t, out.Bytes())
	require.Len(t, p.edges, 33)
	requireGraphvizAccepts(t, out.Bytes())
}

func TestGraphErrors(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write([]byte(strings.Repeat(line, 50)))
	_ = zw.Close()
	truncated := gz.Bytes()[:gz.Len()-12]

	tests := []struct {
		name      string
		in        io.Reader
		max       int
		malformed bool
		is        error
		stats     types.GraphStats
	}{
		{name: "only malformed lines", in: strings.NewReader("x\ny\n"), malformed: true,
			stats: types.GraphStats{Lines: 2, Skipped: 2, FirstSkipped: []int64{1, 2}}},
		{name: "only over-long lines", in: strings.NewReader(line + line), max: 20, malformed: true,
			stats: types.GraphStats{Lines: 2, Skipped: 2, FirstSkipped: []int64{1, 2}}},
		{name: "corrupt gzip header", in: bytes.NewReader([]byte{0x1f, 0x8b, 9, 9, 9}), malformed: true},
		{name: "truncated gzip", in: bytes.NewReader(truncated), malformed: true},
		// A stream klauspost/compress reports as its own internal error
		// (found by FuzzGraph).
		{name: "gzip the decompressor fails on", in: strings.NewReader(flowlogtest.FlateInternalError), malformed: true},
		{name: "read error", in: io.MultiReader(strings.NewReader(line), iotest.ErrReader(boom)), is: boom,
			stats: types.GraphStats{Lines: 1, Used: 1, Nodes: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			stats, err := (&DOT{MaxLineBytes: tt.max}).Graph(context.Background(), io.Discard, tt.in)
			require.Error(t, err)
			require.Equal(t, tt.malformed, errors.Is(err, types.ErrMalformedDigest), "%v", err)
			require.Equal(t, tt.malformed, types.IsPermanent(err))
			if tt.is != nil {
				require.ErrorIs(t, err, tt.is)
			}
			if tt.stats.Lines > 0 {
				require.Equal(t, tt.stats, stats)
			}
		})
	}
}

func TestGraphEmptyIsNotMalformed(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"", "\n\n", "2 1 eni-1 - - - - - - - 1 2 - NODATA\n"} {
		var out bytes.Buffer
		stats, err := (&DOT{}).Graph(context.Background(), &out, strings.NewReader(in))
		require.NoError(t, err)
		require.Equal(t, "digraph {\n}\n", out.String())
		require.Zero(t, stats.Used)
	}
}

type errWriter struct{ after int }

var errDiskFull = errors.New("disk full")

func (w *errWriter) Write(p []byte) (int, error) {
	if w.after <= 0 {
		return 0, errDiskFull
	}
	w.after--
	return len(p), nil
}

func TestGraphWriteError(t *testing.T) {
	t.Parallel()
	big := strings.Repeat(line, 20000) // several chunks, each written apart
	for _, after := range []int{0, 1, 3} {
		_, err := (&DOT{}).Graph(context.Background(), &errWriter{after: after}, strings.NewReader(big))
		require.ErrorIs(t, err, errDiskFull)
		require.False(t, types.IsPermanent(err))
	}
	// An error on the final flush is reported too.
	_, err := (&DOT{}).Graph(context.Background(), &errWriter{}, strings.NewReader(line))
	require.ErrorIs(t, err, errDiskFull)
}

// cancelAfter cancels its context once n bytes were read through it.
type cancelAfter struct {
	r      io.Reader
	n      int
	cancel context.CancelFunc
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n -= n
	if c.n <= 0 {
		c.cancel()
	}
	return n, err
}

func TestGraphHonoursContext(t *testing.T) {
	t.Parallel()
	t.Run("cancelled before", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		var out bytes.Buffer
		_, err := (&DOT{}).Graph(ctx, &out, strings.NewReader(line))
		require.ErrorIs(t, err, context.Canceled)
	})
	t.Run("cancelled while reading", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var digest bytes.Buffer
		_, err := flowlogtest.WriteDigest(&digest, flowlogtest.Spec{Lines: 200000, Addrs: 100, Seed: 1})
		require.NoError(t, err)
		in := &cancelAfter{r: &digest, n: 1 << 20, cancel: cancel}
		stats, err := (&DOT{}).Graph(ctx, io.Discard, in)
		require.ErrorIs(t, err, context.Canceled)
		require.Less(t, stats.Lines, int64(200000))
	})
	t.Run("cancelled during lines with no record", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		in := &cancelAfter{r: strings.NewReader(strings.Repeat("garbage\n", 500000)), n: 1 << 20, cancel: cancel}
		stats, err := (&DOT{}).Graph(ctx, io.Discard, in)
		require.ErrorIs(t, err, context.Canceled)
		require.False(t, types.IsPermanent(err), "a cancelled job is not a malformed digest")
		require.Less(t, stats.Lines, int64(500000))
	})
}

func TestGraphLogsSkippedOnce(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	_, err := (&DOT{Logger: logger}).Graph(context.Background(), io.Discard, strings.NewReader("x\n"+line+"y\n"))
	require.NoError(t, err)
	require.Equal(t, 1, strings.Count(logs.String(), "\n"), logs.String())
	require.Contains(t, logs.String(), `"skipped":2`)
	require.Contains(t, logs.String(), `"first_skipped":[1,3]`)
	require.Contains(t, logs.String(), `"level":"INFO"`)

	logs.Reset()
	_, err = (&DOT{Logger: logger}).Graph(context.Background(), io.Discard, strings.NewReader(line))
	require.NoError(t, err)
	require.Empty(t, logs.String(), "a clean digest logs below Info")
}

func TestWriterRejectsUndrawableRecords(t *testing.T) {
	t.Parallel()
	good := netip.MustParseAddr("10.0.0.1")
	for _, rec := range []flowlog.Record{
		{SrcAddr: good},
		{DstAddr: good},
		{SrcAddr: good, DstAddr: netip.MustParseAddr("fe80::1%eth0")},
	} {
		var out bytes.Buffer
		w := NewWriter(&out)
		require.ErrorIs(t, w.Edge(&rec), ErrInvalidRecord)
		require.NoError(t, w.Close())
		require.Equal(t, "digraph {\n}\n", out.String())
		require.Zero(t, w.Nodes())
		require.Zero(t, w.Edges())
	}
}

func TestGraphDeterministicAndFlat(t *testing.T) {
	t.Parallel()
	var digest bytes.Buffer
	_, err := flowlogtest.WriteDigest(&digest, flowlogtest.Spec{Lines: 3000, Addrs: 500, Seed: 3})
	require.NoError(t, err)
	var a, b bytes.Buffer
	sa, err := (&DOT{}).Graph(context.Background(), &a, bytes.NewReader(digest.Bytes()))
	require.NoError(t, err)
	_, err = (&DOT{}).Graph(context.Background(), &b, bytes.NewReader(digest.Bytes()))
	require.NoError(t, err)
	require.Equal(t, a.String(), b.String())
	require.EqualValues(t, 3000, sa.Used)
	p := parseGraph(t, a.Bytes())
	require.Len(t, p.edges, 3000)
	require.Len(t, p.ids, int(sa.Nodes))
	require.Greater(t, sa.Nodes, int64(490))
}

// TestEdgeDoesNotAllocate guards the hot path: drawing an edge between
// known nodes allocates nothing.
func TestEdgeDoesNotAllocate(t *testing.T) {
	// Not parallel: testing.AllocsPerRun refuses to run in parallel tests.
	rec := flowlog.Record{
		AccountID: "123456789012", InterfaceID: "eni-1",
		SrcAddr: netip.MustParseAddr("10.0.0.1"), DstAddr: netip.MustParseAddr("2001:db8::1"),
		SrcPort: 1, DstPort: 2, Protocol: 6, Packets: 3, Bytes: 4, Start: 5, End: 6, Action: "ACCEPT",
	}
	w := NewWriter(io.Discard)
	require.NoError(t, w.Edge(&rec))
	allocs := testing.AllocsPerRun(1000, func() {
		if err := w.Edge(&rec); err != nil {
			t.Fatal(err)
		}
	})
	require.Zero(t, allocs)
	require.NoError(t, w.Close())
}
