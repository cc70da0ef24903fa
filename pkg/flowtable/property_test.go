package flowtable_test

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/flowlog"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/flowtable"
)

// randomRecords draws n records between few addresses (so edges merge),
// with every action, several protocols, ports and interfaces.
func randomRecords(rng *rand.Rand, n int) []flowlog.Record {
	addrs := []netip.Addr{
		netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.1.1"),
		netip.MustParseAddr("10.1.0.1"), netip.MustParseAddr("192.168.5.5"), netip.MustParseAddr("203.0.113.7"),
		netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2"), netip.MustParseAddr("2001:db8:0:1::1"),
		netip.MustParseAddr("::ffff:10.0.0.1"),
	}
	actions := []string{flowlog.ActionAccept, flowlog.ActionReject, flowlog.Missing}
	protocols := []int{6, 17, 1, -1}
	ports := []int{22, 53, 80, 443, 1024, 2000, 3389, 8080, 0, 65535, 40000, 40001, 40002}
	enis := []string{"eni-a", "eni-b", "eni-c", "-"}
	accounts := []string{"111111111111", "222222222222", "-"}
	recs := make([]flowlog.Record, n)
	for i := range recs {
		r := &recs[i]
		*r = flowlog.Record{Version: 2, LogStatus: flowlog.StatusOK,
			SrcAddr: addrs[rng.IntN(len(addrs))], DstAddr: addrs[rng.IntN(len(addrs))],
			SrcPort: ports[rng.IntN(len(ports))], DstPort: ports[rng.IntN(len(ports))],
			Protocol: protocols[rng.IntN(len(protocols))], Packets: rng.Int64N(50),
			Bytes: rng.Int64N(5000), Action: actions[rng.IntN(len(actions))],
			InterfaceID: enis[rng.IntN(len(enis))], AccountID: accounts[rng.IntN(len(accounts))]}
		r.Start = 1600000000 + rng.Int64N(3600)
		r.End = r.Start + rng.Int64N(600)
	}
	return recs
}

// randomQuery draws view parameters, each present about half the time.
func randomQuery(rng *rand.Rand) string {
	var q []string
	pick := func(options ...string) string { return options[rng.IntN(len(options))] }
	q = append(q, "group="+pick("addr", "cidr:24", "cidr:8:48", "cidr:0:0", "cidr:32:128", "cidr:16"))
	if rng.IntN(2) == 0 {
		q = append(q, "action="+pick("ACCEPT", "REJECT", "accept,reject"))
	}
	if rng.IntN(2) == 0 {
		q = append(q, "protocol="+pick("tcp", "6,17", "icmp", "udp,1"))
	}
	if rng.IntN(2) == 0 {
		q = append(q, "port="+pick("22", "1024-2047", "22,3389,40000-40001", "0"))
	}
	if rng.IntN(3) == 0 {
		q = append(q, "addr="+pick("10.0.0.0/16", "2001:db8::/64", "203.0.113.7,10.1.0.0/16"))
	}
	if rng.IntN(3) == 0 {
		q = append(q, "src="+pick("10.0.0.0/8", "2001:db8::/32"))
	}
	if rng.IntN(3) == 0 {
		q = append(q, "dst="+pick("10.0.0.1", "192.168.0.0/16,2001:db8::/32"))
	}
	if rng.IntN(3) == 0 {
		q = append(q, fmt.Sprintf("min_bytes=%d", rng.IntN(20000)))
	}
	if rng.IntN(3) == 0 {
		q = append(q, fmt.Sprintf("top=%d", 1+rng.IntN(10)))
	}
	return strings.Join(q, "&")
}

// refEdge is the reference aggregation's edge, made the simplest way.
type refEdge struct {
	src, dst                                               string
	flows, packets, bytes, accepted, rejected, first, last int64
	ports                                                  map[int]int64
}

// reference aggregates recs for p naively: string keys, full port maps.
func reference(recs []flowlog.Record, p flowtable.Params) []*refEdge {
	in := func(l []netip.Prefix, a netip.Addr) bool {
		return slices.ContainsFunc(l, func(p netip.Prefix) bool { return p.Contains(a) })
	}
	node := func(a netip.Addr) string {
		if p.Group.Kind != flowtable.GroupCIDR {
			return a.String()
		}
		bits := p.Group.Bits4
		if !a.Is4() {
			bits = p.Group.Bits6
		}
		return netip.PrefixFrom(a, bits).Masked().String()
	}
	edges := map[[2]string]*refEdge{}
	for _, r := range recs {
		switch {
		case (p.Accept || p.Reject) && !(p.Accept && r.Action == flowlog.ActionAccept) && !(p.Reject && r.Action == flowlog.ActionReject),
			len(p.Protocols) > 0 && !slices.Contains(p.Protocols, r.Protocol),
			len(p.Ports) > 0 && !slices.ContainsFunc(p.Ports, func(pr flowtable.PortRange) bool { return r.DstPort >= pr.Lo && r.DstPort <= pr.Hi }),
			len(p.Addrs) > 0 && !in(p.Addrs, r.SrcAddr) && !in(p.Addrs, r.DstAddr),
			len(p.Srcs) > 0 && !in(p.Srcs, r.SrcAddr),
			len(p.Dsts) > 0 && !in(p.Dsts, r.DstAddr):
			continue
		}
		k := [2]string{node(r.SrcAddr), node(r.DstAddr)}
		e := edges[k]
		if e == nil {
			e = &refEdge{src: k[0], dst: k[1], first: r.Start, last: r.End, ports: map[int]int64{}}
			edges[k] = e
		}
		e.flows++
		e.packets += r.Packets
		e.bytes += r.Bytes
		e.first, e.last = min(e.first, r.Start), max(e.last, r.End)
		e.ports[r.DstPort]++
		switch r.Action {
		case flowlog.ActionAccept:
			e.accepted++
		case flowlog.ActionReject:
			e.rejected++
		}
	}
	var out []*refEdge
	for _, e := range edges {
		if e.bytes >= p.MinBytes {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b *refEdge) int {
		return cmp.Or(cmp.Compare(b.bytes, a.bytes), compareKey(a.src, b.src), compareKey(a.dst, b.dst))
	})
	if p.Top > 0 && len(out) > p.Top {
		out = out[:p.Top]
	}
	return out
}

