package flowlog

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	pqformat "github.com/parquet-go/parquet-go/format"
)

// maxParquetPageBytes bounds a page's bytes, compressed or not. Writers cut
// pages at about 1 MiB (Arrow, parquet-mr, dictionaries included) or less
// (parquet-go), so 64 MiB refuses no file a tool writes.
const maxParquetPageBytes = 64 << 20

// maxParquetHeaderBytes bounds a page header: a few dozen bytes, or a few
// hundred with the statistics of long strings, or as long as the read
// buffer, to hold the minimum and the maximum of values nearly as long as a
// line may be (DefaultMaxLineBytes).
const maxParquetHeaderBytes = parquetReadBufferBytes

// parquetHeaderCost is what a page header is counted as in the file's
// inflate budget.
const parquetHeaderCost = 4 << 10

// parquetHeaderProbe is how much of a page header is looked at first.
const parquetHeaderProbe = 256

// maxParquetHeldBytes bounds what a file's column readers hold at once:
// their read buffers, the page being read of each column, compressed and
// not, and the dictionaries. A flow-log file, a dozen or so columns of
// pages of a megabyte, holds a few tens of megabytes.
const maxParquetHeldBytes = 256 << 20

// maxParquetInflateBase and maxParquetInflateRatio bound what a file's
// pages may inflate to in all: 256 MiB, and 100 times the file's size
// beyond. Flow-log columns compress some 3 to 20 times in pages; a page of
// a few bytes can claim, and really inflate to, 64 MiB (Zstd's RLE blocks
// do 32,768 to one), about 80 ms of work.
const (
	maxParquetInflateBase  = 256 << 20
	maxParquetInflateRatio = 100
)

// parquetBudget counts the bytes a file's column readers hold, and
// refuses to let them hold more than maxParquetHeldBytes.
type parquetBudget struct {
	held int64
	// inflate is how many bytes the pages may still inflate to, in all:
	// what bounds a file's work, since a page of a few bytes may inflate
	// to 64 MiB, and a page of no values costs no row.
	inflate int64
}

// inflated counts n bytes a page inflates to.
func (b *parquetBudget) inflated(n int) error {
	if int64(n) > b.inflate {
		return fmt.Errorf("%w: the pages inflate to more than %d bytes in all (%d MiB and %d times the file's size)",
			errParquetData, b.inflate, maxParquetInflateBase>>20, maxParquetInflateRatio)
	}
	b.inflate -= int64(n)
	return nil
}

// bytes returns buf resized to n bytes, growing it (as counted) if need
// be, its len(buf) bytes kept.
func (b *parquetBudget) bytes(buf []byte, n int) ([]byte, error) {
	if n <= cap(buf) {
		return buf[:n], nil
	}
	// Grown by doubling (to a page's bound), so that pages a little longer
	// each time do not each allocate anew.
	size := max(n, min(2*cap(buf), maxParquetPageBytes))
	if b.held+int64(size-cap(buf)) > maxParquetHeldBytes {
		return buf, fmt.Errorf("%w: the pages read at once would take more than %d bytes", errParquetData, maxParquetHeldBytes)
	}
	b.held += int64(size - cap(buf))
	grown := make([]byte, n, size)
	copy(grown, buf)
	return grown, nil
}

// reserve counts n bytes held for good.
func (b *parquetBudget) reserve(n int64) error {
	if b.held+n > maxParquetHeldBytes {
		return fmt.Errorf("%w: the columns read at once would take more than %d bytes", errParquetData, maxParquetHeldBytes)
	}
	b.held += n
	return nil
}

// offsets is bytes for a slice of n+1 offsets.
func (b *parquetBudget) offsets(buf []uint32, n int) ([]uint32, error) {
	if n+1 <= cap(buf) {
		return buf[:0], nil
	}
	if b.held+4*int64(n+1-cap(buf)) > maxParquetHeldBytes {
		return buf, fmt.Errorf("%w: a dictionary of %d values would take more than %d bytes", errParquetData, n, maxParquetHeldBytes)
	}
	b.held += 4 * int64(n+1-cap(buf))
	return make([]uint32, 0, n+1), nil
}

