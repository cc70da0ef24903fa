package flowlog

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// fastParseSeeds are lines the fast path takes, lines it must hand to the
// general one, and lines both must refuse.
var fastParseSeeds = []string{
	"2 123456789012 eni-1235b8ca 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK",
	"2 000011112222 eni-b971855b 10.0.109.240 10.0.72.116 47448 6379 6 13 4459 1600000000 1600000547 REJECT OK",
	"2 - - 10.0.0.1 10.0.0.2 0 0 0 0 0 0 0 - OK",
	"2 1 e 2001:db8::1 ::ffff:10.0.0.1 443 1 17 1 1 1 2 ACCEPT OK",
	ipv6Seed,
	"2 1 e fe80::1%eth0 10.0.0.1 1 1 1 1 1 1 2 ACCEPT OK",
	"2 1 e 10.0.0.01 10.0.0.1 1 1 1 1 1 1 2 ACCEPT OK",
	"2 1 e 10.0.0.256 10.0.0.1 1 1 1 1 1 1 2 ACCEPT OK",
	"2 1 e 10.0.0 10.0.0.1 1 1 1 1 1 1 2 ACCEPT OK",
	"2 1 e 10.0.0.1.5 10.0.0.1 1 1 1 1 1 1 2 ACCEPT OK",
	"2 1 e 0.0.0.0 255.255.255.255 65535 65536 255 1 1 1 2 ACCEPT OK",
	"2 1 e 10.0.0.1 10.0.0.2 007 80 6 0010 1 1 2 ACCEPT OK",
	"2 1 e 10.0.0.1 10.0.0.2 1 80 - 1 1 1 2 ACCEPT OK",
	"2 1 e 10.0.0.1 10.0.0.2 1 80 256 1 1 1 2 ACCEPT OK",
	// Ids of MaxIDBytes, and one byte longer.
	"2 " + strings.Repeat("1", MaxIDBytes) + " eni-" + strings.Repeat("f", MaxIDBytes-4) + " 10.0.0.1 10.0.0.2 1 80 6 1 1 1 2 ACCEPT OK",
	"2 " + strings.Repeat("1", MaxIDBytes+1) + " e 10.0.0.1 10.0.0.2 1 80 6 1 1 1 2 ACCEPT OK",
	"2 1 eni-" + strings.Repeat("f", MaxIDBytes-3) + " 10.0.0.1 10.0.0.2 1 80 6 1 1 1 2 ACCEPT OK",
	"2 1 e 10.0.0.1 10.0.0.2 1 80 6 9223372036854775807 1 1 2 ACCEPT OK",
	"2 1 e 10.0.0.1 10.0.0.2 1 80 6 9223372036854775808 1 1 2 ACCEPT OK",
	"2 1 e 10.0.0.1 10.0.0.2 1 80 6 123456789012345678 1 1 2 ACCEPT OK",
	"2 1 e 10.0.0.1 10.0.0.2 1 80 6 1 1 1 2 ACCEPT NODATA",
	"2 1 e 10.0.0.1 10.0.0.2 1 80 6 1 1 1 2 ACCEPT SKIPDATA",
	"2 1 e 10.0.0.1 10.0.0.2 1 80 6 1 1 1 2 accept OK",
	"2 1 e 10.0.0.1 10.0.0.2 1 80 6 1 1 1 2 ACCEPT OK extra",
	"2 1 e 10.0.0.1 10.0.0.2 1 80 6 1 1 1 2 ACCEPT OK ",
	"2  1 e 10.0.0.1 10.0.0.2 1 80 6 1 1 1 2 ACCEPT OK",
	"2 1\te 10.0.0.1 10.0.0.2 1 80 6 1 1 1 2 ACCEPT OK",
	"2 a\"b c\\d 10.0.0.1 10.0.0.2 1 80 6 1 1 1 2 ACCEPT OK",
	"3 1 e 10.0.0.1 10.0.0.2 1 80 6 1 1 1 2 ACCEPT OK",
	"2 1 e 10.0.0.1 10.0.0.2 1 80 6 1 1 1 2 ACCEPT",
	"2 1 e 10.0.0.1 10.0.0.2 1 80 6 1 1 1 2 ACCEPT O",
	"2",
	"2 ",
	"",
}

