package grapher

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/flowlog"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/flowlog/flowlogtest"
)

// graphSerial draws in record by record, with no workers and no Render:
// the reference the batched path must match byte for byte.
func graphSerial(t *testing.T, in []byte) string {
	t.Helper()
	var out bytes.Buffer
	gw := NewWriter(&out)
	rd, err := flowlog.NewReader(bytes.NewReader(in), flowlog.WithMaxLineBytes(512))
	require.NoError(t, err)
	require.False(t, rd.Batched())
	require.NoError(t, Copy(context.Background(), gw, rd))
	require.NoError(t, gw.Close())
	return out.String()
}

// graphBatched draws in through workers whose Renders format the edges.
func graphBatched(t *testing.T, in []byte, workers int) string {
	t.Helper()
	return graphWorkers(t, in, workers, func(gw *Writer) flowlog.Option { return flowlog.WithRender(gw.NewRender) })
}

// graphLines draws in through workers whose LineRenders format each
// edge as its line is parsed, keeping no record.
func graphLines(t *testing.T, in []byte, workers int) string {
	t.Helper()
	return graphWorkers(t, in, workers, func(gw *Writer) flowlog.Option { return flowlog.WithLineRender(gw.NewLineRender) })
}

// graphWorkers draws in through workers with the render of gw that
// render makes.
func graphWorkers(t *testing.T, in []byte, workers int, render func(*Writer) flowlog.Option) string {
	t.Helper()
	var out bytes.Buffer
	gw := NewWriter(&out)
	rd, err := flowlog.NewReader(bytes.NewReader(in), flowlog.WithMaxLineBytes(512),
		flowlog.WithWorkers(workers), render(gw))
	require.NoError(t, err)
	defer rd.Close()
	require.True(t, rd.Batched())
	require.NoError(t, Copy(context.Background(), gw, rd))
	require.NoError(t, gw.Close())
	return out.String()
}

// batchInputs are digests and flow-log files that take every path: the
// golden inputs, a generated digest of many chunks with IPv6 addresses,
// values written in ways strconv does not write them, ids that need
// escaping, over-long and malformed lines, and a header that changes the
// format after the first chunks were handed out.
func batchInputs(t *testing.T) map[string][]byte {
	t.Helper()
	ins := map[string][]byte{}
	golden, err := filepath.Glob(filepath.Join(goldenDir, "*.log*"))
	require.NoError(t, err)
	for _, name := range golden {
		data, err := os.ReadFile(name)
		require.NoError(t, err)
		ins[filepath.Base(name)] = data
	}
	var digest bytes.Buffer
	_, err = flowlogtest.WriteDigest(&digest, flowlogtest.Spec{Lines: 30_000, Addrs: 3000, Seed: 7, IPv6Every: 3})
	require.NoError(t, err)
	ins["generated"] = digest.Bytes()

	odd := strings.Join([]string{
		"2 000011112222 eni-1 10.0.0.1 10.0.0.2 007 080 06 0 00 0001 0002 ACCEPT OK",
		"2 - - 10.0.0.1 10.0.0.2 - - - - - - - - OK",
		"2 a\"b c\\d 10.0.0.3 10.0.0.1 1 2 6 1 2 3 4 REJECT OK",
		"2 ac\x01ct eni-\xff 10.0.0.4 ::ffff:10.0.0.4 1 2 6 1 2 3 4 - OK",
		"2 " + strings.Repeat("x", 100) + " " + strings.Repeat("e", 65) + " 10.0.0.5 10.0.0.6 1 2 6 1 2 3 4 ACCEPT OK",
		"2  000011112222\teni-2 10.0.0.7   10.0.0.8 1 2 6 1 2 3 4 ACCEPT OK  ",
		"2 1 e 10.0.0.1 10.0.0.2 1 80 6 9223372036854775807 1 1 2 ACCEPT OK",
		// The longest statement the fast paths write.
		"2 " + strings.Repeat("a", 64) + " " + strings.Repeat("b", 64) +
			" ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535 255" +
			strings.Repeat(" 999999999999999999", 4) + " REJECT OK",
		"2 " + strings.Repeat("a", 64) + " " + strings.Repeat("b", 64) + " 255.255.255.255 255.255.255.254 00065535 065535 0255" +
			strings.Repeat(" 000000000000000009", 4) + " - OK",
		// A leading zero in one number alone, first and last of the
		// seven, which takes the line off the fast paths.
		"2 000011112222 eni-1 10.0.0.1 10.0.0.2 080 443 6 1 2 3 4 ACCEPT OK",
		"2 000011112222 eni-1 10.0.0.1 10.0.0.2 80 443 6 1 2 3 04 ACCEPT OK",
		"2 1 e 10.0.0.1 10.0.0.2 1 80 6 1 1 1 2 ACCEPT NODATA",
		"not a record",
		"2 1 e 10.0.0.1 " + strings.Repeat("9", 600),
	}, "\n") + "\n"
	ins["odd values"] = []byte(strings.Repeat(odd, 400))
	// Later chunks are cut before the header is read, so they are parsed
	// again, and rendered again, by the Reader.
	ins["header late"] = append(append([]byte(strings.Repeat(odd, 300)),
		"srcaddr dstaddr srcport dstport action\n"...),
		strings.Repeat("10.1.0.1 10.1.0.2 1 2 ACCEPT\n10.1.0.2 2001:db8::9 3 4 REJECT\n", 20_000)...)
	return ins
}

