package flowlog

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
)

const (
	// partitionBits sets how many partitions a PartitionedCompactor
	// splits flows into: 256, so that a partition of a window of a few
	// million flows fits in a processor's cache while it is compacted.
	partitionBits = 8
	partitions    = 1 << partitionBits
	// entryBytes is the size of a flow in memory and in a spill file.
	entryBytes = 64
	// DefaultMemoryBytes is the memory a PartitionedCompactor's flows take
	// unless told otherwise.
	DefaultMemoryBytes = 32 << 20
	// minMemoryBytes is the least memory a PartitionedCompactor works in.
	minMemoryBytes = 1 << 20
	// maxStage bounds the records staged, whatever the budget: 32 MiB of
	// them, held twice (as they come and grouped), 64.5 MiB in all with
	// their partitions' numbers. Past it a larger stage saves nothing.
	maxStage = 1 << 19
	// spillReadEntries is how many flows a spill file is read by at once.
	spillReadEntries = 256
)

// PartitionedCompactor merges records exactly as Compactor does and writes
// the same digest, byte for byte, within a memory budget whatever the
// window: a month of a busy service holds tens of millions of distinct
// flows.
//
// Each flow goes to one of 256 partitions by a hash of its key. Records are
// staged, then merged into their partition's table a partition at a time,
// so that the table being updated stays in the processor's caches and the
// partitions are merged on every core. A partition whose table is full is
// written to its own temporary file (spilled) and emptied; a file that holds
// more than twice the flows the partition was seen to have is re-compacted,
// so files stay within about three times the distinct flows. Compact merges
// each partition's file and table and sorts it; WriteTo merges the sorted
// partitions into the digest.
//
// Memory is the budget (see PartitionOptions.MemoryBytes), plus, where a
// spill file is compacted again or a spilled partition merged, one
// partition's distinct flows per core (80 to 150 bytes each: 1/256 of the
// window's), plus the names and addresses. Disk is at most about 64 bytes ×
// 3 × the distinct flows, and only once the budget is full; each spilled
// partition holds one open file until Close. AddAll is safe for concurrent
// use.
type PartitionedCompactor struct {
	mu sync.Mutex
	in interner
	// stage holds the records since the last flush, and stagePart the
	// partition of each; flush groups them by partition into grouped.
	// Both are allocated once, so staging takes what its budget allows.
	stage     []flowEntry
	stagePart []uint8
	grouped   []flowEntry
	stageMax  int
	// scratch is each worker's table for merging a partition whole: kept
	// from one partition to the next, it allocates once per worker.
	scratch []flowTable
	parts   [partitions]partition
	// tableMax is how many flows a partition's table holds before it is
	// spilled.
	tableMax int
	maxFlows int
	dir      string
	// err is the first failure to spill: once files are incomplete no
	// digest can be written.
	err       error
	compacted bool
	flows     int
	nameRank  []uint32
	addrRank  []uint32
	smu       sync.Mutex // guards stats, counted from the goroutines of each
	stats     SpillStats
}

// PartitionOptions configures a PartitionedCompactor.
type PartitionOptions struct {
	// MaxFlows bounds the distinct flows (0 or less: no bound). It is
	// checked as partitions are merged, against the flows already known to
	// be distinct, and exactly by Compact.
	MaxFlows int
	// MemoryBytes is the memory the staged records and the partitions'
	// tables take before partitions are spilled to disk; not positive
	// means DefaultMemoryBytes, and less than 1 MiB is taken as 1 MiB.
	MemoryBytes int64
	// Dir is the folder of the temporary spill files; empty means
	// os.TempDir(). The files are removed as soon as they are created (or,
	// where an open file cannot be removed, by Close), so none is left
	// behind.
	Dir string
}

// SpillStats counts what a PartitionedCompactor wrote to disk.
type SpillStats struct {
	// Spills counts the tables written to disk.
	Spills int
	// Recompactions counts the spill files compacted again.
	Recompactions int
	// Files counts the partitions that spilled.
	Files int
	// PeakDiskBytes is the most the spill files held at once.
	PeakDiskBytes int64
	diskBytes     int64
}

