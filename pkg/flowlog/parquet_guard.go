package flowlog

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/parquet-go/parquet-go/encoding/thrift"
	pqformat "github.com/parquet-go/parquet-go/format"
)

// maxParquetPageBytes bounds the uncompressed size a page of a Parquet
// file may claim. The library allocates what a page header claims before
// it reads the page, up to 2 GiB a page: a file of a few kilobytes
// claiming that much in a header, corrupt or hostile, would take as much
// memory. Writers cut pages at about 1 MiB (Arrow, parquet-mr) or less
// (parquet-go), so 64 MiB refuses no file a tool writes.
const maxParquetPageBytes = 64 << 20

// maxParquetChunkValues bounds the rows of a row group, and the values of
// a column chunk, that a file may claim. A page's values, which the
// library also allocates by its header's count before decoding them (a
// byte of levels, four of dictionary index and eight of value each, at
// most), are at most its chunk's, and cost their page nothing to claim:
// a page of a million nulls takes a few bytes. AWS cuts its flow-log files
// at 75 MB, under a million records, and writers cut row groups at about
// a million rows (Arrow) or 128 MiB (parquet-mr), so 16 Mi refuses none.
const maxParquetChunkValues = 16 << 20

// maxParquetHeaderBytes bounds a page header: a few dozen bytes, or a few
// hundred with the statistics of long strings.
const maxParquetHeaderBytes = 64 << 10

// errParquetPage is why a page was refused before the library read it.
var errParquetPage = errors.New("parquet page header out of bounds")

// pageGuard is the io.ReaderAt a Parquet file is read through. It checks
// each page header of a column chunk as the library's reads reach it,
// before the library trusts it: the page must end within its chunk, and
// claim at most maxParquetPageBytes uncompressed and no more values than
// its chunk holds. A read that reaches a page refused fails, so the
// library fails its row group, whose rows are then counted as malformed.
//
// It follows the library's reading of a chunk, from its dictionary page
// (or first data page) through TotalCompressedSize bytes, one page after
// another, each header followed by its compressed bytes.
type pageGuard struct {
	ra io.ReaderAt

	mu     sync.Mutex
	chunks []guardedChunk // by start; none until watch
}

// guardedChunk is a column chunk's bytes and the headers found in them.
type guardedChunk struct {
	start, end int64 // the chunk's bytes, as the library reads them
	values     int64 // its values, nulls included
	// next is where the next header not yet checked starts: every header
	// before it has been; end when all have. bad, when set, is why the
	// header at next was refused.
	next int64
	bad  error
}

// watch starts checking the pages of the chunks that md, the footer of a
// file of size bytes, describes; reads before it (the footer's) pass as
// they are. It refuses a footer whose row groups or chunks claim more
// than maxParquetChunkValues, or whose chunks overlap or leave the file's
// pages, which no writer makes.
func (g *pageGuard) watch(md *pqformat.FileMetaData, size int64) error {
	var chunks []guardedChunk
	for i, rg := range md.RowGroups {
		if rg.NumRows < 0 || rg.NumRows > maxParquetChunkValues {
			return fmt.Errorf("row group %d claims %d rows (at most %d)", i, rg.NumRows, maxParquetChunkValues)
		}
		for _, cc := range rg.Columns {
			m := &cc.MetaData
			start := m.DataPageOffset
			if m.DictionaryPageOffset != 0 {
				start = m.DictionaryPageOffset
			}
			if m.NumValues < 0 || m.NumValues > maxParquetChunkValues {
				return fmt.Errorf("a column chunk of row group %d claims %d values (at most %d)", i, m.NumValues, maxParquetChunkValues)
			}
			if start < int64(len(ParquetMagic)) || m.TotalCompressedSize < 0 || m.TotalCompressedSize > size-start {
				return fmt.Errorf("a column chunk of row group %d claims bytes %d to %d of %d", i, start, start+m.TotalCompressedSize, size)
			}
			chunks = append(chunks, guardedChunk{start: start, end: start + m.TotalCompressedSize, values: m.NumValues, next: start})
		}
	}
	slices.SortFunc(chunks, func(a, b guardedChunk) int { return cmp.Compare(a.start, b.start) })
	for i := 1; i < len(chunks); i++ {
		if chunks[i].start < chunks[i-1].end {
			return fmt.Errorf("column chunks overlap at byte %d", chunks[i].start)
		}
	}
	g.mu.Lock()
	g.chunks = chunks
	g.mu.Unlock()
	return nil
}

