package flowlog

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/require"
)

const v2Line = "2 123456789012 eni-0a1b2c3d 10.0.0.1 10.0.0.2 49152 443 6 10 840 1600000000 1600000060 ACCEPT OK"

func v2Record() Record {
	return Record{
		Version: 2, AccountID: "123456789012", InterfaceID: "eni-0a1b2c3d",
		SrcAddr: netip.MustParseAddr("10.0.0.1"), DstAddr: netip.MustParseAddr("10.0.0.2"),
		SrcPort: 49152, DstPort: 443, Protocol: 6, Packets: 10, Bytes: 840,
		Start: 1600000000, End: 1600000060, Action: "ACCEPT", LogStatus: "OK",
	}
}

// readAll returns every record and the final stats.
func readAll(t *testing.T, in io.Reader, opts ...Option) ([]Record, Stats, error) {
	t.Helper()
	r, err := NewReader(in, opts...)
	require.NoError(t, err)
	var recs []Record
	for r.Next() {
		recs = append(recs, *r.Record())
	}
	return recs, r.Stats(), r.Err()
}

func with(f func(*Record)) Record {
	r := v2Record()
	f(&r)
	return r
}

func TestReaderDefaultFormat(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		line    string
		want    *Record // nil: not a record
		skipped bool    // malformed rather than no-flow
	}{
		{name: "v2 record", line: v2Line, want: ptr(v2Record())},
		{name: "reject", line: strings.Replace(v2Line, "ACCEPT", "REJECT", 1), want: ptr(with(func(r *Record) { r.Action = "REJECT" }))},
		{name: "action missing", line: strings.Replace(v2Line, "ACCEPT", "-", 1), want: ptr(with(func(r *Record) { r.Action = "-" }))},
		{name: "crlf", line: v2Line + "\r", want: ptr(v2Record())},
		{name: "tabs and runs of spaces", line: strings.ReplaceAll(v2Line, " ", " \t "), want: ptr(v2Record())},
		{name: "leading and trailing space", line: "  " + v2Line + "  ", want: ptr(v2Record())},
		{name: "ipv6", line: "2 1 eni-1 2001:db8::1 2001:db8::2 1 2 17 1 2 3 4 ACCEPT OK", want: &Record{
			Version: 2, AccountID: "1", InterfaceID: "eni-1",
			SrcAddr: netip.MustParseAddr("2001:db8::1"), DstAddr: netip.MustParseAddr("2001:db8::2"),
			SrcPort: 1, DstPort: 2, Protocol: 17, Packets: 1, Bytes: 2, Start: 3, End: 4, Action: "ACCEPT", LogStatus: "OK",
		}},
		{name: "ipv4-mapped ipv6 kept as parsed", line: strings.Replace(v2Line, "10.0.0.1", "::ffff:10.0.0.1", 1),
			want: ptr(with(func(r *Record) { r.SrcAddr = netip.MustParseAddr("::ffff:10.0.0.1") }))},
		{name: "ports and protocol missing", line: "2 1 eni-1 10.0.0.1 10.0.0.2 - - - 1 2 3 4 ACCEPT OK", want: &Record{
			Version: 2, AccountID: "1", InterfaceID: "eni-1",
			SrcAddr: netip.MustParseAddr("10.0.0.1"), DstAddr: netip.MustParseAddr("10.0.0.2"),
			SrcPort: 0, DstPort: 0, Protocol: -1, Packets: 1, Bytes: 2, Start: 3, End: 4, Action: "ACCEPT", LogStatus: "OK",
		}},
		{name: "account and interface missing", line: "2 - - 10.0.0.1 10.0.0.2 1 2 6 1 2 3 4 ACCEPT OK", want: &Record{
			Version: 2, AccountID: "-", InterfaceID: "-",
			SrcAddr: netip.MustParseAddr("10.0.0.1"), DstAddr: netip.MustParseAddr("10.0.0.2"),
			SrcPort: 1, DstPort: 2, Protocol: 6, Packets: 1, Bytes: 2, Start: 3, End: 4, Action: "ACCEPT", LogStatus: "OK",
		}},
		{name: "counts and times missing", line: "2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 - - - - ACCEPT OK", want: &Record{
			Version: 2, AccountID: "1", InterfaceID: "eni-1",
			SrcAddr: netip.MustParseAddr("10.0.0.1"), DstAddr: netip.MustParseAddr("10.0.0.2"),
			SrcPort: 1, DstPort: 2, Protocol: 6, Action: "ACCEPT", LogStatus: "OK",
		}},
		{name: "ids as long as may be", line: strings.Replace(strings.Replace(v2Line, "123456789012", strings.Repeat("1", MaxIDBytes), 1), "eni-0a1b2c3d", strings.Repeat("e", MaxIDBytes), 1),
			want: ptr(with(func(r *Record) {
				r.AccountID, r.InterfaceID = strings.Repeat("1", MaxIDBytes), strings.Repeat("e", MaxIDBytes)
			}))},
		{name: "account id too long", line: strings.Replace(v2Line, "123456789012", strings.Repeat("1", MaxIDBytes+1), 1), skipped: true},
		{name: "interface id too long", line: strings.Replace(v2Line, "eni-0a1b2c3d", strings.Repeat("e", MaxIDBytes+1), 1), skipped: true},
		{name: "version missing reads as 2", line: "-" + v2Line[1:], want: ptr(v2Record())},
		{name: "version 5", line: "5" + v2Line[1:], want: ptr(with(func(r *Record) { r.Version = 5 }))},
		{name: "max values", line: "2 1 eni-1 255.255.255.255 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535 255 9223372036854775807 9223372036854775807 9223372036854775807 9223372036854775807 ACCEPT OK",
			want: &Record{
				Version: 2, AccountID: "1", InterfaceID: "eni-1",
				SrcAddr: netip.MustParseAddr("255.255.255.255"), DstAddr: netip.MustParseAddr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
				SrcPort: 65535, DstPort: 65535, Protocol: 255, Packets: maxInt64, Bytes: maxInt64, Start: maxInt64, End: maxInt64,
				Action: "ACCEPT", LogStatus: "OK",
			}},
		{name: "blank", line: ""},
		{name: "spaces only", line: " \t "},
		{name: "nodata", line: "2 123456789012 eni-1 - - - - - - - 1600000000 1600000060 - NODATA"},
		{name: "skipdata", line: "2 123456789012 eni-1 - - - - - - - 1600000000 1600000060 - SKIPDATA"},
		{name: "nodata cut short", line: "2 123456789012 eni-1 NODATA"},
		{name: "header", line: "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status"},
		{name: "too few fields", line: "2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 2 3 4 ACCEPT", skipped: true},
		{name: "too many fields", line: v2Line + " extra", skipped: true},
		{name: "non-numeric packets", line: strings.Replace(v2Line, " 10 840 ", " ten 840 ", 1), skipped: true},
		{name: "non-numeric bytes", line: strings.Replace(v2Line, " 10 840 ", " 10 8x0 ", 1), skipped: true},
		{name: "negative bytes", line: strings.Replace(v2Line, " 10 840 ", " 10 -840 ", 1), skipped: true},
		{name: "count overflows int64", line: strings.Replace(v2Line, " 10 840 ", " 10 9223372036854775808 ", 1), skipped: true},
		{name: "non-numeric start", line: strings.Replace(v2Line, "1600000000", "yesterday", 1), skipped: true},
		{name: "non-numeric end", line: strings.Replace(v2Line, "1600000060", "1600000060s", 1), skipped: true},
		{name: "port out of range", line: strings.Replace(v2Line, "49152", "65536", 1), skipped: true},
		{name: "non-numeric port", line: strings.Replace(v2Line, " 443 ", " https ", 1), skipped: true},
		{name: "protocol out of range", line: strings.Replace(v2Line, " 443 6 ", " 443 256 ", 1), skipped: true},
		{name: "non-numeric protocol", line: strings.Replace(v2Line, " 443 6 ", " 443 tcp ", 1), skipped: true},
		{name: "version 1", line: "1" + v2Line[1:], skipped: true},
		{name: "non-numeric version", line: "2x" + v2Line[1:], skipped: true},
		{name: "unparsable source", line: strings.Replace(v2Line, "10.0.0.1", "10.0.0.256", 1), skipped: true},
		{name: "unparsable destination", line: strings.Replace(v2Line, "10.0.0.2", "10.0.0", 1), skipped: true},
		{name: "leading zero octet", line: strings.Replace(v2Line, "10.0.0.1", "10.0.0.01", 1), skipped: true},
		{name: "zoned address", line: strings.Replace(v2Line, "10.0.0.1", "fe80::1%eth0", 1), skipped: true},
		{name: "address missing with log status", line: strings.Replace(v2Line, "10.0.0.1", "-", 1), skipped: true},
		{name: "unknown action", line: strings.Replace(v2Line, "ACCEPT", "accept", 1), skipped: true},
		{name: "unknown log status", line: strings.Replace(v2Line, " OK", " BAD", 1), skipped: true},
		{name: "garbage words", line: "the quick brown fox", skipped: true},
		{name: "one known word is not a header", line: "srcaddr is not enough", skipped: true},
		{name: "binary", line: "\x00\xff\xfe 2 1", skipped: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			recs, st, err := readAll(t, strings.NewReader(tt.line+"\n"))
			require.NoError(t, err)
			require.EqualValues(t, 1, st.Lines)
			if tt.want != nil {
				require.Equal(t, []Record{*tt.want}, recs)
				require.Equal(t, Stats{Lines: 1, Used: 1}, st)
				return
			}
			require.Empty(t, recs)
			if tt.skipped {
				require.Equal(t, Stats{Lines: 1, Skipped: 1, FirstSkipped: []int64{1}}, st)
			} else {
				require.Equal(t, Stats{Lines: 1, NoFlow: 1}, st)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestReaderCustomFormats(t *testing.T) {
	t.Parallel()
	src := netip.MustParseAddr("10.0.0.1")
	dst := netip.MustParseAddr("10.0.0.2")
	tests := []struct {
		name  string
		opts  []Option
		input string
		want  []Record
		stats Stats
	}{
		{
			name: "v5 header, fields reordered, extras ignored",
			input: "account-id action az-id bytes dstaddr dstport end flow-direction instance-id interface-id log-status packets pkt-dst-aws-service pkt-dstaddr pkt-src-aws-service pkt-srcaddr protocol region srcaddr srcport start sublocation-id sublocation-type subnet-id tcp-flags traffic-path type version vpc-id\n" +
				"123 REJECT use1-az1 500 10.0.0.2 22 1600000060 ingress i-1 eni-9 OK 5 - 10.0.0.2 - 10.0.0.1 6 us-east-1 10.0.0.1 40000 1600000000 - - subnet-1 2 - IPv4 5 vpc-1\n",
			want: []Record{{Version: 5, AccountID: "123", InterfaceID: "eni-9", SrcAddr: src, DstAddr: dst, SrcPort: 40000, DstPort: 22,
				Protocol: 6, Packets: 5, Bytes: 500, Start: 1600000000, End: 1600000060, Action: "REJECT", LogStatus: "OK"}},
			stats: Stats{Lines: 2, Used: 1, NoFlow: 1},
		},
		{
			name: "minimal header: missing fields are -",
			input: "srcaddr dstaddr\n" +
				"10.0.0.1 10.0.0.2\n",
			want:  []Record{{Version: 2, AccountID: "-", InterfaceID: "-", SrcAddr: src, DstAddr: dst, Protocol: -1, Action: "-", LogStatus: "OK"}},
			stats: Stats{Lines: 2, Used: 1, NoFlow: 1},
		},
		{
			name: "header without log-status: no addresses is NODATA",
			input: "interface-id srcaddr dstaddr start end\n" +
				"eni-1 - - 1 2\n" +
				"eni-1 10.0.0.1 - 1 2\n",
			stats: Stats{Lines: 3, NoFlow: 2, Skipped: 1, FirstSkipped: []int64{3}},
		},
		{
			name: "header without addresses: every record malformed",
			input: "version account-id\n" +
				"2 123\n",
			stats: Stats{Lines: 2, NoFlow: 1, Skipped: 1, FirstSkipped: []int64{2}},
		},
		{
			name: "ecs, reject-reason, underscores and ${} placeholders",
			input: "${version} ${srcaddr} ${dstaddr} ecs-cluster-name reject_reason ${log_status}\n" +
				"8 10.0.0.1 10.0.0.2 my-cluster BPA OK\n",
			want:  []Record{{Version: 8, AccountID: "-", InterfaceID: "-", SrcAddr: src, DstAddr: dst, Protocol: -1, Action: "-", LogStatus: "OK"}},
			stats: Stats{Lines: 2, Used: 1, NoFlow: 1},
		},
		{
			name: "a later header changes the format",
			input: v2Line + "\n" +
				"srcaddr dstaddr log-status\n" +
				"10.0.0.1 10.0.0.2 OK\n" +
				v2Line + "\n",
			want:  []Record{v2Record(), {Version: 2, AccountID: "-", InterfaceID: "-", SrcAddr: src, DstAddr: dst, Protocol: -1, Action: "-", LogStatus: "OK"}},
			stats: Stats{Lines: 4, Used: 2, NoFlow: 1, Skipped: 1, FirstSkipped: []int64{4}},
		},
		{
			name:  "WithFormat for headerless input",
			opts:  []Option{WithFormat([]string{"dstaddr", "srcaddr", "action"})},
			input: "10.0.0.2 10.0.0.1 REJECT\n",
			want:  []Record{{Version: 2, AccountID: "-", InterfaceID: "-", SrcAddr: src, DstAddr: dst, Protocol: -1, Action: "REJECT", LogStatus: "OK"}},
			stats: Stats{Lines: 1, Used: 1},
		},
		{
			name:  "data line starting with a letter is not a header",
			opts:  []Option{WithFormat([]string{"interface-id", "srcaddr", "dstaddr", "action"})},
			input: "eni-1 10.0.0.1 10.0.0.2 ACCEPT\n",
			want:  []Record{{Version: 2, AccountID: "-", InterfaceID: "eni-1", SrcAddr: src, DstAddr: dst, Protocol: -1, Action: "ACCEPT", LogStatus: "OK"}},
			stats: Stats{Lines: 1, Used: 1},
		},
		{
			name:  "last line without newline",
			input: v2Line,
			want:  []Record{v2Record()},
			stats: Stats{Lines: 1, Used: 1},
		},
		{
			name:  "empty input",
			input: "",
			stats: Stats{},
		},
		{
			name:  "first five skipped lines kept",
			input: strings.Repeat("x\n", 3) + v2Line + "\n" + strings.Repeat("y\n", 4),
			want:  []Record{v2Record()},
			stats: Stats{Lines: 8, Used: 1, Skipped: 7, FirstSkipped: []int64{1, 2, 3, 5, 6}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			recs, st, err := readAll(t, strings.NewReader(tt.input), tt.opts...)
			require.NoError(t, err)
			require.Equal(t, tt.want, recs)
			require.Equal(t, tt.stats, st)
		})
	}
}

func gz(t *testing.T, members ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	for _, m := range members {
		zw := gzip.NewWriter(&buf)
		_, err := zw.Write([]byte(m))
		require.NoError(t, err)
		require.NoError(t, zw.Close())
	}
	return buf.Bytes()
}

func TestReaderGzip(t *testing.T) {
	t.Parallel()
	header := strings.Join(DefaultFields(), " ") + "\n"
	t.Run("single member", func(t *testing.T) {
		t.Parallel()
		recs, st, err := readAll(t, bytes.NewReader(gz(t, header+v2Line+"\n")))
		require.NoError(t, err)
		require.Equal(t, []Record{v2Record()}, recs)
		require.Equal(t, Stats{Lines: 2, Used: 1, NoFlow: 1}, st)
	})
	t.Run("concatenated members", func(t *testing.T) {
		t.Parallel()
		recs, st, err := readAll(t, bytes.NewReader(gz(t, header+v2Line+"\n", header+v2Line+"\n")))
		require.NoError(t, err)
		require.Len(t, recs, 2)
		require.EqualValues(t, 4, st.Lines)
	})
	t.Run("one byte at a time", func(t *testing.T) {
		t.Parallel()
		recs, _, err := readAll(t, iotest.OneByteReader(bytes.NewReader(gz(t, v2Line+"\n"+v2Line))))
		require.NoError(t, err)
		require.Len(t, recs, 2)
	})
	t.Run("corrupt header", func(t *testing.T) {
		t.Parallel()
		_, err := NewReader(bytes.NewReader([]byte{0x1f, 0x8b, 0x00, 0x00}))
		require.ErrorIs(t, err, ErrCorrupt)
	})
	t.Run("truncated stream", func(t *testing.T) {
		t.Parallel()
		data := gz(t, strings.Repeat(v2Line+"\n", 100))
		_, _, err := readAll(t, bytes.NewReader(data[:len(data)-10]))
		require.ErrorIs(t, err, ErrCorrupt)
	})
	t.Run("corrupt checksum", func(t *testing.T) {
		t.Parallel()
		data := gz(t, v2Line+"\n")
		data[len(data)-6] ^= 0xff
		recs, _, err := readAll(t, bytes.NewReader(data))
		require.ErrorIs(t, err, ErrCorrupt)
		require.Len(t, recs, 1)
	})
	t.Run("garbage after member", func(t *testing.T) {
		t.Parallel()
		data := append(gz(t, v2Line+"\n"), "not gzip"...)
		_, _, err := readAll(t, bytes.NewReader(data))
		require.ErrorIs(t, err, ErrCorrupt)
	})
}

func TestReaderReadError(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	in := io.MultiReader(strings.NewReader(v2Line+"\n"), iotest.ErrReader(boom))
	recs, _, err := readAll(t, in)
	require.ErrorIs(t, err, boom)
	require.NotErrorIs(t, err, ErrCorrupt)
	require.Len(t, recs, 1)

	_, err = NewReader(iotest.ErrReader(boom))
	require.ErrorIs(t, err, boom)
}

func TestReaderLongLines(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		max     int
		long    int
		skipped int64
	}{
		{name: "default limit, longer than the buffer", max: 0, long: 1 << 20, skipped: 1},
		{name: "just over a small limit", max: len(v2Line), long: len(v2Line) + 1, skipped: 1},
		{name: "exactly the limit", max: len(v2Line) + 3, long: len(v2Line) + 3, skipped: 1},
		{name: "small limit, far longer line", max: 200, long: 1 << 19, skipped: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			long := strings.Repeat("9", tt.long)
			in := v2Line + "\n" + long + "\n" + v2Line + "\n" + long
			recs, st, err := readAll(t, strings.NewReader(in), WithMaxLineBytes(tt.max))
			require.NoError(t, err)
			require.Len(t, recs, 2)
			require.Equal(t, Stats{Lines: 4, Used: 2, Skipped: 2, FirstSkipped: []int64{2, 4}}, st)
		})
	}
	t.Run("line at the limit is read", func(t *testing.T) {
		t.Parallel()
		recs, _, err := readAll(t, strings.NewReader(v2Line+"\r\n"), WithMaxLineBytes(len(v2Line)))
		require.NoError(t, err)
		require.Len(t, recs, 1)
	})
}

func TestReaderStringsSurviveNext(t *testing.T) {
	t.Parallel()
	in := v2Line + "\n" + strings.Replace(v2Line, "eni-0a1b2c3d", "eni-ffffffff", 1) + "\n"
	r, err := NewReader(strings.NewReader(in))
	require.NoError(t, err)
	require.True(t, r.Next())
	first := r.Record().InterfaceID
	addr := r.Record().SrcAddr
	require.True(t, r.Next())
	require.Equal(t, "eni-0a1b2c3d", first)
	require.Equal(t, "eni-ffffffff", r.Record().InterfaceID)
	require.Equal(t, netip.MustParseAddr("10.0.0.1"), addr)
	require.False(t, r.Next())
}

func TestAppendDigestLineRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		rec  Record
		line string
		back Record
	}{
		{name: "v2", rec: v2Record(), line: v2Line + "\n", back: v2Record()},
		{name: "version forced to 2", rec: with(func(r *Record) { r.Version = 7 }), line: v2Line + "\n", back: v2Record()},
		{name: "zero value", rec: Record{},
			line: "2 - - - - 0 0 0 0 0 0 0 - OK\n"},
		{name: "missing protocol and strings", rec: with(func(r *Record) {
			r.Protocol = -1
			r.AccountID = ""
			r.Action = "-"
		}),
			line: "2 - eni-0a1b2c3d 10.0.0.1 10.0.0.2 49152 443 - 10 840 1600000000 1600000060 - OK\n",
			back: with(func(r *Record) { r.Protocol = -1; r.AccountID = "-"; r.Action = "-" })},
		{name: "whitespace in strings", rec: with(func(r *Record) { r.InterfaceID = "eni 1\t2" }),
			line: strings.Replace(v2Line, "eni-0a1b2c3d", "eni_1_2", 1) + "\n",
			back: with(func(r *Record) { r.InterfaceID = "eni_1_2" })},
		{name: "ipv6", rec: with(func(r *Record) { r.DstAddr = netip.MustParseAddr("2001:db8::1") }),
			line: strings.Replace(v2Line, "10.0.0.2", "2001:db8::1", 1) + "\n",
			back: with(func(r *Record) { r.DstAddr = netip.MustParseAddr("2001:db8::1") })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			line := AppendDigestLine([]byte("prefix|"), &tt.rec)
			require.Equal(t, "prefix|"+tt.line, string(line))
			recs, st, err := readAll(t, strings.NewReader(tt.line))
			require.NoError(t, err)
			if tt.back == (Record{}) {
				require.Empty(t, recs)
				require.EqualValues(t, 1, st.Skipped)
				return
			}
			require.Equal(t, []Record{tt.back}, recs)
		})
	}
}