// partition is one partition's flows: those in its table, and those in its
// spill file (which may hold a flow more than once, in different runs).
type partition struct {
	table flowTable
	file  *os.File
	// fileName is set while file still has to be removed.
	fileName string
	// fileFlows is how many flows the file holds; after Compact, sorted
	// and distinct.
	fileFlows int
	// seen is the most distinct flows the partition was seen to hold at
	// once: no more than it has.
	seen int
	// sorted holds the partition's flows in order after Compact when it
	// never spilled.
	sorted []flowEntry
}

// NewPartitionedCompactor returns an empty PartitionedCompactor.
func NewPartitionedCompactor(opts PartitionOptions) *PartitionedCompactor {
	mem := opts.MemoryBytes
	if mem <= 0 {
		mem = DefaultMemoryBytes
	}
	mem = max(mem, minMemoryBytes)
	// An eighth of the budget stages records (twice: as they come and
	// grouped by partition); the rest holds the tables, a flow taking its
	// entry and, at a load of a half to a quarter, 8 to 16 bytes of slots.
	stageMax := int(min(mem/8/(2*entryBytes+1), maxStage))
	tableMax := int(min((mem-mem/8)/partitions/(entryBytes+16), math.MaxUint32/4))
	c := &PartitionedCompactor{
		in: newInterner(), stageMax: stageMax, tableMax: tableMax,
		maxFlows: max(opts.MaxFlows, 0), dir: opts.Dir,
		scratch: make([]flowTable, min(runtime.GOMAXPROCS(0), partitions)),
	}
	for p := range c.parts {
		c.parts[p].table.limit = tableMax
	}
	return c
}

// AddAll merges recs into the digest. The records are copied; the caller
// may reuse them. It returns an error wrapping ErrTooManyFlows, naming the
// bound, once more distinct flows than the bound are known, and any failure
// to spill (after which the PartitionedCompactor is of no more use). It
// must not be called after Compact.
func (c *PartitionedCompactor) AddAll(recs []Record) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	if c.compacted {
		return errors.New("flowlog: compact: records added after the digest was compacted")
	}
	for i := range recs {
		e := flowEntry{key: c.in.key(&recs[i]), totals: totalsOf(&recs[i])}
		h := hashKey(&e.key)
		e.hash = uint32(h)
		if c.stage == nil {
			c.stage = make([]flowEntry, 0, c.stageMax)
			c.stagePart = make([]uint8, 0, c.stageMax)
		}
		c.stage = append(c.stage, e)
		c.stagePart = append(c.stagePart, uint8(h>>(64-partitionBits)))
		if len(c.stage) >= c.stageMax {
			if err := c.flush(); err != nil {
				return err
			}
		}
	}
	return nil
}

// flush merges the staged records into their tables, spilling full tables,
// with c.mu held.
func (c *PartitionedCompactor) flush() error {
	// Group the records by partition (a counting sort), so that each
	// partition's are merged together.
	var start [partitions + 1]int
	for _, p := range c.stagePart {
		start[int(p)+1]++
	}
	for p := range partitions {
		start[p+1] += start[p]
	}
	if c.grouped == nil && len(c.stage) > 0 {
		c.grouped = make([]flowEntry, c.stageMax)
	}
	next := start
	for i, p := range c.stagePart {
		c.grouped[next[p]] = c.stage[i]
		next[p]++
	}
	c.stage, c.stagePart = c.stage[:0], c.stagePart[:0]
	err := c.each(func(w, p int) error {
		part := &c.parts[p]
		staged := c.grouped[start[p]:start[p+1]]
		for i := range staged {
			if len(part.table.entries) >= c.tableMax && part.table.find(&staged[i]) == nil {
				if err := c.spill(part, c.worker(w)); err != nil {
					return err
				}
			}
			part.table.merge(&staged[i])
		}
		part.seen = max(part.seen, len(part.table.entries))
		return nil
	})
	if err != nil {
		c.err = fmt.Errorf("flowlog: compact: spill flows to disk: %w", err)
		return c.err
	}
	if c.maxFlows > 0 {
		if n := c.known(); n > c.maxFlows {
			return fmt.Errorf("flowlog: compact: more than %d distinct flows (%d known): %w", c.maxFlows, n, ErrTooManyFlows)
		}
	}
	return nil
}

