package flowlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// poolRecords returns n records of at most flows distinct flows, in a
// random order, with the values a Compactor clamps, saturates or names
// "-" among them.
func poolRecords(seed uint64, flows, n int) []Record {
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	addrs := []netip.Addr{netip.MustParseAddr("2001:db8::10"), netip.MustParseAddr("::ffff:10.0.0.1"), {}}
	for i := range 300 {
		addrs = append(addrs, netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 1}))
	}
	pool := make([]Record, flows)
	for i := range pool {
		pool[i] = Record{
			Version: 2, AccountID: []string{"123456789012", "210987654321", ""}[rng.IntN(3)],
			InterfaceID: fmt.Sprintf([]string{"eni-%d", "eni %d\tspaced"}[rng.IntN(2)], rng.IntN(20)),
			SrcAddr:     addrs[rng.IntN(len(addrs))], DstAddr: addrs[rng.IntN(len(addrs))],
			SrcPort: 32768 + rng.IntN(30000), DstPort: []int{22, 80, 443, 70000, -1}[rng.IntN(5)],
			Protocol: []int{6, 17, 1, -1, 300}[rng.IntN(5)], Action: []string{ActionAccept, ActionReject}[rng.IntN(2)],
			LogStatus: StatusOK,
		}
	}
	recs := make([]Record, n)
	for i := range recs {
		r := pool[rng.IntN(flows)]
		r.Packets, r.Bytes = int64(rng.IntN(100)), int64(rng.IntN(100000))
		switch rng.IntN(500) {
		case 0:
			r.Bytes = math.MaxInt64 - 10
		case 1:
			r.Packets = -3 // counted as 0, in whatever groups records merge
		}
		r.Start = int64(1_700_000_000 + rng.IntN(3600))
		r.End = r.Start + int64(rng.IntN(600))
		recs[i] = r
	}
	return recs
}

// smallPartitioned returns a PartitionedCompactor whose tables hold
// tableMax flows each and that stages stageMax records, so that a test's
// few thousand flows spill as a window of millions would.
func smallPartitioned(t *testing.T, maxFlows, tableMax, stageMax int) *PartitionedCompactor {
	t.Helper()
	c := NewPartitionedCompactor(PartitionOptions{MaxFlows: maxFlows, Dir: t.TempDir()})
	c.tableMax, c.stageMax = tableMax, stageMax
	for p := range c.parts {
		c.parts[p].table.limit = tableMax
	}
	t.Cleanup(func() { require.NoError(t, c.Close()) })
	return c
}

func compactorDigest(t *testing.T, recs []Record) (string, int) {
	t.Helper()
	c := NewCompactor()
	for i := range recs {
		require.NoError(t, c.Add(&recs[i]))
	}
	var out bytes.Buffer
	_, err := c.WriteTo(&out)
	require.NoError(t, err)
	return out.String(), c.Len()
}

// addConcurrently hands recs to c in batches from several goroutines.
func addConcurrently(t *testing.T, c *PartitionedCompactor, recs []Record, workers, batch int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := w * batch; i < len(recs); i += workers * batch {
				if err := c.AddAll(recs[i:min(i+batch, len(recs))]); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

// TestPartitionedMatchesCompactor writes the same digest, byte for byte,
// as Compactor, whether the flows stay in memory or spill, again and again,
// to disk, and whichever goroutines add them.
func TestPartitionedMatchesCompactor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name               string
		flows, records     int
		tableMax, stageMax int
		spills, recompacts bool
	}{
		{name: "in memory", flows: 2000, records: 20000, tableMax: 1000, stageMax: 4096},
		{name: "one flow", flows: 1, records: 3000, tableMax: 1000, stageMax: 100},
		{name: "spills", flows: 5000, records: 8000, tableMax: 12, stageMax: 512, spills: true},
		{name: "spills the same flows again and again", flows: 4000, records: 60000, tableMax: 4, stageMax: 64, spills: true, recompacts: true},
		{name: "stage of one record", flows: 300, records: 2000, tableMax: 1, stageMax: 1, spills: true, recompacts: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			recs := poolRecords(uint64(tc.flows), tc.flows, tc.records)
			want, flows := compactorDigest(t, recs)

			c := smallPartitioned(t, 0, tc.tableMax, tc.stageMax)
			addConcurrently(t, c, recs, 4, 97)
			require.LessOrEqual(t, c.Len(), flows, "flows known before Compact are no more than there are")
			n, err := c.Compact(context.Background())
			require.NoError(t, err)
			require.Equal(t, flows, n)
			require.Equal(t, flows, c.Len())
			// Written again and again, by each way of writing.
			for _, write := range digestWriters(c) {
				var got bytes.Buffer
				n, err := write.fn(&got)
				require.NoError(t, err, write.name)
				require.Equal(t, int64(got.Len()), n, write.name)
				require.Equal(t, want, got.String(), write.name)
			}
			st := c.Stats()
			require.Equal(t, tc.spills, st.Spills > 0, "spills: %+v", st)
			if tc.recompacts || !tc.spills {
				require.Equal(t, tc.recompacts, st.Recompactions > 0, "recompactions: %+v", st)
			}
			if tc.spills {
				// Re-compaction keeps each file within about three times its
				// partition's flows (two, plus the table that just spilled).
				require.LessOrEqual(t, st.PeakDiskBytes, int64(3*flows+partitions*tc.tableMax)*entryBytes, "%+v", st)
				require.Positive(t, st.Files)
			}
		})
	}
}

