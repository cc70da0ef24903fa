package grapher

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"sync"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/flowlog"
)

// A Reader with workers formats the edges of each chunk of records on the
// worker that parsed it (see Writer.NewRender), so that the costliest part
// of a graph runs on every core. The Writer then only declares the new
// addresses and writes the formatted text in long runs, in input order:
// the output is byte for byte what Edge writes record by record.

// textPerInput is about how many bytes of DOT a byte of digest makes.
const textPerInput = 5

// edgeText is what a worker formatted for one chunk's records.
type edgeText struct {
	w *Writer // the Writer whose Render made it
	// text is the edge statements of the chunk's first drawn records.
	text []byte
	// news are the addresses that may not be declared yet, each with the
	// offset in text of an edge that uses it, in the order they must be
	// declared; drawBatch declares each at its first.
	news []newAddr
	// drawn is the number of records formatted: all of them, unless one
	// cannot be drawn.
	drawn int
	// byLine says a LineRender made it, keeping no record; undrawable is
	// then the record that stopped it, when one did.
	byLine     bool
	undrawable *flowlog.Record
}

// size makes sure et.text has room for the edges of b's records.
func (et *edgeText) size(b *flowlog.Batch) {
	if want := textPerInput*b.Len() + fastEdgeBytes; cap(et.text) < want {
		// Sized once, since chunks are reused, rather than grown by
		// doubling (and garbage) in every chunk: with room for an
		// eighth more, so that the next chunk, a few lines longer or
		// shorter, fits too.
		et.text = make([]byte, 0, want+want/8)
	}
}

type newAddr struct {
	at   int
	addr netip.Addr
}

// nodeLog is the addresses the Writer declared, in order. Workers read it
// to learn which addresses are declared before the chunk they format:
// chunks are drawn in input order, so an address the log holds when a
// worker starts a chunk is declared before that chunk's first edge.
type nodeLog struct {
	mu    sync.Mutex
	addrs []netip.Addr
}

// since returns the addresses logged after the first n. Logged entries are
// never written again, so they can be read after the lock is released.
func (l *nodeLog) since(n int) []netip.Addr {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.addrs[n:]
}

func (l *nodeLog) add(a netip.Addr) {
	l.mu.Lock()
	l.addrs = append(l.addrs, a)
	l.mu.Unlock()
}

func (l *nodeLog) append(addrs []netip.Addr) {
	if len(addrs) == 0 {
		return
	}
	l.mu.Lock()
	l.addrs = append(l.addrs, addrs...)
	l.mu.Unlock()
}

// NewRender returns a flowlog.Render that formats the edges of each chunk
// on the goroutine that parsed it, for Copy to write; pass it to the
// Reader with flowlog.WithRender(w.NewRender). Each Render keeps a copy of
// the addresses the Writer declared (see declared), so that after the
// first chunks almost none is looked up by the Writer.
func (w *Writer) NewRender() flowlog.Render {
	var known declared
	return func(b *flowlog.Batch) {
		recs := b.Records
		et, _ := b.Out.(*edgeText)
		if et == nil {
			et = &edgeText{w: w}
			b.Out = et
		}
		et.text, et.news, et.drawn = et.text[:0], et.news[:0], len(recs)
		et.size(b)
		known.catchUp(w)
		for i := range recs {
			rec := &recs[i]
			if !drawable(rec.SrcAddr) || !drawable(rec.DstAddr) {
				et.drawn = i
				break
			}
			known.note(et, rec.SrcAddr, rec.DstAddr)
			var fast bool
			if et.text, fast = appendFastEdge(et.text, b, i); !fast {
				et.text = appendBatchEdge(et.text, b, i)
			}
		}
	}
}

// declared is what a Render knows of the addresses the Writer declared:
// those it had logged when the Render began its chunk. An address not
// among them is noted at each edge that uses it, and the Writer declares
// it at the first and passes over the others; an address learnt from
// the chunk itself is not trusted, since a chunk a worker parsed with a
// format a header line had changed is parsed and drawn again by the
// Reader, and its addresses may never be drawn at all.
type declared struct {
	set    addrSet
	logged int
}

// catchUp learns the addresses w declared since the last call.
func (d *declared) catchUp(w *Writer) {
	if d.set.v4 == nil {
		d.set = newAddrSet()
	}
	fresh := w.log.since(d.logged)
	d.logged += len(fresh)
	for _, a := range fresh {
		d.set.add(a)
	}
}

// note notes in et the addresses of the edge about to be formatted that
// may not be declared by the time et is drawn.
func (d *declared) note(et *edgeText, src, dst netip.Addr) {
	at := len(et.text)
	if !d.set.has(src) {
		et.news = append(et.news, newAddr{at, src})
	}
	if !d.set.has(dst) {
		et.news = append(et.news, newAddr{at, dst})
	}
}

// NewLineRender returns a flowlog.LineRender that formats the edges of
// each chunk as its lines are parsed, on the goroutine parsing them, for
// Copy to write; pass it to the Reader with
// flowlog.WithLineRender(w.NewLineRender). It is NewRender for a Writer
// with no sink: the Reader keeps no record, and a line in the digest's
// usual shape is never made into one.
func (w *Writer) NewLineRender() flowlog.LineRender {
	return &lineRender{w: w}
}

// lineRender is the LineRender of NewLineRender.
type lineRender struct {
	w     *Writer
	known declared
	et    *edgeText      // the chunk being formatted
	rec   flowlog.Record // a Line appendLineEdge leaves, as a record
}