func TestBatchedGraphMatchesSerial(t *testing.T) {
	t.Parallel()
	for name, in := range batchInputs(t) {
		want := graphSerial(t, in)
		for _, workers := range []int{2, 3} {
			require.Equal(t, want, graphBatched(t, in, workers), "%s with %d workers", name, workers)
			require.Equal(t, want, graphLines(t, in, workers), "%s with %d workers rendering lines", name, workers)
		}
	}
}

// TestFastEdgeMatchesEdge checks each record's statement from copied
// blocks against appendEdge's, and that most records of a digest as
// vpcflow-digesterd writes it take the fast path, so that the comparison is not of appendEdge with itself.
func TestFastEdgeMatchesEdge(t *testing.T) {
	t.Parallel()
	var fast, all atomic.Int64
	var counting atomic.Bool // while reading the generated digest
	render := func() flowlog.Render {
		return func(b *flowlog.Batch) {
			for i := range b.Records {
				if counting.Load() {
					all.Add(1)
				}
				want := string(appendEdge(nil, &b.Records[i]))
				got, ok := appendFastEdge(make([]byte, 0, 7), b, i)
				if ok {
					if counting.Load() {
						fast.Add(1)
					}
					if string(got) != want {
						t.Errorf("fast edge of %+v:\n got %q\nwant %q", b.Records[i], got, want)
					}
				}
				if got := string(appendBatchEdge(nil, b, i)); got != want {
					t.Errorf("batch edge of %+v:\n got %q\nwant %q", b.Records[i], got, want)
				}
			}
		}
	}
	readBatches(t, &counting, flowlog.WithRender(render))
	require.Positive(t, all.Load())
	require.Greater(t, fast.Load(), all.Load()*9/10, "fast %d of %d", fast.Load(), all.Load())
}

// readBatches reads every batch input through two workers with render,
// counting set while the generated digest is read.
func readBatches(t *testing.T, counting *atomic.Bool, render flowlog.Option) {
	t.Helper()
	for name, in := range batchInputs(t) {
		counting.Store(name == "generated")
		rd, err := flowlog.NewReader(bytes.NewReader(in), flowlog.WithMaxLineBytes(512), flowlog.WithWorkers(2), render)
		require.NoError(t, err, name)
		for {
			if _, ok := rd.NextBatch(); !ok {
				break
			}
		}
		require.NoError(t, rd.Err(), name)
		rd.Close()
	}
}

// lineCheck is a LineRender that checks each Line's statement from copied
// blocks against appendEdge's of its record, and counts how many took
// the fast path.
type lineCheck struct {
	t         *testing.T
	fast, all *atomic.Int64
	counting  *atomic.Bool
	rec       flowlog.Record
}

func (c *lineCheck) Start(*flowlog.Batch)   {}
func (c *lineCheck) Record(*flowlog.Record) {}

func (c *lineCheck) Line(l *flowlog.Line) {
	l.Record(&c.rec)
	want := string(appendEdge(nil, &c.rec))
	got, ok := appendLineEdge(make([]byte, 0, 7), l)
	if c.counting.Load() {
		c.all.Add(1)
		if ok {
			c.fast.Add(1)
		}
	}
	if ok && string(got) != want {
		c.t.Errorf("line edge of %+v:\n got %q\nwant %q", c.rec, got, want)
	}
}

