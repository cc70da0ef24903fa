package grapher

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"unicode/utf8"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/flowlog"
)

// ErrInvalidRecord is returned by Writer.Edge for a record whose addresses
// cannot be drawn: invalid (zero) or carrying an IPv6 zone. flowlog.Reader
// never returns such records.
var ErrInvalidRecord = errors.New("record has no drawable addresses")

// writeBufferBytes is the size of the output buffer: large enough that a
// graph is written in few system calls, small enough to keep memory flat.
const writeBufferBytes = 64 << 10

// edgeBytesHint is more than a typical edge and its two node statements
// take; below it, the buffer is flushed before an edge is built in it.
const edgeBytesHint = 1024

// Writer writes one DOT digraph as records arrive: a node statement the first
// time an address is seen, then one edge statement per record. Memory grows
// with the number of distinct addresses only. It is not safe for concurrent
// use.
//
// Node ids are "n" followed by the hex digits of the address bytes: 8 digits
// for an IPv4 address, 32 for an IPv6 address. Distinct addresses therefore
// always get distinct ids, and an IPv4 address never shares an id with its
// IPv4-mapped IPv6 form (10.0.0.1 and ::ffff:10.0.0.1 are drawn as two nodes,
// as they were written in the input), while the ids stay valid unquoted DOT
// identifiers that no DOT keyword can match.
type Writer struct {
	bw *bufio.Writer
	// nodes are the addresses declared, and log the same in order, for
	// the Renders formatting edges on other goroutines (see NewRender).
	nodes addrSet
	log   nodeLog
	edges int64
	// fresh and stmt are drawBatch's buffers.
	fresh []netip.Addr
	stmt  []byte
	// sink, when set, receives each record drawn (see DOT.GraphWithSink).
	sink func(*flowlog.Record) error
}

// NewWriter starts a digraph on w. Nothing reaches w before the buffer fills
// or Close is called.
func NewWriter(w io.Writer) *Writer {
	gw := &Writer{
		bw:    bufio.NewWriterSize(w, writeBufferBytes),
		nodes: newAddrSet(),
	}
	_, _ = gw.bw.WriteString("digraph {\n")
	return gw
}

// Edge draws rec as an edge from its source to its destination address,
// declaring either address first if it is new. It returns ErrInvalidRecord
// (wrapped) for a record with an invalid or zoned address, and the error of
// the underlying writer, which is sticky.
func (w *Writer) Edge(rec *flowlog.Record) error {
	if !drawable(rec.SrcAddr) || !drawable(rec.DstAddr) {
		return fmt.Errorf("grapher: draw edge %v -> %v: %w", rec.SrcAddr, rec.DstAddr, ErrInvalidRecord)
	}
	// The statement is built straight in the writer's free buffer space, so
	// that in the common case nothing is copied or allocated.
	if w.bw.Available() < edgeBytesHint {
		if err := w.bw.Flush(); err != nil {
			return fmt.Errorf("grapher: write graph: %w", err)
		}
	}
	b := w.bw.AvailableBuffer()
	b = w.appendNode(b, rec.SrcAddr)
	b = w.appendNode(b, rec.DstAddr)
	b = appendEdge(b, rec)
	if _, err := w.bw.Write(b); err != nil {
		return fmt.Errorf("grapher: write graph: %w", err)
	}
	w.edges++
	if w.sink != nil {
		return w.sink(rec)
	}
	return nil
}

// appendEdge appends the edge statement of rec, whose addresses are drawable.
func appendEdge(b []byte, rec *flowlog.Record) []byte { return appendEdgeOf(b, rec, nil, 0) }

// Close ends the digraph and flushes it. It does not close the underlying
// writer.
func (w *Writer) Close() error {
	if _, err := w.bw.WriteString("}\n"); err != nil {
		return fmt.Errorf("grapher: write graph: %w", err)
	}
	if err := w.bw.Flush(); err != nil {
		return fmt.Errorf("grapher: write graph: %w", err)
	}
	return nil
}