func (r *lineRender) Start(b *flowlog.Batch) {
	et, _ := b.Out.(*edgeText)
	if et == nil {
		et = &edgeText{w: r.w, byLine: true}
		b.Out = et
	}
	et.text, et.news, et.drawn, et.undrawable = et.text[:0], et.news[:0], 0, nil
	et.size(b)
	r.known.catchUp(r.w)
	r.et = et
}

func (r *lineRender) Line(l *flowlog.Line) {
	et := r.et
	if et.undrawable != nil {
		return
	}
	r.known.note(et, l.SrcAddr, l.DstAddr)
	var fast bool
	if et.text, fast = appendLineEdge(et.text, l); !fast {
		l.Record(&r.rec)
		et.text = appendEdge(et.text, &r.rec)
	}
	et.drawn++
}

func (r *lineRender) Record(rec *flowlog.Record) {
	et := r.et
	if et.undrawable != nil {
		return
	}
	if !drawable(rec.SrcAddr) || !drawable(rec.DstAddr) {
		// flowlog.Reader never returns such a record; drawBatch says
		// what Edge says of it.
		et.undrawable = new(flowlog.Record)
		*et.undrawable = *rec
		return
	}
	r.known.note(et, rec.SrcAddr, rec.DstAddr)
	et.text = appendEdge(et.text, rec)
	et.drawn++
}

// drawBatch draws the records of one chunk, formatted by a Render of w
// as et: it declares the addresses that are new, in order, and writes the
// text between them as it is.
func (w *Writer) drawBatch(recs []flowlog.Record, et *edgeText) error {
	pos := 0
	fresh := w.fresh[:0]
	for _, n := range et.news {
		if !w.nodes.add(n.addr) {
			continue
		}
		if _, err := w.bw.Write(et.text[pos:n.at]); err != nil {
			return fmt.Errorf("grapher: write graph: %w", err)
		}
		pos = n.at
		w.stmt = appendNodeStmt(w.stmt[:0], n.addr)
		if _, err := w.bw.Write(w.stmt); err != nil {
			return fmt.Errorf("grapher: write graph: %w", err)
		}
		fresh = append(fresh, n.addr)
	}
	w.fresh = fresh
	w.log.append(fresh)
	if _, err := w.bw.Write(et.text[pos:]); err != nil {
		return fmt.Errorf("grapher: write graph: %w", err)
	}
	w.edges += int64(et.drawn)
	if et.byLine {
		if w.sink != nil {
			return errors.New("grapher: a Writer with a sink needs the records a LineRender does not keep")
		}
		if et.undrawable != nil {
			return w.Edge(et.undrawable)
		}
		return nil
	}
	if w.sink != nil {
		for i := range recs[:et.drawn] {
			if err := w.sink(&recs[i]); err != nil {
				return err
			}
		}
	}
	if et.drawn < len(recs) {
		// What Edge says of the record that cannot be drawn.
		return w.Edge(&recs[et.drawn])
	}
	return nil
}

// appendBatchEdge appends the edge statement of record i of batch, as
// appendEdge does, copying each number from the text it was read from
// when that text is how the number is written.
func appendBatchEdge(b []byte, batch *flowlog.Batch, i int) []byte {
	return appendEdgeOf(b, &batch.Records[i], batch, i)
}

// appendEdgeOf appends the edge statement of rec, record i of batch when
// batch is not nil, formatting its numbers or, from a batch, copying them.
func appendEdgeOf(b []byte, rec *flowlog.Record, batch *flowlog.Batch, i int) []byte {
	b = append(b, '\t')
	b = appendNodeID(b, rec.SrcAddr)
	b = append(b, " -> "...)
	b = appendNodeID(b, rec.DstAddr)

	// Each value is written once into the attributes; the label repeats
	// the same bytes, copied from where they were written.
	var spans [len(attrNames)][2]int
	for k, name := range attrNames {
		b = append(b, name...)
		spans[k][0] = len(b)
		switch k {
		case 0:
			b = appendEscaped(b, rec.AccountID)
		case 1:
			b = appendEscaped(b, rec.InterfaceID)
		default:
			// attrNames are in the order of flowlog's Raw values.
			if batch != nil {
				if t := batch.Raw(i, k); canonical(t) {
					b = append(b, t...)
					break
				}
			}
			b = appendNumber(b, rec, k)
		}
		spans[k][1] = len(b)
	}
	b = append(b, `" color="`...)
	b = append(b, color(rec.Action)...)
	b = append(b, `" label="`...)
	for k, name := range labelNames {
		b = append(b, name...)
		b = append(b, b[spans[k][0]:spans[k][1]]...)
	}
	return append(b, "\"]\n"...)
}

// canonical reports whether t, the text of a number a Reader accepted, is
// how strconv writes it: digits with no leading zero.
func canonical(t []byte) bool {
	return len(t) > 0 && t[0] != '-' && (t[0] != '0' || len(t) == 1)
}

// appendNumber appends rec's number f (flowlog.RawSrcPort to RawEnd).
func appendNumber(b []byte, rec *flowlog.Record, f int) []byte {
	switch f {
	case flowlog.RawSrcPort:
		return strconv.AppendInt(b, int64(rec.SrcPort), 10)
	case flowlog.RawDstPort:
		return strconv.AppendInt(b, int64(rec.DstPort), 10)
	case flowlog.RawProtocol:
		return appendProtocol(b, rec.Protocol)
	case flowlog.RawPackets:
		return strconv.AppendInt(b, rec.Packets, 10)
	case flowlog.RawBytes:
		return strconv.AppendInt(b, rec.Bytes, 10)
	case flowlog.RawStart:
		return strconv.AppendInt(b, rec.Start, 10)
	default:
		return strconv.AppendInt(b, rec.End, 10)
	}
}
