package flowlog

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"net/netip"
	"slices"
	"strings"
	"sync"
)

// Compactor merges records the way vpcflow-digesterd does: the ephemeral
// port (the higher of the two ports) becomes 0; records with the same
// account, interface, src/dst address, remaining ports, protocol and action
// merge; packets and bytes are summed; each merged record keeps the earliest
// Start and latest End of its members. Memory grows with distinct flows, not
// with records added. It is safe for concurrent use by several goroutines.
//
// When both ports are equal the source port is the one zeroed, as
// vpcflow-digesterd does, so a flow between two well-known ports keeps its
// destination port. Sums that would overflow an int64 stop at the largest
// int64; negative packets or bytes count as 0.
type Compactor struct {
	mu sync.Mutex
	// flows holds the merged flows in the order they were first seen, and
	// index the position of each in flows: a map of small values and dense
	// blocks take less than a map holding the totals, growing never copies
	// (nor leaves garbage), and Each sorts positions rather than copies of
	// the flows.
	flows flowBlocks
	index map[flowKey]uint32
	// maxFlows bounds len(flows); 0 means no bound.
	maxFlows int
	// in numbers the names and addresses of the flows.
	in interner
}

// ErrTooManyFlows is returned (wrapped) by Compactor.Add when a record would
// add a distinct flow beyond the Compactor's bound. The same input always
// exceeds it again: a smaller window, or a larger bound, is needed.
var ErrTooManyFlows = errors.New("too many distinct flows")

// flowKey is what two records must share to merge.
type flowKey struct {
	src, dst       uint32 // numbers of addrs
	account, iface uint32 // numbers of names
	action         uint32
	// Ports are 0 to 65535 and protocols -1 to 255 in a Record a Reader
	// returns; other values are clamped by Add.
	srcPort, dstPort uint16
	protocol         int16
}

// addrKey is an address as a comparable value without pointers; family
// is 4 or 6 (0 for an invalid address), so that 10.0.0.1 and
// ::ffff:10.0.0.1 stay apart.
type addrKey struct {
	b      [16]byte
	family uint8
}

// flowTotals is what merging accumulates.
type flowTotals struct {
	packets, bytes int64
	start, end     int64
}

// NewCompactor returns an empty Compactor with no bound on distinct flows.
func NewCompactor() *Compactor { return NewBoundedCompactor(0) }

// NewBoundedCompactor returns an empty Compactor that holds at most
// maxFlows distinct flows (0 or less: no bound), so that the memory a
// digest takes is bounded whatever the window: see Add.
func NewBoundedCompactor(maxFlows int) *Compactor {
	return &Compactor{index: make(map[flowKey]uint32), maxFlows: max(maxFlows, 0), in: newInterner()}
}

// Add merges rec into the digest. rec is copied; the caller may reuse it.
// IPv6 zones, which flow logs never hold, are not kept. It returns an
// error wrapping ErrTooManyFlows, naming the bound, when rec is a new flow
// and the Compactor already holds its bound of flows; rec is then left
// out, and records of flows it holds still merge.
func (c *Compactor) Add(rec *Record) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.add(rec)
}

// AddAll merges recs into the digest in order, as Add does each, taking the
// lock once: goroutines that each hand over a batch of records wait on each
// other far less than when each record takes the lock. It stops at the
// first error (wrapping ErrTooManyFlows) and returns it.
func (c *Compactor) AddAll(recs []Record) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range recs {
		if err := c.add(&recs[i]); err != nil {
			return err
		}
	}
	return nil
}

// add is Add with c.mu held.
func (c *Compactor) add(rec *Record) error {
	k := c.in.key(rec)
	i, ok := c.index[k]
	if !ok {
		n := c.flows.len()
		if (c.maxFlows > 0 && n >= c.maxFlows) || n == math.MaxUint32 {
			return fmt.Errorf("flowlog: compact: more than %d distinct flows: %w", n, ErrTooManyFlows)
		}
		c.index[k] = uint32(n)
		c.flows.add(flowEntry{key: k, totals: totalsOf(rec)})
		return nil
	}
	c.flows.at(i).totals.merge(totalsOf(rec))
	return nil
}