// TestPartitionedBound fails a window with more flows than the bound,
// naming the bound, and not one with exactly as many, however often its
// flows were spilled.
func TestPartitionedBound(t *testing.T) {
	t.Parallel()
	recs := poolRecords(7, 3000, 30000)
	_, flows := compactorDigest(t, recs)

	exact := smallPartitioned(t, flows, 4, 64)
	require.NoError(t, exact.AddAll(recs))
	n, err := exact.Compact(context.Background())
	require.NoError(t, err)
	require.Equal(t, flows, n)
	require.Positive(t, exact.Stats().Spills)

	over := smallPartitioned(t, flows-1, 4, 64)
	err = over.AddAll(recs)
	if err == nil {
		_, err = over.Compact(context.Background())
	}
	require.ErrorIs(t, err, ErrTooManyFlows)
	require.Contains(t, err.Error(), fmt.Sprintf("more than %d distinct flows", flows-1))

	// Held in memory, the bound is known as the partitions are merged.
	early := smallPartitioned(t, 100, 1000, 64)
	require.ErrorIs(t, early.AddAll(recs), ErrTooManyFlows)
}

// TestPartitionedSaturatesLikeCompactor sums a flow's records to the
// largest int64 across a spill exactly as Compactor sums them in one
// table, negative counts among them.
func TestPartitionedSaturatesLikeCompactor(t *testing.T) {
	t.Parallel()
	base := poolRecords(11, 1, 1)[0]
	base.SrcPort, base.DstPort = 40000, 443
	// other is a flow of base's partition, so that adding it to a table of
	// one flow spills base between its records.
	in := newInterner()
	part := func(r *Record) uint64 { k := in.key(r); return hashKey(&k) >> (64 - partitionBits) }
	want := part(&base)
	other := base
	for other.SrcPort = 1; part(&other) != want; other.SrcPort++ {
	}
	r1, r2, r3 := base, base, base
	r1.Packets, r2.Packets, r3.Packets = math.MaxInt64, 1, -1
	recs := []Record{r1, other, r2, r3}
	wantDigest, _ := compactorDigest(t, recs)
	c := smallPartitioned(t, 0, 1, 1)
	require.NoError(t, c.AddAll(recs))
	var got bytes.Buffer
	_, err := c.WriteTo(&got)
	require.NoError(t, err)
	require.Positive(t, c.Stats().Spills)
	require.Equal(t, wantDigest, got.String())
}

// TestPartitionedStageIsFixed stages records in buffers of the budget's
// size, however they fall into partitions, and releases them, with the
// merging tables, once compacted.
func TestPartitionedStageIsFixed(t *testing.T) {
	t.Parallel()
	c := smallPartitioned(t, 0, 64, 100)
	for i := range 50 {
		// Each batch's records are all of one flow, so of one partition.
		recs := poolRecords(uint64(i), 1, 100)
		require.NoError(t, c.AddAll(recs))
		require.Equal(t, 100, cap(c.stage))
		require.Len(t, c.grouped, 100)
	}
	_, err := c.Compact(context.Background())
	require.NoError(t, err)
	require.Nil(t, c.stage)
	require.Nil(t, c.grouped)
	require.Nil(t, c.scratch)
}

// TestPartitionedCompactCancelled stops compacting once its context is
// done, and writes no digest.
func TestPartitionedCompactCancelled(t *testing.T) {
	t.Parallel()
	c := smallPartitioned(t, 0, 4, 64)
	require.NoError(t, c.AddAll(poolRecords(9, 3000, 6000)))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.Compact(ctx)
	require.ErrorIs(t, err, context.Canceled)
	_, err = c.WriteTo(&bytes.Buffer{})
	require.ErrorIs(t, err, context.Canceled)
}

