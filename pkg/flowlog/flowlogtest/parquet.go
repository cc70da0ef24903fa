package flowlogtest

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/flowlog"
)

// ParquetFile describes a Parquet flow-log file as AWS writes them (one
// column per field, named with underscores), with the choices tools
// disagree on left open, so that a reader is tested against each.
type ParquetFile struct {
	// Fields are the flow-log fields ("srcaddr", "log-status", …), one
	// column each. parquet-go orders a group's columns by name, whatever
	// the order here.
	Fields []string
	// Int32 writes the integer fields as INT32 instead of INT64.
	Int32 bool
	// Int32Fields, when not empty, are the only integer fields written as
	// INT32, as AWS writes ports and protocol (the counters and times are
	// INT64); Int32 is then ignored.
	Int32Fields []string
	// Optional makes every column nullable, as AWS does; a nil value is
	// then written as a null.
	Optional bool
	// Codec compresses the pages; nil means uncompressed.
	Codec compress.Codec
	// RowsPerGroup bounds a row group's rows; 0 means the library's default.
	RowsPerGroup int64
	// Encoding encodes every column's values: "" or "plain", "dict"
	// (a dictionary page, then RLE_DICTIONARY indexes), or "delta"
	// (DELTA_BINARY_PACKED integers, DELTA_BYTE_ARRAY strings) and
	// "delta-length" (DELTA_LENGTH_BYTE_ARRAY strings, delta integers).
	Encoding string
	// PageVersion is the data pages' version, 1 or 2; 0 means the
	// library's default (2).
	PageVersion int
	// PageBytes bounds a page's bytes before the library cuts it; 0 means
	// the library's default.
	PageBytes int
}

// intFields are the flow-log fields that hold integers.
var intFields = map[string]bool{
	"version": true, "srcport": true, "dstport": true, "protocol": true,
	"packets": true, "bytes": true, "start": true, "end": true,
	"tcp-flags": true, "traffic-path": true,
}

// IsIntField reports whether a flow-log field holds an integer (and so is
// an INT32 or INT64 column in Parquet).
func IsIntField(field string) bool { return intFields[field] }

// ParquetColumn is the column name AWS writes for a flow-log field:
// "log-status" is "log_status".
func ParquetColumn(field string) string { return strings.ReplaceAll(field, "-", "_") }

// WriteParquet writes rows to w as a Parquet file shaped by f. Each row
// holds one value per field of f.Fields, in that order: an int64 for an
// integer field, a string otherwise, nil for a null (only when Optional).
func WriteParquet(w io.Writer, f ParquetFile, rows [][]any) error {
	group := parquet.Group{}
	int32s := map[string]bool{}
	for _, field := range f.Fields {
		int32s[field] = intFields[field] && (f.Int32 && len(f.Int32Fields) == 0 || slices.Contains(f.Int32Fields, field))
	}
	for _, field := range f.Fields {
		var node parquet.Node = parquet.String()
		if intFields[field] {
			node = parquet.Int(64)
			if int32s[field] {
				node = parquet.Int(32)
			}
		}
		switch {
		case f.Encoding == "dict":
			node = parquet.Encoded(node, &parquet.RLEDictionary)
		case f.Encoding == "delta" && intFields[field], f.Encoding == "delta-length" && intFields[field]:
			node = parquet.Encoded(node, &parquet.DeltaBinaryPacked)
		case f.Encoding == "delta":
			node = parquet.Encoded(node, &parquet.DeltaByteArray)
		case f.Encoding == "delta-length":
			node = parquet.Encoded(node, &parquet.DeltaLengthByteArray)
		case f.Encoding != "" && f.Encoding != "plain":
			return fmt.Errorf("flowlogtest: encoding %q", f.Encoding)
		}
		if f.Optional {
			node = parquet.Optional(node)
		}
		group[ParquetColumn(field)] = node
	}
	schema := parquet.NewSchema("flowlog", group)
	// The schema orders its columns by name; find each field's column.
	column := make([]int, len(f.Fields))
	for i, field := range f.Fields {
		leaf, ok := schema.Lookup(ParquetColumn(field))
		if !ok {
			return fmt.Errorf("flowlogtest: no column for %q", field)
		}
		column[i] = leaf.ColumnIndex
	}
	opts := []parquet.WriterOption{schema}
	if f.Codec != nil {
		opts = append(opts, parquet.Compression(f.Codec))
	}
	if f.RowsPerGroup > 0 {
		opts = append(opts, parquet.MaxRowsPerRowGroup(f.RowsPerGroup))
	}
	if f.PageVersion > 0 {
		opts = append(opts, parquet.DataPageVersion(f.PageVersion))
	}
	if f.PageBytes > 0 {
		opts = append(opts, parquet.PageBufferSize(f.PageBytes))
	}
	pw := parquet.NewWriter(w, opts...)
	def := 0
	if f.Optional {
		def = 1
	}
	for _, values := range rows {
		if len(values) != len(f.Fields) {
			return fmt.Errorf("flowlogtest: row of %d values for %d fields", len(values), len(f.Fields))
		}
		row := make(parquet.Row, len(values))
		for i, v := range values {
			var pv parquet.Value
			switch v := v.(type) {
			case nil:
				row[column[i]] = parquet.Value{}.Level(0, 0, column[i])
				continue
			case string:
				pv = parquet.ByteArrayValue([]byte(v))
			case int64:
				if int32s[f.Fields[i]] {
					pv = parquet.Int32Value(int32(v))
				} else {
					pv = parquet.Int64Value(v)
				}
			default:
				return fmt.Errorf("flowlogtest: value %v of type %T", v, v)
			}
			row[column[i]] = pv.Level(0, def, column[i])
		}
		if _, err := pw.WriteRows([]parquet.Row{row}); err != nil {
			return fmt.Errorf("flowlogtest: write row: %w", err)
		}
	}
	if err := pw.Close(); err != nil {
		return fmt.Errorf("flowlogtest: close Parquet writer: %w", err)
	}
	return nil
}

// RecordValues returns rec's values for fields, as WriteParquet takes
// them; a field a Record does not hold gets a placeholder an AWS file
// could hold ("vpc-0123" for vpc-id, 0 for an integer).
func RecordValues(rec *flowlog.Record, fields []string) []any {
	values := make([]any, len(fields))
	for i, field := range fields {
		switch field {
		case "version":
			values[i] = int64(rec.Version)
		case "account-id":
			values[i] = rec.AccountID
		case "interface-id":
			values[i] = rec.InterfaceID
		case "srcaddr":
			values[i] = rec.SrcAddr.String()
		case "dstaddr":
			values[i] = rec.DstAddr.String()
		case "srcport":
			values[i] = int64(rec.SrcPort)
		case "dstport":
			values[i] = int64(rec.DstPort)
		case "protocol":
			values[i] = int64(rec.Protocol)
		case "packets":
			values[i] = rec.Packets
		case "bytes":
			values[i] = rec.Bytes
		case "start":
			values[i] = rec.Start
		case "end":
			values[i] = rec.End
		case "action":
			values[i] = rec.Action
		case "log-status":
			values[i] = rec.LogStatus
		default:
			if intFields[field] {
				values[i] = int64(0)
			} else {
				values[i] = strings.SplitN(field, "-", 2)[0] + "-0123"
			}
		}
	}
	return values
}
