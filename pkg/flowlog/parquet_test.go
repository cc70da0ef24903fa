package flowlog_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	arrowparquet "github.com/apache/arrow-go/v18/parquet"
	arrowcompress "github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/parquet-go/parquet-go"
	"github.com/stretchr/testify/require"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/flowlog"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/flowlog/flowlogtest"
)

// v5Fields are a version 5 custom format's fields in AWS's order.
var v5Fields = []string{
	"version", "account-id", "interface-id", "srcaddr", "dstaddr", "srcport", "dstport",
	"protocol", "packets", "bytes", "start", "end", "action", "log-status",
	"vpc-id", "subnet-id", "instance-id", "tcp-flags", "type", "pkt-srcaddr", "pkt-dstaddr",
	"region", "az-id", "sublocation-type", "sublocation-id", "pkt-src-aws-service",
	"pkt-dst-aws-service", "flow-direction", "traffic-path",
}

// textOf writes rows as a text flow-log file with a header naming fields,
// nulls as "-": what AWS would have delivered in the text format.
func textOf(fields []string, rows [][]any) []byte {
	var b bytes.Buffer
	b.WriteString(strings.Join(fields, " "))
	b.WriteByte('\n')
	for _, row := range rows {
		for i, v := range row {
			if i > 0 {
				b.WriteByte(' ')
			}
			if v == nil {
				b.WriteByte('-')
				continue
			}
			fmt.Fprint(&b, v)
		}
		b.WriteByte('\n')
	}
	return b.Bytes()
}

func readRecords(t *testing.T, r *flowlog.Reader) ([]flowlog.Record, flowlog.Stats) {
	t.Helper()
	var recs []flowlog.Record
	for r.Next() {
		recs = append(recs, *r.Record())
	}
	require.NoError(t, r.Err())
	return recs, r.Stats()
}

func sampleRows(t *testing.T, n int, fields []string) [][]any {
	t.Helper()
	var rows [][]any
	require.NoError(t, flowlogtest.Records(flowlogtest.Spec{Lines: n, Addrs: 200, Seed: 7}, func(r *flowlog.Record) error {
		rows = append(rows, flowlogtest.RecordValues(r, fields))
		return nil
	}))
	return rows
}

func parquetBytes(t *testing.T, f flowlogtest.ParquetFile, rows [][]any) []byte {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, flowlogtest.WriteParquet(&b, f, rows))
	return b.Bytes()
}

