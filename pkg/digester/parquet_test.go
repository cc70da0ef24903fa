package digester

import (
	"github.com/asecurityteam/vpcflow-grapherd/pkg/awss3"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"time"

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

// TestBucketParquetSmallRowGroups reads, from a real S3 server through a
// proxy that counts its ranged GETs, a Parquet file of 400 row groups of
// 8 rows each, a few hundred bytes a column chunk: the small reads are
// served from windows of the object, so it takes a GET or so a window
// (5 for its 1.3 MB), where it took one per column per group (5,602, and
// 11.6 s against 0.3), and the digest is the one the same file gives from
// a folder.
func TestBucketParquetSmallRowGroups(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t)
	var gets atomic.Int64
	target, err := url.Parse(srv.Endpoint)
	require.NoError(t, err)
	proxy := httputil.NewSingleHostReverseProxy(target)
	counting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.Header.Get("Range") != "" {
			gets.Add(1)
		}
		proxy.ServeHTTP(w, r)
	}))
	defer counting.Close()
	client, err := awss3.NewClient(context.Background(), awss3.Options{Endpoint: counting.URL, AccessKeyID: srv.AccessKey,
		SecretAccessKey: srv.SecretKey, Region: s3test.Region, Timeout: 10 * time.Second})
	require.NoError(t, err)
	bucket := srv.NewBucket(t)
	key := plainKey(parquetAcct, "us-east-1", "20261101T1010Z", -1, ".log.parquet")
	file := parquetFile(t, flowlogtest.ParquetFile{Fields: flowlog.DefaultFields(), Codec: &parquet.Snappy, RowsPerGroup: 8}, windowRecords(3200, 0))
	putObject(t, srv.Client(t), bucket, key, file)

	dir := t.TempDir()
	writeTree(t, dir, map[string]string{key: file})
	want, err := digestAll(t, &Builtin{Source: Dir{Path: dir}}, testStart, testStop)
	require.NoError(t, err)
	got, err := digestAll(t, &Builtin{Source: &Bucket{Client: client, Bucket: bucket}}, testStart, testStop)
	require.NoError(t, err)
	require.Equal(t, want, got)
	windows := int64(len(file)/rangeWindowBytes + 1)
	require.LessOrEqual(t, gets.Load(), 2*windows+4, "ranged GETs for a %d-byte file", len(file))
	t.Logf("%d ranged GETs for a %d-byte file of 400 row groups", gets.Load(), len(file))
}