// ipv6Seed is a line the fast path takes with hex-only IPv6 addresses,
// which ipv6Field reads.
const ipv6Seed = "2 123456789012 eni-1235b8ca 2001:db8::1 fe80::a:b:c 443 51000 6 3 180 1418530010 1418530070 ACCEPT OK"

// parseBothWays parses line with the fast path on and off, and fails t
// when they differ in kind, record or where the raw values sit.
func parseBothWays(t testing.TB, line string) {
	fast, slow := newParser(newFormat(DefaultFields())), newParser(newFormat(DefaultFields()))
	fast.out, slow.out = &fast.rec, &slow.rec
	require.True(t, fast.format.isDefault)
	slow.format.isDefault = false
	fb, sb := []byte(line), []byte(line)
	kf, ks := fast.parse(fb), slow.parse(sb)
	require.Equal(t, ks, kf, "kind of %q", line)
	if ks != lineRecord {
		return
	}
	require.Equal(t, slow.rec, fast.rec, "record of %q", line)
	require.False(t, slow.rawsInLine)
	want := slow.rawsOf(sb, sb)
	require.Equal(t, want, fast.rawsOf(fb, fb), "raw values of %q", line)
	if !fast.rawsInLine {
		return
	}
	// What a LineRender is handed of the line says the same.
	l := &fast.line
	var rec Record
	l.Record(&rec)
	require.Equal(t, slow.rec, rec, "record of the Line of %q", line)
	nums := [...]int64{int64(rec.SrcPort), int64(rec.DstPort), int64(rec.Protocol), rec.Packets, rec.Bytes, rec.Start, rec.End}
	for k := RawSrcPort; k <= RawEnd; k++ {
		require.Equal(t, nums[k-RawSrcPort], l.Number(k), "value %d of the Line of %q", k, line)
	}
	for k := range want {
		require.Equal(t, fb[want[k].off:want[k].off+want[k].n], l.Raw(k), "raw value %d of the Line of %q", k, line)
	}
	// The fast path's positions are from the start of the line, so they
	// hold wherever in a chunk the line is.
	const before = "earlier line\n"
	chunk := append([]byte(before), fb...)
	for k := range want {
		want[k].off += uint32(len(before))
	}
	require.Equal(t, want, fast.rawsOf(chunk, chunk[len(before):]), "raw values of %q in a chunk", line)
}

// TestParseDefaultMatchesGeneralPath checks the fast path against the
// general one on the seeds, and on every one-byte change and every prefix
// of those the fast path takes.
func TestParseDefaultMatchesGeneralPath(t *testing.T) {
	t.Parallel()
	const alphabet = " \t.:-0129aAOK%\"\\\x00\xff"
	taken := 0
	for _, seed := range fastParseSeeds {
		parseBothWays(t, seed)
		p := newParser(newFormat(DefaultFields()))
		p.out = &p.rec
		if !p.parseDefault([]byte(seed)) {
			continue
		}
		// Changes of lines the fast path takes find where it must stop.
		taken++
		for i := range len(seed) {
			for _, c := range []byte(alphabet) {
				b := []byte(seed)
				b[i] = c
				parseBothWays(t, string(b))
			}
			parseBothWays(t, seed[:i])
		}
	}
	// The fast path must really be taken, or this test compares the
	// general path with itself.
	require.Equal(t, 9, taken)
}

func FuzzParseDefault(f *testing.F) {
	for _, s := range fastParseSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		parseBothWays(t, line)
	})
}