// TestParquetReaderMatchesText reads the same rows as Parquet, written each
// way the tools differ, and as text with a header, and wants the same
// records and counts.
func TestParquetReaderMatchesText(t *testing.T) {
	t.Parallel()
	subset := []string{"srcaddr", "dstaddr", "bytes", "action", "start", "end", "dstport"}
	tests := []struct {
		name string
		file flowlogtest.ParquetFile
	}{
		{"v2 int64 required uncompressed", flowlogtest.ParquetFile{Fields: flowlog.DefaultFields()}},
		{"v2 int32 optional snappy small groups", flowlogtest.ParquetFile{Fields: flowlog.DefaultFields(), Int32: true, Optional: true, Codec: &parquet.Snappy, RowsPerGroup: 97}},
		{"v5 gzip", flowlogtest.ParquetFile{Fields: v5Fields, Optional: true, Codec: &parquet.Gzip, RowsPerGroup: 500}},
		{"subset zstd", flowlogtest.ParquetFile{Fields: subset, Int32: true, Codec: &parquet.Zstd}},
		{"v5 dictionary optional v1 pages gzip", flowlogtest.ParquetFile{Fields: v5Fields, Optional: true, Encoding: "dict", PageVersion: 1, Codec: &parquet.Gzip, RowsPerGroup: 700}},
		{"v2 dictionary v2 pages snappy small pages", flowlogtest.ParquetFile{Fields: flowlog.DefaultFields(), Int32: true, Encoding: "dict", Codec: &parquet.Snappy, PageBytes: 1024}},
		{"v5 delta optional v1 pages zstd", flowlogtest.ParquetFile{Fields: v5Fields, Optional: true, Encoding: "delta", PageVersion: 1, Codec: &parquet.Zstd, PageBytes: 4096}},
		{"v2 delta int32 v2 pages", flowlogtest.ParquetFile{Fields: flowlog.DefaultFields(), Int32: true, Encoding: "delta", RowsPerGroup: 333}},
		{"v5 delta-length optional gzip", flowlogtest.ParquetFile{Fields: v5Fields, Optional: true, Encoding: "delta-length", Codec: &parquet.Gzip, PageBytes: 2048}},
		{"subset plain v1 pages optional uncompressed", flowlogtest.ParquetFile{Fields: subset, Optional: true, PageVersion: 1, PageBytes: 512}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rows := sampleRows(t, 2000, tt.file.Fields)
			if tt.file.Optional {
				// Nulls here and there, and whole rows of them, as a
				// dictionary or a delta page must pass over.
				for i, row := range rows {
					for j := range row {
						if (i*7+j*3)%11 == 0 || i%97 == 5 {
							row[j] = nil
						}
					}
				}
			}
			pr, err := flowlog.NewReader(bytes.NewReader(parquetBytes(t, tt.file, rows)))
			require.NoError(t, err)
			got, gotStats := readRecords(t, pr)
			tr, err := flowlog.NewReader(bytes.NewReader(textOf(tt.file.Fields, rows)))
			require.NoError(t, err)
			want, wantStats := readRecords(t, tr)
			require.Len(t, got, len(want))
			require.Greater(t, len(got), 1000)
			require.Equal(t, want, got)
			// The text has one more line, its header, which carries
			// no flow.
			require.Equal(t, wantStats.Lines-1, gotStats.Lines)
			require.Equal(t, wantStats.Used, gotStats.Used)
			require.Equal(t, wantStats.Skipped, gotStats.Skipped)
			require.Equal(t, wantStats.NoFlow-1, gotStats.NoFlow)
		})
	}
}

// TestParquetNullsAndBadRows checks that a null is a missing value, that a
// row no text line could be is skipped and numbered, and that NODATA rows
// carry no flow.
func TestParquetNullsAndBadRows(t *testing.T) {
	t.Parallel()
	fields := flowlog.DefaultFields()
	good := []any{int64(2), "123456789012", "eni-1", "10.0.0.1", "10.0.0.2", int64(49152), int64(443), int64(6), int64(10), int64(840), int64(1600000000), int64(1600000060), "ACCEPT", "OK"}
	withValue := func(i int, v any) []any {
		row := append([]any(nil), good...)
		row[i] = v
		return row
	}
	rows := [][]any{
		good,
		withValue(1, nil),              // null account: missing
		withValue(5, nil),              // null port: 0
		withValue(7, nil),              // null protocol: -1
		withValue(12, nil),             // null action: "-"
		withValue(3, nil),              // null srcaddr: malformed, row 6
		withValue(3, "not-an-address"), // malformed, row 7
		withValue(6, int64(70000)),     // port out of range, row 8
		withValue(13, "NODATA"),        // no flow
		{int64(2), "1", "eni-1", nil, nil, nil, nil, nil, nil, nil, int64(1), int64(2), nil, "SKIPDATA"},
		withValue(1, ""), // empty string: missing
	}
	data := parquetBytes(t, flowlogtest.ParquetFile{Fields: fields, Optional: true, Int32: true, Codec: &parquet.Gzip}, rows)
	r, err := flowlog.NewReader(bytes.NewReader(data))
	require.NoError(t, err)
	recs, st := readRecords(t, r)
	require.Len(t, recs, 6)
	require.Equal(t, "123456789012", recs[0].AccountID)
	require.Equal(t, flowlog.Missing, recs[1].AccountID)
	require.Equal(t, 0, recs[2].SrcPort)
	require.Equal(t, -1, recs[3].Protocol)
	require.Equal(t, flowlog.Missing, recs[4].Action)
	require.Equal(t, flowlog.Missing, recs[5].AccountID)
	require.Equal(t, flowlog.Stats{Lines: 11, Used: 6, NoFlow: 2, Skipped: 3, FirstSkipped: []int64{6, 7, 8}}, st)
}

