package flowtable_test

import (
	"context"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/flowlog"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/flowtable"
)

// TestManyPortsKeepTheBusiest sends one edge's records to thousands of
// random ephemeral ports and a few busy ones: the busy ports are listed
// with counts at most flows/32 over, the counts add up to the flows, and the
// memory does not grow with the ports (the sketch is fixed in size).
func TestManyPortsKeepTheBusiest(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 1))
	busy := map[int]int64{443: 3000, 22: 2000, 8080: 1500}
	var recs []flowlog.Record
	rec := flowlog.Record{SrcAddr: netip.MustParseAddr("10.0.0.1"), DstAddr: netip.MustParseAddr("10.0.0.2"), Protocol: 6, Action: flowlog.ActionAccept}
	for port, n := range busy {
		for range n {
			rec.DstPort = port
			recs = append(recs, rec)
		}
	}
	for range 20000 {
		rec.DstPort = 32768 + rng.IntN(28000)
		recs = append(recs, rec)
	}
	rng.Shuffle(len(recs), func(i, j int) { recs[i], recs[j] = recs[j], recs[i] })
	v, err := flowtable.Aggregate(context.Background(), fromRecords(recs), mustParams(t, "group=addr"), flowtable.Limits{})
	require.NoError(t, err)
	require.Len(t, v.Edges, 1)
	e := v.Edges[0]
	require.Len(t, e.Ports, flowtable.MaxPorts)
	bound := e.Flows / 32
	for i, port := range []int{443, 22, 8080} {
		require.Equal(t, port, e.Ports[i].Port)
		require.InDelta(t, busy[port], e.Ports[i].Flows, float64(bound))
		require.GreaterOrEqual(t, e.Ports[i].Flows, busy[port])
	}
	var listed int64
	for _, pf := range e.Ports {
		listed += pf.Flows
	}
	require.Equal(t, e.Flows, listed+e.OtherPorts)
}