// Nodes returns the number of distinct addresses drawn so far.
func (w *Writer) Nodes() int64 { return int64(w.nodes.len()) }

// Edges returns the number of edges drawn so far.
func (w *Writer) Edges() int64 { return w.edges }

// attrNames open each edge attribute, in the order consumers of the seed
// expect; each ends the previous attribute's quoted value.
var attrNames = [...]string{
	` [govpc_accountID="`, `" govpc_eniID="`, `" govpc_srcPort="`, `" govpc_dstPort="`,
	`" govpc_protocol="`, `" govpc_packets="`, `" govpc_bytes="`, `" govpc_start="`, `" govpc_end="`,
}

// labelNames name the same values inside the label, joined by a literal \n.
var labelNames = [len(attrNames)]string{
	`accountID=`, `\neniID=`, `\nsrcPort=`, `\ndstPort=`,
	`\nprotocol=`, `\npackets=`, `\nbytes=`, `\nstart=`, `\nend=`,
}

// appendNode appends the node statement for a if it was not seen before.
func (w *Writer) appendNode(b []byte, a netip.Addr) []byte {
	if !w.nodes.add(a) {
		return b
	}
	w.log.add(a)
	return appendNodeStmt(b, a)
}

// appendNodeStmt appends the node statement of a.
func appendNodeStmt(b []byte, a netip.Addr) []byte {
	b = append(b, '\t')
	b = appendNodeID(b, a)
	b = append(b, ` [label="`...)
	b = a.AppendTo(b)
	return append(b, "\"]\n"...)
}

func drawable(a netip.Addr) bool { return a.IsValid() && a.Zone() == "" }

const hexDigits = "0123456789abcdef"

// appendNodeID appends the DOT id of a; see Writer.
func appendNodeID(b []byte, a netip.Addr) []byte {
	b = append(b, 'n')
	if a.Is4() {
		v4 := a.As4()
		for _, c := range v4 {
			b = append(b, hexDigits[c>>4], hexDigits[c&0xf])
		}
		return b
	}
	v6 := a.As16()
	for _, c := range v6 {
		b = append(b, hexDigits[c>>4], hexDigits[c&0xf])
	}
	return b
}

func appendProtocol(b []byte, p int) []byte {
	if p < 0 {
		return append(b, '-')
	}
	return strconv.AppendInt(b, int64(p), 10)
}

// color is green for accepted traffic, red for rejected traffic and gray
// when the record does not say.
func color(action string) string {
	switch action {
	case flowlog.ActionAccept:
		return "green"
	case flowlog.ActionReject:
		return "red"
	default:
		return "gray"
	}
}

// appendEscaped appends s for use inside a quoted DOT string, "-" when empty.
// Quotes and backslashes are escaped, so nothing can end the string early or
// form a Graphviz escape sequence; control characters, invalid UTF-8 and
// U+FFFD (which DOT parsers reject or mangle) become '?', so any input gives
// a graph both Graphviz and gonum accept.
func appendEscaped(b []byte, s string) []byte {
	if s == "" {
		return append(b, '-')
	}
	if plain(s) {
		return append(b, s...)
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20 || c == 0x7f:
				b = append(b, '?')
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError {
			b = append(b, '?')
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return b
}

// plain reports whether s is printable ASCII with no quote or backslash, the
// common case that needs no escaping.
func plain[T string | []byte](s T) bool {
	for i := 0; i < len(s); i++ {
		if escaped[s[i]] {
			return false
		}
	}
	return true
}

// escaped is, by byte, whether a value holding it needs escaping (see
// plain): one load a byte rather than four comparisons.
var escaped = func() (t [256]bool) {
	for c := range t {
		t[c] = c < 0x20 || c >= 0x7f || c == '"' || c == '\\'
	}
	return t
}()
