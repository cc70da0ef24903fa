package flowtable

import (
	"bytes"
	"container/heap"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"net/netip"
	"slices"
	"strings"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/flowlog"
)

// Source yields flow records one at a time; flowlog.Reader, Reader and
// DOTReader all are one. The record may be reused by the next call to Next.
type Source interface {
	Next() bool
	Record() *flowlog.Record
	Err() error
}

// Open opens a graph's records from their start. Aggregate calls it once,
// or twice for the eni and account groupings. The closer is closed when the
// records have been read.
type Open func() (Source, io.Closer, error)

// Limits caps the size of a view; zero means no cap.
type Limits struct {
	MaxNodes, MaxEdges int
}

// TooLargeError is returned by Aggregate for a view over its Limits; the
// message names the count and how to ask for less.
type TooLargeError struct {
	Nodes, Edges, MaxNodes, MaxEdges int
	// Merged is View.Merged of the view that was too large.
	Merged int
	// AtLeast says the aggregation stopped as soon as the view was known
	// to be over its limits: the counts are where it stopped.
	AtLeast bool
}

// Error implements error.
func (e *TooLargeError) Error() string {
	atLeast := ""
	if e.AtLeast {
		atLeast = "at least "
	}
	what := fmt.Sprintf("%s%d nodes, more than the limit of %d", atLeast, e.Nodes, e.MaxNodes)
	if e.MaxEdges > 0 && e.Edges > e.MaxEdges {
		what = fmt.Sprintf("%s%d edges, more than the limit of %d", atLeast, e.Edges, e.MaxEdges)
	}
	return "the view has " + what + "; ask for less: group addresses into networks (group=cidr:24 or cidr:16), " +
		"keep the busiest edges (top=500), or filter (action, protocol, port, addr, src, dst, min_bytes)"
}

// View is an aggregated view of a graph: its nodes in key order and its
// edges in (source, target) order.
type View struct {
	// Params are the parameters the view was made with.
	Params Params
	// RecordsRead counts the graph's records; RecordsUsed those merged into
	// the view's edges.
	RecordsRead, RecordsUsed int64
	// Merged counts the distinct (source, target) pairs the filtered records
	// merged into, before min_bytes and top: what the aggregation held.
	Merged int
	Nodes  []Node
	Edges  []Edge
}

// Node is one node of a view; the sums are over the view's edges.
type Node struct {
	// Key is the address, network, interface or account id; it is also
	// the label.
	Key string
	// Addresses counts the distinct addresses in the node among the records
	// that pass the filters.
	Addresses                                                     int64
	BytesIn, BytesOut, FlowsIn, FlowsOut, RejectedIn, RejectedOut int64
	// X and Y are a deterministic starting position.
	X, Y float64
}

// Edge is every record from one node to another, merged.
type Edge struct {
	// Source and Target index View.Nodes.
	Source, Target                            int
	Flows, Packets, Bytes, Accepted, Rejected int64
	// First is the earliest start, Last the latest end, in unix seconds.
	First, Last int64
	// Ports are the busiest destination ports, busiest first.
	Ports []PortFlows
	// OtherPorts counts the flows to the ports not listed.
	OtherPorts int64
}

// PortFlows is a destination port and the number of flows to it.
type PortFlows struct {
	Port  int
	Flows int64
}

// MaxPorts is how many ports an edge lists.
const MaxPorts = 10

// ctxCheckRecords is how often, in records, Aggregate checks the context.
const ctxCheckRecords = 8192

// Address families of a node key; names (interfaces, accounts) sort last.
const (
	fam4 uint8 = iota
	fam6
	famName
)

// nodeKey identifies a node while aggregating: an IPv4 or IPv6 address or
// network (the masked address; the prefix length is the group's), or the
// index of a name.
type nodeKey struct {
	fam uint8
	a   [16]byte
}

// edgeStat is one merged edge while aggregating: 48 bytes, so a million
// distinct pairs stay well within a small service's memory.
type edgeStat struct {
	// pair is the (source, target) node pair, the edge's key.
	pair                                   uint64
	packets, bytes                         int64
	flows, accepted, rejected, first, last uint32
	// port is the only destination port seen, until multi is set and the
	// ports live in aggregator.ports.
	port  uint16
	multi bool
}

