package grapher

import (
	"net/netip"
	"slices"
	"unsafe"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/flowlog"
)

// An edge statement is some forty pieces, most a few bytes long; copying
// each with append costs a call, a capacity check and a variable-length
// copy. appendFastEdge instead writes every piece as whole blocks of
// fixed size into room reserved once, each piece over the bytes the block
// before it copied past its end, so that a piece costs one or two plain
// moves. The result is byte for byte appendBatchEdge's.

// block is the size of the blocks values are copied in.
const block = 16

// maxFastValue is the longest account or interface id appendFastEdge
// writes; longer ones (which AWS never writes) take appendBatchEdge.
const maxFastValue = 64

// fastEdgeBytes is more than the longest statement appendFastEdge writes
// (about 750 bytes) with the last block's overshoot, so that a chunk's
// text sized for its lines and this much more is never grown.
const fastEdgeBytes = 1024

// edgeFixedBytes is the most an edge statement takes besides its values:
// its constant pieces and two IPv6 node ids.
var edgeFixedBytes = func() int {
	n := pieceStart.n + 32 + pieceArrow.n + 32 + pieceEnd.n
	for k := range attrPieces {
		n += attrPieces[k].n + labelPieces[k].n
	}
	return n + max(colorPieces[0].n, colorPieces[1].n, colorPieces[2].n)
}()

// piece is a constant part of the statement, padded to a whole copy of
// two blocks, and shortPiece one of a block.
type (
	piece struct {
		b [2 * block]byte
		n int
	}
	shortPiece struct {
		b [block]byte
		n int
	}
)

func newPiece(s string) piece {
	if len(s) > len(piece{}.b) {
		panic("grapher: piece too long: " + s)
	}
	var p piece
	p.n = copy(p.b[:], s)
	return p
}

func newShortPiece(s string) shortPiece {
	if len(s) > len(shortPiece{}.b) {
		panic("grapher: piece too long: " + s)
	}
	var p shortPiece
	p.n = copy(p.b[:], s)
	return p
}

var (
	pieceStart = newShortPiece("\tn")
	pieceArrow = newShortPiece(" -> n")
	pieceEnd   = newShortPiece("\"]\n")
	attrPieces = func() (ps [len(attrNames)]piece) {
		for i, s := range attrNames {
			ps[i] = newPiece(s)
		}
		return ps
	}()
	labelPieces = func() (ps [len(labelNames)]shortPiece) {
		for i, s := range labelNames {
			ps[i] = newShortPiece(s)
		}
		return ps
	}()
	// colorPieces end the attributes and open the label, for each
	// color: accept, reject and neither.
	colorPieces = [3]piece{
		newPiece(`" color="green" label="`),
		newPiece(`" color="red" label="`),
		newPiece(`" color="gray" label="`),
	}
)

// hexPairs are the two hex digits of each byte.
var hexPairs = func() (t [256][2]byte) {
	for i := range t {
		t[i] = [2]byte{hexDigits[i>>4], hexDigits[i&0xf]}
	}
	return t
}()

// appendFastEdge appends the edge statement of record i of batch as
// appendBatchEdge does, and false, having appended nothing, for a record
// it leaves to appendBatchEdge: one with an id that needs escaping or is over maxFastValue bytes, or text too near the end of its
// chunk to be copied in whole blocks.
func appendFastEdge(b []byte, batch *flowlog.Batch, i int) ([]byte, bool) {
	rec := &batch.Records[i]
	var vals [len(attrNames)][]byte
	var lens [len(attrNames)]int
	var formatted [len(attrNames)][2 * block]byte
	for k := range vals {
		t, n, ok := batch.RawPadded(i, k, block)
		if !ok {
			return b, false
		}
		switch {
		case k < 2:
			if n > maxFastValue || !plain(t[:n]) {
				return b, false
			}
		case !canonical(t[:n]):
			f := appendNumber(formatted[k][:0], rec, k)
			t, n = formatted[k][:], len(f)
		}
		vals[k], lens[k] = t, n
	}
	return putEdge(b, rec.SrcAddr, rec.DstAddr, rec.Action, &vals, &lens), true
}

