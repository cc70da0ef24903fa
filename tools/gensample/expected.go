package main

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// flowKey is what two records share when a digest merges them.
type flowKey struct {
	account, eni     string
	src, dst         netip.Addr
	srcPort, dstPort int
	protocol         int
	action           string
}

// flowSum is what merging accumulates.
type flowSum struct {
	packets, bytes, start, end int64
}

// expectedDigest compacts records the way vpcflow-digesterd does, written
// here independently of package flowlog so that the two can check each other:
// keep the OK records whose [Start, End] overlaps [start, stop); zero the
// higher port (the source port when both are equal); merge records with the
// same account, interface, addresses, remaining ports, protocol and action,
// summing packets and bytes and keeping the earliest start and latest end.
// Lines are sorted by start, end, account, interface, addresses, ports,
// protocol, action, packets, bytes, as the service writes them.
func expectedDigest(records []record, start, stop time.Time) []string {
	from, to := start.Unix(), stop.Unix()
	sums := map[flowKey]*flowSum{}
	for _, r := range records {
		if r.Status != "OK" || r.End < from || r.Start >= to {
			continue
		}
		k := flowKey{r.Account, r.ENI, r.Src, r.Dst, r.SrcPort, r.DstPort, r.Protocol, r.Action}
		if k.srcPort >= k.dstPort {
			k.srcPort = 0
		} else {
			k.dstPort = 0
		}
		s, ok := sums[k]
		if !ok {
			sums[k] = &flowSum{r.Packets, r.Bytes, r.Start, r.End}
			continue
		}
		s.packets += r.Packets
		s.bytes += r.Bytes
		s.start = min(s.start, r.Start)
		s.end = max(s.end, r.End)
	}
	type line struct {
		k flowKey
		s flowSum
	}
	lines := make([]line, 0, len(sums))
	for k, s := range sums {
		lines = append(lines, line{k, *s})
	}
	slices.SortFunc(lines, func(a, b line) int {
		return cmp.Or(
			cmp.Compare(a.s.start, b.s.start),
			cmp.Compare(a.s.end, b.s.end),
			strings.Compare(a.k.account, b.k.account),
			strings.Compare(a.k.eni, b.k.eni),
			a.k.src.Compare(b.k.src),
			a.k.dst.Compare(b.k.dst),
			cmp.Compare(a.k.srcPort, b.k.srcPort),
			cmp.Compare(a.k.dstPort, b.k.dstPort),
			cmp.Compare(a.k.protocol, b.k.protocol),
			strings.Compare(a.k.action, b.k.action),
			cmp.Compare(a.s.packets, b.s.packets),
			cmp.Compare(a.s.bytes, b.s.bytes),
		)
	})
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = fmt.Sprintf("2 %s %s %s %s %d %d %d %d %d %d %d %s OK",
			l.k.account, l.k.eni, l.k.src, l.k.dst, l.k.srcPort, l.k.dstPort, l.k.protocol,
			l.s.packets, l.s.bytes, l.s.start, l.s.end, l.k.action)
	}
	return out
}