// BenchmarkScanDefault measures the fast parse of digest lines alone, on
// one goroutine: lines as vpcflow-digesterd writes them, between 2,000
// IPv4 addresses.
func BenchmarkScanDefault(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	var text []byte
	for i := range 10_000 {
		rec := Record{Version: 2, AccountID: "123456789012", InterfaceID: fmt.Sprintf("eni-%08x", rng.Uint32()%64),
			SrcAddr: netip.AddrFrom4([4]byte{10, byte(rng.IntN(8)), byte(rng.IntN(256)), byte(rng.IntN(256))}),
			DstAddr: netip.AddrFrom4([4]byte{10, byte(rng.IntN(8)), byte(rng.IntN(256)), byte(rng.IntN(256))}),
			SrcPort: 32768 + rng.IntN(28232), DstPort: 443, Protocol: 6,
			Packets: 1 + rng.Int64N(100), Bytes: 40 + rng.Int64N(100_000),
			Start: 1600000000 + int64(i/100), End: 1600000000 + int64(i/100) + rng.Int64N(600),
			Action: ActionAccept, LogStatus: StatusOK}
		text = AppendDigestLine(text, &rec)
	}
	lines := bytes.Split(bytes.TrimSuffix(text, []byte("\n")), []byte("\n"))
	b.SetBytes(int64(len(text)))
	var l Line
	for b.Loop() {
		for _, line := range lines {
			if !scanDefault(line, &l) {
				b.Fatalf("fast parse refused %q", line)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(lines)), "ns/line")
}

// TestLineRawPadded checks that a Line hands out a value for copies in
// whole blocks only when as many bytes follow it in its text, and then
// the value's own bytes first.
func TestLineRawPadded(t *testing.T) {
	t.Parallel()
	line := []byte(fastParseSeeds[0])
	var l Line
	require.True(t, scanDefault(line, &l))
	for room := 0; room <= 40; room++ {
		// The text ends room bytes after the line, as a chunk's does.
		l.text = append(append([]byte(nil), line...), make([]byte, room)...)
		l.text = l.text[: len(line) : len(line)+room]
		for k := range numRaw {
			r := l.raws[k]
			end := int(r.off) + (int(r.n)+15)/16*16
			text, n, ok := l.RawPadded(k, 16)
			require.Equal(t, end <= len(line)+room, ok, "value %d with %d bytes of room", k, room)
			if ok {
				require.Equal(t, int(r.n), n)
				require.Len(t, text, end-int(r.off))
				require.Equal(t, l.Raw(k), text[:n])
			}
		}
	}
}

// ipv6FieldAgrees fails t when ipv6Field takes the field s but
// netip.ParseAddr does not, or reads another address, and reports
// whether ipv6Field took it.
func ipv6FieldAgrees(t testing.TB, s string) bool {
	// A field ends at a space: at a newline, another control byte or
	// the end of the text, it is refused, whatever its address.
	for _, end := range []string{"", "\n", "\n443 OK", "\r 443", "\t443 OK"} {
		_, _, ok := ipv6Field([]byte(s+end), 0)
		require.False(t, ok, "ipv6Field took %q", s+end)
	}
	line := []byte(s + " 443 OK")
	got, j, ok := ipv6Field(line, 0)
	if !ok {
		return false
	}
	want, err := netip.ParseAddr(s)
	require.NoError(t, err, "ipv6Field took %q", s)
	require.Equal(t, want, got, "address of %q", s)
	require.Equal(t, len(s)+1, j, "index after %q", s)
	return true
}

// mutate returns s (not empty) with one byte changed to, or one inserted
// from, alphabet, or one taken away.
func mutate(rng *rand.Rand, s, alphabet string) []byte {
	m := []byte(s)
	switch at := rng.IntN(len(m)); rng.IntN(3) {
	case 0:
		m[at] = alphabet[rng.IntN(len(alphabet))]
	case 1:
		m = append(m[:at], m[at+1:]...)
	default:
		m = append(m[:at], append([]byte{alphabet[rng.IntN(len(alphabet))]}, m[at:]...)...)
	}
	return m
}

// TestIPv6FieldMatchesParseAddr reads addresses written every way
// ParseAddr takes with hex groups alone, and mutations of them, and wants
// ipv6Field to take every hex-only form and to agree with ParseAddr on
// whatever it takes.
func TestIPv6FieldMatchesParseAddr(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(11, 12))
	const alphabet = "0123456789abcdefABCDEF::::.% g\r\n\t"
	forms := func(a netip.Addr) []string {
		s, e := a.String(), a.StringExpanded()
		return []string{s, e, strings.ToUpper(s), strings.ToUpper(e), strings.ReplaceAll(e, ":0", ":")}
	}
	var taken, mutated int
	for range 20_000 {
		var b [16]byte
		for k := range b {
			if rng.IntN(3) > 0 { // runs of zero groups, for ::
				b[k] = byte(rng.Uint32())
			}
		}
		a := netip.AddrFrom16(b)
		for _, s := range forms(a) {
			took := ipv6FieldAgrees(t, s)
			if !strings.Contains(s, ".") {
				require.True(t, took, "ipv6Field refused %q", s)
				taken++
			}
			m := mutate(rng, s, alphabet)
			if len(m) > 0 && !bytes.ContainsAny(m, " ") && ipv6FieldAgrees(t, string(m)) {
				mutated++
			}
		}
	}
	for _, s := range []string{"::", "::1", "1::", "1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"} {
		require.True(t, ipv6FieldAgrees(t, s), s)
	}
	for _, s := range []string{"", ":", ":::", "1:::2", "1::2::3", "1:2:3:4:5:6:7:8::", "::1:2:3:4:5:6:7:8",
		"1:2:3:4:5:6:7", "1:2:3:4:5:6:7:8:9", "12345::", ":1::", "1:", "fe80::1%eth0", "::ffff:10.0.0.1", "g::"} {
		require.False(t, ipv6FieldAgrees(t, s), s)
	}
	t.Logf("%d forms taken, %d mutations taken", taken, mutated)
	require.Positive(t, mutated)
}

