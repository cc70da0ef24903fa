package flowlog

import (
	"bytes"
	"context"
	"io"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// compacted returns the digest of recs compacted in tables of tableMax
// flows and a stage of stageMax records, and the folder its spill files
// are made in.
func compacted(t *testing.T, recs []Record, tableMax, stageMax int) (*CompactedDigest, string) {
	t.Helper()
	c := smallPartitioned(t, 0, tableMax, stageMax)
	require.NoError(t, c.AddAll(recs))
	_, err := c.Compact(context.Background())
	require.NoError(t, err)
	return c.Digest(), c.dir
}

// collectRender is a Render that keeps each chunk's records and checks
// what its Batch says of their text.
func collectRender(t *testing.T, mu *sync.Mutex, got *[][]Record) func() Render {
	return func() Render {
		return func(b *Batch) {
			recs := append([]Record(nil), b.Records...)
			if len(recs) > 0 {
				// No text is kept, so nothing can be copied from it.
				if b.Raw(0, RawBytes) != nil || b.Len() <= 0 {
					t.Errorf("a chunk of flows has text: %q, Len %d", b.Raw(0, RawBytes), b.Len())
				}
				if _, _, ok := b.RawPadded(0, RawStart, 16); ok {
					t.Error("a chunk of flows has padded text")
				}
			}
			b.Out = &recs
			mu.Lock()
			*got = append(*got, recs)
			mu.Unlock()
		}
	}
}

// TestCompactedDigestRecordsMatchText takes a CompactedDigest's flows as
// records, through Next, a Render and a LineRender, and wants the records
// and stats its text is read back as: names with blanks, missing values,
// addresses of both families, flows in memory and spilled.
func TestCompactedDigestRecordsMatchText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name               string
		flows, records     int
		tableMax, stageMax int
	}{
		{name: "in memory", flows: 3000, records: 20000, tableMax: 1000, stageMax: 4096},
		{name: "spilled", flows: 5000, records: 30000, tableMax: 8, stageMax: 256},
		{name: "one flow", flows: 1, records: 50, tableMax: 10, stageMax: 10},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			recs := poolRecords(11, tc.flows, tc.records)
			d, _ := compacted(t, recs, tc.tableMax, tc.stageMax)
			text, err := io.ReadAll(d)
			require.NoError(t, err)
			require.NoError(t, d.Close())
			want, wantStats, err := readEvery(t, bytes.NewReader(text), WithWorkers(2))
			require.NoError(t, err)
			require.NotEmpty(t, want)

			d, _ = compacted(t, recs, tc.tableMax, tc.stageMax)
			got, stats, err := readEvery(t, d, WithWorkers(3))
			require.NoError(t, err)
			require.Equal(t, want, got)
			require.Equal(t, wantStats, stats)
			_, err = d.Read(make([]byte, 10))
			require.ErrorIs(t, err, errDigestTaken, "the flows were taken")
			require.NoError(t, d.Close())

			d, _ = compacted(t, recs, tc.tableMax, tc.stageMax)
			got, stats, err, lines := readLines(t, d, WithWorkers(2))
			require.NoError(t, err)
			require.Equal(t, want, got)
			require.Equal(t, wantStats, stats)
			require.Zero(t, lines, "flows reach a LineRender as records")
			require.NoError(t, d.Close())

			d, _ = compacted(t, recs, tc.tableMax, tc.stageMax)
			var mu sync.Mutex
			var rendered [][]Record
			r, err := NewReader(d, WithWorkers(2), WithRender(collectRender(t, &mu, &rendered)))
			require.NoError(t, err)
			got = nil
			for {
				b, ok := r.NextBatch()
				if !ok {
					break
				}
				require.Equal(t, b.Records, *b.Out.(*[]Record), "the Render saw the batch's records")
				got = append(got, b.Records...)
			}
			require.NoError(t, r.Err())
			require.Equal(t, want, got)
			r.Close()
			require.NoError(t, d.Close())
		})
	}
}

// TestCompactedDigestOneWay reads a digest whose text was begun as text,
// and one read without workers as text too.
func TestCompactedDigestOneWay(t *testing.T) {
	t.Parallel()
	recs := poolRecords(5, 2000, 8000)
	d, _ := compacted(t, recs, 1000, 4096)
	text, err := io.ReadAll(d)
	require.NoError(t, err)
	require.NoError(t, d.Close())
	want, _, err := readEvery(t, bytes.NewReader(text))
	require.NoError(t, err)

	d, _ = compacted(t, recs, 1000, 4096)
	head := make([]byte, 100)
	_, err = io.ReadFull(d, head)
	require.NoError(t, err)
	got, _, err := readEvery(t, io.MultiReader(bytes.NewReader(head), d), WithWorkers(2))
	require.NoError(t, err)
	require.Equal(t, want, got)
	require.NoError(t, d.Close())

	d, _ = compacted(t, recs, 1000, 4096)
	got, _, err = readEvery(t, d)
	require.NoError(t, err)
	require.Equal(t, want, got)
	require.NoError(t, d.Close())
}