// parquetLeaf is a column of a flat flow-log schema.
type parquetLeaf struct {
	name      string
	typ       pqformat.Type
	optional  bool
	typeLen   int  // of a FIXED_LEN_BYTE_ARRAY
	unsigned  bool // an integer annotated as unsigned
	supported bool
}

// valueEncoding is how a page's values are read.
type valueEncoding uint8

const (
	encPlain valueEncoding = iota
	encDict
	encDelta
	encDeltaLength
	encDeltaBytes
)

// columnReader reads one column chunk's values, one page at a time, from
// a buffered read of the chunk's bytes (ranged reads on S3), checking
// every size, count and offset the pages claim against their bytes.
type columnReader struct {
	ctx    context.Context // nil for none
	leaf   *parquetLeaf
	budget *parquetBudget
	sec    io.SectionReader
	in     *bufio.Reader
	codec  pqformat.CompressionCodec
	left   int64 // bytes of the chunk not yet read
	values int64 // values of the chunk not yet in a page

	header    pqformat.PageHeader // the last page's
	proto     thrift.CompactProtocol
	raw, page []byte // the page read, compressed and not
	dict      dictionary
	hasDict   bool
	pageLeft  int32 // values of the page not yet read (nulls included)

	levels rleDecoder // the definition levels of an optional column
	enc    valueEncoding
	data   []byte // the page's values
	pos    int    // the next value in data
	idx    rleDecoder
	delta  deltaDecoder // the values, or the lengths of byte arrays
	prefix deltaDecoder // the lengths of the prefixes of DELTA_BYTE_ARRAY
	prev   []byte       // the last DELTA_BYTE_ARRAY value
}

// dictionary holds a dictionary page's values as tokens: integers in
// decimal, byte arrays as they are.
type dictionary struct {
	buf []byte
	off []uint32
}

func (d *dictionary) len() int { return len(d.off) - 1 }

func newColumnReader(ctx context.Context, leaf *parquetLeaf, budget *parquetBudget) (*columnReader, error) {
	c := &columnReader{ctx: ctx, leaf: leaf, budget: budget}
	if err := budget.reserve(parquetReadBufferBytes); err != nil {
		return nil, err
	}
	c.in = bufio.NewReaderSize(nil, parquetReadBufferBytes)
	return c, nil
}

// reset starts reading the column chunk of meta, whose bytes start at
// start, from ra.
func (c *columnReader) reset(ra io.ReaderAt, start int64, m *pqformat.ColumnMetaData) {
	c.sec = *io.NewSectionReader(ra, start, m.TotalCompressedSize)
	c.in.Reset(&c.sec)
	c.codec, c.left, c.values = m.Codec, m.TotalCompressedSize, m.NumValues
	c.hasDict, c.pageLeft = false, 0
}

// next returns the token of the next value: "-" for a null, an integer
// appended to *scratch in decimal, a byte array as it is (empty for an
// empty one).
func (c *columnReader) next(scratch *[]byte) ([]byte, error) {
	for c.pageLeft == 0 {
		if err := c.readPage(); err != nil {
			return nil, err
		}
	}
	c.pageLeft--
	if c.leaf.optional {
		lv, err := c.levels.next()
		if err != nil {
			return nil, err
		}
		switch lv {
		case 0:
			return tokMissing, nil
		case 1:
		default:
			return nil, fmt.Errorf("%w: definition level %d", errParquetData, lv)
		}
	}
	switch c.enc {
	case encDict:
		i, err := c.idx.next()
		if err != nil {
			return nil, err
		}
		if i >= uint64(c.dict.len()) {
			return nil, fmt.Errorf("%w: dictionary index %d of %d values", errParquetData, i, c.dict.len())
		}
		return c.dict.buf[c.dict.off[i]:c.dict.off[i+1]], nil
	case encDelta:
		v, err := c.delta.next()
		if err != nil {
			return nil, err
		}
		if c.leaf.typ == pqformat.Int32 {
			v = uint64(int64(int32(v)))
		}
		return c.appendInt(scratch, v), nil
	case encDeltaLength:
		n, err := c.delta.next()
		if err != nil {
			return nil, err
		}
		return c.take(n)
	case encDeltaBytes:
		p, err := c.prefix.next()
		if err != nil {
			return nil, err
		}
		n, err := c.delta.next()
		if err != nil {
			return nil, err
		}
		if p > uint64(len(c.prev)) {
			return nil, fmt.Errorf("%w: a prefix of %d bytes of a value of %d", errParquetData, p, len(c.prev))
		}
		suffix, err := c.take(n)
		if err != nil {
			return nil, err
		}
		// prev has room for every value of the page (see startValues).
		c.prev = append(c.prev[:p], suffix...)
		return c.prev, nil
	}
	return c.plain(scratch)
}

