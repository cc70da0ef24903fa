// Package flowlogtest generates synthetic flow-log digests for tests,
// benchmarks and the gendigest tool. The same spec always yields the same
// bytes, so benchmark figures and golden files can be compared across runs.
package flowlogtest

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/flowlog"
)

// MaxAddrs is the largest number of distinct addresses a Spec can ask for.
const MaxAddrs = 1 << 24

// Spec describes a synthetic digest.
type Spec struct {
	// Lines is the number of records.
	Lines int
	// Addrs is the number of distinct addresses records are drawn between
	// (at least 1, at most MaxAddrs).
	Addrs int
	// Seed selects the pseudo-random sequence.
	Seed uint64
	// IPv6Every makes every IPv6Every-th address an IPv6 one; 0 means 10.
	// A negative value means IPv4 only.
	IPv6Every int
}

// Addrs returns the n distinct addresses a Spec with that seed draws from:
// IPv4 addresses in 10.0.0.0/8 and, every ipv6Every-th one, IPv6 addresses in
// 2001:db8::/32.
func Addrs(n int, seed uint64, ipv6Every int) []netip.Addr {
	n = min(max(n, 1), MaxAddrs)
	if ipv6Every == 0 {
		ipv6Every = 10
	}
	// Addresses are drawn from the smallest power-of-two block that holds n,
	// so they look like one network rather than all of 10.0.0.0/8.
	mask := uint64(1)
	for mask < uint64(n) {
		mask <<= 1
	}
	mask--
	addrs := make([]netip.Addr, n)
	for i := range addrs {
		// An odd multiplier is a bijection modulo a power of two, so
		// addresses are distinct yet scattered rather than sequential.
		v := uint32((uint64(i)*2654435761 + seed) & mask)
		if ipv6Every > 0 && i%ipv6Every == ipv6Every-1 {
			var b [16]byte
			b[0], b[1], b[2], b[3] = 0x20, 0x01, 0x0d, 0xb8
			b[13], b[14], b[15] = byte(v>>16), byte(v>>8), byte(v)
			addrs[i] = netip.AddrFrom16(b)
			continue
		}
		addrs[i] = netip.AddrFrom4([4]byte{10, byte(v >> 16), byte(v >> 8), byte(v)})
	}
	return addrs
}

// wellKnownPorts are the service ports records use.
var wellKnownPorts = [...]int{22, 53, 80, 123, 443, 3306, 5432, 6379, 8080, 8443}

// Records calls fn with each record of the digest spec describes, in order.
// The record is reused between calls. It stops at the first error fn
// returns.
func Records(spec Spec, fn func(*flowlog.Record) error) error {
	addrs := Addrs(spec.Addrs, spec.Seed, spec.IPv6Every)
	rng := rand.New(rand.NewPCG(spec.Seed, 0x9e3779b97f4a7c15))
	accounts := [...]string{"123456789012", "210987654321", "555555555555", "000011112222"}
	var enis [64]string
	for i := range enis {
		enis[i] = fmt.Sprintf("eni-%08x", rng.Uint32())
	}
	const base = 1600000000
	rec := flowlog.Record{Version: 2, LogStatus: flowlog.StatusOK}
	for i := range spec.Lines {
		eni := rng.IntN(len(enis))
		rec.AccountID = accounts[eni%len(accounts)]
		rec.InterfaceID = enis[eni]
		rec.SrcAddr = addrs[rng.IntN(len(addrs))]
		rec.DstAddr = addrs[rng.IntN(len(addrs))]
		ephemeral := 32768 + rng.IntN(28232)
		service := wellKnownPorts[rng.IntN(len(wellKnownPorts))]
		if rng.IntN(2) == 0 {
			rec.SrcPort, rec.DstPort = ephemeral, service
		} else {
			rec.SrcPort, rec.DstPort = service, ephemeral
		}
		switch p := rng.IntN(20); {
		case p == 0:
			rec.Protocol = 1
		case p < 4:
			rec.Protocol = 17
		default:
			rec.Protocol = 6
		}
		rec.Packets = 1 + rng.Int64N(100)
		rec.Bytes = rec.Packets * (40 + rng.Int64N(1460))
		rec.Start = base + int64(i/100)
		rec.End = rec.Start + 1 + rng.Int64N(600)
		rec.Action = flowlog.ActionAccept
		if rng.IntN(5) == 0 {
			rec.Action = flowlog.ActionReject
		}
		if err := fn(&rec); err != nil {
			return err
		}
	}
	return nil
}

// WriteDigest writes the digest spec describes to w as version 2 digest
// lines and returns the number of bytes written.
func WriteDigest(w io.Writer, spec Spec) (int64, error) {
	return flowlog.WriteDigest(w, func(yield func(*flowlog.Record) error) error {
		return Records(spec, yield)
	})
}