// TestParquetWrittenByArrow reads files written by another
// implementation (apache/arrow-go's pqarrow) in AWS's column order, with
// INT32 ports and INT64 counters as AWS writes them and nulls: with
// Arrow's defaults (dictionaries, version 1 pages), and with the
// encodings, page versions and codecs it may be told to use.
func TestParquetWrittenByArrow(t *testing.T) {
	t.Parallel()
	fields := v5Fields
	rows := sampleRows(t, 3000, fields)
	rows[10][1] = nil // a null account id
	rows[11][9] = nil // null bytes
	for i := 20; i < 3000; i += 29 {
		rows[i][3*(i%9)] = nil
	}
	int32Fields := map[string]bool{"version": true, "srcport": true, "dstport": true, "protocol": true, "tcp-flags": true, "traffic-path": true}

	arrowFields := make([]arrow.Field, len(fields))
	for i, f := range fields {
		typ := arrow.DataType(arrow.BinaryTypes.String)
		switch {
		case int32Fields[f]:
			typ = arrow.PrimitiveTypes.Int32
		case flowlogtest.IsIntField(f):
			typ = arrow.PrimitiveTypes.Int64
		}
		arrowFields[i] = arrow.Field{Name: flowlogtest.ParquetColumn(f), Type: typ, Nullable: true}
	}
	schema := arrow.NewSchema(arrowFields, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	for _, row := range rows {
		for i, v := range row {
			switch fb := b.Field(i).(type) {
			case *array.Int32Builder:
				if v == nil {
					fb.AppendNull()
				} else {
					fb.Append(int32(v.(int64)))
				}
			case *array.Int64Builder:
				if v == nil {
					fb.AppendNull()
				} else {
					fb.Append(v.(int64))
				}
			case *array.StringBuilder:
				if v == nil {
					fb.AppendNull()
				} else {
					fb.Append(v.(string))
				}
			}
		}
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	tr, err := flowlog.NewReader(bytes.NewReader(textOf(fields, rows)))
	require.NoError(t, err)
	want, _ := readRecords(t, tr)

	// encodeAll has the int columns encoded ints, the others strs, and no
	// dictionaries.
	encodeAll := func(ints, strs arrowparquet.Encoding) []arrowparquet.WriterProperty {
		props := []arrowparquet.WriterProperty{arrowparquet.WithDictionaryDefault(false)}
		for _, f := range fields {
			enc := strs
			if flowlogtest.IsIntField(f) {
				enc = ints
			}
			props = append(props, arrowparquet.WithEncodingFor(flowlogtest.ParquetColumn(f), enc))
		}
		return props
	}
	tests := []struct {
		name  string
		props []arrowparquet.WriterProperty
	}{
		{"defaults gzip", []arrowparquet.WriterProperty{arrowparquet.WithCompression(arrowcompress.Codecs.Gzip)}},
		{"plain v2 pages snappy", append(encodeAll(arrowparquet.Encodings.Plain, arrowparquet.Encodings.Plain),
			arrowparquet.WithDataPageVersion(arrowparquet.DataPageV2), arrowparquet.WithCompression(arrowcompress.Codecs.Snappy))},
		{"delta zstd small pages", append(encodeAll(arrowparquet.Encodings.DeltaBinaryPacked, arrowparquet.Encodings.DeltaByteArray),
			arrowparquet.WithCompression(arrowcompress.Codecs.Zstd), arrowparquet.WithDataPageSize(2048))},
		{"delta-length v2 pages uncompressed", append(encodeAll(arrowparquet.Encodings.DeltaBinaryPacked, arrowparquet.Encodings.DeltaLengthByteArray),
			arrowparquet.WithDataPageVersion(arrowparquet.DataPageV2))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			props := arrowparquet.NewWriterProperties(append(tt.props, arrowparquet.WithMaxRowGroupLength(1000))...)
			w, err := pqarrow.NewFileWriter(schema, &out, props, pqarrow.DefaultWriterProps())
			require.NoError(t, err)
			require.NoError(t, w.Write(rec))
			require.NoError(t, w.Close())

			pr, err := flowlog.NewReader(bytes.NewReader(out.Bytes()))
			require.NoError(t, err)
			got, st := readRecords(t, pr)
			require.Equal(t, int64(3000), st.Lines)
			require.Equal(t, want, got)
			require.Equal(t, flowlog.Missing, got[10].AccountID)
			require.Zero(t, got[11].Bytes)
		})
	}
}

// TestParquetArrowUnsignedAndEmpty reads integers Arrow writes as
// unsigned (INT32 and INT64 annotated so) as the values they are, past
// the signed types' ends, and a file of no rows, whose row group Arrow
// writes with no pages at all, as a file of no records.
func TestParquetArrowUnsignedAndEmpty(t *testing.T) {
	t.Parallel()
	write := func(schema *arrow.Schema, fill func(b *array.RecordBuilder)) []byte {
		b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
		defer b.Release()
		fill(b)
		rec := b.NewRecordBatch()
		defer rec.Release()
		var out bytes.Buffer
		w, err := pqarrow.NewFileWriter(schema, &out, arrowparquet.NewWriterProperties(arrowparquet.WithCompression(arrowcompress.Codecs.Snappy)), pqarrow.DefaultWriterProps())
		require.NoError(t, err)
		require.NoError(t, w.Write(rec))
		require.NoError(t, w.Close())
		return out.Bytes()
	}
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "srcaddr", Type: arrow.BinaryTypes.String}, {Name: "dstaddr", Type: arrow.BinaryTypes.String},
		{Name: "dstport", Type: arrow.PrimitiveTypes.Uint16},
		{Name: "packets", Type: arrow.PrimitiveTypes.Uint32}, {Name: "bytes", Type: arrow.PrimitiveTypes.Uint64},
	}, nil)
	data := write(schema, func(b *array.RecordBuilder) {
		b.Field(0).(*array.StringBuilder).AppendValues([]string{"10.0.0.1", "10.0.0.2"}, nil)
		b.Field(1).(*array.StringBuilder).AppendValues([]string{"10.0.0.3", "10.0.0.4"}, nil)
		b.Field(2).(*array.Uint16Builder).AppendValues([]uint16{443, 65535}, nil)
		b.Field(3).(*array.Uint32Builder).AppendValues([]uint32{7, 3_000_000_000}, nil)
		b.Field(4).(*array.Uint64Builder).AppendValues([]uint64{1, 1 << 62}, nil)
	})
	r, err := flowlog.NewReader(bytes.NewReader(data))
	require.NoError(t, err)
	recs, st := readRecords(t, r)
	require.Zero(t, st.Skipped)
	require.Len(t, recs, 2)
	require.Equal(t, 65535, recs[1].DstPort)
	require.Equal(t, int64(3_000_000_000), recs[1].Packets)
	require.Equal(t, int64(1<<62), recs[1].Bytes)

	empty := write(schema, func(*array.RecordBuilder) {})
	r, err = flowlog.NewReader(bytes.NewReader(empty))
	require.NoError(t, err)
	recs, st = readRecords(t, r)
	require.Empty(t, recs)
	require.Equal(t, flowlog.Stats{}, st)
}

