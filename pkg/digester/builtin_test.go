package digester

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/flowlog"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
)

// t0 is the start of the test window, 2026-11-01T10:00:00Z, in unix seconds.
const t0 = 1793527200

const defaultHeader = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status"

// rec is a default-format line whose times are offsets from t0.
func rec(acct, eni, src, dst string, sp, dp, proto, pk, by int, st, en int64, action string) string {
	return fmt.Sprintf("2 %s %s %s %s %d %d %d %d %d %d %d %s OK",
		acct, eni, src, dst, sp, dp, proto, pk, by, t0+st, t0+en, action)
}

// want is a digest line whose times are offsets from t0.
func want(acct, eni, src, dst string, sp, dp, proto, pk, by int, st, en int64, action string) string {
	return rec(acct, eni, src, dst, sp, dp, proto, pk, by, st, en, action) + "\n"
}

// body joins lines into a file's content.
func body(lines ...string) string { return strings.Join(lines, "\n") + "\n" }

// plainKey is a key in the classic layout; hour < 0 means no hour folder.
func plainKey(acct, region, stamp string, hour int, ext string) string {
	day := stamp[0:4] + "/" + stamp[4:6] + "/" + stamp[6:8]
	dir := fmt.Sprintf("AWSLogs/%s/vpcflowlogs/%s/%s", acct, region, day)
	if hour >= 0 {
		dir += fmt.Sprintf("/%02d", hour)
	}
	return fmt.Sprintf("%s/%s_vpcflowlogs_%s_fl-0123456789abcdef0_%s_0badc0de%s", dir, acct, region, stamp, ext)
}

// hiveKey is a key in the Hive-compatible layout; hour < 0 means no hour folder.
func hiveKey(acct, region, stamp string, hour int, ext string) string {
	dir := fmt.Sprintf("AWSLogs/aws-account-id=%s/aws-service=vpcflowlogs/aws-region=%s/year=%s/month=%s/day=%s",
		acct, region, stamp[0:4], stamp[4:6], stamp[6:8])
	if hour >= 0 {
		dir += fmt.Sprintf("/hour=%02d", hour)
	}
	return fmt.Sprintf("%s/%s_vpcflowlogs_%s_fl-0fedcba987654321f_%s_c0ffee00%s", dir, acct, region, stamp, ext)
}

// corrupt is the content of a file that fails the digest if it is ever read:
// gzip magic followed by a broken header.
const corrupt = "\x1f\x8b\x00\x00\x00\x00"

// writeTree writes files (key -> content) under dir; content of keys ending in
// .gz is gzip-compressed, unless it is corrupt.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for key, content := range files {
		name := filepath.Join(dir, filepath.FromSlash(key))
		require.NoError(t, os.MkdirAll(filepath.Dir(name), 0o755))
		b := []byte(content)
		if strings.HasSuffix(key, ".gz") && content != corrupt {
			b = gzipBytes(t, content)
		}
		require.NoError(t, os.WriteFile(name, b, 0o644))
	}
}

// digestAll runs d over the test window and returns the digest.
func digestAll(t *testing.T, d *Builtin, start, stop time.Time) (string, error) {
	t.Helper()
	rc, err := d.Digest(context.Background(), start, stop)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	require.NoError(t, err)
	return string(b), nil
}

