package flowlog

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"unsafe"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"
)

// DefaultMaxLineBytes is the longest line a Reader accepts unless told
// otherwise. A flow record is a few hundred bytes even in the widest custom
// format, so a longer line is garbage and is skipped rather than buffered.
const DefaultMaxLineBytes = 64 << 10

// maxFirstSkipped is how many malformed line numbers Stats keeps.
const maxFirstSkipped = 5

// maxInterned bounds the table of account and interface ids a Reader shares
// between records, so hostile input cannot grow it without limit (each id
// is at most MaxIDBytes long, so the table 4 MiB); past it, each id is
// allocated.
const maxInterned = 1 << 16

// MaxIDBytes bounds an account or interface id: AWS's are 12 and 8 to 21
// bytes long. A record whose id is longer is malformed, so that what a
// window's distinct ids hold stays a few dozen bytes each, and a line of
// megabytes cannot make a name of them.
const MaxIDBytes = 64

// minBufferBytes is the smallest read buffer, large enough that reading a
// digest costs few system calls.
const minBufferBytes = 128 << 10

// ErrCorrupt is returned (wrapped) by NewReader and Reader.Err when the input
// claims to be gzip but cannot be decompressed. No retry can fix it.
var ErrCorrupt = errors.New("corrupt compressed flow log")

// Option configures a Reader.
type Option func(*readerOptions)

type readerOptions struct {
	maxLineBytes int
	format       []string
	ctx          context.Context
	workers      int
	newRender    func() Render
	newLines     func() LineRender
}

// WithContext stops the Reader once ctx is done: its next read of the input
// fails with ctx's error. A long run of lines that yield no record (all
// malformed, say) then cannot outlast a cancellation. Reads are of whole
// buffers, so the check costs nothing per line.
func WithContext(ctx context.Context) Option {
	return func(o *readerOptions) { o.ctx = ctx }
}

// ctxReader fails reads once its context is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// WithMaxLineBytes sets the longest line accepted; longer lines are skipped
// and counted as malformed, never buffered whole. Values below 1 keep the
// default, DefaultMaxLineBytes.
func WithMaxLineBytes(n int) Option {
	return func(o *readerOptions) {
		if n > 0 {
			o.maxLineBytes = n
		}
	}
}

// WithFormat sets the fields of a custom format for input that has no header
// line (by default, the version 2 fields). A header line in the input
// overrides it.
func WithFormat(fields []string) Option {
	return func(o *readerOptions) {
		o.format = append([]string(nil), fields...)
	}
}

// Stats counts what a Reader did with its input.
type Stats struct {
	// Lines is the number of lines read.
	Lines int64
	// Used is the number of records returned by Next.
	Used int64
	// NoFlow is the number of lines that carry no flow: blank, header,
	// NODATA and SKIPDATA lines.
	NoFlow int64
	// Skipped is the number of malformed lines.
	Skipped int64
	// FirstSkipped holds the line numbers (from 1) of the first five
	// malformed lines.
	FirstSkipped []int64
}

// Reader reads flow records one at a time. It is not safe for concurrent
// use; use one Reader per input.
type Reader struct {
	parser
	src       lineSource
	stats     Stats
	err       error
	pq        *parquetInput // non-nil when reading a Parquet file
	pl        *pipeline     // non-nil when lines are parsed by workers
	firstSkip [maxFirstSkipped]int64
}

// parser turns lines (or a Parquet row's values) into records. Each
// goroutine that parses has its own.
type parser struct {
	format format
	fields [][]byte
	rec    Record
	// out is where parse writes the record: rec, or the next slot of the
	// chunk being parsed, so that a chunk's records are not copied.
	out *Record
	// raws are where parseDefault found the raw values, from the start
	// of the line, when rawsInLine says the last line took that path.
	raws       [numRaw]raw
	rawsInLine bool
	line       Line // what parseDefault read last
	interned   map[string]string
	last       [numRecordFields]string // the value str last returned per field
	recent     *[recentSlots]string    // strings str returned lately, by recentSlot
}

func newParser(f format) parser {
	return parser{format: f, fields: make([][]byte, 0, f.n+1), interned: make(map[string]string),
		recent: new([recentSlots]string)}
}