// TestParquetLongRowSkipped skips a row whose fields together are longer
// than a line may be (WithMaxLineBytes), as the text reader skips the line
// (a dictionary value of megabytes costs a file one index a row), and a
// row whose account or interface id is longer than MaxIDBytes, whatever
// the bound.
func TestParquetLongRowSkipped(t *testing.T) {
	t.Parallel()
	fields := flowlog.DefaultFields()
	rows := sampleRows(t, 20, fields)
	rows[3][2] = strings.Repeat("e", 16<<10)               // interface-id: a row over 16 KiB
	rows[5][1] = strings.Repeat("9", flowlog.MaxIDBytes)   // account-id as long as may be
	rows[7][1] = strings.Repeat("9", flowlog.MaxIDBytes+1) // and a byte longer
	rows[9][2] = "eni-" + strings.Repeat("f", flowlog.MaxIDBytes-3)
	data := parquetBytes(t, flowlogtest.ParquetFile{Fields: fields, Encoding: "dict", Codec: &parquet.Zstd}, rows)

	for _, maxLine := range []int{16 << 10, flowlog.DefaultMaxLineBytes} {
		r, err := flowlog.NewParquetReader(bytes.NewReader(data), int64(len(data)), flowlog.WithMaxLineBytes(maxLine))
		require.NoError(t, err)
		recs, st := readRecords(t, r)
		require.Len(t, recs, 17, "bound %d", maxLine)
		require.Equal(t, []int64{4, 8, 10}, st.FirstSkipped, "bound %d", maxLine)
		require.Len(t, recs[4].AccountID, flowlog.MaxIDBytes)
	}
}

