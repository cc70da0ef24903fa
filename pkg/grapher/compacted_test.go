package grapher

import (
	"bytes"
	"context"
	"io"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/flowlog"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/flowlog/flowlogtest"
)

// compactedDigest compacts recs, spilling, and returns the digest.
func compactedDigest(t *testing.T, recs []flowlog.Record) *flowlog.CompactedDigest {
	t.Helper()
	c := flowlog.NewPartitionedCompactor(flowlog.PartitionOptions{MemoryBytes: 1 << 20, Dir: t.TempDir()})
	require.NoError(t, c.AddAll(recs))
	_, err := c.Compact(context.Background())
	require.NoError(t, err)
	d := c.Digest()
	t.Cleanup(func() { require.NoError(t, d.Close()) })
	return d
}

// TestGraphCompactedDigest draws a CompactedDigest, whose flows reach the
// grapher as records, and wants the graph, the records handed to a sink
// and the stats its text gives: flows of both families, names with
// blanks, and flows whose lines are skipped.
func TestGraphCompactedDigest(t *testing.T) {
	t.Parallel()
	var recs []flowlog.Record
	require.NoError(t, flowlogtest.Records(flowlogtest.Spec{Lines: 60000, Addrs: 3000, Seed: 4}, func(r *flowlog.Record) error {
		recs = append(recs, *r)
		return nil
	}))
	odd := recs[100]
	odd.InterfaceID = "eni with blanks"
	recs = append(recs, odd)
	odd.DstAddr = netip.Addr{} // written "-", which a line cannot hold
	recs = append(recs, odd)

	text, err := io.ReadAll(compactedDigest(t, recs))
	require.NoError(t, err)
	for _, withSink := range []bool{false, true} {
		var wantSunk, sunk []flowlog.Record
		sink := func(dst *[]flowlog.Record) func(*flowlog.Record) error {
			if !withSink {
				return nil
			}
			return func(r *flowlog.Record) error {
				*dst = append(*dst, *r)
				return nil
			}
		}
		var want, got bytes.Buffer
		wantStats, err := (&DOT{}).GraphWithSink(context.Background(), &want, bytes.NewReader(text), sink(&wantSunk))
		require.NoError(t, err)
		d := compactedDigest(t, recs)
		stats, err := (&DOT{}).GraphWithSink(context.Background(), &got, d, sink(&sunk))
		require.NoError(t, err)
		_, err = d.Read(make([]byte, 1))
		require.Error(t, err, "the grapher took the flows, not the text")
		require.Equal(t, wantStats, stats)
		require.Equal(t, int64(1), stats.Skipped, "the flow with no address")
		require.Equal(t, want.String(), got.String(), "sink %v", withSink)
		require.Contains(t, got.String(), "eni_with_blanks")
		require.Equal(t, wantSunk, sunk)
		if withSink {
			require.Len(t, sunk, int(stats.Used))
		}
	}
}