// FuzzIPv6Field checks that ipv6Field never takes a field netip.ParseAddr
// refuses or reads as another address.
func FuzzIPv6Field(f *testing.F) {
	for _, s := range []string{"::", "2001:db8::1", "1:2:3:4:5:6:7:8", "1::2::3", "fe80::1%eth0", "::ffff:1.2.3.4", "::1\n", "1:\r:2", "\t::"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if strings.ContainsAny(s, " ") {
			return
		}
		ipv6FieldAgrees(t, s)
	})
}

// ipv4FieldAgrees reads s as the field ending in a space at the start of
// a line with tail after it, and fails t when ipv4Field takes what
// netip.ParseAddr refuses or reads another address or length, or takes any
// prefix of s that the text ends after; it reports whether ipv4Field took
// s.
func ipv4FieldAgrees(t testing.TB, s, tail string) bool {
	// Cut short by the end of the text, before its space, a field is
	// refused, whatever it holds.
	for i := range len(s) + 1 {
		_, _, ok := ipv4Field([]byte(s[:i]), 0)
		require.False(t, ok, "ipv4Field took %q, cut short", s[:i])
	}
	line := []byte(s + " " + tail)
	got, j, ok := ipv4Field(line, 0)
	want, err := netip.ParseAddr(s)
	wantOK := err == nil && want.Is4() && !strings.ContainsAny(s, " ")
	require.Equal(t, wantOK, ok, "ipv4Field of %q before %q", s, tail)
	if ok {
		require.Equal(t, want, got, "address of %q", s)
		require.Equal(t, len(s)+1, j, "index after %q", s)
	}
	return ok
}