func TestBuiltinDigest(t *testing.T) {
	t.Parallel()
	const a1, a2 = "111122223333", "444455556666"
	tests := []struct {
		name  string
		files map[string]string
		setup func(b *Builtin)
		start time.Time
		want  string
	}{
		{
			name: "classic layout, gzip, with header: ephemeral ports zeroed and merged",
			files: map[string]string{
				plainKey(a1, "us-east-1", "20261101T1010Z", -1, ".log.gz"): body(defaultHeader,
					rec(a1, "eni-1", "10.0.0.1", "10.0.0.2", 50000, 443, 6, 10, 1000, 60, 120, "ACCEPT"),
					rec(a1, "eni-1", "10.0.0.1", "10.0.0.2", 50001, 443, 6, 5, 500, 30, 300, "ACCEPT"),
					rec(a1, "eni-1", "10.0.0.2", "10.0.0.1", 443, 50000, 6, 8, 4000, 60, 120, "ACCEPT"),
					rec(a1, "eni-1", "10.0.0.1", "10.0.0.2", 50002, 443, 6, 1, 40, 400, 410, "REJECT")),
			},
			want: want(a1, "eni-1", "10.0.0.1", "10.0.0.2", 0, 443, 6, 15, 1500, 30, 300, "ACCEPT") +
				want(a1, "eni-1", "10.0.0.2", "10.0.0.1", 443, 0, 6, 8, 4000, 60, 120, "ACCEPT") +
				want(a1, "eni-1", "10.0.0.1", "10.0.0.2", 0, 443, 6, 1, 40, 400, 410, "REJECT"),
		},
		{
			name: "hive layout with hour folders, plain files, no header",
			files: map[string]string{
				hiveKey(a2, "eu-west-1", "20261101T1020Z", 10, ".log"): body(
					rec(a2, "eni-2", "10.1.0.1", "10.1.0.2", 40000, 22, 6, 3, 180, 600, 660, "ACCEPT")),
				hiveKey(a2, "eu-west-1", "20261101T1110Z", 11, ".log"): body(defaultHeader,
					rec(a2, "eni-2", "10.1.0.1", "10.1.0.2", 40001, 22, 6, 4, 240, 3599, 3659, "ACCEPT")),
			},
			want: want(a2, "eni-2", "10.1.0.1", "10.1.0.2", 0, 22, 6, 7, 420, 600, 3659, "ACCEPT"),
		},
		{
			name: "both layouts and accounts at once, merged across files",
			files: map[string]string{
				plainKey(a1, "us-east-1", "20261101T1005Z", 10, ".log.gz"): body(defaultHeader,
					rec(a1, "eni-1", "10.0.0.1", "10.0.0.9", 123, 123, 17, 2, 152, 0, 60, "ACCEPT")),
				plainKey(a1, "us-east-1", "20261101T1015Z", -1, ".log"): body(defaultHeader,
					rec(a1, "eni-1", "10.0.0.1", "10.0.0.9", 123, 123, 17, 2, 152, 600, 660, "ACCEPT")),
				hiveKey(a2, "eu-west-1", "20261101T1025Z", -1, ".log.gz"): body(defaultHeader,
					rec(a2, "eni-2", "2001:db8::1", "2001:db8::2", 0, 0, 58, 1, 64, 900, 960, "ACCEPT")),
			},
			want: want(a1, "eni-1", "10.0.0.1", "10.0.0.9", 0, 123, 17, 4, 304, 0, 660, "ACCEPT") +
				want(a2, "eni-2", "2001:db8::1", "2001:db8::2", 0, 0, 58, 1, 64, 900, 960, "ACCEPT"),
		},
		{
			name: "custom format header, fields in their own order, version 5",
			files: map[string]string{
				plainKey(a1, "us-east-1", "20261101T1010Z", -1, ".log.gz"): body(
					"vpc-id flow-direction bytes packets pkt-srcaddr srcaddr dstaddr version start end dstport srcport protocol action log-status interface-id account-id",
					"vpc-1 ingress 700 7 198.51.100.3 10.0.0.200 10.0.0.5 5 "+fmt.Sprint(t0+60)+" "+fmt.Sprint(t0+120)+" 8443 41000 6 ACCEPT OK eni-5 "+a1,
					"vpc-1 ingress 300 3 198.51.100.4 10.0.0.200 10.0.0.5 5 "+fmt.Sprint(t0+100)+" "+fmt.Sprint(t0+200)+" 8443 41001 6 ACCEPT OK eni-5 "+a1,
					"vpc-1 - - - - - - 5 "+fmt.Sprint(t0)+" "+fmt.Sprint(t0+600)+" - - - - NODATA eni-6 "+a1),
			},
			want: want(a1, "eni-5", "10.0.0.200", "10.0.0.5", 0, 8443, 6, 10, 1000, 60, 200, "ACCEPT"),
		},
		{
			name: "NODATA, SKIPDATA, blank and malformed lines carry no flow",
			files: map[string]string{
				plainKey(a1, "us-east-1", "20261101T1010Z", -1, ".log"): body(defaultHeader,
					"2 "+a1+" eni-1 - - - - - - - "+fmt.Sprint(t0)+" "+fmt.Sprint(t0+600)+" - NODATA",
					"2 "+a1+" eni-1 - - - - - - - "+fmt.Sprint(t0)+" "+fmt.Sprint(t0+600)+" - SKIPDATA",
					"",
					"2 "+a1+" eni-1 10.0.0.1",
					"2 "+a1+" eni-1 not-an-address 10.0.0.2 1 2 6 1 1 1 1 ACCEPT OK",
					rec(a1, "eni-1", "10.0.0.1", "10.0.0.2", 1000, 80, 6, 1, 60, 10, 20, "ACCEPT")),
			},
			want: want(a1, "eni-1", "10.0.0.1", "10.0.0.2", 0, 80, 6, 1, 60, 10, 20, "ACCEPT"),
		},
		{
			name: "records on the window's edges",
			files: map[string]string{
				plainKey(a1, "us-east-1", "20261101T1030Z", -1, ".log"): body(defaultHeader,
					// Ends exactly at the start: kept.
					rec(a1, "eni-1", "10.0.0.1", "10.0.0.2", 50000, 22, 6, 1, 10, -60, 0, "ACCEPT"),
					// Ends a second before: left out.
					rec(a1, "eni-1", "10.0.0.1", "10.0.0.2", 50000, 23, 6, 1, 10, -60, -1, "ACCEPT"),
					// Starts a second before the stop: kept.
					rec(a1, "eni-1", "10.0.0.1", "10.0.0.2", 50000, 24, 6, 1, 10, 3599, 3659, "ACCEPT"),
					// Starts at the stop: left out.
					rec(a1, "eni-1", "10.0.0.1", "10.0.0.2", 50000, 25, 6, 1, 10, 3600, 3660, "ACCEPT")),
			},
			want: want(a1, "eni-1", "10.0.0.1", "10.0.0.2", 0, 22, 6, 1, 10, -60, 0, "ACCEPT") +
				want(a1, "eni-1", "10.0.0.1", "10.0.0.2", 0, 24, 6, 1, 10, 3599, 3659, "ACCEPT"),
		},
		{
			name: "a window starting mid-second keeps only records ending after it",
			files: map[string]string{
				plainKey(a1, "us-east-1", "20261101T1030Z", -1, ".log"): body(defaultHeader,
					rec(a1, "eni-1", "10.0.0.1", "10.0.0.2", 50000, 22, 6, 1, 10, -60, 0, "ACCEPT"),
					rec(a1, "eni-1", "10.0.0.1", "10.0.0.2", 50000, 23, 6, 1, 10, -60, 1, "ACCEPT")),
			},
			start: time.Unix(t0, 500_000_000),
			want:  want(a1, "eni-1", "10.0.0.1", "10.0.0.2", 0, 23, 6, 1, 10, -60, 1, "ACCEPT"),
		},
		{
			name: "files named outside the window and slack are never read",
			files: map[string]string{
				plainKey(a1, "us-east-1", "20261101T1010Z", -1, ".log"): body(defaultHeader,
					rec(a1, "eni-1", "10.0.0.1", "10.0.0.2", 50000, 22, 6, 1, 10, 60, 120, "ACCEPT")),
				// Same day, named 13:01 (window 10:00-11:00 plus 1h of slack
				// ends at 12:00), holding records of the window: not read.
				plainKey(a1, "us-east-1", "20261101T1201Z", -1, ".log"): body(defaultHeader,
					rec(a1, "eni-9", "10.0.0.1", "10.0.0.2", 50000, 22, 6, 1, 10, 60, 120, "ACCEPT")),
				plainKey(a1, "us-east-1", "20261101T0859Z", -1, ".log"): corrupt,
				// A file of the window misfiled in the day before's folder:
				// that folder is not listed.
				strings.Replace(plainKey(a1, "us-east-1", "20261101T1010Z", -1, ".log.gz"),
					"/2026/11/01/", "/2026/10/31/", 1): corrupt,
				// An hour folder the window does not touch, holding a file
				// whose name would qualify: the folder is not listed.
				hiveKey(a2, "eu-west-1", "20261101T1010Z", 14, ".log"): corrupt,
			},
			want: want(a1, "eni-1", "10.0.0.1", "10.0.0.2", 0, 22, 6, 1, 10, 60, 120, "ACCEPT"),
		},
		{
			name: "late delivery: a file named after the stop, within the slack",
			files: map[string]string{
				plainKey(a1, "us-east-1", "20261101T1155Z", 11, ".log.gz"): body(defaultHeader,
					rec(a1, "eni-1", "10.0.0.1", "10.0.0.2", 50000, 22, 6, 1, 10, 3000, 3060, "ACCEPT")),
			},
			want: want(a1, "eni-1", "10.0.0.1", "10.0.0.2", 0, 22, 6, 1, 10, 3000, 3060, "ACCEPT"),
		},
		{
			name: "a smaller slack leaves the late file out",
			files: map[string]string{
				plainKey(a1, "us-east-1", "20261101T1155Z", 11, ".log.gz"): body(defaultHeader,
					rec(a1, "eni-1", "10.0.0.1", "10.0.0.2", 50000, 22, 6, 1, 10, 3000, 3060, "ACCEPT")),
				plainKey(a1, "us-east-1", "20261101T1105Z", 11, ".log.gz"): body(defaultHeader,
					rec(a1, "eni-1", "10.0.0.1", "10.0.0.2", 50000, 23, 6, 1, 10, 3000, 3060, "ACCEPT")),
			},
			setup: func(b *Builtin) { b.Slack = 10 * time.Minute },
			want:  want(a1, "eni-1", "10.0.0.1", "10.0.0.2", 0, 23, 6, 1, 10, 3000, 3060, "ACCEPT"),
		},
		{
			name: "configured accounts and regions limit what is read",
			files: map[string]string{
				plainKey(a1, "us-east-1", "20261101T1010Z", -1, ".log"): body(defaultHeader,
					rec(a1, "eni-1", "10.0.0.1", "10.0.0.2", 50000, 22, 6, 1, 10, 60, 120, "ACCEPT")),
				plainKey(a1, "us-west-2", "20261101T1010Z", -1, ".log"): corrupt,
				hiveKey(a2, "us-east-1", "20261101T1010Z", -1, ".log"):  corrupt,
				hiveKey(a1, "us-east-1", "20261101T1010Z", 10, ".log"): body(defaultHeader,
					rec(a1, "eni-7", "10.0.0.1", "10.0.0.2", 50000, 22, 6, 1, 10, 60, 120, "ACCEPT")),
			},
			setup: func(b *Builtin) { b.Accounts, b.Regions = []string{a1}, []string{"us-east-1"} },
			want: want(a1, "eni-1", "10.0.0.1", "10.0.0.2", 0, 22, 6, 1, 10, 60, 120, "ACCEPT") +
				want(a1, "eni-7", "10.0.0.1", "10.0.0.2", 0, 22, 6, 1, 10, 60, 120, "ACCEPT"),
		},
		{
			name: "a prefix before AWSLogs",
			files: map[string]string{
				"flows/" + plainKey(a1, "us-east-1", "20261101T1010Z", -1, ".log"): body(defaultHeader,
					rec(a1, "eni-1", "10.0.0.1", "10.0.0.2", 50000, 22, 6, 1, 10, 60, 120, "ACCEPT")),
				plainKey(a1, "us-east-1", "20261101T1010Z", -1, ".log"): corrupt,
			},
			setup: func(b *Builtin) { b.Prefix = "/flows/" },
			want:  want(a1, "eni-1", "10.0.0.1", "10.0.0.2", 0, 22, 6, 1, 10, 60, 120, "ACCEPT"),
		},
		{
			name: "a prefix that names the AWSLogs folder itself",
			files: map[string]string{
				"flows/" + plainKey(a1, "us-east-1", "20261101T1010Z", -1, ".log"): body(defaultHeader,
					rec(a1, "eni-1", "10.0.0.1", "10.0.0.2", 50000, 22, 6, 1, 10, 60, 120, "ACCEPT")),
			},
			setup: func(b *Builtin) { b.Prefix = "flows/AWSLogs" },
			want:  want(a1, "eni-1", "10.0.0.1", "10.0.0.2", 0, 22, 6, 1, 10, 60, 120, "ACCEPT"),
		},
		{
			name: "files with other names or formats are left out",
			files: map[string]string{
				plainKey(a1, "us-east-1", "20261101T1010Z", -1, ".log"): body(defaultHeader,
					rec(a1, "eni-1", "10.0.0.1", "10.0.0.2", 50000, 22, 6, 1, 10, 60, 120, "ACCEPT")),
				plainKey(a1, "us-east-1", "20261101T1020Z", -1, ".log.parquet"):    "PAR1 not readable here",
				"AWSLogs/" + a1 + "/vpcflowlogs/us-east-1/2026/11/01/notes.txt":    "a human was here",
				"AWSLogs/" + a1 + "/CloudTrail/us-east-1/2026/11/01/trail.json.gz": "another service",
			},
			want: want(a1, "eni-1", "10.0.0.1", "10.0.0.2", 0, 22, 6, 1, 10, 60, 120, "ACCEPT"),
		},
		{
			name: "files without a record in the window give an empty digest",
			files: map[string]string{
				plainKey(a1, "us-east-1", "20261101T1010Z", -1, ".log"): body(defaultHeader,
					rec(a1, "eni-1", "10.0.0.1", "10.0.0.2", 50000, 22, 6, 1, 10, -600, -500, "ACCEPT")),
			},
			want: "",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			writeTree(t, dir, tt.files)
			b := &Builtin{Source: Dir{Path: dir}}
			if tt.setup != nil {
				tt.setup(b)
			}
			start := testStart
			if !tt.start.IsZero() {
				start = tt.start
			}
			got, err := digestAll(t, b, start, testStop)
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestBuiltinFailures(t *testing.T) {
	t.Parallel()
	const a1 = "111122223333"
	good := plainKey(a1, "us-east-1", "20261101T1010Z", -1, ".log")
	goodBody := body(defaultHeader, rec(a1, "eni-1", "10.0.0.1", "10.0.0.2", 50000, 22, 6, 1, 10, 60, 120, "ACCEPT"))
	bad := plainKey(a1, "us-east-1", "20261101T1020Z", -1, ".log.gz")
	gz := gzipBytes(t, strings.Repeat(goodBody, 50))

	type failure struct {
		name      string
		setup     func(t *testing.T, dir string) // makes the bad key
		wantErr   error
		permanent bool
	}
	tests := []failure{
		{
			name: "the content other tests use for files that must not be read",
			setup: func(t *testing.T, dir string) {
				writeTree(t, dir, map[string]string{bad: corrupt})
			},
			wantErr:   flowlog.ErrCorrupt,
			permanent: true,
		},
		{
			name: "corrupt gzip stream",
			setup: func(t *testing.T, dir string) {
				b := append(append([]byte(nil), gz[:10]...), bytes.Repeat([]byte{0xff}, 100)...)
				require.NoError(t, os.WriteFile(filepath.Join(dir, bad), b, 0o644))
			},
			wantErr:   flowlog.ErrCorrupt,
			permanent: true,
		},
		{
			name: "corrupt gzip header",
			setup: func(t *testing.T, dir string) {
				require.NoError(t, os.WriteFile(filepath.Join(dir, bad), []byte{0x1f, 0x8b, 0, 0, 0, 0}, 0o644))
			},
			wantErr:   flowlog.ErrCorrupt,
			permanent: true,
		},
		{
			name: "truncated gzip",
			setup: func(t *testing.T, dir string) {
				require.NoError(t, os.WriteFile(filepath.Join(dir, bad), gz[:len(gz)/2], 0o644))
			},
			wantErr:   flowlog.ErrCorrupt,
			permanent: true,
		},
		{
			name: "a folder named like a flow log file",
			setup: func(t *testing.T, dir string) {
				require.NoError(t, os.MkdirAll(filepath.Join(dir, bad), 0o755))
				require.NoError(t, os.WriteFile(filepath.Join(dir, bad, "x"), gz, 0o644))
			},
		},
		{
			name: "a broken symbolic link",
			setup: func(t *testing.T, dir string) {
				require.NoError(t, os.Symlink("does-not-exist.log.gz", filepath.Join(dir, bad)))
			},
			wantErr: types.ErrNotFound,
		},
		{
			name: "a symbolic link leading out of the folder",
			setup: func(t *testing.T, dir string) {
				outside := filepath.Join(t.TempDir(), "outside.log.gz")
				require.NoError(t, os.WriteFile(outside, gz, 0o644))
				require.NoError(t, os.Symlink(outside, filepath.Join(dir, bad)))
			},
		},
	}
	if os.Geteuid() != 0 {
		// Root reads files whatever their mode; the cases above fail for root too.
		tests = append(tests, failure{
			name: "a file that cannot be read",
			setup: func(t *testing.T, dir string) {
				require.NoError(t, os.WriteFile(filepath.Join(dir, bad), gz, 0o000))
			},
			wantErr: os.ErrPermission,
		})
	} else {
		t.Log("running as root: mode 000 does not stop reading, so that case is covered by the folder and link cases")
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			writeTree(t, dir, map[string]string{good: goodBody})
			require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(dir, bad)), 0o755))
			tt.setup(t, dir)
			for _, concurrency := range []int{1, 4} {
				b := &Builtin{Source: Dir{Path: dir}, Concurrency: concurrency}
				rc, err := b.Digest(context.Background(), testStart, testStop)
				require.Error(t, err, "a partial digest was returned")
				require.Nil(t, rc)
				require.Contains(t, err.Error(), bad, "the error names the file")
				if tt.wantErr != nil {
					require.ErrorIs(t, err, tt.wantErr)
				}
				require.Equal(t, tt.permanent, types.IsPermanent(err), err.Error())
			}
		})
	}
}

func TestBuiltinConfigErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		name    string
		b       *Builtin
		start   time.Time
		wantErr error
		wantIn  []string
	}{
		{
			name:    "no source",
			b:       &Builtin{},
			wantErr: types.ErrNoSource,
			wantIn:  []string{"FLOW_LOGS_DIR", "DIGESTER_ENDPOINT"},
		},
		{
			name:    "stop before start",
			b:       &Builtin{Source: Dir{Path: dir}},
			start:   testStop.Add(time.Minute),
			wantErr: types.ErrInvalidInput,
		},
		{
			name:    "an account that is not a folder name",
			b:       &Builtin{Source: Dir{Path: dir}, Accounts: []string{"111122223333", "../etc"}},
			wantErr: types.ErrInvalidInput,
			wantIn:  []string{"VPC_FLOW_LOGS_SCAN_ACCOUNTS", "../etc"},
		},
		{
			name:    "an empty account",
			b:       &Builtin{Source: Dir{Path: dir}, Accounts: []string{""}},
			wantErr: types.ErrInvalidInput,
		},
		{
			name:    "a region that is not a folder name",
			b:       &Builtin{Source: Dir{Path: dir}, Regions: []string{"us-east-1/../../x"}},
			wantErr: types.ErrInvalidInput,
			wantIn:  []string{"VPC_FLOW_LOGS_SCAN_REGIONS"},
		},
		{
			name:    "no files",
			b:       &Builtin{Source: Dir{Path: dir}},
			wantErr: ErrNoFlowLogs,
			wantIn:  []string{`"AWSLogs/"`, "2026-11-01T09:00:00Z", "2026-11-01T12:00:00Z"},
		},
		{
			name:   "a missing folder",
			b:      &Builtin{Source: Dir{Path: filepath.Join(dir, "missing")}},
			wantIn: []string{"missing"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			start := testStart
			if !tt.start.IsZero() {
				start = tt.start
			}
			_, err := tt.b.Digest(context.Background(), start, testStop)
			require.Error(t, err)
			if errors.Is(tt.wantErr, types.ErrInvalidInput) && !start.After(testStop) {
				require.ErrorIs(t, tt.b.Validate(), types.ErrInvalidInput, "start-up can catch it")
			}
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
			}
			for _, s := range tt.wantIn {
				require.Contains(t, err.Error(), s)
			}
		})
	}
}

func TestBuiltinOnlyUnsupportedFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	key := plainKey("111122223333", "us-east-1", "20261101T1020Z", -1, ".log.bz2")
	writeTree(t, dir, map[string]string{key: "BZh9"})
	var logs bytes.Buffer
	b := &Builtin{Source: Dir{Path: dir}, Logger: slog.New(slog.NewJSONHandler(&logs, nil))}
	_, err := b.Digest(context.Background(), testStart, testStop)
	require.ErrorIs(t, err, ErrNoFlowLogs)
	require.Contains(t, err.Error(), "1 files left out")
	require.Contains(t, err.Error(), ".log.bz2")
	require.Contains(t, logs.String(), "unsupported names or formats")
}

// TestBuiltinConcurrencyGivesSameDigest reads many files with different
// bounds and requires the same bytes every time.
func TestBuiltinConcurrencyGivesSameDigest(t *testing.T) {
	t.Parallel()
	const a1 = "111122223333"
	files := map[string]string{}
	var lines []string
	for i := range 60 {
		stamp := fmt.Sprintf("20261101T10%02dZ", i)
		var recs []string
		for j := range 50 {
			recs = append(recs, rec(a1, fmt.Sprintf("eni-%d", j%5), fmt.Sprintf("10.0.0.%d", j%10), "10.9.9.9",
				30000+i*50+j, 443, 6, j+1, (j+1)*100, int64(i*60), int64(i*60+59), "ACCEPT"))
		}
		lines = append(lines, recs...)
		files[plainKey(a1, "us-east-1", stamp, 10, ".log.gz")] = body(append([]string{defaultHeader}, recs...)...)
	}
	dir := t.TempDir()
	writeTree(t, dir, files)

	// The digest, computed here with a single reader: every record keeps its
	// destination port, so flows are (eni, src) pairs.
	comp := flowlog.NewCompactor()
	r, err := flowlog.NewReader(strings.NewReader(body(lines...)))
	require.NoError(t, err)
	for r.Next() {
		comp.Add(r.Record())
	}
	var wantBuf bytes.Buffer
	_, err = comp.WriteTo(&wantBuf)
	require.NoError(t, err)
	require.Equal(t, 10, comp.Len(), "(j%5, j%10) takes 10 values")

	for _, c := range []int{1, 2, 8, 64} {
		got, err := digestAll(t, &Builtin{Source: Dir{Path: dir}, Concurrency: c}, testStart, testStop)
		require.NoError(t, err)
		require.Equal(t, wantBuf.String(), got, "concurrency %d", c)
	}
}