// interner numbers the account, interface and action strings, and the
// addresses, of flows, so that a flow key is a small fixed-size value
// without pointers: it hashes and compares fast, costs the garbage
// collector nothing to scan, and keeps a flow at about 100 bytes (see
// BenchmarkCompactorMemory). Addresses and ids are far fewer than flows.
type interner struct {
	ids   map[string]uint32
	names []string
	// v4 numbers IPv4 addresses, most of a window's, and addrIDs the
	// others (IPv6, IPv4-mapped IPv6 and invalid ones).
	v4      addr4Table
	addrIDs map[addrKey]uint32
	addrs   []netip.Addr
	// last holds the name last numbered for each of a record's account,
	// interface and action: a Reader hands out the same string for a
	// repeated value, so comparing with it is usually comparing pointers.
	last [3]struct {
		s  string
		id uint32
	}
}

func newInterner() interner {
	return interner{ids: make(map[string]uint32), addrIDs: make(map[addrKey]uint32)}
}

// key returns the flow key of rec: the ephemeral port (the higher of the
// two; the source port when they are equal) becomes 0, ports are clamped
// to 0..65535 and protocols to -1..255.
func (in *interner) key(rec *Record) flowKey {
	srcPort, dstPort := rec.SrcPort, rec.DstPort
	if srcPort >= dstPort {
		srcPort = 0
	} else {
		dstPort = 0
	}
	return flowKey{
		src:      in.addrID(rec.SrcAddr),
		dst:      in.addrID(rec.DstAddr),
		account:  in.cachedID(0, rec.AccountID),
		iface:    in.cachedID(1, rec.InterfaceID),
		action:   in.cachedID(2, rec.Action),
		srcPort:  uint16(min(max(srcPort, 0), 65535)),
		dstPort:  uint16(min(max(dstPort, 0), 65535)),
		protocol: int16(min(max(rec.Protocol, -1), 255)),
	}
}

// totalsOf returns what rec adds to its flow. Negative counts, which a
// Reader never returns, count as 0: sums that stop at the largest int64
// then come out the same in whatever groups records are merged.
func totalsOf(rec *Record) flowTotals {
	return flowTotals{packets: max(rec.Packets, 0), bytes: max(rec.Bytes, 0), start: rec.Start, end: rec.End}
}

// merge adds o to t: sums saturate at the largest int64, and t keeps the
// earliest start and the latest end.
func (t *flowTotals) merge(o flowTotals) {
	t.packets = addSaturating(t.packets, o.packets)
	t.bytes = addSaturating(t.bytes, o.bytes)
	t.start = min(t.start, o.start)
	t.end = max(t.end, o.end)
}

// addrID returns the number of a, numbering it if new.
func (in *interner) addrID(a netip.Addr) uint32 {
	if a.Is4() {
		b := a.As4()
		v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
		slot := in.v4.find(v)
		if id, ok := in.v4.at(slot); ok {
			return id
		}
		id := uint32(len(in.addrs))
		in.addrs = append(in.addrs, a)
		in.v4.put(slot, v, id)
		return id
	}
	k := addrKey{b: a.As16(), family: family(a)}
	if !a.IsValid() {
		k.b = [16]byte{}
	}
	if id, ok := in.addrIDs[k]; ok {
		return id
	}
	id := uint32(len(in.addrs))
	in.addrIDs[k] = id
	in.addrs = append(in.addrs, addrOf(k.b, k.family))
	return id
}

// addr4Table maps IPv4 addresses to their numbers: an open-addressing
// table of address and number plus one (0 is an empty slot) in one word,
// at most half full. It takes a third of the time of a map lookup, which
// hashes and compares the 17-byte addrKey.
type addr4Table struct {
	slots []uint64
	n     int
	// shift is 64 less the bits of len(slots): a slot is the top bits of
	// the address times a 64-bit constant, so that every slot can be the
	// first one probed however large the table grows.
	shift uint
}

func (t *addr4Table) home(v uint32) int { return int(uint64(v) * 0x9e3779b97f4a7c15 >> t.shift) }

