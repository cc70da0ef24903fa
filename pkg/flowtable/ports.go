package flowtable

import (
	"cmp"
	"slices"
)

// sketchPorts is how many destination ports an edge counts exactly; past
// that, the busiest are kept by the Space-Saving algorithm.
const sketchPorts = 32

// portSketch counts the destination ports of one edge in a fixed 196 bytes,
// whatever the number of records: exactly while the edge has at most
// sketchPorts distinct ports, and beyond that by Space-Saving (Metwally et
// al.), which replaces the least counted port, so that every port with more
// than flows/sketchPorts flows is kept and no count is over by more than
// that. The counts always sum to the edge's flows.
type portSketch struct {
	ports  [sketchPorts]uint16
	counts [sketchPorts]uint32
	n      uint8
}

// add counts one flow to port.
func (s *portSketch) add(port uint16, flows uint32) {
	for i := range s.ports[:s.n] {
		if s.ports[i] == port {
			s.counts[i] += flows
			return
		}
	}
	if int(s.n) < sketchPorts {
		s.ports[s.n], s.counts[s.n] = port, flows
		s.n++
		return
	}
	least := 0
	for i := 1; i < sketchPorts; i++ {
		if s.counts[i] < s.counts[least] {
			least = i
		}
	}
	s.ports[least] = port
	s.counts[least] += flows
}

// top returns the MaxPorts busiest ports, busiest first (ties by port), and
// the flows to the others.
func (s *portSketch) top(flows int64) ([]PortFlows, int64) {
	l := make([]PortFlows, s.n)
	for i := range l {
		l[i] = PortFlows{Port: int(s.ports[i]), Flows: int64(s.counts[i])}
	}
	slices.SortFunc(l, func(x, y PortFlows) int {
		if x.Flows != y.Flows {
			return cmp.Compare(y.Flows, x.Flows)
		}
		return x.Port - y.Port
	})
	if len(l) > MaxPorts {
		l = slices.Clip(l[:MaxPorts])
	}
	other := flows
	for _, pf := range l {
		other -= pf.Flows
	}
	return l, other
}
