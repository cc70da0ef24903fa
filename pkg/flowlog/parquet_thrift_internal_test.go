package flowlog

import (
	"bytes"
	"encoding/binary"
	"runtime"
	"testing"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	pqformat "github.com/parquet-go/parquet-go/format"
	"github.com/stretchr/testify/require"
)

// TestThriftLengthsChecked checks that the walk of a footer or a page
// header ends where the decoder does on what writers make, fails on any
// part of it cut short, and refuses a length claimed past the bytes, or
// lists that would take too much memory decoded: a header of 23 bytes
// whose statistics claimed 1 GiB made the decoder allocate 1 GiB.
func TestThriftLengthsChecked(t *testing.T) {
	// Not parallel: it counts what the process allocates.
	type row struct {
		Srcaddr string `parquet:"srcaddr,dict"`
		Bytes   int64  `parquet:"bytes"`
	}
	var b bytes.Buffer
	w := parquet.NewGenericWriter[row](&b, parquet.PageBufferSize(512), parquet.MaxRowsPerRowGroup(700), parquet.Compression(&parquet.Snappy))
	rows := make([]row, 3000)
	for i := range rows {
		rows[i] = row{Srcaddr: "10.0.0." + string(rune('0'+i%10)), Bytes: int64(i * 37)}
	}
	_, err := w.Write(rows)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	data := b.Bytes()

	footerLen := int(binary.LittleEndian.Uint32(data[len(data)-8:]))
	footer := data[len(data)-8-footerLen : len(data)-8]
	n, err := checkThriftLengths(footer)
	require.NoError(t, err)
	require.Equal(t, footerLen, n)
	md := new(pqformat.FileMetaData)
	require.NoError(t, thrift.Unmarshal(&thrift.CompactProtocol{}, footer, md))
	headers := 0
	for _, rg := range md.RowGroups {
		for _, cc := range rg.Columns {
			start := chunkStart(&cc.MetaData)
			end := start + cc.MetaData.TotalCompressedSize
			for at := start; at < end; {
				n, err := checkThriftLengths(data[at:end])
				require.NoError(t, err)
				r := bytes.NewReader(data[at:end])
				h := new(pqformat.PageHeader)
				require.NoError(t, thrift.NewDecoder((&thrift.CompactProtocol{}).NewReader(r)).Decode(h))
				require.Equal(t, len(data[at:end])-r.Len(), n, "header at %d", at)
				for cut := range n {
					_, err := checkThriftLengths(data[at : at+int64(cut)])
					require.ErrorIs(t, err, errThriftLength, "header at %d cut to %d bytes", at, cut)
				}
				at += int64(n) + int64(h.CompressedPageSize)
				headers++
			}
		}
	}
	require.Greater(t, headers, 20)

	// type 0, sizes 1 and 1, then a data page header whose statistics'
	// max claims 1 GiB.
	claim := []byte{0x15, 0x00, 0x15, 0x02, 0x15, 0x02, 0x2c, 0x15, 0x02, 0x15, 0x00, 0x15, 0x00, 0x15, 0x00,
		0x1c, 0x18, 0x80, 0x80, 0x80, 0x80, 0x04, 'x'}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err = checkThriftLengths(claim)
	runtime.ReadMemStats(&after)
	require.ErrorIs(t, err, errThriftLength)
	require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(1<<20))
	bigList := []byte{0x19, 0xf5, 0x80, 0x80, 0x80, 0x80, 0x04, 0x00} // a list of 1 Gi i32s
	_, err = checkThriftLengths(bigList)
	require.ErrorIs(t, err, errThriftLength)

	// A list of 2^20 empty structs, a byte each, is within its bytes but
	// would decode to 2^20 structs of hundreds of bytes: refused; a
	// thousand are not.
	structs := func(n int) []byte {
		b := append([]byte{0x19, 0xfc}, binary.AppendUvarint(nil, uint64(n))...)
		return append(append(b, make([]byte, n)...), 0)
	}
	_, err = checkThriftLengths(structs(1 << 20))
	require.ErrorIs(t, err, errThriftLength)
	n, err = checkThriftLengths(structs(1000))
	require.NoError(t, err)
	require.Equal(t, len(structs(1000)), n)
}