// TestCompactedDigestClose closes a digest, and a Reader of it, midway:
// the merge stops, no goroutine is left and the spill files are gone.
func TestCompactedDigestClose(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	recs := poolRecords(7, 20000, 40000)
	for _, readerFirst := range []bool{true, false} {
		d, dir := compacted(t, recs, 8, 256)
		r, err := NewReader(d, WithWorkers(2))
		require.NoError(t, err)
		for range 10 {
			require.True(t, r.Next())
		}
		if readerFirst {
			r.Close()
			require.NoError(t, d.Close())
		} else {
			require.NoError(t, d.Close())
			for r.Next() {
			}
			require.ErrorIs(t, r.Err(), errDigestClosed, "a digest closed midway is no whole digest")
			r.Close()
		}
		left, err := os.ReadDir(dir)
		require.NoError(t, err)
		require.Empty(t, left)
	}

	// Closed before it is read, whether the feed or the merge meets
	// the close: never an empty digest.
	for range 20 {
		d, _ := compacted(t, recs, 8, 256)
		require.NoError(t, d.Close())
		r, err := NewReader(d, WithWorkers(2))
		require.NoError(t, err)
		require.False(t, r.Next())
		require.Error(t, r.Err(), "a closed digest is no empty digest")
		r.Close()
	}

	d, _ := compacted(t, recs, 8, 256)
	_, err := d.Read(make([]byte, 10))
	require.NoError(t, err)
	require.NoError(t, d.Close())
	_, err = io.ReadAll(d)
	require.Error(t, err, "a closed digest reads no more")
}

// TestCompactedDigestContext stops taking flows once the Reader's
// context ends.
func TestCompactedDigestContext(t *testing.T) {
	t.Parallel()
	d, _ := compacted(t, poolRecords(9, 20000, 40000), 1000, 4096)
	defer d.Close()
	ctx, cancel := context.WithCancel(context.Background())
	r, err := NewReader(d, WithWorkers(2), WithContext(ctx))
	require.NoError(t, err)
	defer r.Close()
	require.True(t, r.Next())
	cancel()
	n := 0
	for r.Next() {
		n++
	}
	require.ErrorIs(t, r.Err(), context.Canceled)
	require.Less(t, n, 19999, "the flows stopped before their end")

	// A digest shorter than a chunk, read with a context already ended.
	small, _ := compacted(t, poolRecords(9, 50, 100), 1000, 4096)
	defer small.Close()
	r, err = NewReader(small, WithWorkers(2), WithContext(ctx))
	require.NoError(t, err)
	defer r.Close()
	for r.Next() {
	}
	require.ErrorIs(t, r.Err(), context.Canceled)
}

// TestCompactedDigestSpillFails fails the Reader when a spill file cannot
// be read back, after the records before the failure.
func TestCompactedDigestSpillFails(t *testing.T) {
	t.Parallel()
	d, _ := compacted(t, poolRecords(3, 3000, 20000), 4, 64)
	defer d.Close()
	cut := false
	for p := range d.c.parts {
		if part := &d.c.parts[p]; part.file != nil && part.fileFlows > 2 {
			require.NoError(t, part.file.Truncate(int64(part.fileFlows-1)*entryBytes-3))
			cut = true
			break
		}
	}
	require.True(t, cut)
	_, _, err := readEvery(t, d, WithWorkers(2))
	require.ErrorContains(t, err, "read spilled flows")
}

// TestCompactedDigestLongLines reads flows whose lines are longer than
// the Reader's bound: as records they are skipped, and counted at their
// line numbers, as the Reader of their text skips them.
func TestCompactedDigestLongLines(t *testing.T) {
	t.Parallel()
	recs := poolRecords(13, 2000, 6000)
	for i := range recs {
		// Some names are long, some lines too long for 300 bytes.
		recs[i].AccountID = strings.Repeat("a", 40+(i*7)%200)
	}
	recs[5].SrcAddr = netip.MustParseAddr("fe80::1%" + strings.Repeat("z", 280))
	for _, maxLine := range []int{300, 900, DefaultMaxLineBytes} {
		d, _ := compacted(t, recs, 100, 512)
		text, err := io.ReadAll(d)
		require.NoError(t, err)
		require.NoError(t, d.Close())
		want, wantStats, err := readEvery(t, bytes.NewReader(text), WithWorkers(2), WithMaxLineBytes(maxLine))
		require.NoError(t, err)
		if maxLine == 300 {
			require.Positive(t, wantStats.Skipped, "some lines are too long")
		}

		d, _ = compacted(t, recs, 100, 512)
		got, stats, err := readEvery(t, d, WithWorkers(2), WithMaxLineBytes(maxLine))
		require.NoError(t, err)
		require.Equal(t, want, got, "bound %d", maxLine)
		require.Equal(t, wantStats, stats, "bound %d", maxLine)
		require.NoError(t, d.Close())
	}
}