// lineSource cuts a stream into lines, passing over (and reporting) those
// longer than the limit without buffering them.
type lineSource struct {
	br      *bufio.Reader
	maxLine int
	lines   int64 // lines returned so far, over-long ones included
	done    bool
	gzipped bool
	err     error
}

// NewReader reads flow records from r: a digest (version 2 lines, no header)
// or a raw flow-log file (optional header line naming the fields, versions
// 2-8, any order), gzip or plain, detected by content (magic bytes);
// concatenated gzip members are read as one stream. Input that starts with
// ParquetMagic is read as NewParquetReader reads it when r is a file (or
// another io.ReaderAt that knows its size), and refused with
// ErrNeedsRandomAccess otherwise. It returns an error only for a corrupt
// gzip header (wrapping ErrCorrupt), a malformed Parquet file (wrapping
// ErrMalformedParquet), or a failure to read the first bytes.
func NewReader(r io.Reader, opts ...Option) (*Reader, error) {
	o := readerOptions{maxLineBytes: DefaultMaxLineBytes}
	for _, opt := range opts {
		opt(&o)
	}
	fields := o.format
	if fields == nil {
		fields = DefaultFields()
	}
	if d, ok := r.(*CompactedDigest); ok && o.workers >= 1 && d.takeFlows() {
		// Its flows are taken as records, with no text between, even
		// by one worker.
		ctx := o.ctx
		if ctx == nil {
			ctx = context.Background()
		}
		rd := &Reader{parser: newParser(newFormat(fields))}
		rd.pl = startFeed(ctx, d, rd, o.workers, o.maxLineBytes, o.newRender, o.newLines)
		return rd, nil
	}
	input := r
	if o.ctx != nil {
		r = &ctxReader{ctx: o.ctx, r: r}
	}
	size := max(o.maxLineBytes+2, minBufferBytes)
	raw := bufio.NewReaderSize(r, minBufferBytes)
	magic, err := raw.Peek(len(ParquetMagic))
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("flowlog: read: %w", err)
	}
	if string(magic) == ParquetMagic {
		ra, n, ok := randomAccess(input)
		if !ok {
			return nil, fmt.Errorf("flowlog: %w", ErrNeedsRandomAccess)
		}
		return NewParquetReader(ra, n, opts...)
	}
	rd := &Reader{parser: newParser(newFormat(fields))}
	rd.src.maxLine = o.maxLineBytes
	if len(magic) >= 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(raw)
		if err != nil {
			return nil, fmt.Errorf("flowlog: gzip header: %w: %w", ErrCorrupt, err)
		}
		rd.src.gzipped = true
		rd.src.br = bufio.NewReaderSize(zr, size)
	} else if size > minBufferBytes {
		rd.src.br = bufio.NewReaderSize(raw, size)
	} else {
		rd.src.br = raw
	}
	if o.workers > 1 {
		rd.pl = startPipeline(rd, o.workers, o.newRender, o.newLines)
	}
	return rd, nil
}

// Next advances to the next flow record, skipping blank, header, NODATA and
// SKIPDATA lines and malformed lines (which it counts). It returns false at
// EOF or on a read error.
func (r *Reader) Next() bool {
	if r.pq != nil {
		return r.nextParquet()
	}
	if r.pl != nil {
		return r.nextParsed()
	}
	for {
		line, ok := r.readLine()
		if !ok {
			return false
		}
		r.out = &r.rec
		if r.count(r.parse(line)) {
			return true
		}
	}
}

// count counts a line (or row) of kind, and reports whether it is a record.
func (r *Reader) count(kind lineKind) bool {
	switch kind {
	case lineRecord:
		r.stats.Used++
		return true
	case lineNoFlow:
		r.stats.NoFlow++
	default:
		r.skip()
	}
	return false
}

// Record returns the current record; it is valid until the next call to
// Next. The strings it holds may be kept: they are never overwritten.
func (r *Reader) Record() *Record { return &r.rec }

// Err returns the first read or decompression error (not malformed lines),
// nil at clean EOF. A decompression error wraps ErrCorrupt.
func (r *Reader) Err() error { return r.err }

// Stats returns the counts so far.
func (r *Reader) Stats() Stats {
	s := r.stats
	if s.Skipped > 0 {
		s.FirstSkipped = append([]int64(nil), r.firstSkip[:min(s.Skipped, maxFirstSkipped)]...)
	}
	return s
}