// TestParquetFromFile detects Parquet by content in an *os.File whatever
// its name, and refuses Parquet on a stream with a clear error.
func TestParquetFromFile(t *testing.T) {
	t.Parallel()
	data := parquetBytes(t, flowlogtest.ParquetFile{Fields: flowlog.DefaultFields(), Codec: &parquet.Snappy}, sampleRows(t, 50, flowlog.DefaultFields()))
	path := filepath.Join(t.TempDir(), "named-like-text.log")
	require.NoError(t, os.WriteFile(path, data, 0o600))
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	r, err := flowlog.NewReader(f, flowlog.WithContext(context.Background()))
	require.NoError(t, err)
	recs, _ := readRecords(t, r)
	require.Len(t, recs, 50)

	_, err = flowlog.NewReader(io.MultiReader(bytes.NewReader(data)))
	require.ErrorIs(t, err, flowlog.ErrNeedsRandomAccess)
}

// TestParquetCorrupt checks that a truncated or damaged file is refused or
// has its broken rows counted, and never panics or fails the reader.
func TestParquetCorrupt(t *testing.T) {
	t.Parallel()
	fields := flowlog.DefaultFields()
	rows := sampleRows(t, 1000, fields)
	data := parquetBytes(t, flowlogtest.ParquetFile{Fields: fields, Codec: &parquet.Gzip, RowsPerGroup: 250}, rows)

	for _, cut := range []int{4, 11, len(data) / 2, len(data) - 1} {
		_, err := flowlog.NewReader(bytes.NewReader(data[:cut]))
		require.ErrorIs(t, err, flowlog.ErrMalformedParquet, "cut at %d", cut)
		require.ErrorIs(t, err, flowlog.ErrCorrupt)
	}
	huge := append([]byte(nil), data...)
	copy(huge[len(huge)-8:], []byte{0xff, 0xff, 0xff, 0x7f})
	_, err := flowlog.NewReader(bytes.NewReader(huge))
	require.ErrorIs(t, err, flowlog.ErrMalformedParquet)

	// Damage the pages (the bytes between the magic and the footer) at
	// random: each file is refused, or read with its rows all accounted
	// for, and nothing panics.
	rng := rand.New(rand.NewPCG(1, 2))
	footer := int(uint32(data[len(data)-8]) | uint32(data[len(data)-7])<<8 | uint32(data[len(data)-6])<<16)
	damagedRows := 0
	for range 60 {
		bad := append([]byte(nil), data...)
		for range 1 + rng.IntN(4) {
			i := 4 + rng.IntN(len(data)-footer-12)
			bad[i] ^= byte(1 + rng.IntN(255))
		}
		r, err := flowlog.NewReader(bytes.NewReader(bad))
		if err != nil {
			require.ErrorIs(t, err, flowlog.ErrMalformedParquet)
			continue
		}
		for r.Next() {
		}
		require.NoError(t, r.Err())
		st := r.Stats()
		require.Equal(t, int64(1000), st.Lines)
		require.Equal(t, st.Lines, st.Used+st.NoFlow+st.Skipped)
		if st.Skipped > 0 {
			damagedRows++
		}
	}
	require.Positive(t, damagedRows, "no damage was ever seen")
}

