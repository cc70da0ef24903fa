package flowlog

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"

	"github.com/parquet-go/parquet-go"
)

// ParquetMagic is how a Parquet file starts (and ends). Files are told
// apart by it, not by name: AWS names its Parquet flow logs "….log.parquet",
// but a copy may be renamed.
const ParquetMagic = "PAR1"

// maxParquetFooterBytes bounds the footer (the file's metadata) a Parquet
// file may claim. A flow-log file's footer is a few kilobytes; a larger claim
// is corruption or hostility, and is refused before anything is allocated.
const maxParquetFooterBytes = 16 << 20

// parquetRowBatch is how many rows are decoded at a time: enough to amortise
// the calls, few enough that the batch stays small beside a row group.
const parquetRowBatch = 256

// parquetReadBufferBytes is the read buffer of each column chunk: large
// enough that a ranged read over the network fetches a useful amount, small
// enough that the buffers of a wide file stay a few megabytes.
const parquetReadBufferBytes = 128 << 10

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
// group open at a time, rows decoded a batch at a time.
type parquetInput struct {
	ctx    context.Context
	groups []parquet.RowGroup
	next   int          // the row group to open next
	rows   parquet.Rows // the open row group's rows; nil between groups
	left   int64        // rows of the open group not yet decoded
	batch  []parquet.Row
	n, i   int // rows in batch, next row in it
	// used holds, for each leaf column, whether a Record field is read
	// from it.
	used    []bool
	scratch []byte // the digits of the current row's integer fields
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
// those the file names (GZIP, Snappy, Zstd, uncompressed…). Each row is
// checked as a text line would be: a malformed row is skipped and counted,
// and so are the rows of a row group that cannot be decoded, numbered from
// 1 in Stats. Only one row group's pages are held at a time.
//
// It returns an error wrapping ErrMalformedParquet when the file's footer
// cannot be read. The options WithContext applies; the others concern text.
func NewParquetReader(ra io.ReaderAt, size int64, opts ...Option) (*Reader, error) {
	o := readerOptions{}
	for _, opt := range opts {
		opt(&o)
	}
	if err := checkParquetFooter(ra, size); err != nil {
		return nil, err
	}
	guard := &pageGuard{ra: ra}
	f, err := openParquet(guard, size)
	if err != nil {
		return nil, err
	}
	if err := guard.watch(f.Metadata(), size); err != nil {
		return nil, fmt.Errorf("flowlog: open Parquet file: %w: %w", ErrMalformedParquet, err)
	}
	cols := f.Schema().Columns()
	names := make([]string, len(cols))
	for i, path := range cols {
		names[i] = path[len(path)-1]
	}
	rd := &Reader{parser: newParser(newFormat(names))}
	pq := &parquetInput{
		ctx:     o.ctx,
		groups:  f.RowGroups(),
		batch:   make([]parquet.Row, parquetRowBatch),
		used:    make([]bool, len(names)),
		scratch: make([]byte, 0, 24*len(names)),
	}
	for _, i := range rd.format.idx {
		if i >= 0 {
			pq.used[i] = true
		}
	}
	rd.fields = make([][]byte, len(names))
	for i := range rd.fields {
		rd.fields[i] = tokMissing
	}
	rd.pq = pq
	return rd, nil
}

var tokMissing = []byte(Missing)

// checkParquetFooter checks the magic at both ends and the footer length a
// file claims, so that a truncated file or an absurd claim is refused
// before the library allocates for it.
func checkParquetFooter(ra io.ReaderAt, size int64) error {
	if size < 12 {
		return fmt.Errorf("flowlog: %d bytes: %w", size, ErrMalformedParquet)
	}
	var tail [8]byte
	if _, err := ra.ReadAt(tail[:], size-8); err != nil {
		return fmt.Errorf("flowlog: read Parquet footer: %w: %w", ErrMalformedParquet, err)
	}
	if string(tail[4:]) != ParquetMagic {
		return fmt.Errorf("flowlog: no Parquet magic at the end (truncated?): %w", ErrMalformedParquet)
	}
	n := int64(binary.LittleEndian.Uint32(tail[:4]))
	if n > size-12 || n > maxParquetFooterBytes {
		return fmt.Errorf("flowlog: Parquet footer of %d bytes in a file of %d: %w", n, size, ErrMalformedParquet)
	}
	// The library's decoder allocates the lengths the footer claims
	// before reading them: check them against the footer's own bytes.
	footer := make([]byte, n)
	if _, err := ra.ReadAt(footer, size-8-n); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("flowlog: read Parquet footer: %w: %w", ErrMalformedParquet, err)
	}
	if _, err := checkThriftLengths(footer); err != nil {
		return fmt.Errorf("flowlog: Parquet footer: %w: %w", ErrMalformedParquet, err)
	}
	return nil
}