// skip counts the current line as malformed.
func (r *Reader) skip() {
	if r.stats.Skipped < maxFirstSkipped {
		r.firstSkip[r.stats.Skipped] = r.stats.Lines
	}
	r.stats.Skipped++
}

// readLine returns the next line without its end-of-line bytes, counting
// it, and skipping (and counting) lines longer than the limit.
func (r *Reader) readLine() ([]byte, bool) {
	for {
		line, long, ok := r.src.next()
		if !ok {
			r.err = r.src.err
			return nil, false
		}
		r.stats.Lines++
		if !long {
			return line, true
		}
		r.skip()
	}
}

// next returns the next line without its end-of-line bytes, or long for a
// line over the limit, which is read past without being buffered whole. It
// returns false at the end of the input or on a read error (in s.err).
func (s *lineSource) next() (line []byte, long, ok bool) {
	if s.done {
		return nil, false, false
	}
	line, err := s.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		s.lines++
		s.discardLine()
		return nil, true, true
	}
	if err != nil {
		s.done = true
		if !errors.Is(err, io.EOF) {
			s.fail(err)
			return nil, false, false
		}
		if len(line) == 0 {
			return nil, false, false
		}
	}
	s.lines++
	line = trimEOL(line)
	if len(line) > s.maxLine {
		return nil, true, true
	}
	return line, false, true
}

// appendBlock appends to dst the whole lines already buffered, up to max
// bytes, as they are (each ending in '\n'), counting them, and returns dst
// and the number of lines before them; it appends nothing when no whole
// line is buffered or one holds a '\r'. Copying a run of lines at once
// spares cutting each apart: a line of a run is shorter than max, so with
// max at most the line limit none is over-long, and with no '\r' none
// has an end-of-line to trim.
func (s *lineSource) appendBlock(dst []byte, max int) ([]byte, int64) {
	if s.done {
		return dst, s.lines
	}
	b, _ := s.br.Peek(min(s.br.Buffered(), max, s.maxLine))
	end := bytes.LastIndexByte(b, '\n')
	if end < 0 || bytes.IndexByte(b[:end], '\r') >= 0 {
		return dst, s.lines
	}
	b = b[:end+1]
	first := s.lines
	s.lines += int64(bytes.Count(b, newline))
	dst = append(dst, b...)
	_, _ = s.br.Discard(len(b))
	return dst, first
}

var newline = []byte{'\n'}

// discardLine reads past the rest of an over-long line.
func (s *lineSource) discardLine() {
	for {
		_, err := s.br.ReadSlice('\n')
		switch {
		case err == nil:
			return
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			s.done = true
			return
		default:
			s.done = true
			s.fail(err)
			return
		}
	}
}

// fail records a read error, marking decompression failures as corrupt.
func (s *lineSource) fail(err error) {
	var corrupt flate.CorruptInputError
	// The decompressor also reports some corrupt streams as its own
	// internal error.
	var internal flate.InternalError
	switch {
	case s.gzipped && (errors.Is(err, gzip.ErrHeader) || errors.Is(err, gzip.ErrChecksum) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &corrupt) || errors.As(err, &internal)):
		s.err = fmt.Errorf("flowlog: decompress after line %d: %w: %w", s.lines, ErrCorrupt, err)
	default:
		s.err = fmt.Errorf("flowlog: read after line %d: %w", s.lines, err)
	}
}

func trimEOL(line []byte) []byte {
	if n := len(line); n > 0 && line[n-1] == '\n' {
		line = line[:n-1]
	}
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line
}

type lineKind int

const (
	lineMalformed lineKind = iota
	lineNoFlow
	lineRecord
)

// split cuts line into at most limit fields separated by runs of spaces
// and tabs, stored in r.fields, and returns their number (limit+1 when
// there are more).
func (r *parser) split(line []byte, limit int) int {
	fields := r.fields[:0]
	n := len(line)
	for i := 0; i < n; {
		if c := line[i]; c == ' ' || c == '\t' {
			i++
			continue
		}
		j := i + 1
		for j < n && line[j] != ' ' && line[j] != '\t' {
			j++
		}
		if len(fields) == limit {
			r.fields = fields
			return limit + 1
		}
		fields = append(fields, line[i:j:j])
		i = j
	}
	r.fields = fields
	return len(fields)
}

