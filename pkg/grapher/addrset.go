package grapher

import (
	"encoding/binary"
	"net/netip"
)

// addrSet is a set of addresses, IPv4 and IPv6 apart: integer and array
// keys hash and compare far faster than netip.Addr, and keeping the
// families apart keeps 10.0.0.1 and ::ffff:10.0.0.1 apart. IPv4 addresses,
// most of any flow log and looked up twice an edge, are kept in a set of
// their own (see set4).
type addrSet struct {
	v4 *set4
	v6 map[[16]byte]struct{}
}

func newAddrSet() addrSet {
	return addrSet{v4: newSet4(), v6: make(map[[16]byte]struct{})}
}

// add adds a and reports whether it was new.
func (s addrSet) add(a netip.Addr) bool {
	if a.Is4() {
		k := a.As4()
		return s.v4.add(binary.BigEndian.Uint32(k[:]))
	}
	k := a.As16()
	if _, ok := s.v6[k]; ok {
		return false
	}
	s.v6[k] = struct{}{}
	return true
}

// has reports whether a is in the set.
func (s addrSet) has(a netip.Addr) bool {
	if a.Is4() {
		k := a.As4()
		return s.v4.has(binary.BigEndian.Uint32(k[:]))
	}
	_, ok := s.v6[a.As16()]
	return ok
}

func (s addrSet) len() int { return s.v4.n + len(s.v6) }

// set4 is a set of uint32. The values of the first maxDenseNets /16
// networks it meets are kept as bits, a bitmap of 8 KiB a network: the
// addresses of a VPC crowd into a few networks, and for them a lookup is
// two loads from memory that stays in a core's nearest cache. Other values
// are kept by open addressing (see add), a multiply, a shift and a probe
// or two of one flat array, a few times faster than a map's.
type set4 struct {
	// net is, by a value's top 16 bits, 0 for a network not met yet,
	// the index in dense plus one of its bitmap, or hashed.
	net   *[1 << 16]uint8
	dense []*[1 << 10]uint64
	// slots hold the hashed values plus one, so that 0 marks an empty
	// slot; the one value that wraps to 0 is kept apart.
	slots   []uint32
	shift   uint
	n       int  // values in the set
	nHashed int  // values in slots
	hasMax  bool // whether 0xffffffff is among the hashed values
}

// maxDenseNets is how many /16 networks a set4 keeps as bitmaps: 256 KiB
// at most, besides the 64 KiB index.
const maxDenseNets = 32

// hashed marks a network whose values are hashed.
const hashed = 0xff

func newSet4() *set4 {
	return &set4{net: new([1 << 16]uint8), slots: make([]uint32, 1<<10), shift: 32 - 10}
}

// add adds v and reports whether it was new.
func (s *set4) add(v uint32) bool {
	d := s.net[v>>16]
	if d == 0 {
		d = hashed
		if len(s.dense) < maxDenseNets {
			s.dense = append(s.dense, new([1 << 10]uint64))
			d = uint8(len(s.dense))
		}
		s.net[v>>16] = d
	}
	if d != hashed {
		w, bit := &s.dense[d-1][v&0xffff>>6], uint64(1)<<(v&63)
		if *w&bit != 0 {
			return false
		}
		*w |= bit
		s.n++
		return true
	}
	return s.addHashed(v)
}

// has reports whether v is in the set.
func (s *set4) has(v uint32) bool {
	switch d := s.net[v>>16]; d {
	case 0:
		return false
	case hashed:
		return s.hasHashed(v)
	default:
		return s.dense[d-1][v&0xffff>>6]&(uint64(1)<<(v&63)) != 0
	}
}

// hasHashed reports whether v is among the hashed values.
func (s *set4) hasHashed(v uint32) bool {
	if v == 1<<32-1 {
		return s.hasMax
	}
	mask := uint32(len(s.slots) - 1)
	for i := (v * 0x9e3779b1) >> s.shift; ; i = (i + 1) & mask {
		switch s.slots[i] {
		case v + 1:
			return true
		case 0:
			return false
		}
	}
}

// addHashed adds v to the hashed values and reports whether it was new.
func (s *set4) addHashed(v uint32) bool {
	if v == 1<<32-1 {
		was := s.hasMax
		s.hasMax = true
		if !was {
			s.n++
		}
		return !was
	}
	mask := uint32(len(s.slots) - 1)
	for i := (v * 0x9e3779b1) >> s.shift; ; i = (i + 1) & mask {
		switch s.slots[i] {
		case v + 1:
			return false
		case 0:
			s.slots[i] = v + 1
			s.n++
			s.nHashed++
			if 2*s.nHashed > len(s.slots) {
				s.grow()
			}
			return true
		}
	}
}

// grow doubles the slots, keeping the set at most half full.
func (s *set4) grow() {
	old := s.slots
	s.slots = make([]uint32, 2*len(old))
	s.shift--
	mask := uint32(len(s.slots) - 1)
	for _, k := range old {
		if k == 0 {
			continue
		}
		i := ((k - 1) * 0x9e3779b1) >> s.shift
		for s.slots[i] != 0 {
			i = (i + 1) & mask
		}
		s.slots[i] = k
	}
}
