package flowlog_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	pqformat "github.com/parquet-go/parquet-go/format"
	"github.com/stretchr/testify/require"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/flowlog"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/flowlog/flowlogtest"
)

// footerOf returns the metadata of a Parquet file and where it starts.
func footerOf(t *testing.T, data []byte) (*pqformat.FileMetaData, int) {
	t.Helper()
	n := int(binary.LittleEndian.Uint32(data[len(data)-8:]))
	at := len(data) - 8 - n
	md := new(pqformat.FileMetaData)
	require.NoError(t, thrift.Unmarshal(&thrift.CompactProtocol{}, data[at:len(data)-8], md))
	return md, at
}

// withFooter returns the pages of a Parquet file, before its footer at
// at, with the footer md.
func withFooter(t *testing.T, pages []byte, md *pqformat.FileMetaData) []byte {
	t.Helper()
	footer, err := thrift.Marshal(&thrift.CompactProtocol{}, md)
	require.NoError(t, err)
	out := append(append([]byte(nil), pages...), footer...)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(footer)))
	return append(out, flowlog.ParquetMagic...)
}

// withPageHeader returns the Parquet file data with the header of the
// first page of its first column chunk changed by edit, and the footer's
// offsets moved to match its new length, so that the reader reads the
// changed header as it would a true one.
func withPageHeader(t *testing.T, data []byte, edit func(*pqformat.PageHeader)) []byte {
	t.Helper()
	md, at := footerOf(t, data)
	first := &md.RowGroups[0].Columns[0].MetaData
	off := first.DataPageOffset
	if first.DictionaryPageOffset != 0 {
		off = first.DictionaryPageOffset
	}
	proto := &thrift.CompactProtocol{}
	r := bytes.NewReader(data[off:at])
	h := new(pqformat.PageHeader)
	require.NoError(t, thrift.NewDecoder(proto.NewReader(r)).Decode(h))
	oldLen := len(data[off:at]) - r.Len()
	edit(h)
	header, err := thrift.Marshal(proto, h)
	require.NoError(t, err)
	delta := int64(len(header) - oldLen)
	for g := range md.RowGroups {
		for c := range md.RowGroups[g].Columns {
			m := &md.RowGroups[g].Columns[c].MetaData
			if m.DataPageOffset > off {
				m.DataPageOffset += delta
			}
			if m.DictionaryPageOffset > off {
				m.DictionaryPageOffset += delta
			}
		}
	}
	first.TotalCompressedSize += delta
	pages := append(append(append([]byte(nil), data[:off]...), header...), data[int(off)+oldLen:at]...)
	return withFooter(t, pages, md)
}

// readAllocating reads a Parquet file to its end and returns its stats
// and how many bytes the read allocated.
func readAllocating(t *testing.T, data []byte) (flowlog.Stats, uint64) {
	t.Helper()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	r, err := flowlog.NewParquetReader(bytes.NewReader(data), int64(len(data)))
	require.NoError(t, err)
	for r.Next() {
	}
	require.NoError(t, r.Err())
	runtime.ReadMemStats(&after)
	return r.Stats(), after.TotalAlloc - before.TotalAlloc
}