// TestPartitionedHugeBudget stages no more records than a stage of its
// bound, however large the budget: the budget is what it may take, not
// what it takes at once.
func TestPartitionedHugeBudget(t *testing.T) {
	t.Parallel()
	c := NewPartitionedCompactor(PartitionOptions{MemoryBytes: math.MaxInt64})
	recs := poolRecords(2, 50, 500)
	require.NoError(t, c.AddAll(recs))
	require.LessOrEqual(t, cap(c.stage), maxStage)
	want, flows := compactorDigest(t, recs)
	require.Equal(t, flows, c.Len(), "Len merges what is staged")
	var got bytes.Buffer
	_, err := c.WriteTo(&got)
	require.NoError(t, err)
	require.Equal(t, want, got.String())
}

// TestAddr4TableSpreads numbers 400,000 IPv4 addresses, each once: their
// first probes reach every part of the table however large it grew, and
// each gets back its own number.
func TestAddr4TableSpreads(t *testing.T) {
	t.Parallel()
	var tab addr4Table
	ids := map[uint32]uint32{}
	rng := rand.New(rand.NewPCG(4, 4))
	for len(ids) < 400_000 {
		v := rng.Uint32()
		if _, ok := ids[v]; ok {
			continue
		}
		slot := tab.find(v)
		_, ok := tab.at(slot)
		require.False(t, ok)
		id := uint32(len(ids))
		tab.put(slot, v, id)
		ids[v] = id
	}
	quarters := [4]int{}
	for v, id := range ids {
		got, ok := tab.at(tab.find(v))
		require.True(t, ok)
		require.Equal(t, id, got)
		quarters[4*tab.home(v)/len(tab.slots)]++
	}
	for q, n := range quarters {
		require.Greater(t, n, len(ids)/8, "quarter %d of the table is the first probe of %d addresses", q, n)
	}
	// And in a table of 2^27 slots (a window of some 50 million addresses,
	// not made here), the first probes reach its top half.
	big := addr4Table{shift: 64 - 27}
	top := 0
	for range 100_000 {
		top = max(top, big.home(rng.Uint32()))
	}
	require.Greater(t, top, 1<<26)
	require.Less(t, top, 1<<27)
}

// TestPartitionedSpillFailure fails, naming what failed, when its spill
// files cannot be made, and stays failed: a digest missing spilled flows is
// never written.
func TestPartitionedSpillFailure(t *testing.T) {
	t.Parallel()
	recs := poolRecords(3, 2000, 5000)
	c := NewPartitionedCompactor(PartitionOptions{Dir: filepath.Join(t.TempDir(), "missing")})
	c.tableMax, c.stageMax = 2, 64
	for p := range c.parts {
		c.parts[p].table.limit = 2
	}
	err := c.AddAll(recs)
	require.ErrorContains(t, err, "spill flows to disk")
	require.ErrorIs(t, err, os.ErrNotExist)
	require.ErrorIs(t, c.AddAll(recs[:1]), os.ErrNotExist)
	_, err = c.Compact(context.Background())
	require.ErrorIs(t, err, os.ErrNotExist)
	_, err = c.WriteTo(&bytes.Buffer{})
	require.ErrorIs(t, err, os.ErrNotExist)
	require.NoError(t, c.Close())
}

// TestPartitionedLeavesNoFiles removes its spill files as it makes them.
func TestPartitionedLeavesNoFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	c := NewPartitionedCompactor(PartitionOptions{Dir: dir})
	c.tableMax, c.stageMax = 4, 64
	for p := range c.parts {
		c.parts[p].table.limit = 4
	}
	require.NoError(t, c.AddAll(poolRecords(5, 5000, 10000)))
	_, err := c.Compact(context.Background())
	require.NoError(t, err)
	require.Positive(t, c.Stats().Files)
	left, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, left, "spill files are unlinked while open")
	require.NoError(t, c.Close())
	_, err = c.Compact(context.Background())
	require.Error(t, err, "a closed compactor has nothing to write")
}

