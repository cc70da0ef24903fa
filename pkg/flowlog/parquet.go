package flowlog

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"

	"github.com/parquet-go/parquet-go/deprecated"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	pqformat "github.com/parquet-go/parquet-go/format"
)

// ParquetMagic is how a Parquet file starts (and ends). Files are told
// apart by it, not by name: AWS names its Parquet flow logs "….log.parquet",
// but a copy may be renamed.
const ParquetMagic = "PAR1"

// maxParquetFooterBytes bounds the footer (the file's metadata) a Parquet
// file may claim. A flow-log file's footer is a few kilobytes; a larger claim
// is corruption or hostility, and is refused before anything is allocated.
const maxParquetFooterBytes = 16 << 20

// maxParquetRows and maxParquetRowsPerByte bound the rows a file may
// claim, in all its row groups: 1 Mi, and 32 for each byte of the file
// beyond. A row costs a file almost nothing (a run of one dictionary index
// in each column), yet each takes its time to read, about 350 ns: the bound
// keeps a file of a few hundred bytes from claiming seconds of work. A byte
// of Arrow's files of flow records holds 0.07 to 1.1 rows, of NODATA
// records (mostly nulls) 4 to 5.5, and of the same ten flows repeated a
// thousand times a minute 18 to 26: 32 refuses none of them.
const (
	maxParquetRows        = 1 << 20
	maxParquetRowsPerByte = 32
)

// maxParquetValuesBase and maxParquetValuesPerByte bound the bytes a
// file's rows may hand out in all, as their fields' text: 256 MiB, and 16
// KiB for each byte of the file beyond. A row may be as long as a line
// (WithMaxLineBytes), and a dictionary value, or a DELTA_BYTE_ARRAY value
// that repeats the one before, costs the file a few bits a row however
// long: without the bound a file of 32 KiB could hand out 64 GiB, each
// byte of which is compared and copied. The densest flow-log files, 26
// rows of a few hundred bytes a byte, stay well within it.
const (
	maxParquetValuesBase    = 256 << 20
	maxParquetValuesPerByte = 16 << 10
)

// parquetReadBufferBytes is the read buffer of each column chunk: large
// enough that a ranged read over the network fetches a useful amount, small
// enough that the buffers of a wide file stay a few megabytes.
const parquetReadBufferBytes = 128 << 10

// parquetContextRows is how often, in rows, a Parquet read checks its
// context.
const parquetContextRows = 4096

// ErrMalformedParquet is returned (wrapped) by NewReader and
// NewParquetReader for a file that starts like Parquet but whose footer
// cannot be read: truncated or corrupt. It wraps ErrCorrupt. A reader of
// many files skips such a file and counts it, rather than failing them all.
var ErrMalformedParquet = fmt.Errorf("malformed Parquet flow log: %w", ErrCorrupt)

// ErrNeedsRandomAccess is returned (wrapped) by NewReader for Parquet input
// that is a stream (stdin, a pipe, an HTTP body): a Parquet file's index is
// at its end, so it can only be read from a file or through
// NewParquetReader with an io.ReaderAt.
var ErrNeedsRandomAccess = errors.New("parquet input must be a file, not a stream")

// parquetInput is the state of a Reader reading a Parquet file: one row
// group open at a time, each column read from it one value at a time.
type parquetInput struct {
	ctx    context.Context
	ra     io.ReaderAt
	groups []pqformat.RowGroup
	leaves []parquetLeaf
	next   int   // the row group to open next
	left   int64 // rows of the open group not yet read; 0 between groups
	// used holds the leaf columns a Record field is read from, and cols
	// their readers, in the same order.
	used     []int
	cols     []*columnReader
	budget   parquetBudget
	scratch  []byte // the digits of the current row's integer fields
	sinceCtx int
	// maxRowBytes bounds a row's fields together, as the longest line
	// bounds a text file's: a dictionary value of megabytes costs a row
	// nothing, and each row would carry it (WithMaxLineBytes).
	maxRowBytes int
	rowBytes    int // the current row's, a space after each field
	// values is how many bytes the rows may still hand out (see
	// maxParquetValuesBase).
	values int64
}

// randomAccess returns r as an io.ReaderAt with its size, when it is one:
// an *os.File, a *bytes.Reader, an *io.SectionReader and the like.
func randomAccess(r io.Reader) (io.ReaderAt, int64, bool) {
	ra, ok := r.(io.ReaderAt)
	if !ok {
		return nil, 0, false
	}
	switch s := r.(type) {
	case interface{ Size() int64 }:
		return ra, s.Size(), true
	case interface{ Stat() (fs.FileInfo, error) }:
		fi, err := s.Stat()
		if err != nil || !fi.Mode().IsRegular() {
			return nil, 0, false
		}
		return ra, fi.Size(), true
	}
	return nil, 0, false
}