// TestParquetPageClaimsBounded checks that what a page header claims is
// checked before anything is allocated for it: a file of a few kilobytes
// whose first page claims a gigabyte, or a billion values, is read as a
// row group of malformed rows, with a few megabytes allocated, where
// parquet-go's page decoding allocated the gigabyte claimed (1.25 GB
// measured). A header that changes nothing still reads.
func TestParquetPageClaimsBounded(t *testing.T) {
	// Not parallel: it counts what the process allocates.
	fields := flowlog.DefaultFields()
	data := parquetBytes(t, flowlogtest.ParquetFile{Fields: fields, Codec: &parquet.Gzip, RowsPerGroup: 300}, sampleRows(t, 600, fields))

	st, _ := readAllocating(t, withPageHeader(t, data, func(*pqformat.PageHeader) {}))
	require.Equal(t, flowlog.Stats{Lines: 600, Used: 600}, st, "an unchanged header")

	tests := []struct {
		name string
		edit func(*pqformat.PageHeader)
	}{
		{"a gigabyte uncompressed", func(h *pqformat.PageHeader) { h.UncompressedPageSize = 1 << 30 }},
		{"past the column chunk", func(h *pqformat.PageHeader) { h.CompressedPageSize = 1 << 30 }},
		{"a billion values", func(h *pqformat.PageHeader) {
			switch {
			case h.DictionaryPageHeader.Valid:
				h.DictionaryPageHeader.V.NumValues = 1 << 30
			case h.DataPageHeaderV2.Valid:
				h.DataPageHeaderV2.V.NumValues = 1 << 30
				h.DataPageHeaderV2.V.NumRows = 1 << 30
			default:
				h.DataPageHeader.V.NumValues = 1 << 30
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, alloc := readAllocating(t, withPageHeader(t, data, tt.edit))
			// The first row group is lost, the second read.
			require.Equal(t, int64(600), st.Lines)
			require.Equal(t, int64(300), st.Skipped)
			require.Equal(t, int64(300), st.Used)
			require.Equal(t, []int64{1, 2, 3, 4, 5}, st.FirstSkipped)
			require.Less(t, alloc, uint64(32<<20), "allocated %d bytes", alloc)
		})
	}
}

// TestParquetFooterClaimsBounded checks that a footer claiming more rows
// or values than any writer makes, or column chunks that overlap or leave
// the file, is refused as malformed when the file is opened.
func TestParquetFooterClaimsBounded(t *testing.T) {
	// Not parallel: it counts what the process allocates.
	fields := flowlog.DefaultFields()
	data := parquetBytes(t, flowlogtest.ParquetFile{Fields: fields, Codec: &parquet.Snappy, RowsPerGroup: 50}, sampleRows(t, 100, fields))
	tests := []struct {
		name string
		edit func(*pqformat.FileMetaData)
	}{
		{"rows", func(md *pqformat.FileMetaData) { md.RowGroups[1].NumRows = 1 << 40 }},
		{"negative rows", func(md *pqformat.FileMetaData) { md.RowGroups[0].NumRows = -1 }},
		{"values", func(md *pqformat.FileMetaData) { md.RowGroups[0].Columns[3].MetaData.NumValues = 1 << 40 }},
		{"past the end", func(md *pqformat.FileMetaData) {
			md.RowGroups[1].Columns[0].MetaData.TotalCompressedSize = 1 << 40
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			md, at := footerOf(t, data)
			tt.edit(md)
			bad := withFooter(t, data[:at], md)
			_, err := flowlog.NewParquetReader(bytes.NewReader(bad), int64(len(bad)))
			require.ErrorIs(t, err, flowlog.ErrMalformedParquet)
		})
	}
	// Footers that claim a list of 1 Gi row groups, which the decoder
	// allocated before finding the bytes missing (a fatal "out of
	// memory", which no recover catches), and a created_by string of 1 GiB.
	_, at := footerOf(t, data)
	for _, claim := range [][]byte{
		{0x49, 0xfc, 0x80, 0x80, 0x80, 0x80, 0x04},
		{0x68, 0x80, 0x80, 0x80, 0x80, 0x04},
	} {
		claim = append(claim, make([]byte, 32)...)
		bad := binary.LittleEndian.AppendUint32(append(append([]byte(nil), data[:at]...), claim...), uint32(len(claim)))
		bad = append(bad, flowlog.ParquetMagic...)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := flowlog.NewParquetReader(bytes.NewReader(bad), int64(len(bad)))
		runtime.ReadMemStats(&after)
		require.ErrorIs(t, err, flowlog.ErrMalformedParquet)
		require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(16<<20), "allocated for a claim in the footer % x", claim[:7])
	}

	md, at := footerOf(t, data)
	r, err := flowlog.NewParquetReader(bytes.NewReader(withFooter(t, data[:at], md)), int64(len(data)))
	require.NoError(t, err, "the footer as written")
	recs, _ := readRecords(t, r)
	require.Len(t, recs, 100)
}

// hostileMeta returns the footer of a file of one row of T, for files
// made up around its schema.
func hostileMeta[T any](t *testing.T, row T) *pqformat.FileMetaData {
	t.Helper()
	var b bytes.Buffer
	w := parquet.NewGenericWriter[T](&b)
	_, err := w.Write([]T{row})
	require.NoError(t, err)
	require.NoError(t, w.Close())
	md, _ := footerOf(t, b.Bytes())
	return md
}

// hostileChunk is a column chunk of a made-up file.
type hostileChunk struct {
	bytes     []byte
	dictLen   int64 // the dictionary page's bytes at its start, if any
	numValues int64
	codec     pqformat.CompressionCodec
	typ       pqformat.Type
}