// TestPartitionedAddAfterCompact refuses records once the digest is
// compacted, rather than leaving them out of it.
func TestPartitionedAddAfterCompact(t *testing.T) {
	t.Parallel()
	c := NewPartitionedCompactor(PartitionOptions{})
	recs := poolRecords(1, 10, 100)
	require.NoError(t, c.AddAll(recs))
	_, err := c.Compact(context.Background())
	require.NoError(t, err)
	require.ErrorContains(t, c.AddAll(recs), "after the digest was compacted")
}

// TestPartitionedMemoryIsBounded holds 400,384 distinct flows in a 4 MiB
// budget: the live heap stays near the budget while the flows are added,
// compacted and written, where a Compactor holds about 60 MB. It measures
// the heap, so it does not run in parallel with other tests.
func TestPartitionedMemoryIsBounded(t *testing.T) {
	const (
		batch  = 512
		flows  = 782 * batch // 400,384
		budget = 4 << 20
	)
	addrs := make([]netip.Addr, 2000)
	for i := range addrs {
		addrs[i] = netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)})
	}
	recs := make([]Record, batch)
	live := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	before := live()
	c := NewPartitionedCompactor(PartitionOptions{MemoryBytes: budget, Dir: t.TempDir()})
	defer c.Close()
	var peak uint64
	for i := 0; i < flows; i += batch {
		for j := range recs {
			f := i + j
			recs[j] = Record{
				Version: 2, AccountID: "123456789012", InterfaceID: "eni-1",
				SrcAddr: addrs[f%len(addrs)], DstAddr: addrs[(f/len(addrs))%len(addrs)],
				SrcPort: 40000 + f%20000, DstPort: 443, Protocol: 6, Packets: 1, Bytes: 100,
				Start: int64(f % 3600), End: int64(f%3600 + 60), Action: ActionAccept, LogStatus: StatusOK,
			}
		}
		require.NoError(t, c.AddAll(recs))
		if i%(64*batch) == 0 {
			peak = max(peak, live())
		}
	}
	n, err := c.Compact(context.Background())
	require.NoError(t, err)
	require.Equal(t, flows, n)
	peak = max(peak, live())
	lines := 0
	require.NoError(t, c.Each(func(*Record) error {
		if lines++; lines%50_000 == 0 {
			peak = max(peak, live())
		}
		return nil
	}))
	require.Equal(t, flows, lines)
	require.Positive(t, c.Stats().Spills)
	held := int64(peak) - int64(before)
	t.Logf("live heap at its peak: %.1f MiB for %d flows in a %d MiB budget", float64(held)/(1<<20), flows, budget>>20)
	// The budget, the cursors' read buffers (16 KiB for each of 256
	// partitions) and the names and addresses: 2.5 times the budget leaves
	// room for those and fails a compactor that holds its flows (about
	// 150 bytes each: 60 MB here).
	require.Less(t, held, int64(budget*5/2))
}

