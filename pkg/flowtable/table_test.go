package flowtable_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/flowlog"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/flowlog/flowlogtest"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/flowtable"
)

// readAll decodes every record of a source.
func readAll(t *testing.T, src flowtable.Source) ([]flowlog.Record, error) {
	t.Helper()
	var out []flowlog.Record
	for src.Next() {
		out = append(out, *src.Record())
	}
	return out, src.Err()
}

func encode(t *testing.T, recs []flowlog.Record) []byte {
	t.Helper()
	var b bytes.Buffer
	w := flowtable.NewWriter(&b)
	for i := range recs {
		require.NoError(t, w.Add(&recs[i]))
	}
	require.NoError(t, w.Close())
	return b.Bytes()
}

// TestTableRoundTrip encodes records with every kind of value and reads
// back the same records.
func TestTableRoundTrip(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	recs := randomRecords(rng, 5000)
	recs = append(recs,
		flowlog.Record{Version: 2, LogStatus: flowlog.StatusOK, AccountID: strings.Repeat("a", 3000), InterfaceID: "eni-\"quoted\" \\",
			SrcAddr: netip.MustParseAddr("::"), DstAddr: netip.MustParseAddr("255.255.255.255"), SrcPort: 65535, DstPort: 65535,
			Protocol: 255, Packets: 1 << 40, Bytes: 1 << 50, Start: 0, End: 1 << 33, Action: flowlog.ActionReject},
		flowlog.Record{Version: 2, LogStatus: flowlog.StatusOK, AccountID: "-", InterfaceID: "-",
			SrcAddr: netip.MustParseAddr("10.0.0.1"), DstAddr: netip.MustParseAddr("10.0.0.1"), Protocol: -1,
			Start: 1700000000, End: 1600000000, Action: flowlog.Missing},
	)
	table := encode(t, recs)
	got, err := readAll(t, flowtable.NewReader(bytes.NewReader(table)))
	require.NoError(t, err)
	require.Equal(t, recs, got)
	// Small reads on the way must not matter.
	got, err = readAll(t, flowtable.NewReader(&oneByteReader{r: bytes.NewReader(table)}))
	require.NoError(t, err)
	require.Equal(t, recs, got)
}

type oneByteReader struct{ r *bytes.Reader }

func (o *oneByteReader) Read(p []byte) (int, error) { return o.r.Read(p[:min(len(p), 1)]) }

// TestTableManyStrings goes past the string list's bound: ids past it are
// written out each time and still read back.
func TestTableManyStrings(t *testing.T) {
	t.Parallel()
	recs := make([]flowlog.Record, 70000)
	for i := range recs {
		recs[i] = flowlog.Record{Version: 2, LogStatus: flowlog.StatusOK, AccountID: fmt.Sprint(i % 66000), InterfaceID: fmt.Sprintf("eni-%d", i),
			SrcAddr: netip.MustParseAddr("10.0.0.1"), DstAddr: netip.MustParseAddr("10.0.0.2"), Protocol: 6, Action: flowlog.ActionAccept}
	}
	got, err := readAll(t, flowtable.NewReader(bytes.NewReader(encode(t, recs))))
	require.NoError(t, err)
	require.Equal(t, recs, got)
}

// TestTableCorrupt shows bytes that are not a whole table end in
// ErrCorrupt, never in made-up records.
func TestTableCorrupt(t *testing.T) {
	t.Parallel()
	recs := randomRecords(rand.New(rand.NewPCG(3, 4)), 50)
	table := encode(t, recs)
	cases := map[string][]byte{
		"empty":          {},
		"no header":      []byte("digraph {}"),
		"cut short":      table[:len(table)-3],
		"unknown action": append([]byte("GVT1"), 0x0c, 10, 0, 0, 1, 10, 0, 0, 2, 0, 0, 6, 0, 0, 0, 0, 0, 0),
		"bad string":     append([]byte("GVT1"), 0x00, 10, 0, 0, 1, 10, 0, 0, 2, 0, 0, 6, 0, 0, 0, 0, 5, 0),
	}
	for name, b := range cases {
		_, err := readAll(t, flowtable.NewReader(bytes.NewReader(b)))
		require.ErrorIs(t, err, flowtable.ErrCorrupt, name)
	}
	// A read error is passed on.
	boom := errors.New("boom")
	_, err := readAll(t, flowtable.NewReader(&failAfterReader{b: table, err: boom}))
	require.ErrorIs(t, err, boom)
}