// TestReaderDoesNotAllocatePerLine guards the streaming promise: reading
// costs a fixed number of allocations (buffers, interned ids), not one per
// line.
func TestReaderDoesNotAllocatePerLine(t *testing.T) {
	// Not parallel: testing.AllocsPerRun refuses to run in parallel tests.
	in := strings.Repeat(v2Line+"\n"+strings.Replace(v2Line, "10.0.0.1", "2001:db8::1", 1)+"\n", 5000)
	allocs := testing.AllocsPerRun(5, func() {
		r, err := NewReader(strings.NewReader(in))
		require.NoError(t, err)
		for r.Next() {
		}
		require.EqualValues(t, 10000, r.Stats().Used)
	})
	require.Less(t, allocs, 50.0)
}

// TestParseIPv4MatchesNetip checks the IPv4 fast path against
// netip.ParseAddr on well-formed and malformed addresses.
func TestParseIPv4MatchesNetip(t *testing.T) {
	t.Parallel()
	inputs := []string{
		"0.0.0.0", "10.0.0.1", "255.255.255.255", "1.2.3.4", "192.168.001.1", "01.2.3.4",
		"256.1.1.1", "1.2.3", "1.2.3.4.5", "1..2.3", ".1.2.3", "1.2.3.", "1.2.3.4a", "a.b.c.d",
		"1.2.3.-4", "999.999.999.999", "1.2.3.00", "1.2.3.0", "", ".", "1234.1.1.1", "1.2.3.4 ",
	}
	for i := range 2000 {
		inputs = append(inputs, fmt.Sprintf("%d.%d.%d.%d", i%300, (i*7)%260, i%10, (i*13)%256))
	}
	for _, in := range inputs {
		want, err := netip.ParseAddr(in)
		got, ok := parseIPv4([]byte(in))
		require.Equal(t, err == nil, ok, "%q", in)
		if ok {
			require.Equal(t, want, got, "%q", in)
		}
	}
}