// TestIPv4FieldMatchesParseAddr reads addresses of every octet length,
// and mutations of them, at the start of lines with from nothing to many
// bytes after them, so that a field cut short by the end of the text is
// read too, and wants ipv4Field to agree with ParseAddr on each.
func TestIPv4FieldMatchesParseAddr(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(21, 22))
	const alphabet = "0123456789.. :a/\x00\xff"
	tails := []string{"", "1", "12 ", "443 6 ACCEPT OK", "9.9.9.9 1 2 3 4 5 6 7 ACCEPT OK"}
	octet := func() int {
		switch rng.IntN(3) {
		case 0:
			return rng.IntN(10)
		case 1:
			return 10 + rng.IntN(90)
		}
		return 100 + rng.IntN(156)
	}
	var taken, mutated int
	for range 20_000 {
		s := fmt.Sprintf("%d.%d.%d.%d", octet(), octet(), octet(), octet())
		tail := tails[rng.IntN(len(tails))]
		require.True(t, ipv4FieldAgrees(t, s, tail), s)
		taken++
		m := mutate(rng, s, alphabet)
		if !bytes.ContainsAny(m, " ") && ipv4FieldAgrees(t, string(m), tail) {
			mutated++
		}
	}
	for _, tail := range tails {
		for _, s := range []string{"0.0.0.0", "255.255.255.255", "1.2.3.4", "100.200.250.255"} {
			require.True(t, ipv4FieldAgrees(t, s, tail), s)
		}
		for _, s := range []string{"", ".", "1.2.3", "1.2.3.4.5", "1..2.3", ".1.2.3", "1.2.3.", "01.2.3.4",
			"1.2.3.00", "256.1.1.1", "1.2.3.256", "1000.1.1.1", "1.2.3.1000", "1.2.3.4a", "a.b.c.d",
			"1.2.3.-4", "255.255.255.2555", "1.2.3.4\n5", "1:2::3"} {
			require.False(t, ipv4FieldAgrees(t, s, tail), s)
		}
	}
	t.Logf("%d addresses taken, %d mutations taken", taken, mutated)
	require.Positive(t, mutated)
}

// FuzzIPv4Field checks that ipv4Field takes exactly the fields
// netip.ParseAddr reads as IPv4, as the same address, wherever the text
// ends after them.
func FuzzIPv4Field(f *testing.F) {
	for _, s := range []string{"0.0.0.0", "10.0.0.1", "255.255.255.255", "01.2.3.4", "1.2.3", "256.0.0.1", "1.2.3.4\n"} {
		f.Add(s, "")
		f.Add(s, "443 6 ACCEPT OK")
	}
	f.Fuzz(func(t *testing.T, s, tail string) {
		if strings.ContainsAny(s, " ") {
			return
		}
		ipv4FieldAgrees(t, s, tail)
	})
}

// TestScanDefaultAtStopsAtTheNewline reads each seed line with the lines
// that follow it in a chunk and wants what scanDefault says of it alone:
// the same answer and Line, and its end at its newline, never a field
// run on into the next line.
func TestScanDefaultAtStopsAtTheNewline(t *testing.T) {
	t.Parallel()
	type cutLine struct{ line, rest string }
	var lines []cutLine
	for _, l := range fastParseSeeds {
		lines = append(lines, cutLine{line: l})
	}
	// Lines cut short inside and at the end of each field, an IPv4 one
	// and a hex-only IPv6 one, with the rest of the line they were cut
	// from: a field read on past the newline would make the two one
	// line of the right shape.
	for _, full := range []string{fastParseSeeds[0], ipv6Seed} {
		for i := 1; i < len(full); i++ {
			lines = append(lines, cutLine{full[:i], full[i:]})
		}
	}
	for _, c := range lines {
		nexts := []string{"", fastParseSeeds[0], fastParseSeeds[1], " x", "OK"}
		if c.rest != "" {
			nexts = append(nexts, c.rest, "x"+c.rest, strings.TrimPrefix(c.rest, " "))
		}
		for _, next := range nexts {
			var alone, inChunk Line
			want := scanDefault([]byte(c.line), &alone)
			text := []byte(c.line + "\n" + next)
			end, got := scanDefaultAt(text, &inChunk)
			require.Equal(t, want, got, "%q then %q", c.line, next)
			if !got {
				continue
			}
			require.Equal(t, len(c.line), end, "%q then %q", c.line, next)
			alone.text, inChunk.text = nil, nil
			require.Equal(t, alone, inChunk, "%q then %q", c.line, next)
		}
	}
}