// appendInt appends v to *scratch in decimal, signed or unsigned as the
// column is, and returns its digits. An INT32 column's v is sign-extended.
func (c *columnReader) appendInt(scratch *[]byte, v uint64) []byte {
	start := len(*scratch)
	switch {
	case !c.leaf.unsigned:
		*scratch = strconv.AppendInt(*scratch, int64(v), 10)
	case c.leaf.typ == pqformat.Int32:
		*scratch = strconv.AppendUint(*scratch, uint64(uint32(v)), 10)
	default:
		*scratch = strconv.AppendUint(*scratch, v, 10)
	}
	return (*scratch)[start:]
}

// take returns the next n bytes of the page's values.
func (c *columnReader) take(n uint64) ([]byte, error) {
	if n > uint64(len(c.data)-c.pos) {
		return nil, fmt.Errorf("%w: a value of %d bytes, %d left", errParquetData, n, len(c.data)-c.pos)
	}
	b := c.data[c.pos : c.pos+int(n)]
	c.pos += int(n)
	return b, nil
}

// plain reads the next PLAIN value of the page, at c.pos in c.data.
func (c *columnReader) plain(scratch *[]byte) ([]byte, error) {
	switch c.leaf.typ {
	case pqformat.Int32:
		b, err := c.take(4)
		if err != nil {
			return nil, err
		}
		return c.appendInt(scratch, uint64(int64(int32(binary.LittleEndian.Uint32(b))))), nil
	case pqformat.Int64:
		b, err := c.take(8)
		if err != nil {
			return nil, err
		}
		return c.appendInt(scratch, binary.LittleEndian.Uint64(b)), nil
	case pqformat.ByteArray:
		b, err := c.take(4)
		if err != nil {
			return nil, err
		}
		return c.take(uint64(binary.LittleEndian.Uint32(b)))
	default: // FIXED_LEN_BYTE_ARRAY
		return c.take(uint64(c.leaf.typeLen))
	}
}