type failAfterReader struct {
	b   []byte
	err error
}

func (f *failAfterReader) Read(p []byte) (int, error) {
	if len(f.b) == 0 {
		return 0, f.err
	}
	n := copy(p, f.b[:len(f.b)/2+1])
	f.b = f.b[n:]
	return n, nil
}

// TestDOTReaderReadsTheGraphersRecords graphs random records (with quotes
// and backslashes in their ids) and reads the same records back from the DOT.
func TestDOTReaderReadsTheGraphersRecords(t *testing.T) {
	t.Parallel()
	var digest bytes.Buffer
	var want []flowlog.Record
	require.NoError(t, flowlogtest.Records(flowlogtest.Spec{Lines: 3000, Addrs: 200, Seed: 5}, func(r *flowlog.Record) error {
		want = append(want, *r)
		digest.Write(flowlog.AppendDigestLine(nil, r))
		return nil
	}))
	extra := "2 12\"34 eni-\\x 10.0.0.1 2001:db8::1 1 2 - 3 4 5 6 - OK\n"
	digest.WriteString(extra)
	dot, table := graphBoth(t, digest.Bytes())
	fromTable, err := readAll(t, flowtable.NewReader(bytes.NewReader(table)))
	require.NoError(t, err)
	fromDOT, err := readAll(t, flowtable.NewDOTReader(bytes.NewReader(dot)))
	require.NoError(t, err)
	require.Equal(t, fromTable, fromDOT)
	require.Len(t, fromDOT, len(want)+1)
	require.Equal(t, want, fromDOT[:len(want)])
	last := fromDOT[len(want)]
	require.Equal(t, []string{"12\"34", "eni-\\x", flowlog.Missing}, []string{last.AccountID, last.InterfaceID, last.Action})
	require.Equal(t, -1, last.Protocol)

	// The README's style: semicolons, commas, quoted ids that are addresses.
	styled := "digraph {\n  n1 [label=\"10.0.0.1\"];\n  \"10.0.0.1\" -> \"2001:db8::2\" [govpc_accountID=\"1\", govpc_eniID=\"eni-1\", " +
		"govpc_srcPort=\"0\", govpc_dstPort=\"443\", govpc_protocol=\"6\", govpc_packets=\"2\", govpc_bytes=\"30\", " +
		"govpc_start=\"1\", govpc_end=\"2\", color=\"red\", label=\"x\"];\n  n1 -> \"2001:db8::2\" [govpc_accountID=\"1\", govpc_eniID=\"eni-1\", " +
		"govpc_srcPort=\"0\", govpc_dstPort=\"22\", govpc_protocol=\"6\", govpc_packets=\"1\", govpc_bytes=\"5\", govpc_start=\"1\", govpc_end=\"2\", color=\"green\"];\n}\n"
	recs, err := readAll(t, flowtable.NewDOTReader(strings.NewReader(styled)))
	require.NoError(t, err)
	require.Len(t, recs, 2)
	require.Equal(t, []any{"10.0.0.1", "2001:db8::2", 443, int64(30), flowlog.ActionReject, flowlog.ActionAccept},
		[]any{recs[0].SrcAddr.String(), recs[0].DstAddr.String(), recs[0].DstPort, recs[0].Bytes, recs[0].Action, recs[1].Action})

	_, err = readAll(t, flowtable.NewDOTReader(strings.NewReader("digraph {\n\ta -> b [govpc_bytes=\"1\"]\n}\n")))
	require.ErrorIs(t, err, flowtable.ErrNotGraph)
	_, err = readAll(t, flowtable.NewDOTReader(strings.NewReader("digraph {\n\ta [label=\"not an address\"]\n}\n")))
	require.ErrorIs(t, err, flowtable.ErrNotGraph)
}
