package grapher

import (
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
	"net/netip"
)

// addrSet is a set of addresses, IPv4 and IPv6 apart: integer and array
// keys hash and compare far faster than netip.Addr, and keeping the
// families apart keeps 10.0.0.1 and ::ffff:10.0.0.1 apart. IPv4 addresses,
// most of any flow log and looked up twice an edge, are kept in a set of
// their own (see set4), and IPv6 ones in another (see set6).
type addrSet struct {
	v4 *set4
	v6 *set6
}

func newAddrSet() addrSet {
	return addrSet{v4: newSet4(), v6: newSet6()}
}

// add adds a and reports whether it was new.
func (s addrSet) add(a netip.Addr) bool {
	if a.Is4() {
		k := a.As4()
		return s.v4.add(binary.BigEndian.Uint32(k[:]))
	}
	return s.v6.add(a.As16())
}

// has reports whether a is in the set.
func (s addrSet) has(a netip.Addr) bool {
	if a.Is4() {
		k := a.As4()
		return s.v4.has(binary.BigEndian.Uint32(k[:]))
	}
	return s.v6.has(a.As16())
}

func (s addrSet) len() int { return s.v4.n + s.v6.n }

// set4 is a set of uint32. The values of the first maxDenseNets /16
// networks it meets are kept as bits, a bitmap of 8 KiB a network: the
// addresses of a VPC crowd into a few networks, and for them a lookup is
// two loads from memory that stays in a core's nearest cache. Other values
// are kept by open addressing (see add), two multiplies and a probe
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
	seed    [2]uint64 // of the hash, see mix
	n       int       // values in the set
	nHashed int       // values in slots
	hasMax  bool      // whether 0xffffffff is among the hashed values
}

// maxDenseNets is how many /16 networks a set4 keeps as bitmaps: 256 KiB
// at most, besides the 64 KiB index.
const maxDenseNets = 32

// hashed marks a network whose values are hashed.
const hashed = 0xff

func newSet4() *set4 {
	return &set4{net: new([1 << 16]uint8), slots: make([]uint32, 1<<10), shift: 32 - 10, seed: newSeed()}
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

// slot is where v's probe starts.
func (s *set4) slot(v uint32) uint32 {
	return uint32(remix(mix(uint64(v)^s.seed[0], s.seed[1]))>>32) >> s.shift
}

// remix hashes h, a seeded mix, again with a fixed odd multiplier
// (wyhash's): one seeded multiply alone is a multiplicative hash of its
// one varying word, and for one seed in a few dozen its multiplier maps a
// run of addresses such as host ::1 of consecutive networks into a few
// runs of slots (TestSetsResistChosenCollisions: 2.5% of seeds gave 2 or
// more extra probes a key, the worst 582). The second multiply spreads
// the distinct values the first makes, which the sender cannot foresee.
func remix(h uint64) uint64 {
	return mix(h, 0xa0761d6478bd642f)
}

// mix hashes a and b into one word: the two halves of their product,
// folded together (wyhash's mix). Each set draws its own seeds for the
// words it mixes, so that the addresses of a flow log, which whoever sends
// the traffic chooses, cannot be picked to share a probe sequence, as they
// could for a fixed multiplier (a map's hash is seeded for the same reason).
func mix(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

// newSeed returns the seeds of a new set's hash; the second is odd, so
// that it is never zero.
func newSeed() [2]uint64 {
	return [2]uint64{rand.Uint64(), rand.Uint64() | 1}
}

// hasHashed reports whether v is among the hashed values.
func (s *set4) hasHashed(v uint32) bool {
	if v == 1<<32-1 {
		return s.hasMax
	}
	mask := uint32(len(s.slots) - 1)
	for i := s.slot(v); ; i = (i + 1) & mask {
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
	for i := s.slot(v); ; i = (i + 1) & mask {
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
		i := s.slot(k - 1)
		for s.slots[i] != 0 {
			i = (i + 1) & mask
		}
		s.slots[i] = k
	}
}

// set6 is a set of IPv6 addresses by open addressing, as set4 hashes its
// values: each address two words, hashed by a seeded multiply and another
// (see mix and remix), in one flat array kept at most half full. A map
// keyed by the 16 bytes hashes and compares them through calls, about
// twice as slow.
type set6 struct {
	// slots hold the addresses, zero for an empty slot; the one address
	// that is zero, ::, is kept apart.
	slots   []key6
	shift   uint
	seed    [2]uint64 // of the hash, see mix
	n       int       // addresses in the set
	hasZero bool      // whether :: is in the set
}

// key6 is an IPv6 address as its two big-endian halves.
type key6 struct{ hi, lo uint64 }

func newSet6() *set6 {
	return &set6{slots: make([]key6, 1<<8), shift: 64 - 8, seed: newSeed()}
}

func toKey6(a [16]byte) key6 {
	return key6{binary.BigEndian.Uint64(a[:8]), binary.BigEndian.Uint64(a[8:])}
}

// slot is where k's probe starts.
func (s *set6) slot(k key6) uint64 {
	return remix(mix(k.hi^s.seed[0], k.lo^s.seed[1])) >> s.shift
}

// has reports whether a is in the set.
func (s *set6) has(a [16]byte) bool {
	k := toKey6(a)
	if k == (key6{}) {
		return s.hasZero
	}
	mask := uint64(len(s.slots) - 1)
	for i := s.slot(k); ; i = (i + 1) & mask {
		switch s.slots[i] {
		case k:
			return true
		case key6{}:
			return false
		}
	}
}

// add adds a and reports whether it was new.
func (s *set6) add(a [16]byte) bool {
	k := toKey6(a)
	if k == (key6{}) {
		was := s.hasZero
		if !was {
			s.hasZero = true
			s.n++
		}
		return !was
	}
	mask := uint64(len(s.slots) - 1)
	for i := s.slot(k); ; i = (i + 1) & mask {
		switch s.slots[i] {
		case k:
			return false
		case key6{}:
			s.slots[i] = k
			s.n++
			if 2*s.n > len(s.slots) {
				s.grow()
			}
			return true
		}
	}
}

// grow doubles the slots, keeping the set at most half full.
func (s *set6) grow() {
	old := s.slots
	s.slots = make([]key6, 2*len(old))
	s.shift--
	mask := uint64(len(s.slots) - 1)
	for _, k := range old {
		if k == (key6{}) {
			continue
		}
		i := s.slot(k)
		for s.slots[i] != (key6{}) {
			i = (i + 1) & mask
		}
		s.slots[i] = k
	}
}