// slabChunk is how many edges one slab chunk holds: growing by chunks
// never copies the edges and wastes at most one chunk.
const slabChunk = 8192

type aggregator struct {
	p      Params
	group  Group
	limits Limits
	// nodes4 maps an IPv4 address or network to its node index plus one.
	nodes4 *table64
	nodesX map[nodeKey]uint32
	keys   []nodeKey
	addrs  []int64
	// seen addresses, for the address counts of grouped nodes
	seen4 *table64
	seen6 map[[16]byte]struct{}
	// own maps an interface's own address to the name it is grouped under
	own   map[netip.Addr]uint32
	names []string

	// slots index the slab by (source, target) pair with open addressing:
	// each holds a slab index plus one, and the pair is in the slab, so a
	// slot is 4 bytes and the lookup's one cache miss is the edge itself.
	slots []uint32
	shift uint
	slab  [][]edgeStat
	n     uint32
	// sketchOf maps the slab index of an edge with several ports to its
	// port sketch's index plus one.
	sketchOf *table64
	sketches []portSketch

	read int64
}

// Aggregate reads the records open yields and returns the view p asks for,
// or a *TooLargeError when it is over limits. Memory grows with the
// distinct nodes and edges, never with the records.
func Aggregate(ctx context.Context, open Open, p Params, limits Limits) (*View, error) {
	a := &aggregator{
		p:        p,
		group:    p.Group,
		limits:   limits,
		nodes4:   newTable64(),
		nodesX:   make(map[nodeKey]uint32),
		slots:    make([]uint32, 1<<minTableBits),
		shift:    64 - minTableBits,
		sketchOf: newTable64(),
	}
	if p.Group.Kind == GroupCIDR || p.Group.Kind == GroupENI || p.Group.Kind == GroupAccount {
		a.seen4 = newTable64()
		a.seen6 = make(map[[16]byte]struct{})
	}
	if p.Group.Kind == GroupENI || p.Group.Kind == GroupAccount {
		if err := a.findOwnAddresses(ctx, open); err != nil {
			return nil, err
		}
	}
	if err := each(ctx, open, a.add); err != nil {
		return nil, err
	}
	return a.view(limits)
}

// each calls fn with every record open yields, checking ctx as it goes,
// and stops at the first error fn returns.
func each(ctx context.Context, open Open, fn func(*flowlog.Record) error) (err error) {
	src, closer, err := open()
	if err != nil {
		return err
	}
	defer func() {
		if cerr := closer.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("flowtable: close records: %w", cerr)
		}
	}()
	for n := 1; src.Next(); n++ {
		if err := fn(src.Record()); err != nil {
			return err
		}
		if n%ctxCheckRecords == 0 {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("flowtable: %w", err)
			}
		}
	}
	if err := src.Err(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("flowtable: %w", err)
	}
	return nil
}

// keep reports whether rec passes the record filters.
func (a *aggregator) keep(rec *flowlog.Record) bool {
	p := &a.p
	if p.Accept || p.Reject {
		if !(p.Accept && rec.Action == flowlog.ActionAccept) && !(p.Reject && rec.Action == flowlog.ActionReject) {
			return false
		}
	}
	if len(p.Protocols) > 0 && !slices.Contains(p.Protocols, rec.Protocol) {
		return false
	}
	if len(p.Ports) > 0 && !inPorts(p.Ports, rec.DstPort) {
		return false
	}
	if len(p.Addrs) > 0 && !inPrefixes(p.Addrs, rec.SrcAddr) && !inPrefixes(p.Addrs, rec.DstAddr) {
		return false
	}
	if len(p.Srcs) > 0 && !inPrefixes(p.Srcs, rec.SrcAddr) {
		return false
	}
	if len(p.Dsts) > 0 && !inPrefixes(p.Dsts, rec.DstAddr) {
		return false
	}
	return true
}