// worker returns worker w's scratch table, emptied.
func (c *PartitionedCompactor) worker(w int) *flowTable {
	t := &c.scratch[w]
	t.reset()
	return t
}

// known returns how many distinct flows are known to be held: no more than
// there are.
func (c *PartitionedCompactor) known() int {
	n := 0
	for p := range c.parts {
		n += max(c.parts[p].seen, len(c.parts[p].table.entries))
	}
	return n
}

// each runs fn for every partition, on as many goroutines as there were
// cores when c was made (numbered from 0, as worker), and returns the
// first error.
func (c *PartitionedCompactor) each(fn func(worker, p int) error) error {
	var next atomic.Int64
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	for w := range len(c.scratch) {
		wg.Go(func() {
			for {
				p := int(next.Add(1) - 1)
				if p >= partitions {
					return
				}
				if err := fn(w, p); err != nil {
					once.Do(func() { first = err })
					next.Store(partitions)
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}

// spill appends part's table to its file and empties it, then compacts the
// file again when it holds more than twice the flows part was seen to hold.
func (c *PartitionedCompactor) spill(part *partition, all *flowTable) error {
	part.seen = max(part.seen, len(part.table.entries))
	if part.file == nil {
		f, err := os.CreateTemp(c.dir, "grapherd-flows-*")
		if err != nil {
			return err
		}
		part.file = f
		if os.Remove(f.Name()) != nil {
			part.fileName = f.Name()
		}
		c.count(func(s *SpillStats) { s.Files++ })
	}
	if err := writeEntries(part.file, part.fileFlows, part.table.entries); err != nil {
		return err
	}
	written := len(part.table.entries)
	part.fileFlows += written
	part.table.reset()
	c.count(func(s *SpillStats) { s.Spills++; s.add(int64(written) * entryBytes) })
	if part.fileFlows <= 2*part.seen {
		return nil
	}
	// The file holds runs of the same flows: merge them in the worker's
	// table (the partition's own keeps to its budget) and write them back.
	if err := readEntries(part.file, part.fileFlows, all.merge); err != nil {
		return err
	}
	if err := writeEntries(part.file, 0, all.entries); err != nil {
		return err
	}
	before := part.fileFlows
	part.fileFlows = len(all.entries)
	part.seen = max(part.seen, part.fileFlows)
	if err := part.file.Truncate(int64(part.fileFlows) * entryBytes); err != nil {
		return err
	}
	c.count(func(s *SpillStats) { s.Recompactions++; s.add(-int64(before-part.fileFlows) * entryBytes) })
	return nil
}

func (c *PartitionedCompactor) count(fn func(*SpillStats)) {
	c.smu.Lock()
	fn(&c.stats)
	c.smu.Unlock()
}

func (s *SpillStats) add(n int64) {
	s.diskBytes += n
	s.PeakDiskBytes = max(s.PeakDiskBytes, s.diskBytes)
}

// Compact merges each partition's spilled and held flows and sorts them,
// so that WriteTo can write the digest, and returns the number of distinct
// flows. It returns an error wrapping ErrTooManyFlows, naming the bound and
// the count, when the flows are more than the bound, and any failure to
// read or write a spill file. Calling it again returns the same.
// It stops, failing, once ctx is done.
func (c *PartitionedCompactor) Compact(ctx context.Context) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	if c.compacted {
		return c.flows, c.tooMany()
	}
	// The bound is checked exactly below, once the flows are merged.
	if err := c.flush(); err != nil && c.err != nil {
		return 0, err
	}
	c.stage, c.stagePart, c.grouped = nil, nil, nil
	c.nameRank, c.addrRank = c.in.ranks()
	var flows atomic.Int64
	err := c.each(func(w, p int) error {
		if err := ctx.Err(); err != nil {
			return context.Cause(ctx)
		}
		part := &c.parts[p]
		t := &part.table
		if part.file == nil {
			slices.SortFunc(t.entries, func(a, b flowEntry) int { return compareEntries(c.nameRank, c.addrRank, &a, &b) })
			flows.Add(int64(len(t.entries)))
			part.sorted = t.entries
			t.entries, t.slots = nil, nil
			return nil
		}
		// A spilled partition is merged whole in its worker's table.
		all := c.worker(w)
		for i := range t.entries {
			all.merge(&t.entries[i])
		}
		t.entries, t.slots = nil, nil
		if err := readEntries(part.file, part.fileFlows, all.merge); err != nil {
			return err
		}
		slices.SortFunc(all.entries, func(a, b flowEntry) int { return compareEntries(c.nameRank, c.addrRank, &a, &b) })
		flows.Add(int64(len(all.entries)))
		if err := writeEntries(part.file, 0, all.entries); err != nil {
			return err
		}
		before := part.fileFlows
		part.fileFlows = len(all.entries)
		c.count(func(s *SpillStats) { s.add(-int64(before-part.fileFlows) * entryBytes) })
		return part.file.Truncate(int64(part.fileFlows) * entryBytes)
	})
	if err != nil {
		c.err = fmt.Errorf("flowlog: compact: merge spilled flows: %w", err)
		return 0, c.err
	}
	c.compacted = true
	c.scratch = nil
	c.flows = int(flows.Load())
	return c.flows, c.tooMany()
}

func (c *PartitionedCompactor) tooMany() error {
	if c.maxFlows > 0 && c.flows > c.maxFlows {
		return fmt.Errorf("flowlog: compact: more than %d distinct flows (%d): %w", c.maxFlows, c.flows, ErrTooManyFlows)
	}
	return nil
}

// Len returns the distinct flows: exactly once Compact ran, before that
// those known to be distinct once the staged records are merged (exactly,
// when nothing spilled; no more than there are otherwise).
func (c *PartitionedCompactor) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.compacted {
		return c.flows
	}
	if c.err == nil {
		_ = c.flush() // a failure is kept in c.err; a bound passed is for AddAll to say
	}
	return c.known()
}

// Stats returns what the PartitionedCompactor wrote to disk so far.
func (c *PartitionedCompactor) Stats() SpillStats {
	c.smu.Lock()
	defer c.smu.Unlock()
	return c.stats
}

// Each calls fn with each merged record in the order Compactor.Each gives
// them, running Compact first if it has not run, and stops at (and
// returns) the first error fn returns. The record is reused between calls.
func (c *PartitionedCompactor) Each(fn func(*Record) error) error {
	var rec Record
	return c.merge(func(e *flowEntry) error {
		c.in.record(&rec, e)
		return fn(&rec)
	})
}

// merge calls fn with each merged flow in digest order, running Compact
// first if it has not run. The flow is valid until fn returns.
func (c *PartitionedCompactor) merge(fn func(*flowEntry) error) error {
	if _, err := c.Compact(context.Background()); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		// Closed since Compact: its flows are gone.
		return c.err
	}
	var cursors []*cursor
	for p := range c.parts {
		part := &c.parts[p]
		cur := &cursor{entries: part.sorted}
		if part.file != nil {
			cur.file, cur.end = part.file, int64(part.fileFlows)*entryBytes
			cur.buf = make([]byte, spillReadEntries*entryBytes)
		}
		ok, err := cur.next()
		if err != nil {
			return fmt.Errorf("flowlog: compact: read spilled flows: %w", err)
		}
		if ok {
			cursors = append(cursors, cur)
		}
	}
	h := mergeHeap{cursors: cursors, nameRank: c.nameRank, addrRank: c.addrRank}
	h.init()
	for len(h.cursors) > 0 {
		top := h.cursors[0]
		if err := fn(top.head); err != nil {
			return err
		}
		ok, err := top.next()
		if err != nil {
			return fmt.Errorf("flowlog: compact: read spilled flows: %w", err)
		}
		if !ok {
			last := len(h.cursors) - 1
			h.cursors[0] = h.cursors[last]
			h.cursors = h.cursors[:last]
		}
		h.down(0)
	}
	return nil
}

// WriteTo writes the merged records as digest lines, in the order and with
// the bytes Compactor.WriteTo writes. It implements io.WriterTo.
//
// With more than one core, the merge runs on a goroutine of its own and
// hands the flows over in batches, whose lines are formatted on every core
// and written in order, so that the merge alone is what the digest waits
// for. The batches in flight take (2 × cores + 2) × 448 KiB, 2.6 MiB on
// two cores (see writeBatches), and at most 764 KiB a batch, of lines
// whose ids are MaxIDBytes long and addresses IPv6 of 39 characters.
func (c *PartitionedCompactor) WriteTo(w io.Writer) (int64, error) {
	formatters := runtime.GOMAXPROCS(0)
	if formatters < 2 {
		return WriteDigest(w, c.Each)
	}
	n, _, err := c.writeParallel(w, formatters)
	return n, err
}

const (
	// writeBatchFlows is how many flows a batch of WriteTo hands over.
	writeBatchFlows = 2048
	// writeBatchBytes is room for a batch's lines: the longest a default
	// account and interface id make is about 130 bytes.
	writeBatchBytes = writeBatchFlows * 160
)

// writeBatch is a run of merged flows and, once formatted, their lines.
type writeBatch struct {
	flows []flowEntry
	text  []byte
	done  chan struct{} // receives once text is formatted
}

// writeBatches is how many batches WriteTo keeps in flight: enough that
// the merge never waits for a formatter that is behind, each batch about
// 128 KiB of flows and 320 KiB of text.
func writeBatches(formatters int) int { return 2*formatters + 2 }

// errWriteStopped stops the merge of a WriteTo whose writer failed.
var errWriteStopped = errors.New("flowlog: digest writer stopped")

// writeParallel is WriteTo with formatters goroutines formatting lines. It
// also returns how many flows were merged, all of them unless it failed.
func (c *PartitionedCompactor) writeParallel(w io.Writer, formatters int) (n int64, merged int, err error) {
	nb := writeBatches(formatters)
	free := make(chan *writeBatch, nb)
	for range nb {
		free <- &writeBatch{
			flows: make([]flowEntry, 0, writeBatchFlows),
			text:  make([]byte, 0, writeBatchBytes),
			done:  make(chan struct{}, 1),
		}
	}
	work := make(chan *writeBatch, nb)
	order := make(chan *writeBatch, nb)
	stop := make(chan struct{})
	stopped := false
	stopMerge := func() {
		if !stopped {
			stopped = true
			close(stop)
		}
	}

	var mergeErr error
	go func() {
		defer close(order)
		defer close(work)
		b := <-free
		send := func() {
			work <- b
			order <- b
		}
		mergeErr = c.merge(func(e *flowEntry) error {
			merged++
			b.flows = append(b.flows, *e)
			if len(b.flows) < writeBatchFlows {
				return nil
			}
			send()
			// A stopped writer wins over a free batch, so that the merge
			// ends within the batches in flight.
			select {
			case <-stop:
				b = nil
				return errWriteStopped
			default:
			}
			select {
			case b = <-free:
				return nil
			case <-stop:
				b = nil
				return errWriteStopped
			}
		})
		if b != nil && len(b.flows) > 0 {
			send()
		}
	}()

	var wg sync.WaitGroup
	for range formatters {
		wg.Go(func() {
			var rec Record
			for b := range work {
				text := b.text[:0]
				for i := range b.flows {
					c.in.record(&rec, &b.flows[i])
					text = AppendDigestLine(text, &rec)
				}
				b.text = text
				b.done <- struct{}{}
			}
		})
	}

	// Should w panic, the merge is stopped and waited for before the
	// panic goes on, so that no goroutine is left behind holding c.mu.
	finished := false
	defer func() {
		if finished {
			return
		}
		stopMerge()
		for b := range order {
			<-b.done
			free <- b
		}
		wg.Wait()
	}()

	var writeErr error
	for b := range order {
		<-b.done
		if writeErr == nil {
			m, err := w.Write(b.text)
			n += int64(m)
			if err == nil && m < len(b.text) {
				err = io.ErrShortWrite
			}
			if err != nil {
				writeErr = err
				stopMerge()
			}
		}
		b.flows = b.flows[:0]
		free <- b
	}
	wg.Wait()
	finished = true
	switch {
	case writeErr != nil:
		return n, merged, fmt.Errorf("flowlog: write digest: %w", writeErr)
	case mergeErr != nil:
		return n, merged, fmt.Errorf("flowlog: write digest: %w", mergeErr)
	}
	return n, merged, nil
}

// Close removes the spill files. The PartitionedCompactor is of no more use.
func (c *PartitionedCompactor) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for p := range c.parts {
		part := &c.parts[p]
		if part.file != nil {
			errs = append(errs, part.file.Close())
			part.file = nil
		}
		if part.fileName != "" {
			errs = append(errs, os.Remove(part.fileName))
			part.fileName = ""
		}
		part.table.entries, part.table.slots, part.sorted = nil, nil, nil
	}
	if c.err == nil {
		c.err = errors.New("flowlog: compact: closed")
	}
	return errors.Join(errs...)
}

// cursor reads one partition's sorted flows, from memory or from its
// spill file a buffer at a time.
type cursor struct {
	head    *flowEntry
	entries []flowEntry // what is left in memory
	file    *os.File
	off     int64 // where the rest of the file starts
	end     int64
	buf     []byte // the read buffer
	raw     []byte // what of buf is read and not yet decoded
	cur     flowEntry
}

// next moves head to the next flow, false at the end.
func (c *cursor) next() (bool, error) {
	if len(c.entries) > 0 {
		c.head = &c.entries[0]
		c.entries = c.entries[1:]
		return true, nil
	}
	if len(c.raw) == 0 && c.off < c.end {
		n := int(min(int64(len(c.buf)), c.end-c.off))
		c.raw = c.buf[:n]
		// ReaderAt may answer a read that reaches the end with io.EOF.
		if got, err := c.file.ReadAt(c.raw, c.off); err != nil && (got < n || err != io.EOF) {
			return false, err
		}
		c.off += int64(n)
	}
	if len(c.raw) < entryBytes {
		c.head = nil
		return false, nil
	}
	c.cur = decodeEntry((*[entryBytes]byte)(c.raw))
	c.raw = c.raw[entryBytes:]
	c.head = &c.cur
	return true, nil
}

// mergeHeap orders cursors by their heads, the least first.
type mergeHeap struct {
	cursors            []*cursor
	nameRank, addrRank []uint32
}

func (h *mergeHeap) less(i, j int) bool {
	return compareEntries(h.nameRank, h.addrRank, h.cursors[i].head, h.cursors[j].head) < 0
}

func (h *mergeHeap) init() {
	for i := len(h.cursors)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
}

func (h *mergeHeap) down(i int) {
	n := len(h.cursors)
	for {
		least := i
		if l := 2*i + 1; l < n && h.less(l, least) {
			least = l
		}
		if r := 2*i + 2; r < n && h.less(r, least) {
			least = r
		}
		if least == i {
			return
		}
		h.cursors[i], h.cursors[least] = h.cursors[least], h.cursors[i]
		i = least
	}
}

// flowTable is an open-addressing hash table of distinct flows: slots hold
// positions in entries, plus one (0 is an empty slot), and are at most half
// full.
type flowTable struct {
	slots   []uint32
	entries []flowEntry
	// limit is the capacity entries grows to at most while it fills up to
	// it, so that a full table takes what its budget allows and no more;
	// past it (a partition merged whole) entries grows as append grows it.
	limit int
}

// find returns the flow with e's key, nil when there is none.
func (t *flowTable) find(e *flowEntry) *flowEntry {
	if len(t.slots) == 0 {
		return nil
	}
	mask := uint32(len(t.slots) - 1)
	for i := e.hash & mask; ; i = (i + 1) & mask {
		s := t.slots[i]
		if s == 0 {
			return nil
		}
		if x := &t.entries[s-1]; x.hash == e.hash && x.key == e.key {
			return x
		}
	}
}

// merge adds e's totals to its flow, adding the flow if it is new.
func (t *flowTable) merge(e *flowEntry) {
	if 2*(len(t.entries)+1) > len(t.slots) {
		t.rehash(max(64, 2*len(t.slots)))
	}
	mask := uint32(len(t.slots) - 1)
	for i := e.hash & mask; ; i = (i + 1) & mask {
		s := t.slots[i]
		if s == 0 {
			if n := len(t.entries); n == cap(t.entries) && n < t.limit {
				grown := make([]flowEntry, n, min(max(2*n, 64), t.limit))
				copy(grown, t.entries)
				t.entries = grown
			}
			t.entries = append(t.entries, *e)
			t.slots[i] = uint32(len(t.entries))
			return
		}
		if x := &t.entries[s-1]; x.hash == e.hash && x.key == e.key {
			x.totals.merge(e.totals)
			return
		}
	}
}

func (t *flowTable) rehash(n int) {
	t.slots = make([]uint32, n)
	mask := uint32(n - 1)
	for j := range t.entries {
		i := t.entries[j].hash & mask
		for t.slots[i] != 0 {
			i = (i + 1) & mask
		}
		t.slots[i] = uint32(j + 1)
	}
}

// reset empties t, keeping its memory for the flows to come.
func (t *flowTable) reset() {
	clear(t.slots)
	t.entries = t.entries[:0]
}

// hashKey mixes every field of k into 64 bits: the top bits choose the
// partition, the low ones the slot.
func hashKey(k *flowKey) uint64 {
	a := uint64(k.src) | uint64(k.dst)<<32
	b := uint64(k.account) | uint64(k.iface)<<32
	x := uint64(k.action) | uint64(k.srcPort)<<32 | uint64(k.dstPort)<<48
	h := (a ^ 0x9e3779b97f4a7c15) * 0xbf58476d1ce4e5b9
	h = (h ^ h>>29 ^ b) * 0x94d049bb133111eb
	h = (h ^ h>>32 ^ x) * 0xbf58476d1ce4e5b9
	h = (h ^ h>>29 ^ uint64(uint16(k.protocol))) * 0x94d049bb133111eb
	return h ^ h>>32
}

// writeEntries writes entries to f from the flow at position at.
func writeEntries(f *os.File, at int, entries []flowEntry) error {
	w := bufio.NewWriterSize(io.NewOffsetWriter(f, int64(at)*entryBytes), spillReadEntries*entryBytes)
	var raw [entryBytes]byte
	for i := range entries {
		encodeEntry(&raw, &entries[i])
		if _, err := w.Write(raw[:]); err != nil {
			return err
		}
	}
	return w.Flush()
}

// readEntries calls fn with each of the first n flows of f.
func readEntries(f *os.File, n int, fn func(*flowEntry)) error {
	r := bufio.NewReaderSize(io.NewSectionReader(f, 0, int64(n)*entryBytes), spillReadEntries*entryBytes)
	var raw [entryBytes]byte
	var e flowEntry
	for range n {
		if _, err := io.ReadFull(r, raw[:]); err != nil {
			return err
		}
		e = decodeEntry(&raw)
		fn(&e)
	}
	return nil
}

func encodeEntry(b *[entryBytes]byte, e *flowEntry) {
	k, t := &e.key, &e.totals
	le := binary.LittleEndian
	le.PutUint32(b[0:], k.src)
	le.PutUint32(b[4:], k.dst)
	le.PutUint32(b[8:], k.account)
	le.PutUint32(b[12:], k.iface)
	le.PutUint32(b[16:], k.action)
	le.PutUint16(b[20:], k.srcPort)
	le.PutUint16(b[22:], k.dstPort)
	le.PutUint16(b[24:], uint16(k.protocol))
	le.PutUint16(b[26:], 0)
	le.PutUint32(b[28:], e.hash)
	le.PutUint64(b[32:], uint64(t.packets))
	le.PutUint64(b[40:], uint64(t.bytes))
	le.PutUint64(b[48:], uint64(t.start))
	le.PutUint64(b[56:], uint64(t.end))
}

func decodeEntry(b *[entryBytes]byte) flowEntry {
	le := binary.LittleEndian
	return flowEntry{
		key: flowKey{
			src: le.Uint32(b[0:]), dst: le.Uint32(b[4:]),
			account: le.Uint32(b[8:]), iface: le.Uint32(b[12:]), action: le.Uint32(b[16:]),
			srcPort: le.Uint16(b[20:]), dstPort: le.Uint16(b[22:]), protocol: int16(le.Uint16(b[24:])),
		},
		hash: le.Uint32(b[28:]),
		totals: flowTotals{
			packets: int64(le.Uint64(b[32:])), bytes: int64(le.Uint64(b[40:])),
			start: int64(le.Uint64(b[48:])), end: int64(le.Uint64(b[56:])),
		},
	}
}
