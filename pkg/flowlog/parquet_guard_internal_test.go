package flowlog

import (
	"bytes"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	pqformat "github.com/parquet-go/parquet-go/format"
	"github.com/stretchr/testify/require"
)

// guardFile writes a Parquet file of many small pages and row groups.
func guardFile(t *testing.T) []byte {
	t.Helper()
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
	return b.Bytes()
}

// TestPageGuardFollowsReads reads a file of many pages through the guard
// in pieces of every size, in order, as the library's buffered reads come,
// so that headers are cut by the ends of reads, and a read may start past
// headers not yet seen: a true file reads whole, and a header changed to
// claim too much fails the read that reaches it, and every read after.
func TestPageGuardFollowsReads(t *testing.T) {
	t.Parallel()
	data := guardFile(t)
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	require.NoError(t, err)
	md := f.Metadata()
	require.Greater(t, len(md.RowGroups), 3)
	rng := rand.New(rand.NewPCG(5, 6))
	readAll := func(g *pageGuard, skip bool) error {
		for off := int64(0); off < int64(len(data)); {
			n := int64(1 + rng.IntN(300))
			if skip && rng.IntN(10) == 0 {
				// Bytes passed over, as a read starting inside a chunk.
				off += n
				continue
			}
			buf := make([]byte, min(n, int64(len(data))-off))
			if _, err := g.ReadAt(buf, off); err != nil && err != io.EOF {
				return err
			}
			require.Equal(t, data[off:off+int64(len(buf))], buf)
			end := off + int64(len(buf))
			for _, c := range g.chunks {
				if c.start < end && c.end > off {
					require.GreaterOrEqual(t, c.next, min(end, c.end), "headers of the chunk at %d read to %d", c.start, end)
				}
			}
			off = end
		}
		return nil
	}
	for _, skip := range []bool{false, true} {
		for range 20 {
			g := &pageGuard{ra: bytes.NewReader(data)}
			require.NoError(t, g.watch(md, int64(len(data))))
			require.NoError(t, readAll(g, skip))
			for _, c := range g.chunks {
				if !skip {
					require.Equal(t, c.end, c.next, "every header of the chunk at %d checked", c.start)
				}
			}
		}
	}

	// A header of the middle chunk claiming too much is refused, and one
	// garbled fails the read that reaches it and every later read of the
	// chunk, as the library would read it.
	g := &pageGuard{ra: bytes.NewReader(data)}
	require.NoError(t, g.watch(md, int64(len(data))))
	c := g.chunks[len(g.chunks)/2]
	h, n, err := decodeHeader(data[c.start:c.end])
	require.NoError(t, err)
	require.NoError(t, checkPage(h, n, &c))
	h.UncompressedPageSize = maxParquetPageBytes + 1
	require.ErrorIs(t, checkPage(h, n, &c), errParquetPage)
	h.UncompressedPageSize, h.CompressedPageSize = 0, int32(c.end-c.start)
	require.ErrorIs(t, checkPage(h, n, &c), errParquetPage)

	bad := append([]byte(nil), data...)
	for i := c.start; i < c.start+int64(n); i++ {
		bad[i] = 0xff
	}
	g = &pageGuard{ra: bytes.NewReader(bad)}
	require.NoError(t, g.watch(md, int64(len(bad))))
	buf := make([]byte, 100)
	var failedAt int64 = -1
	for off := int64(0); off < int64(len(bad)); off += int64(len(buf)) {
		buf = buf[:min(int64(cap(buf)), int64(len(bad))-off)]
		if _, err := g.ReadAt(buf, off); err != nil && err != io.EOF {
			require.ErrorIs(t, err, errParquetPage)
			if failedAt < 0 {
				failedAt = off
			}
			if off < c.end {
				continue
			}
		}
		if failedAt >= 0 && off < c.end {
			t.Fatalf("a read at %d, in the bad chunk, passed", off)
		}
	}
	require.GreaterOrEqual(t, failedAt, c.start-int64(len(buf)))
	require.Less(t, failedAt, c.start+int64(n))
}

// TestThriftLengthsChecked checks that the walk of a footer or a page
// header ends where the decoder does on what writers make, fails on any
// part of it cut short, and refuses a length claimed past the bytes: a
// header of 23 bytes whose statistics claimed 1 GiB made the decoder
// allocate 1 GiB.
func TestThriftLengthsChecked(t *testing.T) {
	// Not parallel: it counts what the process allocates.
	data := guardFile(t)
	footerLen := int(binary.LittleEndian.Uint32(data[len(data)-8:]))
	footer := data[len(data)-8-footerLen : len(data)-8]
	n, err := checkThriftLengths(footer)
	require.NoError(t, err)
	require.Equal(t, footerLen, n)

	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	require.NoError(t, err)
	g := &pageGuard{ra: bytes.NewReader(data)}
	require.NoError(t, g.watch(f.Metadata(), int64(len(data))))
	headers := 0
	for _, c := range g.chunks {
		for at := c.start; at < c.end; {
			n, err := checkThriftLengths(data[at:c.end])
			require.NoError(t, err)
			r := bytes.NewReader(data[at:c.end])
			h := new(pqformat.PageHeader)
			require.NoError(t, thrift.NewDecoder((&thrift.CompactProtocol{}).NewReader(r)).Decode(h))
			require.Equal(t, len(data[at:c.end])-r.Len(), n, "header at %d", at)
			for cut := range n {
				_, err := checkThriftLengths(data[at : at+int64(cut)])
				require.ErrorIs(t, err, errThriftLength, "header at %d cut to %d bytes", at, cut)
			}
			at += int64(n) + int64(h.CompressedPageSize)
			headers++
		}
	}
	require.Greater(t, headers, 20)

	// type 0, sizes 1 and 1, then a data page header whose statistics'
	// max claims 1 GiB.
	claim := []byte{0x15, 0x00, 0x15, 0x02, 0x15, 0x02, 0x2c, 0x15, 0x02, 0x15, 0x00, 0x15, 0x00, 0x15, 0x00,
		0x1c, 0x18, 0x80, 0x80, 0x80, 0x80, 0x04, 'x'}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, _, err = decodeHeader(claim)
	runtime.ReadMemStats(&after)
	require.ErrorIs(t, err, errThriftLength)
	require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(16<<20))
	bigList := []byte{0x19, 0xf5, 0x80, 0x80, 0x80, 0x80, 0x04, 0x00} // a list of 1 Gi i32s
	_, err = checkThriftLengths(bigList)
	require.ErrorIs(t, err, errThriftLength)
}