// hostileFile makes a file of md's schema whose row groups of rows rows
// hold the chunks of groups, each claiming what it holds.
func hostileFile(t *testing.T, md *pqformat.FileMetaData, rows int64, groups ...[]hostileChunk) []byte {
	t.Helper()
	data := []byte(flowlog.ParquetMagic)
	out := *md
	out.RowGroups, out.NumRows = nil, 0
	for _, g := range groups {
		rg := pqformat.RowGroup{NumRows: rows}
		for i, c := range g {
			start := int64(len(data))
			data = append(data, c.bytes...)
			m := pqformat.ColumnMetaData{Type: c.typ, Encoding: []pqformat.Encoding{pqformat.Plain},
				PathInSchema: []string{md.Schema[1+i%(len(md.Schema)-1)].Name}, Codec: c.codec, NumValues: c.numValues,
				TotalUncompressedSize: int64(len(c.bytes)), TotalCompressedSize: int64(len(c.bytes)), DataPageOffset: start}
			if c.dictLen > 0 {
				m.DictionaryPageOffset = start
				m.DataPageOffset = start + c.dictLen
			}
			rg.Columns = append(rg.Columns, pqformat.ColumnChunk{FileOffset: start, MetaData: m})
		}
		out.RowGroups = append(out.RowGroups, rg)
		out.NumRows += rows
	}
	return withFooter(t, data, &out)
}

// hostilePage returns a page of header h and data.
func hostilePage(t *testing.T, h pqformat.PageHeader, data []byte) []byte {
	t.Helper()
	if h.CompressedPageSize == 0 {
		h.CompressedPageSize = int32(len(data))
	}
	b, err := thrift.Marshal(&thrift.CompactProtocol{}, &h)
	require.NoError(t, err)
	return append(b, data...)
}

func hostileDataPage(n int32, enc pqformat.Encoding, uncompressed int32) pqformat.PageHeader {
	return pqformat.PageHeader{Type: pqformat.DataPage, UncompressedPageSize: uncompressed,
		DataPageHeader: thrift.New(pqformat.DataPageHeader{NumValues: n, Encoding: enc, DefinitionLevelEncoding: pqformat.RLE, RepetitionLevelEncoding: pqformat.RLE})}
}

// wideMeta is the footer of a file of 30 INT64 columns, each of a field
// the reader reads.
func wideMeta(t *testing.T) *pqformat.FileMetaData {
	t.Helper()
	type wide struct {
		C00, C01, C02, C03, C04, C05, C06, C07, C08, C09 int64
		C10, C11, C12, C13, C14, C15, C16, C17, C18, C19 int64
		C20, C21, C22, C23, C24, C25, C26, C27, C28, C29 int64
	}
	md := hostileMeta(t, wide{})
	for i, f := range append(flowlog.DefaultFields(), v5Fields[14:]...)[:30] {
		md.Schema[1+i].Name = flowlogtest.ParquetColumn(f)
	}
	return md
}

// zstdZeros is a Zstd frame (of a 128 KiB window, claiming no size) of n
// zero bytes, in RLE blocks of four bytes each for 128 KiB.
func zstdZeros(n int) []byte {
	z := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x38}
	for n > 0 {
		k := min(n, 128<<10)
		n -= k
		hdr := uint32(k)<<3 | 1<<1
		if n == 0 {
			hdr |= 1
		}
		z = append(z, byte(hdr), byte(hdr>>8), byte(hdr>>16), 0)
	}
	return z
}