func TestBuiltinLogsSkippedLines(t *testing.T) {
	t.Parallel()
	const a1 = "111122223333"
	key := plainKey(a1, "us-east-1", "20261101T1010Z", -1, ".log")
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{key: body(defaultHeader,
		rec(a1, "eni-1", "10.0.0.1", "10.0.0.2", 50000, 22, 6, 1, 10, 60, 120, "ACCEPT"),
		strings.Repeat("x", 300),
		rec(a1, "eni-1", "10.0.0.1", "10.0.0.2", 50001, 22, 6, 1, 10, 60, 120, "ACCEPT"))})
	var logs bytes.Buffer
	b := &Builtin{Source: Dir{Path: dir}, MaxLineBytes: 200, Logger: slog.New(slog.NewJSONHandler(&logs, nil))}
	got, err := digestAll(t, b, testStart, testStop)
	require.NoError(t, err)
	require.Equal(t, want(a1, "eni-1", "10.0.0.1", "10.0.0.2", 0, 22, 6, 2, 20, 60, 120, "ACCEPT"), got)
	require.Contains(t, logs.String(), "malformed flow log lines skipped")
	require.Contains(t, logs.String(), `"first_lines":[3]`)
	require.Contains(t, logs.String(), key)
	require.Contains(t, logs.String(), `"flows":1`)
}

