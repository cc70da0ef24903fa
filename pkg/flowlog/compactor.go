package flowlog

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"io"
	"math"
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
// int64.
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
	// ids numbers the account, interface and action strings, and addrIDs
	// the addresses, so a flow key is a small fixed-size value without
	// pointers: it hashes and compares fast, costs the garbage collector
	// nothing to scan, and keeps a flow at about 100 bytes (see
	// BenchmarkCompactorMemory). Addresses and ids are far fewer than flows.
	ids     map[string]uint32
	names   []string
	addrIDs map[addrKey]uint32
	addrs   []netip.Addr
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
	return &Compactor{
		index: make(map[flowKey]uint32), maxFlows: max(maxFlows, 0),
		ids: make(map[string]uint32), addrIDs: make(map[addrKey]uint32),
	}
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
	srcPort, dstPort := rec.SrcPort, rec.DstPort
	if srcPort >= dstPort {
		srcPort = 0
	} else {
		dstPort = 0
	}
	k := flowKey{
		srcPort:  uint16(min(max(srcPort, 0), 65535)),
		dstPort:  uint16(min(max(dstPort, 0), 65535)),
		protocol: int16(min(max(rec.Protocol, -1), 255)),
	}
	k.src = c.addrID(rec.SrcAddr)
	k.dst = c.addrID(rec.DstAddr)
	k.account = c.id(rec.AccountID)
	k.iface = c.id(rec.InterfaceID)
	k.action = c.id(rec.Action)
	i, ok := c.index[k]
	if !ok {
		n := c.flows.len()
		if (c.maxFlows > 0 && n >= c.maxFlows) || n == math.MaxUint32 {
			return fmt.Errorf("flowlog: compact: more than %d distinct flows: %w", n, ErrTooManyFlows)
		}
		c.index[k] = uint32(n)
		c.flows.add(flowEntry{key: k, totals: flowTotals{packets: rec.Packets, bytes: rec.Bytes, start: rec.Start, end: rec.End}})
		return nil
	}
	t := &c.flows.at(i).totals
	t.packets = addSaturating(t.packets, rec.Packets)
	t.bytes = addSaturating(t.bytes, rec.Bytes)
	t.start = min(t.start, rec.Start)
	t.end = max(t.end, rec.End)
	return nil
}

// addrID returns the number of a, numbering it if new.
func (c *Compactor) addrID(a netip.Addr) uint32 {
	k := addrKey{b: a.As16(), family: family(a)}
	if !a.IsValid() {
		k.b = [16]byte{}
	}
	if id, ok := c.addrIDs[k]; ok {
		return id
	}
	id := uint32(len(c.addrs))
	c.addrIDs[k] = id
	c.addrs = append(c.addrs, addrOf(k.b, k.family))
	return id
}

// id returns the number of s ("-" when empty), numbering it if new.
func (c *Compactor) id(s string) uint32 {
	if s == "" {
		s = Missing
	}
	if id, ok := c.ids[s]; ok {
		return id
	}
	id := uint32(len(c.names))
	c.ids[s] = id
	c.names = append(c.names, s)
	return id
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
	flows, names, addrs := &c.flows, c.names, c.addrs
	nameRank, addrRank := c.ranks()
	slices.SortFunc(order, func(a, b uint32) int { return compareEntries(nameRank, addrRank, flows.at(a), flows.at(b)) })
	rec := Record{Version: 2, LogStatus: StatusOK}
	for _, i := range order {
		e := flows.at(i)
		k, t := &e.key, &e.totals
		rec.AccountID = names[k.account]
		rec.InterfaceID = names[k.iface]
		rec.SrcAddr = addrs[k.src]
		rec.DstAddr = addrs[k.dst]
		rec.SrcPort = int(k.srcPort)
		rec.DstPort = int(k.dstPort)
		rec.Protocol = int(k.protocol)
		rec.Packets, rec.Bytes = t.packets, t.bytes
		rec.Start, rec.End = t.start, t.end
		rec.Action = names[k.action]
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
	key    flowKey
	totals flowTotals
}

// ranks returns the place of each name and address number in the order
// of the values they number (strings.Compare, netip.Addr.Compare), so that
// sorting flows compares small integers instead of strings and addresses:
// numbers are distinct values, so their ranks are distinct too.
func (c *Compactor) ranks() (nameRank, addrRank []uint32) {
	return rankOf(c.names, strings.Compare), rankOf(c.addrs, netip.Addr.Compare)
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