// TestParquetHostileFilesBounded reads files of a few hundred bytes, each
// made to claim, somewhere in a page's data or the footer, what made
// parquet-go's page decoding allocate gigabytes, loop for ever or abort
// the process (1.2 GiB, 2.7 GiB, 1 GiB, 6.3 GiB, an endless loop,
// 2.2 GiB…, measured before the reader decoded pages itself). Each is
// refused when it is opened, or read with the rows it claims counted as
// malformed, in a few megabytes (what the columns may hold, for the one
// whose pages really inflate).
func TestParquetHostileFilesBounded(t *testing.T) {
	// Not parallel: it counts what the process allocates.
	type int64Row struct {
		Bytes int64 `parquet:"bytes"`
	}
	type optRow struct {
		Bytes *int64 `parquet:"bytes,optional"`
	}
	type int32Row struct {
		Port int32 `parquet:"srcport"`
	}
	type strRow struct {
		Addr string `parquet:"srcaddr"`
	}
	uv := func(u uint64) []byte { return binary.AppendUvarint(nil, u) }
	snappyOf := func(b []byte) []byte { return snappy.Encode(nil, b) }
	levels := func(runs ...uint64) []byte { // RLE runs of 1s, with their length
		var lv []byte
		for _, n := range runs {
			lv = append(append(lv, uv(n<<1)...), 1)
		}
		return append(binary.LittleEndian.AppendUint32(nil, uint32(len(lv))), lv...)
	}
	i64 := hostileMeta(t, int64Row{1})
	tests := []struct {
		name    string
		file    func() []byte
		refused bool // at open; else its rows are malformed
		// bound is what it may allocate in all, when more than a few
		// megabytes: what the columns may hold at once (256 MiB), and
		// the buffers left behind as they grew.
		bound uint64
		// rows is how many rows, all malformed, a file not refused
		// holds, when not 1.
		rows int64
	}{
		{"data pages start inside the dictionary page", func() []byte {
			inner := hostilePage(t, hostileDataPage(1, pqformat.Plain, 1<<30), snappyOf(make([]byte, 8)))
			dict, err := thrift.Marshal(&thrift.CompactProtocol{}, &pqformat.PageHeader{Type: pqformat.DictionaryPage, UncompressedPageSize: 8,
				CompressedPageSize: int32(len(inner)), DictionaryPageHeader: thrift.New(pqformat.DictionaryPageHeader{NumValues: 1, Encoding: pqformat.Plain})})
			require.NoError(t, err)
			return hostileFile(t, i64, 1, []hostileChunk{{bytes: append(dict, inner...), dictLen: int64(len(dict)), numValues: 1, codec: pqformat.Snappy, typ: pqformat.Int64}})
		}, false, 0, 0},
		{"definition-level runs of 2^29", func() []byte {
			d := append(levels(1<<29, 1<<29), make([]byte, 8)...)
			return hostileFile(t, hostileMeta(t, optRow{}), 1, []hostileChunk{{bytes: hostilePage(t, hostileDataPage(1, pqformat.Plain, int32(len(d))), d), numValues: 1, typ: pqformat.Int64}})
		}, false, 0, 0},
		{"delta header claiming 2^28 values", func() []byte {
			d := append(append(append(uv(128), uv(4)...), uv(1<<28)...), 0)
			return hostileFile(t, hostileMeta(t, int32Row{}), 1, []hostileChunk{{bytes: hostilePage(t, hostileDataPage(1, pqformat.DeltaBinaryPacked, int32(len(d))), d), numValues: 1, typ: pqformat.Int32}})
		}, false, 0, 0},
		{"delta lengths claiming a gigabyte", func() []byte {
			d := append(append(append(append(uv(128), uv(4)...), uv(1)...), uv(1<<31)...), 'x')
			return hostileFile(t, hostileMeta(t, strRow{}), 1, []hostileChunk{{bytes: hostilePage(t, hostileDataPage(1, pqformat.DeltaLengthByteArray, int32(len(d))), d), numValues: 1, typ: pqformat.ByteArray}})
		}, false, 0, 0},
		{"Zstd frames inflating to 512 MiB", func() []byte {
			return hostileFile(t, i64, 1, []hostileChunk{{bytes: hostilePage(t, hostileDataPage(1, pqformat.Plain, 8), zstdZeros(512<<20)), numValues: 1, codec: pqformat.Zstd, typ: pqformat.Int64}})
		}, false, 0, 0},
		{"gzip inflating to 64 MiB", func() []byte {
			var z bytes.Buffer
			zw := gzip.NewWriter(&z)
			_, _ = zw.Write(make([]byte, 64<<20))
			require.NoError(t, zw.Close())
			return hostileFile(t, i64, 1, []hostileChunk{{bytes: hostilePage(t, hostileDataPage(1, pqformat.Plain, 8), z.Bytes()), numValues: 1, codec: pqformat.Gzip, typ: pqformat.Int64}})
		}, false, 0, 0},
		{"Snappy claiming a gigabyte", func() []byte {
			d := append(uv(1<<30), 0, 0, 0, 0)
			return hostileFile(t, i64, 1, []hostileChunk{{bytes: hostilePage(t, hostileDataPage(1, pqformat.Plain, 8), d), numValues: 1, codec: pqformat.Snappy, typ: pqformat.Int64}})
		}, false, 0, 0},
		{"LZ4_RAW garbage", func() []byte {
			d := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
			return hostileFile(t, i64, 1, []hostileChunk{{bytes: hostilePage(t, hostileDataPage(1, pqformat.Plain, 8), d), numValues: 1, codec: pqformat.Lz4Raw, typ: pqformat.Int64}})
		}, true, 0, 0},
		{"30 columns claiming 64 MiB pages", func() []byte {
			var cs []hostileChunk
			for range 30 {
				cs = append(cs, hostileChunk{bytes: hostilePage(t, hostileDataPage(1, pqformat.Plain, 64<<20), snappyOf(make([]byte, 8))), numValues: 1, codec: pqformat.Snappy, typ: pqformat.Int64})
			}
			return hostileFile(t, wideMeta(t), 1, cs)
		}, false, 0, 0},
		{"30 columns of Zstd pages inflating to 64 MiB", func() []byte {
			var cs []hostileChunk
			for range 30 {
				cs = append(cs, hostileChunk{bytes: hostilePage(t, hostileDataPage(1, pqformat.Plain, 64<<20), zstdZeros(64<<20)), numValues: 1, codec: pqformat.Zstd, typ: pqformat.Int64})
			}
			return hostileFile(t, wideMeta(t), 1, cs)
		}, false, 2*256<<20 + 32<<20, 0}, // held at most 256 MiB, the buffers grown by doubling
		{"a Zstd frame claiming a 64 MiB window", func() []byte {
			// One RLE block of 8 zeros; the decoder would allocate the
			// window when the frame starts.
			z := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x80, 8<<3 | 1<<1 | 1, 0, 0, 0}
			return hostileFile(t, i64, 1, []hostileChunk{{bytes: hostilePage(t, hostileDataPage(1, pqformat.Plain, 8), z), numValues: 1, codec: pqformat.Zstd, typ: pqformat.Int64}})
		}, false, 0, 0},
		{"100 pages of no values, each inflating to 64 MiB", func() []byte {
			var chunk []byte
			for range 100 {
				chunk = append(chunk, hostilePage(t, hostileDataPage(0, pqformat.Plain, 64<<20), zstdZeros(64<<20))...)
			}
			chunk = append(chunk, hostilePage(t, hostileDataPage(1, pqformat.Plain, 8), zstdZeros(8))...)
			return hostileFile(t, i64, 1, []hostileChunk{{bytes: chunk, numValues: 1, codec: pqformat.Zstd, typ: pqformat.Int64}})
		}, false, 2*256<<20 + 32<<20, 0},
		{"60 pages each a byte longer, inflating to 32 MiB", func() []byte {
			var chunk []byte
			for k := range 60 {
				n := 32<<20 + 1 + k
				chunk = append(chunk, hostilePage(t, hostileDataPage(0, pqformat.Plain, int32(n)), zstdZeros(n))...)
			}
			chunk = append(chunk, hostilePage(t, hostileDataPage(1, pqformat.Plain, 8), zstdZeros(8))...)
			return hostileFile(t, i64, 1, []hostileChunk{{bytes: chunk, numValues: 1, codec: pqformat.Zstd, typ: pqformat.Int64}})
		}, false, 2*256<<20 + 32<<20, 0},
		{"200 row groups sharing one chunk inflating to 64 MiB", func() []byte {
			data := hostileFile(t, i64, 1, []hostileChunk{{bytes: hostilePage(t, hostileDataPage(1, pqformat.Plain, 64<<20), zstdZeros(64<<20)), numValues: 1, codec: pqformat.Zstd, typ: pqformat.Int64}})
			md, at := footerOf(t, data)
			for range 199 {
				md.RowGroups = append(md.RowGroups, md.RowGroups[0])
			}
			md.NumRows = 200
			return withFooter(t, data[:at], md)
		}, true, 0, 0},
		{"a row group of 2^21 rows of nulls", func() []byte {
			d := levels(1 << 21)
			pg := hostilePage(t, hostileDataPage(1<<21, pqformat.Plain, int32(len(d))), d)
			return hostileFile(t, hostileMeta(t, optRow{}), 1<<21, []hostileChunk{{bytes: pg, numValues: 1 << 21, typ: pqformat.Int64}})
		}, true, 0, 0},
		{"a dictionary value of 16 MiB that every row points at", func() []byte {
			// A row costs one index; each would carry the value, and
			// comparing it took 1.45 ms a row. A row longer than a line
			// may be is skipped, as a text line is.
			plain := binary.LittleEndian.AppendUint32(nil, 16<<20)
			plain = append(plain, make([]byte, 16<<20)...)
			zw, err := zstd.NewWriter(nil)
			require.NoError(t, err)
			z := zw.EncodeAll(plain, nil)
			dict, err := thrift.Marshal(&thrift.CompactProtocol{}, &pqformat.PageHeader{Type: pqformat.DictionaryPage, UncompressedPageSize: int32(len(plain)),
				CompressedPageSize: int32(len(z)), DictionaryPageHeader: thrift.New(pqformat.DictionaryPageHeader{NumValues: 1, Encoding: pqformat.Plain})})
			require.NoError(t, err)
			dict = append(dict, z...)
			idx := append([]byte{0}, uv(1000<<1)...) // width 0: one run of index 0
			zi := zw.EncodeAll(idx, nil)
			data := hostilePage(t, hostileDataPage(1000, pqformat.RLEDictionary, int32(len(idx))), zi)
			return hostileFile(t, hostileMeta(t, strRow{}), 1000, []hostileChunk{{bytes: append(dict, data...), dictLen: int64(len(dict)), numValues: 1000, codec: pqformat.Zstd, typ: pqformat.ByteArray}})
		}, false, 2*256<<20 + 32<<20, 1000},
		{"a dictionary of more values than its chunk", func() []byte {
			// Its values cost no rows: 8 such of 32 MiB took 2.2 s.
			plain := make([]byte, 4<<20)
			dict := hostilePage(t, pqformat.PageHeader{Type: pqformat.DictionaryPage, UncompressedPageSize: int32(len(plain)),
				DictionaryPageHeader: thrift.New(pqformat.DictionaryPageHeader{NumValues: 1 << 20, Encoding: pqformat.Plain})}, plain)
			data := hostilePage(t, hostileDataPage(1, pqformat.RLEDictionary, 3), []byte{0, 2, 0})
			return hostileFile(t, hostileMeta(t, int32Row{}), 1, []hostileChunk{{bytes: append(dict, data...), dictLen: int64(len(dict)), numValues: 1, typ: pqformat.Int32}})
		}, false, 0, 0},
		{"a chunk of a million empty index pages", func() []byte {
			// Each header costs its decoding, whatever its page holds:
			// 8 MiB of them allocated 466 MiB.
			pg := hostilePage(t, pqformat.PageHeader{Type: pqformat.IndexPage}, nil)
			chunk := bytes.Repeat(pg, 1<<20)
			chunk = append(chunk, hostilePage(t, hostileDataPage(1, pqformat.Plain, 8), make([]byte, 8))...)
			return hostileFile(t, i64, 1, []hostileChunk{{bytes: chunk, numValues: 1, typ: pqformat.Int64}})
		}, false, 0, 0},
		{"a repeated column", func() []byte {
			type listRow struct {
				Bytes []int64 `parquet:"bytes"`
			}
			return hostileFile(t, hostileMeta(t, listRow{Bytes: []int64{1}}), 1, []hostileChunk{{bytes: []byte{0}, numValues: 1, typ: pqformat.Int64}})
		}, true, 0, 0},
		{"a fixed length of a gigabyte", func() []byte {
			type flba struct {
				A [16]byte `parquet:"srcaddr"`
			}
			md := hostileMeta(t, flba{})
			md.Schema[1].TypeLength = thrift.New(int32(1 << 30))
			d := hostilePage(t, hostileDataPage(1, pqformat.Plain, 16), make([]byte, 16))
			return hostileFile(t, md, 1, []hostileChunk{{bytes: d, numValues: 1, typ: pqformat.FixedLenByteArray}})
		}, true, 0, 0},
		{"no columns", func() []byte {
			md := hostileMeta(t, int64Row{1})
			md.Schema = md.Schema[:1]
			md.Schema[0].NumChildren = thrift.New(int32(0))
			return hostileFile(t, md, 10, []hostileChunk{})
		}, true, 0, 0},
		{"row groups of 2^24 rows, four", func() []byte {
			d := levels(1 << 24)
			pg := hostilePage(t, hostileDataPage(1<<24, pqformat.Plain, int32(len(d))), d)
			g := []hostileChunk{{bytes: pg, numValues: 1 << 24, typ: pqformat.Int64}}
			return hostileFile(t, hostileMeta(t, optRow{}), 1<<24, g, g, g, g)
		}, true, 0, 0},
		{"a footer of 2^23 empty row groups", func() []byte {
			const n = 8 << 20
			footer := []byte{0x15, 0x02, 0x19, 0x1c, 0x48, 0x01, 0x61, 0x00} // version 1, schema [{name "a"}]
			footer = append(footer, 0x16, 0x02, 0x19, 0xfc)                  // num_rows 1, row_groups list<struct>
			footer = append(append(append(footer, uv(n)...), make([]byte, n)...), 0)
			data := append([]byte(flowlog.ParquetMagic), footer...)
			data = binary.LittleEndian.AppendUint32(data, uint32(len(footer)))
			return append(data, flowlog.ParquetMagic...)
		}, true, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := tt.file()
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			r, err := flowlog.NewParquetReader(bytes.NewReader(data), int64(len(data)))
			var st flowlog.Stats
			if err == nil {
				for r.Next() {
				}
				require.NoError(t, r.Err())
				st = r.Stats()
			}
			runtime.ReadMemStats(&after)
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("%d bytes: %v; %+v; allocated %d KiB", len(data), err, st, alloc>>10)
			if tt.refused {
				require.ErrorIs(t, err, flowlog.ErrMalformedParquet)
			} else {
				require.NoError(t, err)
				rows := max(tt.rows, 1)
				require.Equal(t, flowlog.Stats{Lines: rows, Skipped: rows, FirstSkipped: []int64{1, 2, 3, 4, 5}[:min(rows, 5)]}, st)
			}
			bound := max(tt.bound, uint64(4<<20)+2*uint64(len(data)))
			require.Less(t, alloc, bound)
		})
	}
}