// appendLineEdge is appendFastEdge for a line the Reader read with the
// fast parse and made no record of. It copies the values straight from
// the line's text, which holds them in order. It returns false, having
// appended nothing, for a line it leaves to appendEdge: one with an id
// that needs escaping or is over maxFastValue bytes, a number with a
// leading zero (which AWS never writes), or text too near the end of its
// chunk to be copied in whole blocks.
func appendLineEdge(b []byte, l *flowlog.Line) ([]byte, bool) {
	text := l.Text()
	// Every value ends before the last begins, so when the last can be
	// copied in whole blocks, every value can.
	endOff, endN := l.Span(flowlog.RawEnd)
	valuesEnd := endOff + endN
	if endOff+(endN+block-1)/block*block > cap(text) {
		return b, false
	}
	// The two ids, and the space between them, need no escaping.
	acctOff, acctN := l.Span(flowlog.RawAccountID)
	ifaceOff, ifaceN := l.Span(flowlog.RawInterfaceID)
	if acctN > maxFastValue || ifaceN > maxFastValue || !plain(text[acctOff:ifaceOff+ifaceN]) {
		return b, false
	}
	// The fast parse reads numbers of digits only: each is as strconv
	// writes it unless it has a leading zero.
	for k := flowlog.RawSrcPort; k <= flowlog.RawEnd; k++ {
		if off, n := l.Span(k); n > 1 && text[off] == '0' {
			return b, false
		}
	}
	color := colorPiece(l.Action)
	// As in putEdge, the writes go through pointers, after one check of
	// the room: the values take at most valuesEnd bytes and are each
	// written twice, the constant pieces and ids at most edgeFixedBytes,
	// and the last write's block at most a piece's past its end.
	b = slices.Grow(b, edgeFixedBytes+len(piece{}.b)+2*valuesEnd)
	buf, src := b[:cap(b)], text[:cap(text)]
	n := len(b)
	n = putShortPiece(buf, n, &pieceStart)
	n = putID(buf, n, l.SrcAddr)
	n = putShortPiece(buf, n, &pieceArrow)
	n = putID(buf, n, l.DstAddr)
	for k := range attrPieces {
		off, vn := l.Span(k)
		n = putPiece(buf, n, &attrPieces[k])
		n = putBlocks(buf, n, src[off:], vn)
	}
	n = putPiece(buf, n, &colorPieces[color])
	for k := range labelPieces {
		off, vn := l.Span(k)
		n = putShortPiece(buf, n, &labelPieces[k])
		n = putBlocks(buf, n, src[off:], vn)
	}
	n = putShortPiece(buf, n, &pieceEnd)
	return buf[:n], true
}

// putEdge appends the edge statement from src to dst with the values
// vals, the first lens[k] bytes of each, which hold as many bytes again
// rounded up to a block.
func putEdge(b []byte, src, dst netip.Addr, action string, vals *[len(attrNames)][]byte, lens *[len(attrNames)]int) []byte {
	color := colorPiece(action)

	// The writes below go through pointers, with no bounds check each:
	// a piece's at n writes at most its block past n, a value's at most
	// its length rounded up to a block, and n ends at most edgeFixedBytes
	// and twice the values' length after where it starts. That much room
	// and a piece's block are made sure of here, and that each value's
	// text holds its length rounded up.
	need := edgeFixedBytes + len(piece{}.b)
	for k := range vals {
		if len(vals[k]) < (lens[k]+block-1)/block*block {
			panic("grapher: value text shorter than its blocks")
		}
		need += 2 * lens[k]
	}
	b = slices.Grow(b, need)
	buf := b[:cap(b)]
	n := len(b)
	n = putShortPiece(buf, n, &pieceStart)
	n = putID(buf, n, src)
	n = putShortPiece(buf, n, &pieceArrow)
	n = putID(buf, n, dst)
	for k := range vals {
		n = putPiece(buf, n, &attrPieces[k])
		n = putBlocks(buf, n, vals[k], lens[k])
	}
	n = putPiece(buf, n, &colorPieces[color])
	// The label repeats the values, copied again from where they were
	// read rather than from where they were just written, which measured
	// faster.
	for k := range vals {
		n = putShortPiece(buf, n, &labelPieces[k])
		n = putBlocks(buf, n, vals[k], lens[k])
	}
	n = putShortPiece(buf, n, &pieceEnd)
	return buf[:n]
}

// colorPiece is the index in colorPieces of an edge's color for action.
func colorPiece(action string) int {
	switch action {
	case flowlog.ActionAccept:
		return 0
	case flowlog.ActionReject:
		return 1
	}
	return 2
}

// putPiece writes p at buf[n:] and returns the index after it; buf holds
// its whole block there.
func putPiece(buf []byte, n int, p *piece) int {
	*(*[len(piece{}.b)]byte)(at(buf, n)) = p.b
	return n + p.n
}

// at is the address of buf[n], with no bounds check: putEdge makes sure
// of the room its writes need.
func at(buf []byte, n int) unsafe.Pointer {
	return unsafe.Add(unsafe.Pointer(unsafe.SliceData(buf)), n)
}

// putShortPiece writes p at buf[n:] and returns the index after it.
func putShortPiece(buf []byte, n int, p *shortPiece) int {
	*(*[len(shortPiece{}.b)]byte)(at(buf, n)) = p.b
	return n + p.n
}

// putBlocks writes the first l bytes of src at buf[n:], in whole blocks,
// and returns the index after them; src holds l bytes rounded up to a
// block, and buf as many after n.
func putBlocks(buf []byte, n int, src []byte, l int) int {
	for k := 0; k < l; k += block {
		*(*[block]byte)(at(buf, n+k)) = *(*[block]byte)(at(src, k))
	}
	return n + l
}

// putID writes the hex digits of a, as appendNodeID does after its "n".
func putID(buf []byte, n int, a netip.Addr) int {
	if a.Is4() {
		v := a.As4()
		d := (*[8]byte)(buf[n:])
		d[0], d[1] = hexPairs[v[0]][0], hexPairs[v[0]][1]
		d[2], d[3] = hexPairs[v[1]][0], hexPairs[v[1]][1]
		d[4], d[5] = hexPairs[v[2]][0], hexPairs[v[2]][1]
		d[6], d[7] = hexPairs[v[3]][0], hexPairs[v[3]][1]
		return n + 8
	}
	v := a.As16()
	d := (*[32]byte)(buf[n:])
	for k, c := range v {
		d[2*k], d[2*k+1] = hexPairs[c][0], hexPairs[c][1]
	}
	return n + 32
}