// compareKey orders node keys as views do: IPv4, then IPv6, by address.
func compareKey(a, b string) int {
	parse := func(s string) netip.Addr {
		if p, err := netip.ParsePrefix(s); err == nil {
			return p.Addr()
		}
		return netip.MustParseAddr(s)
	}
	x, y := parse(a), parse(b)
	return cmp.Or(cmp.Compare(x.BitLen(), y.BitLen()), x.Compare(y))
}

// TestViewSumsEqualRecordSums checks, for random records and random view
// parameters, that every view edge is exactly the merge of the records that
// pass its filters (flows, packets, bytes, actions, times, ports), that top
// and min_bytes keep the right edges, and that node and graph totals are
// the sums of the view's edges.
func TestViewSumsEqualRecordSums(t *testing.T) {
	t.Parallel()
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	for range 300 {
		recs := randomRecords(rng, rng.IntN(400))
		query := randomQuery(rng)
		p := mustParams(t, query)
		v, err := flowtable.Aggregate(context.Background(), fromRecords(recs), p, flowtable.Limits{})
		require.NoError(t, err, query)
		want := reference(recs, p)
		require.Len(t, v.Edges, len(want), query)
		require.Equal(t, int64(len(recs)), v.RecordsRead)

		byPair := map[[2]string]*refEdge{}
		for _, e := range want {
			byPair[[2]string{e.src, e.dst}] = e
		}
		var flows, bytesIn, bytesOut, flowsIn, flowsOut, rejIn, rejOut, edgeRej, edgeBytes int64
		for _, e := range v.Edges {
			src, dst := v.Nodes[e.Source].Key, v.Nodes[e.Target].Key
			r := byPair[[2]string{src, dst}]
			require.NotNil(t, r, "%s: edge %s -> %s is not in the reference", query, src, dst)
			require.Equal(t, []int64{r.flows, r.packets, r.bytes, r.accepted, r.rejected, r.first, r.last},
				[]int64{e.Flows, e.Packets, e.Bytes, e.Accepted, e.Rejected, e.First, e.Last}, "%s: %s -> %s", query, src, dst)
			var listed int64
			for i, pf := range e.Ports {
				require.Equal(t, r.ports[pf.Port], pf.Flows, "%s: flows to port %d", query, pf.Port)
				listed += pf.Flows
				if i > 0 {
					prev := e.Ports[i-1]
					require.True(t, prev.Flows > pf.Flows || prev.Flows == pf.Flows && prev.Port < pf.Port, "ports out of order")
				}
			}
			require.Equal(t, min(len(r.ports), flowtable.MaxPorts), len(e.Ports), query)
			require.Equal(t, e.Flows, listed+e.OtherPorts, "%s: listed and other ports hold every flow", query)
			if len(e.Ports) == flowtable.MaxPorts {
				last := e.Ports[len(e.Ports)-1]
				for port, n := range r.ports {
					if !slices.ContainsFunc(e.Ports, func(pf flowtable.PortFlows) bool { return pf.Port == port }) {
						require.True(t, n < last.Flows || n == last.Flows && port > last.Port, "%s: port %d (%d flows) should be listed", query, port, n)
					}
				}
			}
			flows += e.Flows
			edgeBytes += e.Bytes
			edgeRej += e.Rejected
		}
		for _, n := range v.Nodes {
			bytesIn += n.BytesIn
			bytesOut += n.BytesOut
			flowsIn += n.FlowsIn
			flowsOut += n.FlowsOut
			rejIn += n.RejectedIn
			rejOut += n.RejectedOut
			require.GreaterOrEqual(t, n.Addresses, int64(1))
		}
		require.Equal(t, flows, v.RecordsUsed)
		require.Equal(t, []int64{edgeBytes, edgeBytes, flows, flows, edgeRej, edgeRej}, []int64{bytesIn, bytesOut, flowsIn, flowsOut, rejIn, rejOut})
		for i := 1; i < len(v.Edges); i++ {
			a, b := v.Edges[i-1], v.Edges[i]
			require.True(t, a.Source < b.Source || a.Source == b.Source && a.Target < b.Target, "edges out of order")
		}
		for i := 1; i < len(v.Nodes); i++ {
			require.Negative(t, compareKey(v.Nodes[i-1].Key, v.Nodes[i].Key), "nodes out of order")
		}
	}
}

func mustParams(t *testing.T, query string) flowtable.Params {
	t.Helper()
	q, err := url.ParseQuery(query)
	require.NoError(t, err)
	p, err := flowtable.ParseParams(q)
	require.NoError(t, err, query)
	return p
}