// oneRowFile is a file of one row: a flow from 10.0.0.1 to 10.0.0.2 of
// 7 bytes, each column a dictionary of one value.
func oneRowFile(t *testing.T) []byte {
	t.Helper()
	type row struct {
		Src   string `parquet:"srcaddr"`
		Dst   string `parquet:"dstaddr"`
		Bytes int64  `parquet:"bytes"`
	}
	md := hostileMeta(t, row{})
	var chunks []hostileChunk
	for _, e := range md.Schema[1:] {
		switch e.Name {
		case "srcaddr":
			chunks = append(chunks, dictChunk(t, pqformat.ByteArray, plainString("10.0.0.1"), 1))
		case "dstaddr":
			chunks = append(chunks, dictChunk(t, pqformat.ByteArray, plainString("10.0.0.2"), 1))
		default:
			chunks = append(chunks, dictChunk(t, pqformat.Int64, binary.LittleEndian.AppendUint64(nil, 7), 1))
		}
	}
	return hostileFile(t, md, 1, chunks)
}

// plainString is s as PLAIN encodes a BYTE_ARRAY value.
func plainString(s string) []byte {
	return append(binary.LittleEndian.AppendUint32(nil, uint32(len(s))), s...)
}

// TestParquetEmptyRowGroupsPassedOver reads a file whose row groups of no
// rows have no column chunks at all, before and after the one that has
// rows: they are passed over, where the reader once looked up their
// chunks and panicked (a file a few hundred bytes long took the process
// down, since the built-in digester reads each file on a goroutine of
// its own).
func TestParquetEmptyRowGroupsPassedOver(t *testing.T) {
	t.Parallel()
	data := oneRowFile(t)
	md, at := footerOf(t, data)
	md.RowGroups = []pqformat.RowGroup{{NumRows: 0}, md.RowGroups[0], {NumRows: 0}}
	data = withFooter(t, data[:at], md)
	r, err := flowlog.NewParquetReader(bytes.NewReader(data), int64(len(data)))
	require.NoError(t, err)
	require.True(t, r.Next())
	require.EqualValues(t, 7, r.Record().Bytes)
	require.False(t, r.Next())
	require.NoError(t, r.Err())
	require.Equal(t, flowlog.Stats{Lines: 1, Used: 1}, r.Stats())
}