// find returns the slot of v: where v is, or the empty slot it would go in.
func (t *addr4Table) find(v uint32) int {
	if 2*(t.n+1) > len(t.slots) {
		t.grow()
	}
	mask := len(t.slots) - 1
	for i := t.home(v); ; i = (i + 1) & mask {
		if s := t.slots[i]; s == 0 || uint32(s>>32) == v {
			return i
		}
	}
}

// at returns the number in slot, false when the slot is empty.
func (t *addr4Table) at(slot int) (uint32, bool) {
	s := t.slots[slot]
	return uint32(s) - 1, s != 0
}

// put sets the empty slot find returned for v to v's number id.
func (t *addr4Table) put(slot int, v, id uint32) {
	t.slots[slot] = uint64(v)<<32 | uint64(id+1)
	t.n++
}

func (t *addr4Table) grow() {
	old := t.slots
	t.slots = make([]uint64, max(1024, 2*len(old)))
	t.shift = uint(64 - bits.Len(uint(len(t.slots)-1)))
	mask := len(t.slots) - 1
	for _, s := range old {
		if s == 0 {
			continue
		}
		i := t.home(uint32(s >> 32))
		for t.slots[i] != 0 {
			i = (i + 1) & mask
		}
		t.slots[i] = s
	}
}

// cachedID is id, remembering the last name of field.
func (in *interner) cachedID(field int, s string) uint32 {
	l := &in.last[field]
	if s == l.s && s != "" {
		return l.id
	}
	id := in.id(s)
	l.s, l.id = s, id
	return id
}

// id returns the number of s ("-" when empty), numbering it if new.
func (in *interner) id(s string) uint32 {
	if s == "" {
		s = Missing
	}
	if id, ok := in.ids[s]; ok {
		return id
	}
	id := uint32(len(in.names))
	in.ids[s] = id
	in.names = append(in.names, s)
	return id
}

// ranks returns the place of each name and address number in the order
// of the values they number (strings.Compare, netip.Addr.Compare), so that
// sorting flows compares small integers instead of strings and addresses:
// numbers are distinct values, so their ranks are distinct too.
func (in *interner) ranks() (nameRank, addrRank []uint32) {
	return rankOf(in.names, strings.Compare), rankOf(in.addrs, netip.Addr.Compare)
}

// record fills rec with the flow e, whose names and addresses in numbered.
func (in *interner) record(rec *Record, e *flowEntry) {
	k, t := &e.key, &e.totals
	rec.Version, rec.LogStatus = 2, StatusOK
	rec.AccountID = in.names[k.account]
	rec.InterfaceID = in.names[k.iface]
	rec.SrcAddr = in.addrs[k.src]
	rec.DstAddr = in.addrs[k.dst]
	rec.SrcPort = int(k.srcPort)
	rec.DstPort = int(k.dstPort)
	rec.Protocol = int(k.protocol)
	rec.Packets, rec.Bytes = t.packets, t.bytes
	rec.Start, rec.End = t.start, t.end
	rec.Action = in.names[k.action]
}

func family(a netip.Addr) uint8 {
	switch {
	case a.Is4():
		return 4
	case a.Is6():
		return 6
	default:
		return 0
	}
}

func addrOf(b [16]byte, family uint8) netip.Addr {
	switch family {
	case 4:
		return netip.AddrFrom16(b).Unmap()
	case 6:
		return netip.AddrFrom16(b)
	default:
		return netip.Addr{}
	}
}

// Len returns the number of distinct flows so far.
func (c *Compactor) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.flows.len()
}

// Each calls fn with each merged record in the order WriteTo writes them,
// stopping at (and returning) the first error fn returns. The record is
// reused between calls. Add waits while Each runs; fn must not call Add.
func (c *Compactor) Each(fn func(*Record) error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	order := make([]uint32, c.flows.len())
	for i := range order {
		order[i] = uint32(i)
	}
	flows := &c.flows
	nameRank, addrRank := c.in.ranks()
	slices.SortFunc(order, func(a, b uint32) int { return compareEntries(nameRank, addrRank, flows.at(a), flows.at(b)) })
	var rec Record
	for _, i := range order {
		c.in.record(&rec, flows.at(i))
		if err := fn(&rec); err != nil {
			return err
		}
	}
	return nil
}

