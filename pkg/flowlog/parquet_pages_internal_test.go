package flowlog

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/parquet-go/parquet-go/encoding/thrift"
	pqformat "github.com/parquet-go/parquet-go/format"
	"github.com/stretchr/testify/require"
)

// oneColumnTokens reads the tokens of a file of one optional INT64 column
// "bytes" whose one row group of rows rows is the chunk of pages page
// (each a header and its bytes), compressed with codec.
func oneColumnTokens(t *testing.T, codec pqformat.CompressionCodec, rows int64, pages ...[]byte) ([]string, error) {
	t.Helper()
	chunk := bytes.Join(pages, nil)
	data := append([]byte(ParquetMagic), chunk...)
	one := int32(1)
	md := &pqformat.FileMetaData{Version: 1, NumRows: rows, Schema: []pqformat.SchemaElement{
		{Name: "schema", NumChildren: thrift.New(one)},
		{Name: "bytes", Type: thrift.New(pqformat.Int64), RepetitionType: thrift.New(pqformat.Optional)},
	}, RowGroups: []pqformat.RowGroup{{NumRows: rows, Columns: []pqformat.ColumnChunk{{FileOffset: 4, MetaData: pqformat.ColumnMetaData{
		Type: pqformat.Int64, Encoding: []pqformat.Encoding{pqformat.Plain}, PathInSchema: []string{"bytes"}, Codec: codec,
		NumValues: rows, TotalCompressedSize: int64(len(chunk)), TotalUncompressedSize: int64(len(chunk)), DataPageOffset: 4}}}}}}
	footer, err := thrift.Marshal(&thrift.CompactProtocol{}, md)
	require.NoError(t, err)
	data = append(append(data, footer...), binary.LittleEndian.AppendUint32(nil, uint32(len(footer)))...)
	data = append(data, ParquetMagic...)

	r, err := NewParquetReader(bytes.NewReader(data), int64(len(data)))
	require.NoError(t, err)
	pq := r.pq
	c, err := newColumnReader(nil, &pq.leaves[0], &pq.budget)
	require.NoError(t, err)
	m := &pq.groups[0].Columns[0].MetaData
	c.reset(pq.ra, chunkStart(m), m)
	var toks []string
	for range rows {
		var scratch []byte
		tok, err := c.next(&scratch)
		if err != nil {
			return toks, err
		}
		toks = append(toks, string(tok))
	}
	return toks, nil
}

func v2Page(t *testing.T, h pqformat.DataPageHeaderV2, uncompressed int, body []byte) []byte {
	t.Helper()
	b, err := thrift.Marshal(&thrift.CompactProtocol{}, &pqformat.PageHeader{Type: pqformat.DataPageV2,
		UncompressedPageSize: int32(uncompressed), CompressedPageSize: int32(len(body)), DataPageHeaderV2: thrift.New(h)})
	require.NoError(t, err)
	return append(b, body...)
}

// TestParquetV2PageOfNulls reads a version 2 page of nulls as parquet-java
// (Spark's writer) writes it: marked compressed, its values section empty,
// which no codec inflates (apache/parquet-java#3122; Arrow and DuckDB read
// it).
func TestParquetV2PageOfNulls(t *testing.T) {
	t.Parallel()
	levels := []byte{10 << 1, 0} // an RLE run of 10 zeros: 10 nulls
	for _, codec := range []pqformat.CompressionCodec{pqformat.Snappy, pqformat.Gzip, pqformat.Zstd, pqformat.Uncompressed} {
		page := v2Page(t, pqformat.DataPageHeaderV2{NumValues: 10, NumNulls: 10, NumRows: 10, Encoding: pqformat.Plain,
			DefinitionLevelsByteLength: int32(len(levels)), IsCompressed: thrift.New(true)}, len(levels), levels)
		toks, err := oneColumnTokens(t, codec, 10, page)
		require.NoError(t, err, "%s", codec)
		require.Equal(t, []string{"-", "-", "-", "-", "-", "-", "-", "-", "-", "-"}, toks, "%s", codec)
	}
}

// TestParquetV2PageNotCompressed reads a version 2 page its header marks
// as not compressed, in a chunk of a codec, with bit-packed levels.
func TestParquetV2PageNotCompressed(t *testing.T) {
	t.Parallel()
	levels := []byte{4 << 1, 1, 1<<1 | 1, 0b1011} // 4 values, then a bit-packed group: 1,1,0,1,0…
	var vals []byte
	for _, v := range []int64{1, -2, 1 << 40, 7, 8, 9, 10} {
		vals = binary.LittleEndian.AppendUint64(vals, uint64(v))
	}
	page := v2Page(t, pqformat.DataPageHeaderV2{NumValues: 8, NumNulls: 1, NumRows: 8, Encoding: pqformat.Plain,
		DefinitionLevelsByteLength: int32(len(levels)), IsCompressed: thrift.New(false)}, len(levels)+len(vals), append(levels, vals...))
	toks, err := oneColumnTokens(t, pqformat.Snappy, 8, page)
	require.NoError(t, err)
	require.Equal(t, []string{"1", "-2", "1099511627776", "7", "8", "9", "-", "10"}, toks)
}

// TestDeltaByteArrayCutShort refuses a DELTA_BYTE_ARRAY page whose suffix
// lengths are cut short, rather than taking its values from the bytes of
// the lengths.
func TestDeltaByteArrayCutShort(t *testing.T) {
	t.Parallel()
	prefix := []byte{0x80, 0x01, 0x04, 0x02, 0x00, 0x00, 0, 0, 0, 0} // 2 prefixes of 0
	suffix := []byte{0x80, 0x01, 0x04, 0x02, 0x06}                   // 2 lengths, the first 3, then nothing
	data := append(append(append([]byte(nil), prefix...), suffix...), "abcdef"...)
	c := &columnReader{leaf: &parquetLeaf{typ: pqformat.ByteArray}, budget: &parquetBudget{}, pageLeft: 2}
	require.ErrorIs(t, c.startValues(pqformat.DeltaByteArray, data), errParquetData)
	c.pageLeft = 2
	require.ErrorIs(t, c.startValues(pqformat.DeltaLengthByteArray, suffix), errParquetData)
}
