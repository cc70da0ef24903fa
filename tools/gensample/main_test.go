package main

import (
	"bytes"
	"compress/gzip"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// checkedIn is the sample in the repository, relative to this package.
const checkedIn = "../../testdata/flowlogs"

// readTree returns every file under dir by slash path, gzip files
// decompressed, so that a change of compressor between Go versions does not
// count as a change of the sample.
func readTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if strings.HasSuffix(p, ".gz") {
			zr, err := gzip.NewReader(bytes.NewReader(b))
			require.NoError(t, err, p)
			require.True(t, zr.ModTime.IsZero(), "%s: gzip header has a time", p)
			require.Empty(t, zr.Name, p)
			b, err = io.ReadAll(zr)
			require.NoError(t, err, p)
		}
		rel, err := filepath.Rel(dir, p)
		require.NoError(t, err)
		files[filepath.ToSlash(rel)] = string(b)
		return nil
	})
	require.NoError(t, err)
	return files
}

// TestSampleUpToDate regenerates the sample and compares it with the one
// checked in: run "go run ./tools/gensample" when it fails.
func TestSampleUpToDate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var out bytes.Buffer
	require.NoError(t, run([]string{"-out", dir}, &out, io.Discard))
	require.Contains(t, out.String(), "wrote 45 files")

	got, want := readTree(t, dir), readTree(t, checkedIn)
	require.Equal(t, len(want), len(got), "number of files")
	for name, content := range want {
		require.Contains(t, got, name)
		require.Equal(t, content, got[name], "%s is stale: run go run ./tools/gensample", name)
	}
}

// TestGenerateIsDeterministic writes the sample twice and compares bytes,
// compressed ones included.
func TestGenerateIsDeterministic(t *testing.T) {
	t.Parallel()
	a, b := newSample(), newSample()
	require.Len(t, b.files, len(a.files))
	for i := range a.files {
		ca, err := a.files[i].content()
		require.NoError(t, err)
		cb, err := b.files[i].content()
		require.NoError(t, err)
		require.Equal(t, a.files[i].key, b.files[i].key)
		require.Equal(t, ca, cb, a.files[i].key)
	}
}

// TestRunReplacesOldFiles shows a stale file under AWSLogs does not survive a
// run, while files next to it are kept.
func TestRunReplacesOldFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	stale := filepath.Join(dir, "AWSLogs", "999999999999", "old.log")
	require.NoError(t, os.MkdirAll(filepath.Dir(stale), 0o755))
	require.NoError(t, os.WriteFile(stale, []byte("old"), 0o644))
	keep := filepath.Join(dir, "notes.txt")
	require.NoError(t, os.WriteFile(keep, []byte("mine"), 0o644))

	require.NoError(t, run([]string{"-out", dir}, io.Discard, io.Discard))
	require.NoFileExists(t, stale)
	require.FileExists(t, keep)
}

func TestRunRejectsArguments(t *testing.T) {
	t.Parallel()
	require.Error(t, run([]string{"-out", t.TempDir(), "extra"}, io.Discard, io.Discard))
	require.Error(t, run([]string{"-nope"}, io.Discard, io.Discard))
}

// TestSampleShape checks the sample holds what the quick start and the
// digester's tests rely on.
func TestSampleShape(t *testing.T) {
	t.Parallel()
	s := newSample()
	accounts := map[string]bool{}
	enis := map[string]bool{}
	var hive, plain, gz, notGz, custom, noHeader, parquet bool
	statuses := map[string]int{}
	actions := map[string]int{}
	var before, after int
	for _, f := range s.files {
		hive = hive || strings.Contains(f.key, "/aws-account-id=")
		plain = plain || strings.Contains(f.key, "/vpcflowlogs/")
		gz = gz || f.gz
		notGz = notGz || !f.gz
		custom = custom || f.fields[1] == "vpc-id"
		noHeader = noHeader || !f.header
		parquet = parquet || f.parquet
		for _, r := range f.records {
			accounts[r.Account] = true
			enis[r.ENI] = true
			statuses[r.Status]++
			if r.Status == "OK" {
				actions[r.Action]++
				if r.End < windowStart.Unix() {
					before++
				}
				if r.Start >= windowStop.Unix() {
					after++
				}
			}
		}
	}
	require.Len(t, accounts, 4)
	require.GreaterOrEqual(t, len(enis), 6)
	require.True(t, hive && plain && gz && notGz && custom && noHeader && parquet)
	require.Positive(t, statuses["NODATA"])
	require.Positive(t, statuses["SKIPDATA"])
	require.Positive(t, actions["ACCEPT"])
	require.Positive(t, actions["REJECT"])
	require.Positive(t, before)
	require.Positive(t, after)
	in := s.countInWindow()
	require.GreaterOrEqual(t, in, 200, "a few hundred records in the window")
	require.Less(t, in, 1000)
}