func TestBuiltinCancelled(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		plainKey("111122223333", "us-east-1", "20261101T1010Z", -1, ".log"): body(defaultHeader),
	})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := (&Builtin{Source: Dir{Path: dir}}).Digest(ctx, testStart, testStop)
	require.ErrorIs(t, err, context.Canceled)
}

// TestBuiltinCloseEarly closes the digest before reading it all: the writer
// goroutine ends (goleak checks it in TestMain).
func TestBuiltinCloseEarly(t *testing.T) {
	t.Parallel()
	const a1 = "111122223333"
	var recs []string
	for i := range 5000 {
		recs = append(recs, rec(a1, "eni-1", fmt.Sprintf("10.%d.%d.%d", i/65536, i/256%256, i%256), "10.9.9.9", 40000, 443, 6, 1, 10, 60, 120, "ACCEPT"))
	}
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{plainKey(a1, "us-east-1", "20261101T1010Z", -1, ".log.gz"): body(recs...)})
	rc, err := (&Builtin{Source: Dir{Path: dir}}).Digest(context.Background(), testStart, testStop)
	require.NoError(t, err)
	buf := make([]byte, 100)
	_, err = io.ReadFull(rc, buf)
	require.NoError(t, err)
	require.NoError(t, rc.Close())
	_, err = rc.Read(buf)
	require.ErrorIs(t, err, io.ErrClosedPipe)
}