var (
	tokNoData   = []byte("NODATA")
	tokSkipData = []byte("SKIPDATA")
)

func isNoFlowStatus(b []byte) bool {
	return bytes.Equal(b, tokNoData) || bytes.Equal(b, tokSkipData)
}

// parse fills r.out from line and says what kind of line it was.
func (r *parser) parse(line []byte) lineKind {
	r.rawsInLine = false
	if len(line) > 0 && !isDigit(line[0]) && !isSpace(line[0]) {
		if f, ok := parseHeader(line); ok {
			r.format = f
			if cap(r.fields) < f.n+1 {
				r.fields = make([][]byte, 0, f.n+1)
			}
			return lineNoFlow
		}
	}
	f := &r.format
	if f.isDefault && r.parseDefault(line) {
		return lineRecord
	}
	n := r.split(line, f.n)
	if n == 0 {
		return lineNoFlow
	}
	if n != f.n {
		// A NODATA or SKIPDATA line cut short still carries no flow.
		if n < f.n && isNoFlowStatus(r.fields[n-1]) {
			return lineNoFlow
		}
		return lineMalformed
	}
	return r.parseFields()
}

// parseFields fills r.out from r.fields, one per field of r.format, and
// says what kind of record they make.
func (r *parser) parseFields() lineKind {
	f := &r.format
	fields := r.fields
	rec := r.out
	rec.LogStatus = StatusOK
	if i := f.idx[fLogStatus]; i >= 0 {
		switch v := fields[i]; {
		case string(v) == StatusOK:
		case isNoFlowStatus(v):
			return lineNoFlow
		default:
			return lineMalformed
		}
	} else if i, j := f.idx[fSrcAddr], f.idx[fDstAddr]; i >= 0 && j >= 0 && isMissing(fields[i]) && isMissing(fields[j]) {
		// Without a log-status field, a NODATA record shows as one with no
		// addresses.
		return lineNoFlow
	}
	var ok bool
	if rec.SrcAddr, ok = r.addr(fSrcAddr); !ok {
		return lineMalformed
	}
	if rec.DstAddr, ok = r.addr(fDstAddr); !ok {
		return lineMalformed
	}
	v, ok := r.number(fVersion, 2, 255, 2)
	if !ok || v < 2 {
		return lineMalformed
	}
	rec.Version = int(v)
	if v, ok = r.number(fSrcPort, 0, 65535, 0); !ok {
		return lineMalformed
	}
	rec.SrcPort = int(v)
	if v, ok = r.number(fDstPort, 0, 65535, 0); !ok {
		return lineMalformed
	}
	rec.DstPort = int(v)
	if v, ok = r.number(fProtocol, 0, 255, -1); !ok {
		return lineMalformed
	}
	rec.Protocol = int(v)
	if rec.Packets, ok = r.number(fPackets, 0, maxInt64, 0); !ok {
		return lineMalformed
	}
	if rec.Bytes, ok = r.number(fBytes, 0, maxInt64, 0); !ok {
		return lineMalformed
	}
	if rec.Start, ok = r.number(fStart, 0, maxInt64, 0); !ok {
		return lineMalformed
	}
	if rec.End, ok = r.number(fEnd, 0, maxInt64, 0); !ok {
		return lineMalformed
	}
	rec.Action = Missing
	if i := f.idx[fAction]; i >= 0 {
		switch v := fields[i]; string(v) {
		case ActionAccept:
			rec.Action = ActionAccept
		case ActionReject:
			rec.Action = ActionReject
		case Missing:
		default:
			return lineMalformed
		}
	}
	if r.longID(fAccountID) || r.longID(fInterfaceID) {
		return lineMalformed
	}
	rec.AccountID = r.str(fAccountID)
	rec.InterfaceID = r.str(fInterfaceID)
	return lineRecord
}

// longID says whether id field k is longer than MaxIDBytes.
func (r *parser) longID(k int) bool {
	i := r.format.idx[k]
	return i >= 0 && len(r.fields[i]) > MaxIDBytes
}

const maxInt64 = 1<<63 - 1

func isMissing(b []byte) bool { return len(b) == 1 && b[0] == '-' }