// NewParquetReader reads flow records from the Parquet file of size bytes
// that ra holds, as AWS writes them with FileFormat=parquet: one column per
// flow-log field, named with underscores (account_id, srcaddr, log_status,
// …), any subset of the version 2 to 8 fields in any order. Integer columns
// may be INT32 or INT64; a null is a missing value ("-"); the codecs are
// GZIP, Snappy, Zstd and none. Each row is checked as a text line would
// be: a malformed row is skipped and counted, as is a row longer than
// WithMaxLineBytes allows a line, and so are the rows of a row group that
// cannot be read, numbered from 1 in Stats. Only the columns of
// Record fields are read, one page of each at a time.
//
// It returns an error wrapping ErrMalformedParquet when the file's footer
// cannot be decoded (truncated, corrupt), or describes what no flow-log
// file holds (nested columns, a codec not read, more rows than
// maxParquetRows allows); a failed read of the footer is returned as it is.
// The options WithContext and WithMaxLineBytes apply; the others concern
// text.
func NewParquetReader(ra io.ReaderAt, size int64, opts ...Option) (*Reader, error) {
	o := readerOptions{maxLineBytes: DefaultMaxLineBytes}
	for _, opt := range opts {
		opt(&o)
	}
	md, footerAt, err := readParquetFooter(ra, size)
	if err != nil {
		return nil, err
	}
	leaves, err := parquetLeaves(md.Schema)
	if err != nil {
		return nil, fmt.Errorf("flowlog: Parquet schema: %w: %w", ErrMalformedParquet, err)
	}
	names := make([]string, len(leaves))
	for i := range leaves {
		names[i] = leaves[i].name
	}
	rd := &Reader{parser: newParser(newFormat(names))}
	pq := &parquetInput{ctx: o.ctx, ra: ra, groups: md.RowGroups, leaves: leaves, maxRowBytes: o.maxLineBytes}
	pq.budget.inflate = maxParquetInflateBase + maxParquetInflateRatio*size
	pq.values = maxParquetValuesBase + maxParquetValuesPerByte*size
	for _, i := range rd.format.idx {
		if i >= 0 && !slices.Contains(pq.used, i) {
			pq.used = append(pq.used, i)
		}
	}
	slices.Sort(pq.used)
	if err := pq.checkGroups(footerAt, size); err != nil {
		return nil, fmt.Errorf("flowlog: Parquet footer: %w: %w", ErrMalformedParquet, err)
	}
	for _, i := range pq.used {
		c, err := newColumnReader(o.ctx, &pq.leaves[i], &pq.budget)
		if err != nil {
			return nil, fmt.Errorf("flowlog: Parquet file: %w: %w", ErrMalformedParquet, err)
		}
		pq.cols = append(pq.cols, c)
	}
	pq.scratch = make([]byte, 0, 24*len(pq.used))
	rd.fields = make([][]byte, len(names))
	for i := range rd.fields {
		rd.fields[i] = tokMissing
	}
	rd.pq = pq
	return rd, nil
}

var tokMissing = []byte(Missing)

// readParquetFooter checks the magic at both ends and the footer a file
// claims, every length and count in it, and decodes it; it returns the
// footer and where it starts.
func readParquetFooter(ra io.ReaderAt, size int64) (*pqformat.FileMetaData, int64, error) {
	if size < 12 {
		return nil, 0, fmt.Errorf("flowlog: %d bytes: %w", size, ErrMalformedParquet)
	}
	// A read that fails is the storage's failure, not the file's: it is
	// returned as it is, and the file is not counted as malformed.
	var tail [8]byte
	if err := readFullAt(ra, tail[:], size-8); err != nil {
		return nil, 0, fmt.Errorf("flowlog: read Parquet footer: %w", err)
	}
	if string(tail[4:]) != ParquetMagic {
		return nil, 0, fmt.Errorf("flowlog: no Parquet magic at the end (truncated?): %w", ErrMalformedParquet)
	}
	n := int64(binary.LittleEndian.Uint32(tail[:4]))
	if n > size-12 || n > maxParquetFooterBytes {
		return nil, 0, fmt.Errorf("flowlog: Parquet footer of %d bytes in a file of %d: %w", n, size, ErrMalformedParquet)
	}
	footer := make([]byte, n)
	if err := readFullAt(ra, footer, size-8-n); err != nil {
		return nil, 0, fmt.Errorf("flowlog: read Parquet footer: %w", err)
	}
	// The decoder allocates what the footer claims before reading it:
	// check every claim against the footer's own bytes first.
	if _, err := checkThriftLengths(footer); err != nil {
		return nil, 0, fmt.Errorf("flowlog: Parquet footer: %w: %w", ErrMalformedParquet, err)
	}
	md := new(pqformat.FileMetaData)
	if err := thrift.Unmarshal(&thrift.CompactProtocol{}, footer, md); err != nil {
		return nil, 0, fmt.Errorf("flowlog: Parquet footer: %w: %w", ErrMalformedParquet, err)
	}
	return md, size - 8 - n, nil
}

