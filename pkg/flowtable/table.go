package flowtable

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/flowlog"
)

// Kind is the object kind a graph's flow table is stored under, beside its
// DOT (see types.ObjectStorage).
const Kind = "table"

// magic opens every table; the last byte is the encoding version.
const magic = "GVT1"

// maxStrings bounds the string list a table builds for account and
// interface ids, so a hostile input cannot grow it without end; strings past
// it are written out each time.
const maxStrings = 1 << 16

// maxStringBytes is the longest account or interface id a table holds; a
// flow log line is bounded too, so no real id comes near it.
const maxStringBytes = 1 << 16

// Flag bits of a record.
const (
	flagSrc6      = 1 << 0
	flagDst6      = 1 << 1
	actionShift   = 2
	actionMask    = 3 << actionShift
	flagNoProto   = 1 << 4
	flagNewAcct   = 1 << 5
	flagNewENI    = 1 << 6
	actionMissing = 0
	actionAccept  = 1
	actionReject  = 2
)

// ErrCorrupt is returned (wrapped) by Reader for bytes that are not a table.
var ErrCorrupt = errors.New("flow table is corrupt")

// Writer encodes flow records into a table as they arrive. Its memory is
// its buffer and the string list. It is not safe for concurrent use.
type Writer struct {
	bw        *bufio.Writer
	strings   map[string]uint32
	prevStart int64
	scratch   []byte
	err       error
}

// NewWriter starts a table on w; Close flushes it.
func NewWriter(w io.Writer) *Writer {
	tw := &Writer{bw: bufio.NewWriterSize(w, 64<<10), strings: make(map[string]uint32)}
	_, tw.err = tw.bw.WriteString(magic)
	return tw
}

// Add appends rec. Errors are sticky and come from the underlying writer.
func (w *Writer) Add(rec *flowlog.Record) error {
	if w.err != nil {
		return w.err
	}
	if !rec.SrcAddr.IsValid() || !rec.DstAddr.IsValid() {
		w.err = fmt.Errorf("flowtable: record %v -> %v has an invalid address", rec.SrcAddr, rec.DstAddr)
		return w.err
	}
	b := w.scratch[:0]
	b = append(b, 0)
	var flags byte
	b, flags = appendAddr(b, rec.SrcAddr, flags, flagSrc6)
	b, flags = appendAddr(b, rec.DstAddr, flags, flagDst6)
	switch rec.Action {
	case flowlog.ActionAccept:
		flags |= actionAccept << actionShift
	case flowlog.ActionReject:
		flags |= actionReject << actionShift
	}
	b = binary.AppendUvarint(b, uint64(uint16(rec.SrcPort)))
	b = binary.AppendUvarint(b, uint64(uint16(rec.DstPort)))
	if rec.Protocol < 0 {
		flags |= flagNoProto
	} else {
		b = binary.AppendUvarint(b, uint64(rec.Protocol))
	}
	b = binary.AppendVarint(b, rec.Packets)
	b = binary.AppendVarint(b, rec.Bytes)
	b = binary.AppendVarint(b, rec.Start-w.prevStart)
	w.prevStart = rec.Start
	b = binary.AppendVarint(b, rec.End-rec.Start)
	var isNew bool
	if b, isNew = w.appendString(b, rec.AccountID); isNew {
		flags |= flagNewAcct
	}
	if b, isNew = w.appendString(b, rec.InterfaceID); isNew {
		flags |= flagNewENI
	}
	b[0] = flags
	w.scratch = b
	if _, err := w.bw.Write(b); err != nil {
		w.err = fmt.Errorf("flowtable: write: %w", err)
	}
	return w.err
}

// Close flushes the table. It does not close the underlying writer.
func (w *Writer) Close() error {
	if w.err != nil {
		return w.err
	}
	if err := w.bw.Flush(); err != nil {
		w.err = fmt.Errorf("flowtable: write: %w", err)
	}
	return w.err
}

func appendAddr(b []byte, a netip.Addr, flags, six byte) ([]byte, byte) {
	if a.Is4() {
		v := a.As4()
		return append(b, v[:]...), flags
	}
	v := a.As16()
	return append(b, v[:]...), flags | six
}

// appendString appends s as an index into the string list, or as a new
// string when the list does not hold it.
func (w *Writer) appendString(b []byte, s string) ([]byte, bool) {
	if len(s) > maxStringBytes {
		s = s[:maxStringBytes]
	}
	if i, ok := w.strings[s]; ok {
		return binary.AppendUvarint(b, uint64(i)), false
	}
	if len(w.strings) < maxStrings {
		w.strings[s] = uint32(len(w.strings))
	}
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...), true
}

// readBufferBytes is the decoder's buffer: large enough to read in few
// calls, and always more than one record plus a string.
const readBufferBytes = 256 << 10

// Reader decodes a table record by record, with the same Next/Record/Err
// shape as flowlog.Reader. The record and its strings are reused, so Record
// allocates nothing.
type Reader struct {
	r         io.Reader
	buf       []byte
	pos, end  int
	eof       bool
	strings   []string
	rec       flowlog.Record
	prevStart int64
	records   int64
	err       error
	started   bool
}