// failingAt fails every ReadAt once armed.
type failingAt struct {
	ra    io.ReaderAt
	armed atomic.Bool
}

func (f *failingAt) ReadAt(p []byte, off int64) (int, error) {
	if f.armed.Load() {
		return 0, errors.New("storage failed")
	}
	return f.ra.ReadAt(p, off)
}

// TestParquetNextAfterAFailedRead calls Next again after a read failed:
// it says false again, with the same error, where it once panicked.
func TestParquetNextAfterAFailedRead(t *testing.T) {
	t.Parallel()
	data := oneRowFile(t)
	ra := &failingAt{ra: bytes.NewReader(data)}
	r, err := flowlog.NewParquetReader(ra, int64(len(data)))
	require.NoError(t, err)
	ra.armed.Store(true)
	require.False(t, r.Next())
	first := r.Err()
	require.ErrorContains(t, first, "storage failed")
	require.False(t, r.Next())
	require.Equal(t, first, r.Err())
}

// dictChunk is a column chunk of n values, all the dictionary's one value,
// plain holding it as PLAIN encodes it.
func dictChunk(t *testing.T, typ pqformat.Type, plain []byte, n int) hostileChunk {
	t.Helper()
	dict := hostilePage(t, pqformat.PageHeader{Type: pqformat.DictionaryPage, UncompressedPageSize: int32(len(plain)),
		DictionaryPageHeader: thrift.New(pqformat.DictionaryPageHeader{NumValues: 1, Encoding: pqformat.Plain})}, plain)
	idx := append([]byte{0}, binary.AppendUvarint(nil, uint64(n)<<1)...) // bit width 0, one RLE run of n
	data := hostilePage(t, hostileDataPage(int32(n), pqformat.RLEDictionary, int32(len(idx))), idx)
	return hostileChunk{bytes: append(dict, data...), dictLen: int64(len(dict)), numValues: int64(n), typ: typ}
}