// BenchmarkInternAddrs numbers 1,000,000 addresses drawn from 20,000, as a
// window's sources and destinations are, through the IPv4 table and
// through the map that numbers other addresses, side by side.
func BenchmarkInternAddrs(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	pool := make([]netip.Addr, 20000)
	for i := range pool {
		pool[i] = netip.AddrFrom4([4]byte{10, byte(rng.IntN(256)), byte(i >> 8), byte(i)})
	}
	addrs := make([]netip.Addr, 1_000_000)
	for i := range addrs {
		addrs[i] = pool[rng.IntN(len(pool))]
	}
	b.Run("ipv4-table", func(b *testing.B) {
		for b.Loop() {
			in := newInterner()
			for _, a := range addrs {
				in.addrID(a)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(addrs)), "ns/addr")
	})
	b.Run("map", func(b *testing.B) {
		for b.Loop() {
			ids := make(map[addrKey]uint32)
			for _, a := range addrs {
				k := addrKey{b: a.As16(), family: family(a)}
				if _, ok := ids[k]; !ok {
					ids[k] = uint32(len(ids))
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(addrs)), "ns/addr")
	})
}

// TestPartitionedOnePartition writes Compactor's digest when every flow
// falls in one partition, so that its table spills again and again, its
// file outgrows the cursor's read buffer, and names, ports, protocols and
// addresses take the values a Compactor clamps or writes "-" for.
func TestPartitionedOnePartition(t *testing.T) {
	t.Parallel()
	addrs := []netip.Addr{{}, netip.MustParseAddr("::ffff:10.0.0.1"), netip.MustParseAddr("10.0.0.1"),
		netip.MustParseAddr("fe80::1%eth0"), netip.MustParseAddr("fe80::1")}
	flowOf := func(i int) Record {
		return Record{
			AccountID: []string{"", "-", "a b"}[i%3], InterfaceID: fmt.Sprint("e", i%7),
			SrcAddr: addrs[i%len(addrs)], DstAddr: netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}),
			SrcPort: i % 70000, DstPort: 65536 + i%3 - 1, Protocol: i%300 - 2, Action: []string{"", ActionAccept}[i%2],
		}
	}
	for _, tc := range []struct{ tableMax, stageMax, flows, records int }{
		{1, 1, 600, 3000}, {1, 7, 900, 5000}, {3, 1000, 3000, 30000}, {300, 64, 2000, 40000},
	} {
		t.Run(fmt.Sprintf("table %d stage %d", tc.tableMax, tc.stageMax), func(t *testing.T) {
			t.Parallel()
			c := smallPartitioned(t, 0, tc.tableMax, tc.stageMax)
			var pool []Record
			for i := 0; len(pool) < tc.flows; i++ {
				r := flowOf(i)
				if k := c.in.key(&r); hashKey(&k)>>(64-partitionBits) == 0 {
					pool = append(pool, r)
				}
			}
			rng := rand.New(rand.NewPCG(1, uint64(tc.flows)))
			recs := make([]Record, tc.records)
			for i := range recs {
				r := pool[rng.IntN(len(pool))]
				r.Packets, r.Bytes = int64(rng.IntN(10)), int64(rng.IntN(1000))
				if rng.IntN(50) == 0 {
					r.Packets = math.MaxInt64 - 3
				}
				r.Start, r.End = int64(rng.IntN(100)), int64(rng.IntN(100)) // often Start > End
				recs[i] = r
			}
			want, flows := compactorDigest(t, recs)
			require.NoError(t, c.AddAll(recs))
			var got bytes.Buffer
			_, err := c.WriteTo(&got)
			require.NoError(t, err)
			require.Equal(t, flows, c.Len())
			require.Equal(t, want, got.String())
			require.Greater(t, c.parts[0].fileFlows, spillReadEntries, "the file is read in more than one buffer")
		})
	}
}

// TestFlowTableCollisions finds and merges flows whose hashes collide and
// whose probes wrap around the end of the slots, at every growth limit.
func TestFlowTableCollisions(t *testing.T) {
	t.Parallel()
	for _, limit := range []int{0, 1, 3, 64, 100000} {
		var tab flowTable
		tab.limit = limit
		const n = 3000
		for round := range 3 {
			for i := range n {
				e := flowEntry{key: flowKey{src: uint32(i)}, hash: math.MaxUint32 - uint32(i%3),
					totals: flowTotals{packets: 1, start: int64(round), end: int64(round)}}
				tab.merge(&e)
			}
		}
		require.Len(t, tab.entries, n)
		for i := range n {
			x := tab.find(&flowEntry{key: flowKey{src: uint32(i)}, hash: math.MaxUint32 - uint32(i%3)})
			require.NotNil(t, x)
			require.Equal(t, flowTotals{packets: 3, start: 0, end: 2}, x.totals)
		}
		require.Nil(t, tab.find(&flowEntry{key: flowKey{src: n}, hash: math.MaxUint32}))
	}
}

// TestPartitionedTruncatedSpill fails WriteTo, rather than writing a
// shorter digest, when a spill file is cut short behind its back.
func TestPartitionedTruncatedSpill(t *testing.T) {
	t.Parallel()
	c := smallPartitioned(t, 0, 4, 64)
	require.NoError(t, c.AddAll(poolRecords(3, 3000, 20000)))
	_, err := c.Compact(context.Background())
	require.NoError(t, err)
	cut := false
	for p := range c.parts {
		if part := &c.parts[p]; part.file != nil && part.fileFlows > 2 {
			require.NoError(t, part.file.Truncate(int64(part.fileFlows-1)*entryBytes-3))
			cut = true
			break
		}
	}
	require.True(t, cut)
	for _, write := range digestWriters(c) {
		_, err = write.fn(&bytes.Buffer{})
		require.Error(t, err, write.name)
	}
}

// digestWriter is one way a PartitionedCompactor writes its digest.
type digestWriter struct {
	name string
	fn   func(io.Writer) (int64, error)
}

// digestWriters are WriteTo, the one-goroutine writer it falls back on
// with one core, and the parallel one with two and with five formatters.
func digestWriters(c *PartitionedCompactor) []digestWriter {
	return []digestWriter{
		{"WriteTo", c.WriteTo},
		{"one goroutine", func(w io.Writer) (int64, error) { return WriteDigest(w, c.Each) }},
		{"2 formatters", func(w io.Writer) (int64, error) { n, _, err := c.writeParallel(w, 2); return n, err }},
		{"5 formatters", func(w io.Writer) (int64, error) { n, _, err := c.writeParallel(w, 5); return n, err }},
	}
}

