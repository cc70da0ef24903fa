package flowtable_test

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/flowlog"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/flowtable"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/grapher"
)

// testMeta names the graph the test views are of.
var testMeta = flowtable.Meta{
	ID:    "0a9d5c5e-7f43-5d0b-9a63-2b7c6f0e1d2a",
	Start: time.Date(2020, 9, 13, 12, 0, 0, 0, time.UTC),
	Stop:  time.Date(2020, 9, 13, 13, 0, 0, 0, time.UTC),
}

// graphBoth converts a digest as the worker does, returning the DOT and
// the flow table written in the same pass.
func graphBoth(t testing.TB, digest []byte) (dot, table []byte) {
	t.Helper()
	var d, tb bytes.Buffer
	tw := flowtable.NewWriter(&tb)
	_, err := (&grapher.DOT{}).GraphWithSink(context.Background(), &d, bytes.NewReader(digest), tw.Add)
	require.NoError(t, err)
	require.NoError(t, tw.Close())
	return d.Bytes(), tb.Bytes()
}

// fromTable opens records from a table held in memory.
func fromTable(table []byte) flowtable.Open {
	return func() (flowtable.Source, io.Closer, error) {
		return flowtable.NewReader(bytes.NewReader(table)), io.NopCloser(nil), nil
	}
}

// fromDOT opens records from a stored DOT held in memory.
func fromDOT(dot []byte) flowtable.Open {
	return func() (flowtable.Source, io.Closer, error) {
		return flowtable.NewDOTReader(bytes.NewReader(dot)), io.NopCloser(nil), nil
	}
}

// fromRecords opens a slice of records.
func fromRecords(recs []flowlog.Record) flowtable.Open {
	return func() (flowtable.Source, io.Closer, error) {
		return &sliceSource{recs: recs, i: -1}, io.NopCloser(nil), nil
	}
}

type sliceSource struct {
	recs []flowlog.Record
	i    int
}

func (s *sliceSource) Next() bool              { s.i++; return s.i < len(s.recs) }
func (s *sliceSource) Record() *flowlog.Record { return &s.recs[s.i] }
func (s *sliceSource) Err() error              { return nil }

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	require.NoError(t, err)
	return b
}

func newRand() *rand.Rand { return rand.New(rand.NewPCG(11, 12)) }

// addrN is the nth address of 10.0.0.0/8.
func addrN(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
}