// NewReader reads a table from r.
func NewReader(r io.Reader) *Reader {
	return &Reader{r: r, buf: make([]byte, readBufferBytes)}
}

// Next decodes the next record; it returns false at the end of the table or
// on an error, which Err then returns.
func (r *Reader) Next() bool {
	if r.err != nil {
		return false
	}
	if !r.started {
		r.started = true
		if !r.fill(len(magic)) || string(r.buf[r.pos:r.pos+len(magic)]) != magic {
			r.fail(fmt.Errorf("%w: no table header", ErrCorrupt))
			return false
		}
		r.pos += len(magic)
	}
	if !r.fill(1) {
		return false
	}
	// A record without its strings is at most 1+16+16+7*10 bytes.
	r.fill(128)
	flags := r.buf[r.pos]
	r.pos++
	rec := &r.rec
	rec.SrcAddr = r.addr(flags&flagSrc6 != 0)
	rec.DstAddr = r.addr(flags&flagDst6 != 0)
	rec.SrcPort = int(r.uvarint())
	rec.DstPort = int(r.uvarint())
	rec.Protocol = -1
	if flags&flagNoProto == 0 {
		rec.Protocol = int(r.uvarint())
	}
	rec.Packets = r.varint()
	rec.Bytes = r.varint()
	rec.Start = r.prevStart + r.varint()
	r.prevStart = rec.Start
	rec.End = rec.Start + r.varint()
	switch (flags & actionMask) >> actionShift {
	case actionAccept:
		rec.Action = flowlog.ActionAccept
	case actionReject:
		rec.Action = flowlog.ActionReject
	case actionMissing:
		rec.Action = flowlog.Missing
	default:
		r.fail(fmt.Errorf("%w: unknown action in record %d", ErrCorrupt, r.records+1))
	}
	rec.AccountID = r.string(flags&flagNewAcct != 0)
	rec.InterfaceID = r.string(flags&flagNewENI != 0)
	rec.Version = 2
	rec.LogStatus = flowlog.StatusOK
	if r.err != nil {
		return false
	}
	r.records++
	return true
}

// Record returns the record Next decoded; it is reused by the next call.
func (r *Reader) Record() *flowlog.Record { return &r.rec }

// Err returns the error that stopped Next, nil at a clean end.
func (r *Reader) Err() error { return r.err }

// Records returns the number of records decoded so far.
func (r *Reader) Records() int64 { return r.records }

func (r *Reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

// fill makes at least n bytes available from pos unless the input ends
// first; it reports whether they are.
func (r *Reader) fill(n int) bool {
	for r.end-r.pos < n && !r.eof {
		if r.pos > 0 {
			r.end = copy(r.buf, r.buf[r.pos:r.end])
			r.pos = 0
		}
		if n > len(r.buf) {
			r.buf = append(r.buf, make([]byte, n-len(r.buf))...)
		}
		m, err := r.r.Read(r.buf[r.end:])
		r.end += m
		if errors.Is(err, io.EOF) {
			r.eof = true
		} else if err != nil {
			r.fail(fmt.Errorf("flowtable: read: %w", err))
			r.eof = true
		}
	}
	return r.end-r.pos >= n
}

func (r *Reader) truncated() {
	r.fail(fmt.Errorf("%w: record %d is cut short", ErrCorrupt, r.records+1))
}

func (r *Reader) addr(six bool) netip.Addr {
	n := 4
	if six {
		n = 16
	}
	if r.end-r.pos < n {
		r.truncated()
		return netip.Addr{}
	}
	b := r.buf[r.pos : r.pos+n]
	r.pos += n
	if six {
		return netip.AddrFrom16([16]byte(b))
	}
	return netip.AddrFrom4([4]byte(b))
}

func (r *Reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.buf[r.pos:r.end])
	if n <= 0 {
		r.truncated()
		return 0
	}
	r.pos += n
	return v
}

func (r *Reader) varint() int64 {
	v, n := binary.Varint(r.buf[r.pos:r.end])
	if n <= 0 {
		r.truncated()
		return 0
	}
	r.pos += n
	return v
}

func (r *Reader) string(isNew bool) string {
	if r.err != nil {
		return ""
	}
	r.fill(binary.MaxVarintLen64)
	if !isNew {
		i := r.uvarint()
		if i >= uint64(len(r.strings)) {
			r.fail(fmt.Errorf("%w: record %d names string %d of %d", ErrCorrupt, r.records+1, i, len(r.strings)))
			return ""
		}
		return r.strings[i]
	}
	n := r.uvarint()
	if n > maxStringBytes {
		r.fail(fmt.Errorf("%w: record %d has a %d-byte string", ErrCorrupt, r.records+1, n))
		return ""
	}
	if !r.fill(int(n)) {
		r.truncated()
		return ""
	}
	s := string(r.buf[r.pos : r.pos+int(n)])
	r.pos += int(n)
	if len(r.strings) < maxStrings {
		r.strings = append(r.strings, s)
	}
	return s
}