// failingReaderAt fails every read that reaches bytes from to to, as
// storage that fails partway through a file.
type failingReaderAt struct {
	r        *bytes.Reader
	from, to int64
}

var errStorage = errors.New("storage unavailable")

func (f failingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > f.from && off < f.to {
		return 0, errStorage
	}
	return f.r.ReadAt(p, off)
}

// TestParquetReadFailureFailsTheRead checks that storage failing partway
// through a file fails the read, with the storage's error, rather than
// having the rows it could not fetch counted as malformed and lost.
func TestParquetReadFailureFailsTheRead(t *testing.T) {
	t.Parallel()
	fields := flowlog.DefaultFields()
	data := parquetBytes(t, flowlogtest.ParquetFile{Fields: fields, Codec: &parquet.Gzip, RowsPerGroup: 250}, sampleRows(t, 1000, fields))
	_, footerAt := footerOf(t, data)
	r, err := flowlog.NewParquetReader(failingReaderAt{bytes.NewReader(data), int64(footerAt / 2), int64(footerAt)}, int64(len(data)))
	require.NoError(t, err, "the footer is read")
	n := 0
	for r.Next() {
		n++
	}
	require.ErrorIs(t, r.Err(), errStorage)
	require.Less(t, n, 1000)
	require.Zero(t, r.Stats().Skipped, "rows not fetched are not malformed")

	// The footer's storage failing is not a malformed file either: a
	// reader of many files would skip it, and lose its records.
	for _, at := range [][2]int64{{int64(len(data)) - 8, int64(len(data))}, {int64(footerAt), int64(footerAt) + 1}} {
		_, err := flowlog.NewParquetReader(failingReaderAt{bytes.NewReader(data), at[0], at[1]}, int64(len(data)))
		require.ErrorIs(t, err, errStorage)
		require.NotErrorIs(t, err, flowlog.ErrMalformedParquet)
		// Nor is a read of it cut short, with io.EOF or no error at all.
		for _, cutErr := range []error{io.EOF, nil} {
			_, err = flowlog.NewParquetReader(shortReaderAt{bytes.NewReader(data), at[0], cutErr}, int64(len(data)))
			require.ErrorIs(t, err, io.ErrUnexpectedEOF)
			require.NotErrorIs(t, err, flowlog.ErrMalformedParquet)
		}
	}
}

// shortReaderAt returns half of any read reaching past byte from, with
// err, as a connection cut mid-transfer may.
type shortReaderAt struct {
	r    *bytes.Reader
	from int64
	err  error
}

func (s shortReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > s.from {
		n, _ := s.r.ReadAt(p[:len(p)/2], off)
		return n, s.err
	}
	return s.r.ReadAt(p, off)
}

// cancellingReaderAt cancels a context once a read reaches bytes from
// to to.
type cancellingReaderAt struct {
	r        *bytes.Reader
	from, to int64
	cancel   context.CancelFunc
}

func (c cancellingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > c.from && off < c.to {
		c.cancel()
	}
	return c.r.ReadAt(p, off)
}