// openParquet opens the file, turning a failure (or a panic of the library
// on hostile bytes) into ErrMalformedParquet.
func openParquet(ra io.ReaderAt, size int64) (f *parquet.File, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("flowlog: open Parquet file: %w: %v", ErrMalformedParquet, p)
		}
	}()
	f, err = parquet.OpenFile(ra, size,
		parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true),
		parquet.ReadBufferSize(parquetReadBufferBytes))
	if err != nil {
		return nil, fmt.Errorf("flowlog: open Parquet file: %w: %w", ErrMalformedParquet, err)
	}
	return f, nil
}

// nextParquet is Next for a Parquet file.
func (r *Reader) nextParquet() bool {
	pq := r.pq
	for {
		if pq.i == pq.n && !r.fillParquet() {
			return false
		}
		row := pq.batch[pq.i]
		pq.i++
		r.stats.Lines++
		kind := lineMalformed
		if r.rowFields(row) {
			r.out = &r.rec
			kind = r.parseFields()
		}
		if r.count(kind) {
			return true
		}
	}
}

// fillParquet decodes the next batch of rows, opening row groups as needed.
// A row group that cannot be decoded has its remaining rows counted as
// malformed. It returns false at the end of the file or when the context
// is done (which Err then reports).
func (r *Reader) fillParquet() bool {
	pq := r.pq
	for {
		if pq.ctx != nil {
			if err := pq.ctx.Err(); err != nil {
				r.err = fmt.Errorf("flowlog: read after row %d: %w", r.stats.Lines, err)
				pq.close()
				return false
			}
		}
		if pq.rows == nil {
			if pq.next == len(pq.groups) {
				return false
			}
			g := pq.groups[pq.next]
			pq.next++
			pq.rows, pq.left = g.Rows(), g.NumRows()
		}
		n, err := pq.read()
		n = min(n, int(pq.left))
		pq.left -= int64(n)
		pq.n, pq.i = n, 0
		if err != nil && !errors.Is(err, io.EOF) {
			// The rest of the group is lost; count it as malformed rows,
			// after the rows decoded before the failure.
			r.skipRows(pq.left, int64(n))
			pq.left = 0
		}
		if err != nil || pq.left == 0 {
			_ = pq.rows.Close()
			pq.rows = nil
		}
		if n > 0 {
			return true
		}
	}
}

// read decodes a batch, turning a panic of the library on hostile bytes
// into an error.
func (pq *parquetInput) read() (n int, err error) {
	defer func() {
		if p := recover(); p != nil {
			n, err = 0, fmt.Errorf("decode row group: %v", p)
		}
	}()
	return pq.rows.ReadRows(pq.batch)
}

func (pq *parquetInput) close() {
	if pq.rows != nil {
		_ = pq.rows.Close()
		pq.rows = nil
	}
}

// skipRows counts n rows as read and malformed; the first of them comes
// after the after rows still waiting in the batch.
func (r *Reader) skipRows(n, after int64) {
	// Only the first few are numbered, so that rows a row group claims
	// are counted at once, however many.
	numbered := min(n, max(maxFirstSkipped-r.stats.Skipped, 0))
	for k := range numbered {
		r.firstSkip[r.stats.Skipped+k] = r.stats.Lines + after + k + 1
	}
	r.stats.Skipped += n
	r.stats.Lines += n
}

// rowFields sets r.fields from one row, as the tokens a text line would
// hold: integers in decimal, nulls and empty strings as "-". It returns
// false for a row whose values cannot be tokens of a flow record (a float,
// a boolean, a value the schema does not place).
func (r *Reader) rowFields(row parquet.Row) bool {
	pq := r.pq
	scratch := pq.scratch[:0]
	for c, used := range pq.used {
		if used {
			r.fields[c] = tokMissing
		}
	}
	for _, v := range row {
		c := v.Column()
		if c < 0 || c >= len(pq.used) {
			return false
		}
		if !pq.used[c] {
			continue
		}
		if v.IsNull() {
			r.fields[c] = tokMissing
			continue
		}
		switch v.Kind() {
		case parquet.Int32:
			start := len(scratch)
			scratch = strconv.AppendInt(scratch, int64(v.Int32()), 10)
			r.fields[c] = scratch[start:]
		case parquet.Int64:
			start := len(scratch)
			scratch = strconv.AppendInt(scratch, v.Int64(), 10)
			r.fields[c] = scratch[start:]
		case parquet.ByteArray, parquet.FixedLenByteArray:
			b := v.ByteArray()
			if len(b) == 0 {
				b = tokMissing
			}
			r.fields[c] = b
		default:
			return false
		}
	}
	pq.scratch = scratch
	return true
}