// readPage reads the next page of the chunk; a dictionary page is read
// into c.dict, and the page after it read in turn.
func (c *columnReader) readPage() error {
	if c.ctx != nil {
		if err := c.ctx.Err(); err != nil {
			return fmt.Errorf("%w: %w", errParquetRead, err)
		}
	}
	h, err := c.readHeader()
	if err != nil {
		return err
	}
	switch {
	case h.CompressedPageSize < 0 || int64(h.CompressedPageSize) > c.left:
		return fmt.Errorf("%w: %d compressed bytes, %d left in the column chunk", errParquetData, h.CompressedPageSize, c.left)
	case h.CompressedPageSize > maxParquetPageBytes:
		return fmt.Errorf("%w: %d compressed bytes (at most %d)", errParquetData, h.CompressedPageSize, maxParquetPageBytes)
	case h.UncompressedPageSize < 0 || h.UncompressedPageSize > maxParquetPageBytes:
		return fmt.Errorf("%w: %d uncompressed bytes (at most %d)", errParquetData, h.UncompressedPageSize, maxParquetPageBytes)
	}
	if c.raw, err = c.budget.bytes(c.raw[:0], int(h.CompressedPageSize)); err != nil {
		return err
	}
	if _, err := io.ReadFull(c.in, c.raw); err != nil {
		return readError(err)
	}
	c.left -= int64(h.CompressedPageSize)
	switch h.Type {
	case pqformat.DictionaryPage:
		if !h.DictionaryPageHeader.Valid || c.hasDict {
			return fmt.Errorf("%w: a dictionary page that is not the chunk's first", errParquetData)
		}
		dh := h.DictionaryPageHeader.V
		if dh.Encoding != pqformat.Plain && dh.Encoding != pqformat.PlainDictionary {
			return fmt.Errorf("%w: a dictionary encoded %s", errParquetData, dh.Encoding)
		}
		page, err := c.decompress(c.raw, int(h.UncompressedPageSize))
		if err != nil {
			return err
		}
		return c.readDictionary(page, int(dh.NumValues))
	case pqformat.DataPage:
		if !h.DataPageHeader.Valid {
			return fmt.Errorf("%w: a data page without its header", errParquetData)
		}
		dh := h.DataPageHeader.V
		if err := c.startPage(dh.NumValues); err != nil {
			return err
		}
		page, err := c.decompress(c.raw, int(h.UncompressedPageSize))
		if err != nil {
			return err
		}
		if c.leaf.optional {
			if dh.DefinitionLevelEncoding != pqformat.RLE {
				return fmt.Errorf("%w: definition levels encoded %s", errParquetData, dh.DefinitionLevelEncoding)
			}
			if len(page) < 4 || int64(binary.LittleEndian.Uint32(page)) > int64(len(page)-4) {
				return fmt.Errorf("%w: definition levels past the end of the page", errParquetData)
			}
			n := 4 + int(binary.LittleEndian.Uint32(page))
			c.levels.reset(page[4:n], 1)
			page = page[n:]
		}
		return c.startValues(dh.Encoding, page)
	case pqformat.DataPageV2:
		if !h.DataPageHeaderV2.Valid {
			return fmt.Errorf("%w: a data page without its header", errParquetData)
		}
		dh := h.DataPageHeaderV2.V
		if err := c.startPage(dh.NumValues); err != nil {
			return err
		}
		rep, def := int64(dh.RepetitionLevelsByteLength), int64(dh.DefinitionLevelsByteLength)
		if rep < 0 || def < 0 || rep+def > int64(len(c.raw)) {
			return fmt.Errorf("%w: levels of %d and %d bytes in a page of %d", errParquetData, rep, def, len(c.raw))
		}
		// A flat column has no repetition levels; some writers write
		// them all the same, as zeros.
		if c.leaf.optional {
			c.levels.reset(c.raw[rep:rep+def], 1)
		}
		values := c.raw[rep+def:]
		if !dh.IsCompressed.Valid || dh.IsCompressed.V {
			if values, err = c.decompress(values, int(h.UncompressedPageSize)-int(rep+def)); err != nil {
				return err
			}
		}
		return c.startValues(dh.Encoding, values)
	}
	// An index page, or a page of a later version of the format: passed over.
	return nil
}

// readHeader decodes the next page header, looking at its first bytes
// first, and at more only when it is longer.
func (c *columnReader) readHeader() (*pqformat.PageHeader, error) {
	if c.left <= 0 {
		return nil, fmt.Errorf("%w: the column chunk ends before its %d values", errParquetData, c.values)
	}
	var n int
	var err error
	var buf []byte
	for _, probe := range []int64{parquetHeaderProbe, maxParquetHeaderBytes} {
		want := int(min(probe, c.left))
		buf, err = c.in.Peek(want)
		if len(buf) < want {
			return nil, readError(err)
		}
		if n, err = checkThriftLengths(buf); err == nil || int64(len(buf)) == min(maxParquetHeaderBytes, c.left) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%w: page header: %w", errParquetData, err)
	}
	// A header costs its decoding (a few hundred bytes allocated, a
	// microsecond) whatever its page holds: counted as inflated bytes, so
	// that a file of millions of tiny pages is bounded like one of pages
	// that inflate.
	if err := c.budget.inflated(parquetHeaderCost); err != nil {
		return nil, err
	}
	// The header is decoded into the last one's struct: nothing of a page
	// header is kept past its page.
	h := &c.header
	*h = pqformat.PageHeader{}
	if err := thrift.Unmarshal(&c.proto, buf[:n], h); err != nil {
		return nil, fmt.Errorf("%w: page header: %w", errParquetData, err)
	}
	_, _ = c.in.Discard(n)
	c.left -= int64(n)
	return h, nil
}

// errParquetRead is why a column chunk's bytes could not be read: the
// file's storage failed, or the read's context ended, which is no fault of
// the file's.
var errParquetRead = errors.New("parquet read failed")

