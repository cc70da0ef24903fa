package digester

import (
	"bytes"
	"context"
	"log/slog"
	"net/netip"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
	"github.com/stretchr/testify/require"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/awss3/s3test"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/flowlog"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/flowlog/flowlogtest"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
)

const parquetAcct = "111122223333"

// windowRecords makes n records inside the test window, between a few
// addresses so that compaction merges some of them.
func windowRecords(n, seed int) []flowlog.Record {
	recs := make([]flowlog.Record, n)
	for i := range recs {
		j := i + seed
		recs[i] = flowlog.Record{
			Version: 2, AccountID: parquetAcct, InterfaceID: "eni-" + string(rune('a'+j%3)),
			SrcAddr: netip.AddrFrom4([4]byte{10, 0, 0, byte(j % 20)}),
			DstAddr: netip.AddrFrom4([4]byte{10, 0, 1, byte(j % 7)}),
			SrcPort: 40000 + j%50, DstPort: []int{22, 443, 8080}[j%3], Protocol: 6,
			Packets: int64(1 + j%5), Bytes: int64(100 * (1 + j%9)),
			Start: t0 + int64(j*7%3000), End: t0 + int64(j*7%3000) + 60,
			Action: []string{flowlog.ActionAccept, flowlog.ActionReject}[j%2], LogStatus: flowlog.StatusOK,
		}
	}
	return recs
}

// textFile is recs as a text flow-log file with the default header.
func textFile(recs []flowlog.Record) string {
	var b strings.Builder
	b.WriteString(defaultHeader + "\n")
	for i := range recs {
		b.Write(flowlog.AppendDigestLine(nil, &recs[i]))
	}
	return b.String()
}

// parquetFile is recs as a Parquet file shaped by f.
func parquetFile(t *testing.T, f flowlogtest.ParquetFile, recs []flowlog.Record) string {
	t.Helper()
	rows := make([][]any, len(recs))
	for i := range recs {
		rows[i] = flowlogtest.RecordValues(&recs[i], f.Fields)
	}
	var b bytes.Buffer
	require.NoError(t, flowlogtest.WriteParquet(&b, f, rows))
	return b.String()
}

// mixedTree is a window's worth of files in both layouts, daily and hourly,
// half text and half Parquet (one of them named like a text file, one
// corrupt), and the same records as one text file.
func mixedTree(t *testing.T) (files map[string]string, corruptKey string, allText map[string]string) {
	t.Helper()
	v5 := append(flowlog.DefaultFields(), "vpc-id", "pkt-srcaddr", "flow-direction", "tcp-flags")
	a, b, c, d := windowRecords(300, 0), windowRecords(200, 300), windowRecords(250, 500), windowRecords(150, 750)
	corruptKey = hiveKey(parquetAcct, "eu-west-1", "20261101T1030Z", 10, ".log.parquet")
	files = map[string]string{
		plainKey(parquetAcct, "us-east-1", "20261101T1005Z", -1, ".log.gz"):      textFile(a),
		plainKey(parquetAcct, "us-east-1", "20261101T1010Z", -1, ".log.parquet"): parquetFile(t, flowlogtest.ParquetFile{Fields: flowlog.DefaultFields(), Codec: &parquet.Gzip, RowsPerGroup: 64}, b),
		hiveKey(parquetAcct, "eu-west-1", "20261101T1020Z", 10, ".log.parquet"):  parquetFile(t, flowlogtest.ParquetFile{Fields: v5, Int32: true, Optional: true, Codec: &parquet.Snappy}, c),
		hiveKey(parquetAcct, "eu-west-1", "20261101T1025Z", -1, ".log"):          parquetFile(t, flowlogtest.ParquetFile{Fields: flowlog.DefaultFields(), Codec: &parquet.Zstd}, d),
		corruptKey: parquetFile(t, flowlogtest.ParquetFile{Fields: flowlog.DefaultFields()}, d)[:300],
	}
	all := append(append(append(a, b...), c...), d...)
	allText = map[string]string{plainKey(parquetAcct, "us-east-1", "20261101T1010Z", -1, ".log"): textFile(all)}
	return files, corruptKey, allText
}

// TestBuiltinParquetMatchesText digests a window mixing text and Parquet
// files, in both layouts, and wants the digest of the same records in text;
// the corrupt Parquet file is skipped, named in the log, and does not fail
// the window.
func TestBuiltinParquetMatchesText(t *testing.T) {
	t.Parallel()
	files, corruptKey, allText := mixedTree(t)
	dir, textDir := t.TempDir(), t.TempDir()
	writeTree(t, dir, files)
	writeTree(t, textDir, allText)

	var logs bytes.Buffer
	got, err := digestAll(t, &Builtin{Source: Dir{Path: dir}, Logger: slog.New(slog.NewJSONHandler(&logs, nil))}, testStart, testStop)
	require.NoError(t, err)
	want, err := digestAll(t, &Builtin{Source: Dir{Path: textDir}}, testStart, testStop)
	require.NoError(t, err)
	require.NotEmpty(t, want)
	require.Equal(t, want, got)
	require.Contains(t, logs.String(), "malformed flow log file skipped")
	require.Contains(t, logs.String(), corruptKey)
	require.Contains(t, logs.String(), `"skipped_files":1`)
}

// TestBuiltinOnlyMalformedParquet fails the window, permanently, when its
// only files are malformed Parquet: nothing usable remains.
func TestBuiltinOnlyMalformedParquet(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		plainKey(parquetAcct, "us-east-1", "20261101T1020Z", -1, ".log.parquet"): "PAR1",
		hiveKey(parquetAcct, "us-east-1", "20261101T1030Z", 10, ".log.parquet"):  "PAR1 and then nothing a reader can use PAR1",
	})
	_, err := (&Builtin{Source: Dir{Path: dir}}).Digest(context.Background(), testStart, testStop)
	require.ErrorIs(t, err, flowlog.ErrMalformedParquet)
	require.True(t, types.IsPermanent(err))
	require.Contains(t, err.Error(), "2 of 2 flow log files malformed")
}

// TestBucketParquet reads the mixed window from a real S3 server, the
// Parquet files through ranged reads, and wants the same digest as from
// the folder.
func TestBucketParquet(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t)
	client := srv.Client(t)
	bucket := srv.NewBucket(t)
	files, _, allText := mixedTree(t)
	for key, content := range files {
		if strings.HasSuffix(key, ".gz") {
			content = string(gzipBytes(t, content))
		}
		putObject(t, client, bucket, "flows/"+key, content)
	}
	textDir := t.TempDir()
	writeTree(t, textDir, allText)
	want, err := digestAll(t, &Builtin{Source: Dir{Path: textDir}}, testStart, testStop)
	require.NoError(t, err)
	got, err := digestAll(t, &Builtin{Source: &Bucket{Client: client, Bucket: bucket, Prefix: "flows"}}, testStart, testStop)
	require.NoError(t, err)
	require.Equal(t, want, got)

	src := &Bucket{Client: client, Bucket: bucket, Prefix: "flows"}
	_, _, err = src.OpenAt(context.Background(), "AWSLogs/missing.log.parquet")
	require.ErrorIs(t, err, types.ErrNotFound)
}
