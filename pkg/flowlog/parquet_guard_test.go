package flowlog_test

import (
	"bytes"
	"encoding/binary"
	"runtime"
	"testing"

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
// offsets moved to match its new length, so that the library reads the
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
// checked before the library allocates for it: a file of a few kilobytes
// whose first page claims a gigabyte, or a billion values, is read as a
// row group of malformed rows, with a few megabytes allocated, where the
// library alone allocated the gigabyte claimed (1.25 GB measured). A
// header that changes nothing still reads.
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
		{"overlap", func(md *pqformat.FileMetaData) {
			md.RowGroups[0].Columns[1].MetaData.TotalCompressedSize += 10
		}},
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