// TestLineEdgeMatchesEdge is TestFastEdgeMatchesEdge for the edges a
// LineRender formats from the text of a line it was handed.
func TestLineEdgeMatchesEdge(t *testing.T) {
	t.Parallel()
	var fast, all atomic.Int64
	var counting atomic.Bool
	readBatches(t, &counting, flowlog.WithLineRender(func() flowlog.LineRender {
		return &lineCheck{t: t, fast: &fast, all: &all, counting: &counting}
	}))
	require.Positive(t, all.Load())
	require.Greater(t, fast.Load(), all.Load()*9/10, "fast %d of %d", fast.Load(), all.Load())
}

// TestLineRenderUndrawable checks what a LineRender does with a record
// it cannot draw (which a Reader never yields): the edges before it are
// written, and the batch fails as Edge fails, drawing nothing after it.
func TestLineRenderUndrawable(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	gw := NewWriter(&out)
	lr := gw.NewLineRender()
	b := &flowlog.Batch{}
	lr.Start(b)
	good := flowlog.Record{SrcAddr: netip.MustParseAddr("10.0.0.1"), DstAddr: netip.MustParseAddr("10.0.0.2"),
		AccountID: "1", InterfaceID: "eni-1", Protocol: 6, Action: flowlog.ActionAccept}
	lr.Record(&good)
	bad := good
	bad.DstAddr = netip.Addr{}
	lr.Record(&bad)
	lr.Record(&good)
	err := gw.drawBatch(nil, b.Out.(*edgeText))
	require.ErrorIs(t, err, ErrInvalidRecord)
	require.EqualValues(t, 1, gw.Edges())
	require.NoError(t, gw.Close())
	require.Equal(t, 1, strings.Count(out.String(), "->"), out.String())

	// A Writer with a sink needs records, which a LineRender keeps none of.
	gw = NewWriter(io.Discard)
	gw.sink = func(*flowlog.Record) error { return nil }
	lr = gw.NewLineRender()
	b = &flowlog.Batch{}
	lr.Start(b)
	lr.Record(&good)
	require.ErrorContains(t, gw.drawBatch(nil, b.Out.(*edgeText)), "needs the records")
}

// headerRoundTrip is a digest whose header lines switch the format away
// and back after chunks were handed to workers: those chunks are parsed
// with the wrong format first, which reads 10.9.9.9 as an address of
// theirs, and the Reader then parses and draws them again. 10.9.9.9 is
// then drawn, from a later chunk of the default format, only at the end.
func headerRoundTrip() []byte {
	var b bytes.Buffer
	// The first header comes after the first chunk of either size (see
	// flowlog's chunkBytes and lineChunkBytes), so that the chunks after
	// it are handed out with the default format and parsed again.
	for i := 0; b.Len() < 300<<10; i++ {
		fmt.Fprintf(&b, "2 123456789012 eni-1 10.0.%d.%d 10.1.0.1 1 2 6 1 1 1 1 ACCEPT OK\n", i/250%250, i%250)
	}
	b.WriteString("version srcaddr dstaddr account-id interface-id srcport dstport protocol packets bytes start end action log-status\n")
	for b.Len() < 1200<<10 {
		b.WriteString("2 10.3.0.1 10.3.0.2 10.9.9.9 10.9.9.8 1 2 6 1 1 1 1 ACCEPT OK\n")
	}
	b.WriteString(strings.Join(flowlog.DefaultFields(), " ") + "\n")
	for i := 0; b.Len() < 1500<<10; i++ {
		fmt.Fprintf(&b, "2 123456789012 eni-1 10.2.%d.%d 10.1.0.1 1 2 6 1 1 1 1 ACCEPT OK\n", i/250%250, i%250)
	}
	for range 1000 {
		b.WriteString("2 123456789012 eni-1 10.9.9.9 10.1.0.1 1 2 6 1 1 1 1 REJECT OK\n")
	}
	return b.Bytes()
}

// TestHeaderRoundTripDeclaresNodes checks that a worker does not take an
// address from a chunk it parsed with the wrong format as declared: every
// address is declared before its first edge, as when one goroutine draws
// record by record. Which worker takes which chunk changes from run to
// run, so the graph is drawn many times.
func TestHeaderRoundTripDeclaresNodes(t *testing.T) {
	t.Parallel()
	in := headerRoundTrip()
	want := graphSerial(t, in)
	require.Contains(t, want, "\tn0a090909 [label=\"10.9.9.9\"]\n")
	for run := range 20 {
		require.Equal(t, want, graphBatched(t, in, 2), "run %d", run)
		require.Equal(t, want, graphLines(t, in, 2), "run %d, rendering lines", run)
	}
}