// TestBuiltinSample digests the checked-in sample (tools/gensample) and
// compares it with the digest the generator computed from its own records.
func TestBuiltinSample(t *testing.T) {
	t.Parallel()
	wantDigest, err := os.ReadFile("../../testdata/flowlogs/expected-digest.txt")
	require.NoError(t, err)
	tests := []struct {
		name string
		b    *Builtin
	}{
		{name: "discovered accounts and regions", b: &Builtin{}},
		{name: "configured accounts and regions", b: &Builtin{
			Accounts: []string{"111122223333", "222233334444", "444455556666", "777788889999"},
			Regions:  []string{"us-east-1", "us-west-2", "eu-west-1", "ap-southeast-2"},
		}},
		{name: "one file at a time", b: &Builtin{Concurrency: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.b.Source = Dir{Path: "../../testdata/flowlogs"}
			require.NoError(t, tt.b.Validate())
			got, err := digestAll(t, tt.b, testStart, testStop)
			require.NoError(t, err)
			require.Equal(t, string(wantDigest), got)
		})
	}
}

// BenchmarkBuiltin digests a tree of gzip files: 24 files of 20,000 records
// each over 2,000 distinct flows.
func BenchmarkBuiltin(b *testing.B) {
	const a1 = "111122223333"
	dir := b.TempDir()
	var total int64
	for i := range 24 {
		var sb strings.Builder
		sb.WriteString(defaultHeader + "\n")
		for j := range 20000 {
			sb.WriteString(rec(a1, fmt.Sprintf("eni-%d", j%20), fmt.Sprintf("10.0.%d.%d", j%10, j%100), "10.9.9.9",
				30000+j%20000, 443, 6, 3, 300, int64(i*150), int64(i*150+60), "ACCEPT"))
			sb.WriteByte('\n')
		}
		total += int64(sb.Len())
		key := plainKey(a1, "us-east-1", fmt.Sprintf("20261101T10%02dZ", i*2), 10, ".log.gz")
		name := filepath.Join(dir, filepath.FromSlash(key))
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			b.Fatal(err)
		}
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		_, _ = zw.Write([]byte(sb.String()))
		_ = zw.Close()
		if err := os.WriteFile(name, buf.Bytes(), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	d := &Builtin{Source: Dir{Path: dir}}
	b.SetBytes(total)
	b.ReportAllocs()
	for b.Loop() {
		rc, err := d.Digest(context.Background(), testStart, testStop)
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, rc)
		if err != nil || n == 0 {
			b.Fatal(n, err)
		}
		_ = rc.Close()
	}
}

// TestBuiltinMaxFlows fails a window with more distinct flows than the
// bound, permanently and naming the bound, and digests it under a bound
// it fits in.
func TestBuiltinMaxFlows(t *testing.T) {
	t.Parallel()
	b := &Builtin{Source: Dir{Path: "../../testdata/flowlogs"}, MaxFlows: 10}
	_, err := b.Digest(context.Background(), testStart, testStop)
	require.ErrorIs(t, err, flowlog.ErrTooManyFlows)
	require.True(t, types.IsPermanent(err))
	require.Contains(t, err.Error(), "more than 10 distinct flows")
	require.Contains(t, err.Error(), "GRAPHERD_MAX_FLOWS")

	want, err := os.ReadFile("../../testdata/flowlogs/expected-digest.txt")
	require.NoError(t, err)
	lines := strings.Count(string(want), "\n")
	got, err := digestAll(t, &Builtin{Source: Dir{Path: "../../testdata/flowlogs"}, MaxFlows: lines}, testStart, testStop)
	require.NoError(t, err)
	require.Equal(t, string(want), got)
}