// TestParquetHonoursContext stops a Parquet read once its context ends.
func TestParquetHonoursContext(t *testing.T) {
	t.Parallel()
	data := parquetBytes(t, flowlogtest.ParquetFile{Fields: flowlog.DefaultFields()}, sampleRows(t, 100, flowlog.DefaultFields()))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r, err := flowlog.NewParquetReader(bytes.NewReader(data), int64(len(data)), flowlog.WithContext(ctx))
	require.NoError(t, err)
	require.False(t, r.Next())
	require.True(t, errors.Is(r.Err(), context.Canceled))

	// A context that ends while a row group's pages are read stops the
	// read at the next page, not at the next few thousand rows, and its
	// rows are not counted as malformed.
	fields := flowlog.DefaultFields()
	data = parquetBytes(t, flowlogtest.ParquetFile{Fields: fields, Codec: &parquet.Gzip, PageVersion: 1, PageBytes: 512}, sampleRows(t, 1000, fields))
	_, footerAt := footerOf(t, data)
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	r, err = flowlog.NewParquetReader(cancellingReaderAt{bytes.NewReader(data), int64(footerAt / 2), int64(footerAt), cancel}, int64(len(data)), flowlog.WithContext(ctx))
	require.NoError(t, err)
	n := 0
	for r.Next() {
		n++
	}
	require.ErrorIs(t, r.Err(), context.Canceled)
	require.Less(t, n, 1000)
	require.Zero(t, r.Stats().Skipped)
}

// FuzzParquetReader feeds the Parquet reader files damaged or made up
// anywhere, footer included: each is refused as malformed, or read to its
// end with every row accounted for; nothing panics, and what is allocated
// stays within parquetAllocBound of the file's size.
func FuzzParquetReader(f *testing.F) {
	var recs [][]any
	if err := flowlogtest.Records(flowlogtest.Spec{Lines: 40, Addrs: 20, Seed: 3}, func(r *flowlog.Record) error {
		recs = append(recs, flowlogtest.RecordValues(r, flowlog.DefaultFields()))
		return nil
	}); err != nil {
		f.Fatal(err)
	}
	for _, pf := range []flowlogtest.ParquetFile{
		{Fields: flowlog.DefaultFields(), RowsPerGroup: 16},
		{Fields: flowlog.DefaultFields(), Int32: true, Optional: true, Codec: &parquet.Snappy, RowsPerGroup: 16},
		{Fields: flowlog.DefaultFields(), Optional: true, Codec: &parquet.Gzip},
		{Fields: flowlog.DefaultFields(), Codec: &parquet.Zstd},
	} {
		var b bytes.Buffer
		if err := flowlogtest.WriteParquet(&b, pf, recs); err != nil {
			f.Fatal(err)
		}
		f.Add(b.Bytes())
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		r, err := flowlog.NewParquetReader(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			require.ErrorIs(t, err, flowlog.ErrMalformedParquet)
			return
		}
		for r.Next() {
			rec := r.Record()
			require.True(t, rec.SrcAddr.IsValid() && rec.DstAddr.IsValid(), "record %+v", rec)
		}
		require.NoError(t, r.Err())
		st := r.Stats()
		require.Equal(t, st.Lines, st.Used+st.NoFlow+st.Skipped)
		runtime.ReadMemStats(&after)
		alloc := after.TotalAlloc - before.TotalAlloc
		require.LessOrEqual(t, alloc, parquetAllocBound(len(data)), "allocated %d bytes for a file of %d", alloc, len(data))
	})
}

// parquetAllocBound is what reading a made-up Parquet file of n bytes may
// allocate in all: what its columns may hold at once (256 MiB, pages and
// dictionaries), twice over for the buffers left behind as they grew, and
// the reader's own buffers, which grow with the file's size.
func parquetAllocBound(n int) uint64 { return 2*256<<20 + 32<<20 + 256*uint64(n) }