// ReadAt implements io.ReaderAt.
func (g *pageGuard) ReadAt(p []byte, off int64) (int, error) {
	n, err := g.ra.ReadAt(p, off)
	g.mu.Lock()
	defer g.mu.Unlock()
	end := off + int64(n)
	// The chunks are apart and in order: the first the read reaches is the
	// one before the first that starts after off, or that one.
	i, _ := slices.BinarySearchFunc(g.chunks, off, func(c guardedChunk, off int64) int { return cmp.Compare(c.start, off) })
	for i = max(i-1, 0); i < len(g.chunks); i++ {
		c := &g.chunks[i]
		if c.start >= end {
			break
		}
		if c.end <= off {
			continue
		}
		if cerr := g.check(c, p[:n], off); cerr != nil {
			return 0, cerr
		}
	}
	return n, err
}

// check checks the headers of c that start before the end of got, the
// bytes just read at off, reading what a header needs beyond got.
func (g *pageGuard) check(c *guardedChunk, got []byte, off int64) error {
	end := off + int64(len(got))
	for c.bad == nil && c.next < c.end && c.next < end {
		h, n, err := g.header(c, got, off)
		if err == nil {
			err = checkPage(h, n, c)
		}
		if err != nil {
			c.bad = fmt.Errorf("flowlog: page at byte %d: %w", c.next, err)
			break
		}
		c.next += int64(n) + int64(h.CompressedPageSize)
	}
	return c.bad
}

// header decodes the page header at c.next, and returns its length: from
// got when it holds the header, else read alone (a header cut by the end
// of a read, or one before it, as when a read starts inside the chunk).
func (g *pageGuard) header(c *guardedChunk, got []byte, off int64) (*pqformat.PageHeader, int, error) {
	limit := min(c.end-c.next, maxParquetHeaderBytes)
	if c.next >= off {
		buf := got[c.next-off : min(int64(len(got)), c.next-off+limit)]
		h, n, err := decodeHeader(buf)
		if err == nil || int64(len(buf)) == limit {
			return h, n, err
		}
	}
	buf := make([]byte, limit)
	n, err := g.ra.ReadAt(buf, c.next)
	if n < len(buf) && err != nil && !errors.Is(err, io.EOF) {
		return nil, 0, err
	}
	return decodeHeader(buf[:n])
}

// decodeHeader decodes the page header at the start of buf, and returns
// its length.
func decodeHeader(buf []byte) (*pqformat.PageHeader, int, error) {
	if _, err := checkThriftLengths(buf); err != nil {
		return nil, 0, fmt.Errorf("%w: %w", errParquetPage, err)
	}
	r := bytes.NewReader(buf)
	h := new(pqformat.PageHeader)
	if err := thrift.NewDecoder((&thrift.CompactProtocol{}).NewReader(r)).Decode(h); err != nil {
		return nil, 0, fmt.Errorf("%w: %w", errParquetPage, err)
	}
	return h, len(buf) - r.Len(), nil
}

// checkPage checks the header h, of n bytes at c.next.
func checkPage(h *pqformat.PageHeader, n int, c *guardedChunk) error {
	values := int64(0)
	switch {
	case h.DataPageHeader.Valid:
		values = int64(h.DataPageHeader.V.NumValues)
	case h.DataPageHeaderV2.Valid:
		values = int64(h.DataPageHeaderV2.V.NumValues)
	case h.DictionaryPageHeader.Valid:
		values = int64(h.DictionaryPageHeader.V.NumValues)
	}
	switch {
	case h.CompressedPageSize < 0 || c.next+int64(n)+int64(h.CompressedPageSize) > c.end:
		return fmt.Errorf("%w: %d compressed bytes past the end of the column chunk", errParquetPage, h.CompressedPageSize)
	case h.UncompressedPageSize < 0 || h.UncompressedPageSize > maxParquetPageBytes:
		return fmt.Errorf("%w: %d uncompressed bytes (at most %d)", errParquetPage, h.UncompressedPageSize, maxParquetPageBytes)
	case values < 0 || values > c.values:
		return fmt.Errorf("%w: %d values in a column chunk of %d", errParquetPage, values, c.values)
	}
	return nil
}