// failAfter accepts n bytes, then fails every write.
type failAfter struct {
	n   int
	err error
}

func (f *failAfter) Write(p []byte) (int, error) {
	if len(p) <= f.n {
		f.n -= len(p)
		return len(p), nil
	}
	m := f.n
	f.n = 0
	return m, f.err
}

// TestPartitionedWriteFails returns the writer's error, having written
// exactly what the writer took, wherever in the digest the writer fails;
// the merge and the formatters stop, and the digest can be written again.
func TestPartitionedWriteFails(t *testing.T) {
	t.Parallel()
	c := smallPartitioned(t, 0, 8, 256)
	recs := poolRecords(5, 12000, 40000)
	addConcurrently(t, c, recs, 2, 500)
	want, flows := compactorDigest(t, recs)
	require.Greater(t, flows, 4*writeBatchFlows, "the digest spans several batches")
	boom := errors.New("disk full")
	for _, at := range []int{0, 1, 1000, len(want) / 2, len(want) - 1} {
		for _, write := range digestWriters(c) {
			n, err := write.fn(&failAfter{n: at, err: boom})
			require.ErrorIs(t, err, boom, "%s failing at %d", write.name, at)
			require.Equal(t, int64(at), n, "%s failing at %d", write.name, at)
		}
	}
	var got bytes.Buffer
	_, err := c.WriteTo(&got)
	require.NoError(t, err)
	require.Equal(t, want, got.String())
}

// A writer that fails stops the merge within the batches in flight,
// rather than letting it merge the rest of the window for nothing.
func TestPartitionedWriteFailureStopsMerge(t *testing.T) {
	t.Parallel()
	c := smallPartitioned(t, 0, 64, 4096)
	recs := poolRecords(7, 60000, 120000)
	require.NoError(t, c.AddAll(recs))
	flows, err := c.Compact(context.Background())
	require.NoError(t, err)
	const formatters = 2
	// The writer fails on the first batch, before any batch comes back,
	// and a stopped writer wins over a free batch: the merge fills at most
	// the batches there are (one more is slack).
	bound := (writeBatches(formatters) + 1) * writeBatchFlows
	require.Greater(t, flows, 2*bound)
	_, merged, err := c.writeParallel(&failAfter{err: errors.New("gone")}, formatters)
	require.Error(t, err)
	require.LessOrEqual(t, merged, bound)

	_, merged, err = c.writeParallel(io.Discard, formatters)
	require.NoError(t, err)
	require.Equal(t, flows, merged)
}

// shortWriter takes half of each write and reports no error, against
// io.Writer's contract.
type shortWriter struct{ n int64 }

func (s *shortWriter) Write(p []byte) (int, error) {
	m := len(p) / 2
	s.n += int64(m)
	return m, nil
}

// A short write fails the digest, whichever way it is written.
func TestPartitionedShortWrite(t *testing.T) {
	t.Parallel()
	c := smallPartitioned(t, 0, 8, 256)
	require.NoError(t, c.AddAll(poolRecords(5, 12000, 40000)))
	for _, write := range digestWriters(c) {
		var w shortWriter
		n, err := write.fn(&w)
		require.ErrorIs(t, err, io.ErrShortWrite, write.name)
		require.Equal(t, w.n, n, write.name)
	}
}

// panicWriter panics on its second write.
type panicWriter struct{ writes int }

func (p *panicWriter) Write(b []byte) (int, error) {
	if p.writes++; p.writes == 2 {
		panic("writer broke")
	}
	return len(b), nil
}

// A writer that panics leaves no goroutine holding the compactor: the
// panic goes on, and the digest can be written afterwards.
func TestPartitionedWriterPanics(t *testing.T) {
	t.Parallel()
	c := smallPartitioned(t, 0, 64, 4096)
	recs := poolRecords(9, 60000, 120000)
	require.NoError(t, c.AddAll(recs))
	want, _ := compactorDigest(t, recs)
	require.PanicsWithValue(t, "writer broke", func() { _, _, _ = c.writeParallel(&panicWriter{}, 2) })
	var got bytes.Buffer
	_, err := c.WriteTo(&got)
	require.NoError(t, err)
	require.Equal(t, want, got.String())
}