// TestExpectedDigestByHand checks the generator's own compaction against
// lines worked out by hand.
func TestExpectedDigestByHand(t *testing.T) {
	t.Parallel()
	start := time.Unix(1000, 0).UTC()
	stop := time.Unix(2000, 0).UTC()
	a, b, c := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("2001:db8::1")
	rec := func(src netip.Addr, sp int, dst netip.Addr, dp, proto int, pk, by, st, en int64, action string) record {
		return record{Account: "123", ENI: "eni-1", Src: src, Dst: dst, SrcPort: sp, DstPort: dp,
			Protocol: proto, Packets: pk, Bytes: by, Start: st, End: en, Action: action, Status: "OK"}
	}
	records := []record{
		// Two connections from a to b:443 merge: ports 50000 and 50001 become 0.
		rec(a, 50000, b, 443, 6, 10, 1000, 1100, 1160, "ACCEPT"),
		rec(a, 50001, b, 443, 6, 5, 500, 1050, 1300, "ACCEPT"),
		// The replies: the source port is the service port, kept.
		rec(b, 443, a, 50000, 6, 8, 4000, 1100, 1160, "ACCEPT"),
		// The same flow rejected does not merge with the accepted one.
		rec(a, 50002, b, 443, 6, 1, 40, 1400, 1410, "REJECT"),
		// Equal ports: the source port becomes 0.
		rec(a, 123, c, 123, 17, 2, 152, 1500, 1560, "ACCEPT"),
		// Ends exactly at the window's start: kept.
		rec(a, 40000, b, 22, 6, 3, 180, 940, 1000, "ACCEPT"),
		// Ends a second before: left out.
		rec(a, 40001, b, 22, 6, 100, 100, 900, 999, "ACCEPT"),
		// Starts exactly at the stop: left out.
		rec(a, 40002, b, 22, 6, 100, 100, 2000, 2050, "ACCEPT"),
		// Starts just before the stop: kept, with its own end.
		rec(a, 40003, b, 22, 6, 4, 240, 1999, 2059, "ACCEPT"),
		// No flow: left out.
		{Account: "123", ENI: "eni-1", Start: 1000, End: 1600, Status: "NODATA"},
	}
	want := []string{
		"2 123 eni-1 10.0.0.1 10.0.0.2 0 22 6 7 420 940 2059 ACCEPT OK",
		"2 123 eni-1 10.0.0.1 10.0.0.2 0 443 6 15 1500 1050 1300 ACCEPT OK",
		"2 123 eni-1 10.0.0.2 10.0.0.1 443 0 6 8 4000 1100 1160 ACCEPT OK",
		"2 123 eni-1 10.0.0.1 10.0.0.2 0 443 6 1 40 1400 1410 REJECT OK",
		"2 123 eni-1 10.0.0.1 2001:db8::1 0 123 17 2 152 1500 1560 ACCEPT OK",
	}
	require.Equal(t, want, expectedDigest(records, start, stop))
}

// TestCheckedInDigestMatchesRecords recomputes the checked-in expected digest
// from the generator's records.
func TestCheckedInDigestMatchesRecords(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join(checkedIn, digestFile))
	require.NoError(t, err)
	want := strings.Join(expectedDigest(newSample().allRecords(), windowStart, windowStop), "\n") + "\n"
	require.Equal(t, want, string(b))
	readme, err := os.ReadFile(filepath.Join(checkedIn, readmeFile))
	require.NoError(t, err)
	require.Contains(t, string(readme), "start=2026-11-01T10:00:00Z")
	require.Contains(t, string(readme), "stop=2026-11-01T11:00:00Z")
}