// readError is the error of a read of a chunk's bytes that failed. A
// chunk lies inside the file, so a read cut short means the file changed
// or its storage failed.
func readError(err error) error {
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("%w: %w", errParquetRead, err)
}

// startPage checks a data page's count of values against what the chunk
// has left.
func (c *columnReader) startPage(values int32) error {
	if values < 0 || int64(values) > c.values {
		return fmt.Errorf("%w: a page of %d values, %d left in the column chunk", errParquetData, values, c.values)
	}
	c.values -= int64(values)
	c.pageLeft = values
	return nil
}

// startValues starts reading the values of a data page, data, encoded as
// enc.
func (c *columnReader) startValues(enc pqformat.Encoding, data []byte) error {
	c.data, c.pos = data, 0
	limit := uint64(c.pageLeft)
	isInt := c.leaf.typ == pqformat.Int32 || c.leaf.typ == pqformat.Int64
	switch {
	case enc == pqformat.Plain:
		c.enc = encPlain
	case enc == pqformat.PlainDictionary || enc == pqformat.RLEDictionary:
		if !c.hasDict {
			return fmt.Errorf("%w: dictionary indexes with no dictionary", errParquetData)
		}
		c.enc = encDict
		if len(data) == 0 {
			// No indexes, as a page of nulls may hold: reading one fails.
			c.idx.reset(nil, 0)
			return nil
		}
		if data[0] > 32 {
			return fmt.Errorf("%w: dictionary indexes %d bits wide", errParquetData, data[0])
		}
		c.idx.reset(data[1:], uint(data[0]))
	case enc == pqformat.DeltaBinaryPacked && isInt:
		c.enc = encDelta
		return c.delta.reset(data, limit)
	case enc == pqformat.DeltaLengthByteArray && c.leaf.typ == pqformat.ByteArray:
		c.enc = encDeltaLength
		if err := c.delta.reset(data, limit); err != nil {
			return err
		}
		end, err := c.delta.end()
		if err != nil {
			return err
		}
		c.pos = end
		return nil
	case enc == pqformat.DeltaByteArray && !isInt:
		c.enc = encDeltaBytes
		if err := c.prefix.reset(data, limit); err != nil {
			return err
		}
		mid, err := c.prefix.end()
		if err != nil {
			return err
		}
		if err := c.delta.reset(data[mid:], limit); err != nil {
			return err
		}
		end, err := c.delta.end()
		if err != nil {
			return err
		}
		c.pos = mid + end
		// A value is a prefix of the last and a suffix from the page:
		// never longer than the page's suffixes together.
		if c.prev, err = c.budget.bytes(c.prev[:0], len(data)); err != nil {
			return err
		}
		c.prev = c.prev[:0]
		return nil
	default:
		return fmt.Errorf("%w: %s values encoded %s, which is not read", errParquetData, c.leaf.typ, enc)
	}
	return nil
}

// readDictionary reads a dictionary page of n PLAIN values.
func (c *columnReader) readDictionary(page []byte, n int) error {
	least, width := 4, len(page) // a BYTE_ARRAY's length, at least
	switch c.leaf.typ {
	case pqformat.Int32:
		width = 11 * n // the decimal digits of n integers, at most
	case pqformat.Int64:
		least, width = 8, 20*n
	case pqformat.FixedLenByteArray:
		least = c.leaf.typeLen
	}
	if n < 0 || n > len(page)/least {
		return fmt.Errorf("%w: a dictionary of %d values in %d bytes", errParquetData, n, len(page))
	}
	// A dictionary's values cost no rows: no more than the chunk's values,
	// which no writer exceeds, so that the rows bound them.
	if int64(n) > c.values {
		return fmt.Errorf("%w: a dictionary of %d values for a chunk of %d", errParquetData, n, c.values)
	}
	var err error
	d := &c.dict
	if d.buf, err = c.budget.bytes(d.buf[:0], width); err != nil {
		return err
	}
	if d.off, err = c.budget.offsets(d.off, n); err != nil {
		return err
	}
	d.buf = d.buf[:0]
	d.off = append(d.off, 0)
	c.data, c.pos = page, 0
	for range n {
		v, err := c.plain(&d.buf)
		if err != nil {
			return fmt.Errorf("dictionary: %w", err)
		}
		if c.leaf.typ != pqformat.Int32 && c.leaf.typ != pqformat.Int64 {
			d.buf = append(d.buf, v...)
		}
		d.off = append(d.off, uint32(len(d.buf)))
	}
	c.hasDict = true
	return nil
}