// number parses field k as a decimal in [lo, hi]; "-" and a field the format
// lacks give missing.
func (r *parser) number(k int, lo, hi, missing int64) (int64, bool) {
	i := r.format.idx[k]
	if i < 0 {
		return missing, true
	}
	b := r.fields[i]
	if isMissing(b) {
		return missing, true
	}
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	// 19 digits fit in a uint64, so the sum cannot wrap; only a 19-digit
	// number can exceed the largest int64.
	var n uint64
	for _, c := range b {
		d := uint64(c - '0')
		if d > 9 {
			return 0, false
		}
		n = n*10 + d
	}
	if n > maxInt64 {
		return 0, false
	}
	if int64(n) < lo || int64(n) > hi {
		return 0, false
	}
	return int64(n), true
}

// addr parses field k as an IP address without a zone: flow logs never hold
// zones, and a zone would make two records for one address look different.
func (r *parser) addr(k int) (netip.Addr, bool) {
	i := r.format.idx[k]
	if i < 0 {
		return netip.Addr{}, false
	}
	b := r.fields[i]
	if len(b) == 0 || len(b) > 64 || bytes.IndexByte(b, '%') >= 0 {
		return netip.Addr{}, false
	}
	// ParseAddr keeps no reference to its input once it returns a valid
	// zone-free address, so the line buffer can be lent to it instead of
	// allocating a string per field; on error the (discarded) error value
	// refers to the buffer, which only delays its collection.
	if bytes.IndexByte(b, ':') < 0 {
		return parseIPv4(b)
	}
	a, err := netip.ParseAddr(unsafe.String(unsafe.SliceData(b), len(b)))
	if err != nil {
		return netip.Addr{}, false
	}
	return a, true
}

// parseIPv4 parses a dotted-decimal IPv4 address as netip.ParseAddr does
// (four decimal octets of at most 255, no leading zeros), at a fraction of
// its cost: most addresses of a flow log are IPv4.
func parseIPv4(b []byte) (netip.Addr, bool) {
	var a [4]byte
	octet, val, digits := 0, 0, 0
	for _, c := range b {
		if c == '.' {
			if digits == 0 || octet == 3 {
				return netip.Addr{}, false
			}
			a[octet] = byte(val)
			octet, val, digits = octet+1, 0, 0
			continue
		}
		d := int(c) - '0'
		if d < 0 || d > 9 || (digits > 0 && val == 0) {
			return netip.Addr{}, false
		}
		val = val*10 + d
		digits++
		if val > 255 {
			return netip.Addr{}, false
		}
	}
	if octet != 3 || digits == 0 {
		return netip.Addr{}, false
	}
	a[3] = byte(val)
	return netip.AddrFrom4(a), true
}

// str returns field k as a string shared between records with the same
// value, "-" when missing.
func (r *parser) str(k int) string {
	i := r.format.idx[k]
	if i < 0 {
		return Missing
	}
	return r.strOf(k, r.fields[i])
}

// strOf returns b, the text of field k, as str does.
func (r *parser) strOf(k int, b []byte) string {
	if isMissing(b) {
		return Missing
	}
	// Neighbouring lines mostly share their account and interface.
	if last := r.last[k]; last == string(b) {
		return last
	}
	// A small table by a cheap hash answers most of the rest without
	// the map's costlier hash and probe.
	slot := &r.recent[recentSlot(b)]
	if *slot == string(b) {
		r.last[k] = *slot
		return *slot
	}
	if s, ok := r.interned[string(b)]; ok {
		r.last[k], *slot = s, s
		return s
	}
	s := string(b)
	if len(r.interned) < maxInterned {
		r.interned[s] = s
	}
	r.last[k], *slot = s, s
	return s
}

// recentSlots is the size of a parser's table of recent strings.
const recentSlots = 1 << 12

// recentSlot is where b goes in a parser's table of recent strings: a hash
// of its length and its first and last eight bytes, which tell the ids AWS
// writes apart.
func recentSlot(b []byte) int {
	var h uint64
	if n := len(b); n >= 8 {
		h = binary.LittleEndian.Uint64(b) ^ binary.LittleEndian.Uint64(b[n-8:])*0x9e3779b97f4a7c15
	} else {
		for _, c := range b {
			h = h<<8 | uint64(c)
		}
	}
	h = (h ^ uint64(len(b))) * 0xff51afd7ed558ccd
	return int(h >> (64 - 12))
}