// WriteTo writes the merged records as digest lines in a deterministic order
// (sorted by start, then the remaining fields). It implements io.WriterTo.
func (c *Compactor) WriteTo(w io.Writer) (int64, error) {
	return WriteDigest(w, c.Each)
}

// WriteDigest writes the records each yields to w as version 2 digest lines,
// buffered, and returns the number of bytes written. each calls its
// argument once per record and stops at the first error it returns.
func WriteDigest(w io.Writer, each func(yield func(*Record) error) error) (int64, error) {
	cw := &countingWriter{w: w}
	bw := bufio.NewWriterSize(cw, 64<<10)
	var line []byte
	err := each(func(rec *Record) error {
		line = AppendDigestLine(line[:0], rec)
		_, err := bw.Write(line)
		return err
	})
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		return cw.n, fmt.Errorf("flowlog: write digest: %w", err)
	}
	return cw.n, nil
}

// flowBlockBits sets the flows a block holds: 1<<16, 4 MiB a block.
const flowBlockBits = 16

// flowBlocks is a growable array of flows in fixed-size blocks.
type flowBlocks struct {
	blocks [][]flowEntry
	n      int
}

func (f *flowBlocks) len() int { return f.n }

func (f *flowBlocks) at(i uint32) *flowEntry {
	return &f.blocks[i>>flowBlockBits][i&(1<<flowBlockBits-1)]
}

func (f *flowBlocks) add(e flowEntry) {
	if f.n>>flowBlockBits == len(f.blocks) {
		f.blocks = append(f.blocks, make([]flowEntry, 0, 1<<flowBlockBits))
	}
	b := &f.blocks[len(f.blocks)-1]
	*b = append(*b, e)
	f.n++
}

// flowEntry is one merged flow.
type flowEntry struct {
	key flowKey
	// hash is the low half of hashKey(key), kept where the key's alignment
	// leaves room, so an entry stays 64 bytes (only PartitionedCompactor
	// sets it).
	hash   uint32
	totals flowTotals
}

func rankOf[T any](values []T, compare func(a, b T) int) []uint32 {
	ids := make([]uint32, len(values))
	for i := range ids {
		ids[i] = uint32(i)
	}
	slices.SortFunc(ids, func(a, b uint32) int { return compare(values[a], values[b]) })
	rank := make([]uint32, len(values))
	for r, id := range ids {
		rank[id] = uint32(r)
	}
	return rank
}

// compareEntries orders flows by start, end, account, interface, source and
// destination address (IPv4 before IPv6, as netip.Addr.Compare does), ports,
// protocol, action, given the ranks of the names and addresses (see ranks);
// distinct flows never compare equal.
func compareEntries(nameRank, addrRank []uint32, a, b *flowEntry) int {
	ka, kb := &a.key, &b.key
	if c := cmp.Compare(a.totals.start, b.totals.start); c != 0 {
		return c
	}
	if c := cmp.Compare(a.totals.end, b.totals.end); c != 0 {
		return c
	}
	if c := cmp.Compare(nameRank[ka.account], nameRank[kb.account]); c != 0 {
		return c
	}
	if c := cmp.Compare(nameRank[ka.iface], nameRank[kb.iface]); c != 0 {
		return c
	}
	if c := cmp.Compare(addrRank[ka.src], addrRank[kb.src]); c != 0 {
		return c
	}
	if c := cmp.Compare(addrRank[ka.dst], addrRank[kb.dst]); c != 0 {
		return c
	}
	if c := cmp.Compare(ka.srcPort, kb.srcPort); c != 0 {
		return c
	}
	if c := cmp.Compare(ka.dstPort, kb.dstPort); c != 0 {
		return c
	}
	if c := cmp.Compare(ka.protocol, kb.protocol); c != 0 {
		return c
	}
	return cmp.Compare(nameRank[ka.action], nameRank[kb.action])
}

func addSaturating(a, b int64) int64 {
	if b > 0 && a > maxInt64-b {
		return maxInt64
	}
	return a + b
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