// decompress returns the n bytes src holds compressed with the chunk's
// codec, or fails when it holds more or fewer. What a page claims is not
// allocated until its bytes are seen to inflate to it: the buffer grows
// with what is inflated.
func (c *columnReader) decompress(src []byte, n int) ([]byte, error) {
	if n < 0 {
		return nil, fmt.Errorf("%w: levels longer than the page", errParquetData)
	}
	if len(src) == 0 && n == 0 {
		// No values, as parquet-java writes a version 2 page of nulls:
		// marked compressed, yet holding no bytes at all.
		return nil, nil
	}
	if c.codec == pqformat.Uncompressed {
		if len(src) != n {
			return nil, fmt.Errorf("%w: an uncompressed page of %d bytes claims %d", errParquetData, len(src), n)
		}
		return src, nil
	}
	if err := c.budget.inflated(n); err != nil {
		return nil, err
	}
	var err error
	switch c.codec {
	case pqformat.Snappy:
		// A Snappy block starts with its length.
		got, err := snappy.DecodedLen(src)
		if err == nil && got != n {
			err = fmt.Errorf("%d bytes", got)
		}
		if err == nil {
			if c.page, err = c.budget.bytes(c.page[:0], n); err == nil {
				_, err = snappy.Decode(c.page, src)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("%w: Snappy page of %d bytes: %w", errParquetData, n, err)
		}
		return c.page, nil
	case pqformat.Gzip:
		zr, _ := gzipReaders.Get().(*gzip.Reader)
		if zr == nil {
			zr, err = gzip.NewReader(bytes.NewReader(src))
		} else {
			err = zr.Reset(bytes.NewReader(src))
		}
		if err == nil {
			defer gzipReaders.Put(zr)
			err = c.inflate(zr, n)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: GZIP page of %d bytes: %w", errParquetData, n, err)
		}
	case pqformat.Zstd:
		// The decoder is synchronous; it holds a frame's window, which a
		// frame claims, so the window is bounded (see maxZstdWindow).
		zr, _ := zstdReaders.Get().(*zstd.Decoder)
		if zr == nil {
			zr, err = zstd.NewReader(bytes.NewReader(src), zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
				zstd.WithDecoderMaxWindow(maxZstdWindow), zstd.WithDecoderMaxMemory(maxParquetPageBytes))
		} else {
			err = zr.Reset(bytes.NewReader(src))
		}
		if err == nil {
			defer zstdReaders.Put(zr)
			err = c.inflate(zr, n)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: Zstd page of %d bytes: %w", errParquetData, n, err)
		}
	default:
		return nil, fmt.Errorf("%w: codec %s", errParquetData, c.codec)
	}
	return c.page, nil
}

var gzipReaders, zstdReaders sync.Pool

// maxZstdWindow bounds the window a Zstd frame of a page may claim, which
// the decoder allocates when the frame starts, outside the budget. Writers
// compress a page in one call, whose window is the page's size; zstd's
// streaming windows are 2 MiB at its default level and 8 MiB at level 19.
const maxZstdWindow = 8 << 20

// inflate reads exactly n bytes from r into c.page, and fails unless r
// then ends. c.page grows as the bytes come, from 64 KiB (or what it
// held already) by doubling, so that a claim costs only what r really
// inflates.
func (c *columnReader) inflate(r io.Reader, n int) error {
	got := 0
	size := min(n, max(cap(c.page), 64<<10))
	for {
		var err error
		if c.page, err = c.budget.bytes(c.page[:got], size); err != nil {
			return err
		}
		k, err := io.ReadFull(r, c.page[got:size])
		got += k
		if err != nil {
			return err
		}
		if got == n {
			break
		}
		size = min(n, 2*size)
	}
	var one [1]byte
	if k, err := r.Read(one[:]); k != 0 || !errors.Is(err, io.EOF) {
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		return errors.New("more bytes than claimed")
	}
	return nil
}