// TestBuiltinCorruptGzipBody fails the window permanently, naming the file,
// when a gzip file's body is truncated or damaged past a valid header.
func TestBuiltinCorruptGzipBody(t *testing.T) {
	t.Parallel()
	const a1 = "111122223333"
	var lines []string
	for i := range 2000 {
		lines = append(lines, rec(a1, "eni-1", fmt.Sprintf("10.0.%d.%d", i/250, i%250), "10.9.9.9", 40000+i, 443, 6, 1, 100, 10, 70, "ACCEPT"))
	}
	good := gzipBytes(t, body(append([]string{defaultHeader}, lines...)...))
	flipped := append([]byte(nil), good...)
	flipped[len(flipped)/2] ^= 0xff
	for name, content := range map[string][]byte{
		"truncated": good[:len(good)/2],
		"flipped":   flipped,
		"checksum":  append(append([]byte(nil), good[:len(good)-8]...), 0, 0, 0, 0, 0, 0, 0, 0),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			key := plainKey(a1, "us-east-1", "20261101T1010Z", -1, ".log.gz")
			path := filepath.Join(dir, filepath.FromSlash(key))
			require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
			require.NoError(t, os.WriteFile(path, content, 0o644))
			_, err := digestAll(t, &Builtin{Source: Dir{Path: dir}}, testStart, testStop)
			require.ErrorIs(t, err, flowlog.ErrCorrupt)
			require.True(t, types.IsPermanent(err), "%v", err)
			require.Contains(t, err.Error(), key)
		})
	}
}

// panicSource is a Dir whose files panic when read, as a reader's bug
// would on a file it meets.
type panicSource struct{ Dir }

func (s panicSource) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	rc, err := s.Dir.Open(ctx, key)
	if err != nil {
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{panicReader{}, rc}, nil
}

type panicReader struct{}

func (panicReader) Read([]byte) (int, error) { panic("reader bug") }

// TestBuiltinRecoversPanics reads a window whose files panic when read:
// the digest fails with an error naming the file, and the process goes on,
// where the panic, on the goroutine the file was read on, took it down.
func TestBuiltinRecoversPanics(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	key := plainKey("111122223333", "us-east-1", "20261101T1010Z", -1, ".log")
	writeTree(t, dir, map[string]string{key: body(defaultHeader, rec("111122223333", "eni-1", "10.0.0.1", "10.0.0.2", 40000, 443, 6, 1, 100, 10, 70, "ACCEPT"))})
	_, err := digestAll(t, &Builtin{Source: panicSource{Dir{Path: dir}}}, testStart, testStop)
	require.ErrorContains(t, err, "panicked: reader bug")
	require.ErrorContains(t, err, key)
}

// TestBuiltinSpills digests a window of 40,000 distinct flows in the least
// memory it takes (1 MiB, which holds about 11,000 flows): the flows spill
// to files in SpillDir, none of which is left behind, and the digest is the
// one the window gives in memory.
func TestBuiltinSpills(t *testing.T) {
	t.Parallel()
	dir, _ := distinctTree(t, 40_000, 8)
	want, err := digestAll(t, &Builtin{Source: Dir{Path: dir}}, testStart, testStop)
	require.NoError(t, err)
	require.Equal(t, 40_000, strings.Count(want, "\n"), "the window's flows are distinct")

	spillDir := t.TempDir()
	var logs bytes.Buffer
	small := &Builtin{Source: Dir{Path: dir}, MemoryBytes: 1, SpillDir: spillDir,
		Logger: slog.New(slog.NewJSONHandler(&logs, nil))}
	got, err := digestAll(t, small, testStart, testStop)
	require.NoError(t, err)
	require.Equal(t, want, got)
	var summary struct {
		Flows  int   `json:"flows"`
		Spills int   `json:"spills"`
		Peak   int64 `json:"spill_peak_bytes"`
	}
	for line := range strings.Lines(logs.String()) {
		if strings.Contains(line, "flow logs digested") {
			require.NoError(t, json.Unmarshal([]byte(line), &summary))
		}
	}
	require.Equal(t, 40_000, summary.Flows)
	require.Positive(t, summary.Spills, "the window spilled: %s", logs.String())
	require.Positive(t, summary.Peak)
	left, err := os.ReadDir(spillDir)
	require.NoError(t, err)
	require.Empty(t, left)

	_, err = (&Builtin{Source: Dir{Path: dir}, MemoryBytes: 1, SpillDir: filepath.Join(spillDir, "gone")}).
		Digest(context.Background(), testStart, testStop)
	require.ErrorContains(t, err, "spill flows to disk")
	require.False(t, types.IsPermanent(err), "a full or missing disk may be fixed: the job is retried")
}