func inPorts(l []PortRange, port int) bool {
	for _, r := range l {
		if port >= r.Lo && port <= r.Hi {
			return true
		}
	}
	return false
}

func inPrefixes(l []netip.Prefix, a netip.Addr) bool {
	for _, p := range l {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func (a *aggregator) add(rec *flowlog.Record) error {
	a.read++
	if !a.keep(rec) {
		return nil
	}
	s, d := a.node(rec.SrcAddr), a.node(rec.DstAddr)
	e, i := a.edge(uint64(s)<<32 | uint64(d))
	if e == nil {
		return errTooManyPairs
	}
	if err := a.overLimits(); err != nil {
		return err
	}
	first, last := clampTime(rec.Start), clampTime(rec.End)
	port := uint16(rec.DstPort)
	switch {
	case e.flows == 0:
		e.first, e.last, e.port = first, last, port
	case !e.multi && e.port != port:
		e.multi = true
		a.sketches = append(a.sketches, portSketch{})
		*a.sketchOf.ref(uint64(i)) = uint32(len(a.sketches))
		a.sketches[len(a.sketches)-1].add(e.port, e.flows)
		fallthrough
	default:
		e.first = min(e.first, first)
		e.last = max(e.last, last)
	}
	if e.multi {
		a.sketches[a.sketchOf.get(uint64(i))-1].add(port, 1)
	}
	e.flows++
	e.packets = addCapped(e.packets, rec.Packets)
	e.bytes = addCapped(e.bytes, rec.Bytes)
	switch rec.Action {
	case flowlog.ActionAccept:
		e.accepted++
	case flowlog.ActionReject:
		e.rejected++
	}
	return nil
}

// overLimits stops a view that is already over its limits: without top and
// min_bytes every merged pair is one of its edges and every node touches
// one, so the counts so far only grow.
func (a *aggregator) overLimits() error {
	if a.p.Top > 0 || a.p.MinBytes > 0 {
		return nil
	}
	l := a.limits
	if (l.MaxEdges > 0 && int(a.n) > l.MaxEdges) || (l.MaxNodes > 0 && len(a.keys) > l.MaxNodes) {
		return &TooLargeError{Nodes: len(a.keys), Edges: int(a.n), MaxNodes: l.MaxNodes, MaxEdges: l.MaxEdges, Merged: int(a.n), AtLeast: true}
	}
	return nil
}

// addCapped is a+b for counts of at least 0, at most math.MaxInt64: a flow
// log may claim a record of 2^63-1 bytes, and two of them would wrap round
// to a negative sum, ranking their edge last by top.
func addCapped(a, b int64) int64 {
	if b > math.MaxInt64-a {
		return math.MaxInt64
	}
	return a + b
}

// clampTime keeps a unix time in the uint32 an edge holds (until 2106).
func clampTime(t int64) uint32 {
	return uint32(min(max(t, 0), 1<<32-1))
}

// node returns the index of the node addr falls in, adding it when new.
func (a *aggregator) node(addr netip.Addr) uint32 {
	if a.own != nil {
		if name, ok := a.own[addr]; ok {
			var k nodeKey
			k.fam = famName
			binary.BigEndian.PutUint32(k.a[:], name)
			return a.nodeX(k, addr)
		}
	}
	if addr.Is4() {
		b := addr.As4()
		v := binary.BigEndian.Uint32(b[:])
		if a.group.Kind == GroupCIDR {
			v &= ^uint32(0) << (32 - a.group.Bits4) // a shift by 32 is 0 for /0
		}
		ref := a.nodes4.ref(uint64(v))
		if *ref == 0 {
			*ref = a.newNode(nodeKey{fam: fam4, a: [16]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}}) + 1
		}
		i := *ref - 1
		a.count(i, addr)
		return i
	}
	k := nodeKey{fam: fam6, a: addr.As16()}
	if a.group.Kind == GroupCIDR {
		k.a = netip.PrefixFrom(netip.AddrFrom16(k.a), a.group.Bits6).Masked().Addr().As16()
	}
	return a.nodeX(k, addr)
}

func (a *aggregator) nodeX(k nodeKey, addr netip.Addr) uint32 {
	i, ok := a.nodesX[k]
	if !ok {
		i = a.newNode(k)
		a.nodesX[k] = i
	}
	a.count(i, addr)
	return i
}

func (a *aggregator) newNode(k nodeKey) uint32 {
	a.keys = append(a.keys, k)
	n := int64(0)
	if a.seen4 == nil {
		n = 1 // one address per node
	}
	a.addrs = append(a.addrs, n)
	return uint32(len(a.keys) - 1)
}

// count counts addr in node i the first time it is seen.
func (a *aggregator) count(i uint32, addr netip.Addr) {
	if a.seen4 == nil {
		return
	}
	if addr.Is4() {
		b := addr.As4()
		seen := a.seen4.ref(uint64(binary.BigEndian.Uint32(b[:])))
		if *seen != 0 {
			return
		}
		*seen = 1
	} else {
		v := addr.As16()
		if _, ok := a.seen6[v]; ok {
			return
		}
		a.seen6[v] = struct{}{}
	}
	a.addrs[i]++
}

// findOwnAddresses is the first pass of the eni and account groupings: the
// own address of an interface is the one in every one of its records.
func (a *aggregator) findOwnAddresses(ctx context.Context, open Open) error {
	type candidates struct {
		x, y    netip.Addr
		account string
	}
	enis := make(map[string]*candidates)
	err := each(ctx, open, func(rec *flowlog.Record) error {
		if rec.InterfaceID == flowlog.Missing || rec.InterfaceID == "" {
			return nil
		}
		c, ok := enis[rec.InterfaceID]
		if !ok {
			enis[strings.Clone(rec.InterfaceID)] = &candidates{x: rec.SrcAddr, y: rec.DstAddr, account: strings.Clone(rec.AccountID)}
			return nil
		}
		if c.x != rec.SrcAddr && c.x != rec.DstAddr {
			c.x = netip.Addr{}
		}
		if c.y != rec.SrcAddr && c.y != rec.DstAddr {
			c.y = netip.Addr{}
		}
		return nil
	})
	if err != nil {
		return err
	}
	ids := make([]string, 0, len(enis))
	for id := range enis {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	a.own = make(map[netip.Addr]uint32)
	nameIdx := make(map[string]uint32)
	for _, id := range ids {
		c := enis[id]
		own := c.x
		switch {
		case c.x.IsValid() && c.y.IsValid() && c.y.IsPrivate() && !c.x.IsPrivate():
			own = c.y
		case !c.x.IsValid():
			own = c.y
		}
		name := id
		if a.group.Kind == GroupAccount {
			name = c.account
		}
		if !own.IsValid() || name == flowlog.Missing || name == "" {
			continue
		}
		if _, taken := a.own[own]; taken {
			continue
		}
		idx, ok := nameIdx[name]
		if !ok {
			idx = uint32(len(a.names))
			a.names = append(a.names, name)
			nameIdx[name] = idx
		}
		a.own[own] = idx
	}
	return nil
}

func (a *aggregator) stat(i uint32) *edgeStat { return &a.slab[i/slabChunk][i%slabChunk] }

// maxEdges is the most distinct pairs one aggregation holds: a slot keeps
// a 24-bit index.
const maxEdges = 1<<24 - 1

// errTooManyPairs stops an aggregation past maxEdges.
var errTooManyPairs = &TooLargeError{Edges: maxEdges + 1, MaxEdges: maxEdges, Merged: maxEdges}

// slot packs an 8-bit fingerprint of the pair and the slab index plus one.
func slotFingerprint(pair uint64) uint32 {
	return uint32(((pair ^ pair>>29) * 0xbf58476d1ce4e5b9) >> 56)
}

// edge returns the edge of pair and its slab index, adding it when new, or
// nil past maxEdges. A probe reads the slab (a cache miss) only when the
// slot's fingerprint matches, one time in 256 for another pair.
func (a *aggregator) edge(pair uint64) (*edgeStat, uint32) {
	if 4*(int(a.n)+1) > 3*len(a.slots) {
		a.growSlots()
	}
	fp := slotFingerprint(pair) << 24
	mask := len(a.slots) - 1
	for j := int((pair * 0x9e3779b97f4a7c15) >> a.shift); ; j = (j + 1) & mask {
		slot := a.slots[j]
		if slot == 0 {
			if a.n >= maxEdges {
				return nil, 0
			}
			i := a.n
			if int(i/slabChunk) == len(a.slab) {
				a.slab = append(a.slab, make([]edgeStat, slabChunk))
			}
			a.n++
			a.slots[j] = fp | a.n
			e := a.stat(i)
			e.pair = pair
			return e, i
		}
		if slot&0xff000000 == fp {
			if i := slot&0xffffff - 1; a.stat(i).pair == pair {
				return a.stat(i), i
			}
		}
	}
}

// growSlots doubles the edge index, re-placing every edge: the slab is read
// in order, so this costs no cache misses of its own.
func (a *aggregator) growSlots() {
	a.slots = make([]uint32, 2*len(a.slots))
	a.shift--
	mask := len(a.slots) - 1
	for i := range a.n {
		pair := a.stat(i).pair
		j := int((pair * 0x9e3779b97f4a7c15) >> a.shift)
		for a.slots[j] != 0 {
			j = (j + 1) & mask
		}
		a.slots[j] = slotFingerprint(pair)<<24 | (i + 1)
	}
}

// compareKeys orders node keys: IPv4, IPv6, then names, each in order.
func (a *aggregator) compareKeys(x, y uint32) int {
	kx, ky := &a.keys[x], &a.keys[y]
	if kx.fam != ky.fam {
		return int(kx.fam) - int(ky.fam)
	}
	if kx.fam == famName {
		return strings.Compare(a.names[binary.BigEndian.Uint32(kx.a[:])], a.names[binary.BigEndian.Uint32(ky.a[:])])
	}
	return bytes.Compare(kx.a[:], ky.a[:])
}

// ranked is an edge kept for the view: its pair and slab index.
type ranked struct {
	pair uint64
	i    uint32
}

// rankHeap is a min-heap of the busiest edges found so far: its root is the
// edge the next busier one replaces.
type rankHeap struct {
	a *aggregator
	l []ranked
}

func (h *rankHeap) Len() int           { return len(h.l) }
func (h *rankHeap) Less(i, j int) bool { return h.a.busier(h.l[j], h.l[i]) }
func (h *rankHeap) Swap(i, j int)      { h.l[i], h.l[j] = h.l[j], h.l[i] }
func (h *rankHeap) Push(x any)         { h.l = append(h.l, x.(ranked)) }
func (h *rankHeap) Pop() any {
	x := h.l[len(h.l)-1]
	h.l = h.l[:len(h.l)-1]
	return x
}

// busier orders edges by bytes, then by source and target key, so top is
// deterministic.
func (a *aggregator) busier(x, y ranked) bool {
	bx, by := a.stat(x.i).bytes, a.stat(y.i).bytes
	if bx != by {
		return bx > by
	}
	if c := a.compareKeys(uint32(x.pair>>32), uint32(y.pair>>32)); c != 0 {
		return c < 0
	}
	return a.compareKeys(uint32(x.pair), uint32(y.pair)) < 0
}

// view picks the edges the view keeps and builds it.
func (a *aggregator) view(limits Limits) (*View, error) {
	var kept []ranked
	if a.p.Top > 0 {
		h := &rankHeap{a: a}
		for i := range a.n {
			r := ranked{pair: a.stat(i).pair, i: i}
			switch {
			case a.stat(r.i).bytes < a.p.MinBytes:
			case h.Len() < a.p.Top:
				heap.Push(h, r)
			case a.busier(r, h.l[0]):
				h.l[0] = r
				heap.Fix(h, 0)
			}
		}
		kept = h.l
	} else {
		// Count first: a view over the edge cap is refused without a list
		// of all its edges.
		n := 0
		for i := range a.n {
			if a.stat(i).bytes >= a.p.MinBytes {
				n++
			}
		}
		if limits.MaxEdges > 0 && n > limits.MaxEdges {
			return nil, &TooLargeError{Nodes: a.touched(), Edges: n, MaxNodes: limits.MaxNodes, MaxEdges: limits.MaxEdges, Merged: int(a.n)}
		}
		kept = make([]ranked, 0, n)
		for i := range a.n {
			if e := a.stat(i); e.bytes >= a.p.MinBytes {
				kept = append(kept, ranked{pair: e.pair, i: i})
			}
		}
	}
	used := make(map[uint32]int)
	for _, r := range kept {
		used[uint32(r.pair>>32)] = 0
		used[uint32(r.pair)] = 0
	}
	if (limits.MaxEdges > 0 && len(kept) > limits.MaxEdges) || (limits.MaxNodes > 0 && len(used) > limits.MaxNodes) {
		return nil, &TooLargeError{Nodes: len(used), Edges: len(kept), MaxNodes: limits.MaxNodes, MaxEdges: limits.MaxEdges, Merged: int(a.n)}
	}

	order := make([]uint32, 0, len(used))
	for n := range used {
		order = append(order, n)
	}
	slices.SortFunc(order, a.compareKeys)
	v := &View{Params: a.p, RecordsRead: a.read, Merged: int(a.n), Nodes: make([]Node, len(order)), Edges: make([]Edge, len(kept))}
	for vi, n := range order {
		used[n] = vi
		v.Nodes[vi] = Node{Key: a.keyString(n), Addresses: a.addrs[n]}
	}
	slices.SortFunc(kept, func(x, y ranked) int {
		if c := used[uint32(x.pair>>32)] - used[uint32(y.pair>>32)]; c != 0 {
			return c
		}
		return used[uint32(x.pair)] - used[uint32(y.pair)]
	})
	for ei, r := range kept {
		s := a.stat(r.i)
		e := Edge{
			Source: used[uint32(r.pair>>32)], Target: used[uint32(r.pair)],
			Flows: int64(s.flows), Packets: s.packets, Bytes: s.bytes,
			Accepted: int64(s.accepted), Rejected: int64(s.rejected),
			First: int64(s.first), Last: int64(s.last),
		}
		if s.multi {
			e.Ports, e.OtherPorts = a.sketches[a.sketchOf.get(uint64(r.i))-1].top(int64(s.flows))
		} else {
			e.Ports = []PortFlows{{Port: int(s.port), Flows: int64(s.flows)}}
		}
		v.Edges[ei] = e
		v.RecordsUsed += e.Flows
		src, dst := &v.Nodes[e.Source], &v.Nodes[e.Target]
		src.BytesOut = addCapped(src.BytesOut, e.Bytes)
		src.FlowsOut += e.Flows
		src.RejectedOut += e.Rejected
		dst.BytesIn = addCapped(dst.BytesIn, e.Bytes)
		dst.FlowsIn += e.Flows
		dst.RejectedIn += e.Rejected
	}
	layout(v)
	return v, nil
}

// touched counts the nodes the edges with at least MinBytes touch.
func (a *aggregator) touched() int {
	seen := make([]bool, len(a.keys))
	n := 0
	for i := range a.n {
		e := a.stat(i)
		if e.bytes < a.p.MinBytes {
			continue
		}
		for _, node := range [2]uint32{uint32(e.pair >> 32), uint32(e.pair)} {
			if !seen[node] {
				seen[node] = true
				n++
			}
		}
	}
	return n
}

// keyString is the key and label of node n.
func (a *aggregator) keyString(n uint32) string {
	k := a.keys[n]
	switch k.fam {
	case famName:
		return a.names[binary.BigEndian.Uint32(k.a[:])]
	case fam4:
		addr := netip.AddrFrom4([4]byte(k.a[:4]))
		if a.group.Kind == GroupCIDR {
			return netip.PrefixFrom(addr, a.group.Bits4).String()
		}
		return addr.String()
	default:
		addr := netip.AddrFrom16(k.a)
		if a.group.Kind == GroupCIDR {
			return netip.PrefixFrom(addr, a.group.Bits6).String()
		}
		return addr.String()
	}
}