// TestParquetValuesBounded reads a file of a few kilobytes that claims a
// million rows, each the same valid record of the longest values (ids of
// MaxIDBytes, IPv6 addresses of 38 characters, counts of 19 digits), from
// dictionaries of one value: 320 MB of text from a run of one index in
// each column. The rows hand out their values until the file's bound,
// 256 MiB and 16 KiB a byte of the file, is spent, and the rest are skipped
// as malformed, exactly there. Unbounded, with values as long as a row may
// be (DELTA_BYTE_ARRAY values, or dictionary ones, tens of kilobytes each),
// such a file handed out 64 GiB to be compared and copied.
func TestParquetValuesBounded(t *testing.T) {
	t.Parallel()
	type row struct {
		Account string `parquet:"account_id"`
		Iface   string `parquet:"interface_id"`
		Src     string `parquet:"srcaddr"`
		Dst     string `parquet:"dstaddr"`
		SrcPort int64  `parquet:"srcport"`
		DstPort int64  `parquet:"dstport"`
		Proto   int64  `parquet:"protocol"`
		Packets int64  `parquet:"packets"`
		Bytes   int64  `parquet:"bytes"`
		Start   int64  `parquet:"start"`
		End     int64  `parquet:"end"`
	}
	const rows = 1 << 20 // as many as any file may claim
	md := hostileMeta(t, row{})
	const addr = "2001:db8:1234:5678:9abc:def0:1234:5678"
	strs := map[string]string{
		"account_id": strings.Repeat("1", flowlog.MaxIDBytes), "interface_id": strings.Repeat("e", flowlog.MaxIDBytes),
		"srcaddr": addr, "dstaddr": addr,
	}
	ints := map[string]uint64{"srcport": 65535, "dstport": 65535, "protocol": 255}
	var chunks []hostileChunk
	rowBytes := 0
	for _, e := range md.Schema[1:] {
		if v, ok := strs[e.Name]; ok {
			chunks = append(chunks, dictChunk(t, pqformat.ByteArray, plainString(v), rows))
			rowBytes += len(v) + 1
			continue
		}
		v, ok := ints[e.Name]
		if !ok {
			v = 1<<63 - 1
		}
		chunks = append(chunks, dictChunk(t, pqformat.Int64, binary.LittleEndian.AppendUint64(nil, v), rows))
		rowBytes += len(strconv.FormatUint(v, 10)) + 1
	}
	data := hostileFile(t, md, rows, chunks)
	r, err := flowlog.NewParquetReader(bytes.NewReader(data), int64(len(data)))
	require.NoError(t, err)
	used := 0
	for r.Next() {
		used++
	}
	require.NoError(t, r.Err())
	bound := 256<<20 + 16<<10*len(data)
	require.Less(t, bound/rowBytes, rows, "the file must claim more than its bound")
	require.Equal(t, bound/rowBytes, used)
	st := r.Stats()
	require.EqualValues(t, rows, st.Lines)
	require.EqualValues(t, rows-used, st.Skipped)
	require.Equal(t, []int64{int64(used) + 1, int64(used) + 2, int64(used) + 3, int64(used) + 4, int64(used) + 5}, st.FirstSkipped)
}