// readFullAt reads len(p) bytes at off, which lie inside the file: fewer
// is a failed read, whatever error (io.EOF, or none) came with them.
func readFullAt(ra io.ReaderAt, p []byte, off int64) error {
	n, err := ra.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// parquetLeaves returns the columns of a flat schema: a root whose
// children are all columns, none repeated, as flow logs are written.
func parquetLeaves(schema []pqformat.SchemaElement) ([]parquetLeaf, error) {
	if len(schema) < 2 {
		return nil, errors.New("no columns")
	}
	root := schema[0]
	if int(root.NumChildren.V) != len(schema)-1 {
		return nil, fmt.Errorf("nested columns (the root has %d children of %d elements); a flow log's are flat", root.NumChildren.V, len(schema)-1)
	}
	leaves := make([]parquetLeaf, len(schema)-1)
	for i, e := range schema[1:] {
		switch {
		case e.NumChildren.V > 0:
			return nil, fmt.Errorf("column %q is a group; a flow log's columns are flat", e.Name)
		case e.RepetitionType.Valid && e.RepetitionType.V == pqformat.Repeated:
			return nil, fmt.Errorf("column %q is repeated; a flow log's are not", e.Name)
		case !e.Type.Valid:
			return nil, fmt.Errorf("column %q has no type", e.Name)
		}
		l := parquetLeaf{name: e.Name, typ: e.Type.V, optional: e.RepetitionType.Valid && e.RepetitionType.V == pqformat.Optional}
		if it, ok := e.LogicalType.Value.(*pqformat.IntType); ok {
			l.unsigned = !it.IsSigned
		} else if e.ConvertedType.Valid {
			switch e.ConvertedType.V {
			case deprecated.Uint8, deprecated.Uint16, deprecated.Uint32, deprecated.Uint64:
				l.unsigned = true
			}
		}
		switch l.typ {
		case pqformat.Int32, pqformat.Int64, pqformat.ByteArray:
			l.supported = true
		case pqformat.FixedLenByteArray:
			l.typeLen = int(e.TypeLength.V)
			l.supported = e.TypeLength.Valid && l.typeLen > 0 && l.typeLen <= maxParquetPageBytes
		}
		leaves[i] = l
	}
	return leaves, nil
}

// checkGroups checks the row groups against the schema and the file of
// size bytes, whose pages end at footerAt: one chunk a column, as many
// values as rows, at most maxParquetRows (and maxParquetRowsPerByte) rows
// in all, and the chunks read within the pages and apart from each other,
// of the columns' types, compressed with a codec that is read. A row group
// of no rows is passed over, whatever its chunks claim (Arrow writes them
// with no pages).
func (pq *parquetInput) checkGroups(footerAt, size int64) error {
	var rows int64
	limit := maxParquetRows + maxParquetRowsPerByte*size
	type span struct{ start, end int64 }
	var spans []span
	for g := range pq.groups {
		rg := &pq.groups[g]
		if rg.NumRows < 0 || rg.NumRows > limit-rows {
			return fmt.Errorf("row group %d claims %d rows, after %d (at most %d in a file of %d bytes)", g, rg.NumRows, rows, limit, size)
		}
		rows += rg.NumRows
		if rg.NumRows == 0 {
			continue
		}
		if len(rg.Columns) != len(pq.leaves) {
			return fmt.Errorf("row group %d has %d column chunks for %d columns", g, len(rg.Columns), len(pq.leaves))
		}
		for _, i := range pq.used {
			if rg.Columns[i].FilePath != "" {
				return fmt.Errorf("row group %d: column %q is in another file, %q", g, pq.leaves[i].name, rg.Columns[i].FilePath)
			}
			m := &rg.Columns[i].MetaData
			leaf := &pq.leaves[i]
			start := chunkStart(m)
			switch {
			case !leaf.supported:
				return fmt.Errorf("column %q holds %s values; a flow-log field holds integers or strings", leaf.name, leaf.typ)
			case m.Type != leaf.typ:
				return fmt.Errorf("row group %d: column %q holds %s values, its chunk %s", g, leaf.name, leaf.typ, m.Type)
			case m.NumValues != rg.NumRows:
				return fmt.Errorf("row group %d: column %q has %d values for %d rows", g, leaf.name, m.NumValues, rg.NumRows)
			case start < int64(len(ParquetMagic)) || m.TotalCompressedSize < 0 || m.TotalCompressedSize > footerAt-start:
				return fmt.Errorf("row group %d: column %q claims bytes %d to %d of pages ending at %d", g, leaf.name, start, start+m.TotalCompressedSize, footerAt)
			}
			switch m.Codec {
			case pqformat.Uncompressed, pqformat.Snappy, pqformat.Gzip, pqformat.Zstd:
			default:
				return fmt.Errorf("column %q is compressed with %s; GZIP, SNAPPY, ZSTD or none is read", leaf.name, m.Codec)
			}
			spans = append(spans, span{start, start + m.TotalCompressedSize})
		}
	}
	// Chunks that share bytes would have them read, and inflated, over
	// and over: no writer makes them.
	slices.SortFunc(spans, func(a, b span) int { return cmp.Compare(a.start, b.start) })
	for k := 1; k < len(spans); k++ {
		if spans[k].start < spans[k-1].end {
			return fmt.Errorf("column chunks overlap at byte %d", spans[k].start)
		}
	}
	return nil
}

// chunkStart is where a column chunk's pages start: at its dictionary
// page, when it has one.
func chunkStart(m *pqformat.ColumnMetaData) int64 {
	if m.DictionaryPageOffset > 0 && m.DictionaryPageOffset < m.DataPageOffset {
		return m.DictionaryPageOffset
	}
	return m.DataPageOffset
}

// nextParquet is Next for a Parquet file. A row group that cannot be read
// has its remaining rows counted as malformed. It returns false at the end
// of the file or when the context is done (which Err then reports).
func (r *Reader) nextParquet() bool {
	pq := r.pq
	for {
		if pq.ctx != nil && pq.sinceCtx == 0 {
			pq.sinceCtx = parquetContextRows
			if err := pq.ctx.Err(); err != nil {
				r.err = fmt.Errorf("flowlog: read after row %d: %w", r.stats.Lines, err)
				pq.stop()
				return false
			}
		}
		pq.sinceCtx--
		for pq.left == 0 {
			if pq.next == len(pq.groups) {
				return false
			}
			pq.open()
		}
		if err := r.parquetRow(); err != nil {
			if errors.Is(err, errParquetRead) {
				// The storage failed, or the context ended, not the file:
				// the read fails.
				r.err = fmt.Errorf("flowlog: read Parquet row group %d after row %d: %w", pq.next, r.stats.Lines, err)
				pq.stop()
				return false
			}
			// The rest of the group is lost, this row included.
			r.skipRows(pq.left)
			pq.left = 0
			continue
		}
		pq.left--
		r.stats.Lines++
		if pq.rowBytes > pq.maxRowBytes {
			r.count(lineMalformed)
			continue
		}
		r.out = &r.rec
		if r.count(r.parseFields()) {
			return true
		}
	}
}

// stop ends the read: Next returns false from now on.
func (pq *parquetInput) stop() {
	pq.groups, pq.next, pq.left = nil, 0, 0
}

// open starts reading the next row group.
func (pq *parquetInput) open() {
	g := &pq.groups[pq.next]
	pq.next++
	if g.NumRows == 0 {
		// checkGroups passed it over: its chunks may be missing.
		return
	}
	for k, i := range pq.used {
		m := &g.Columns[i].MetaData
		pq.cols[k].reset(pq.ra, chunkStart(m), m)
	}
	pq.left = g.NumRows
}

// parquetRow sets r.fields from the next row, as the tokens a text line
// would hold: integers in decimal, nulls and empty strings as "-". It
// fails when a column cannot be read.
func (r *Reader) parquetRow() error {
	pq := r.pq
	pq.scratch = pq.scratch[:0]
	pq.rowBytes = 0
	for k, i := range pq.used {
		tok, err := pq.cols[k].next(&pq.scratch)
		if err != nil {
			return err
		}
		if len(tok) == 0 {
			tok = tokMissing
		}
		pq.rowBytes += len(tok) + 1
		r.fields[i] = tok
	}
	if int64(pq.rowBytes) > pq.values {
		return fmt.Errorf("%w: the rows hand out more than %d bytes of values in all (%d MiB and %d KiB for each byte of the file)",
			errParquetData, pq.values, maxParquetValuesBase>>20, maxParquetValuesPerByte>>10)
	}
	pq.values -= int64(pq.rowBytes)
	return nil
}

// skipRows counts n rows as read and malformed.
func (r *Reader) skipRows(n int64) {
	// Only the first few are numbered, so that rows a row group claims
	// are counted at once, however many.
	numbered := min(n, max(maxFirstSkipped-r.stats.Skipped, 0))
	for k := range numbered {
		r.firstSkip[r.stats.Skipped+k] = r.stats.Lines + k + 1
	}
	r.stats.Skipped += n
	r.stats.Lines += n
}
