package flowtable

// table64 maps uint64 keys to non-zero uint32 values with open addressing
// and linear probing: 12 bytes a slot, kept at most three quarters full, so
// a million distinct pairs take 16 to 32 bytes each, and a lookup is a
// multiply and, mostly, one cache line. A zero value marks an empty slot, so
// every key (0 included) can be stored. It is the aggregator's hot path: Go
// maps cost several times as much per lookup on this load.
type table64 struct {
	keys  []uint64
	vals  []uint32
	n     int
	shift uint
}

// minTableBits is the smallest table: 4096 slots, 48 KB.
const minTableBits = 12

func newTable64() *table64 {
	t := &table64{}
	t.alloc(minTableBits)
	return t
}

func (t *table64) alloc(bits uint) {
	t.keys = make([]uint64, 1<<bits)
	t.vals = make([]uint32, 1<<bits)
	t.shift = 64 - bits
}

// home is the first slot probed for k (Fibonacci hashing).
func (t *table64) home(k uint64) int { return int((k * 0x9e3779b97f4a7c15) >> t.shift) }

// ref returns the value slot of k, claiming an empty one (holding 0) when k
// is new; the caller must then store a non-zero value. The pointer is valid
// until the next call.
func (t *table64) ref(k uint64) *uint32 {
	if 4*(t.n+1) > 3*len(t.keys) {
		t.grow()
	}
	mask := len(t.keys) - 1
	for j := t.home(k); ; j = (j + 1) & mask {
		if t.vals[j] == 0 {
			t.keys[j] = k
			t.n++
			return &t.vals[j]
		}
		if t.keys[j] == k {
			return &t.vals[j]
		}
	}
}

// get returns the value of k, 0 when absent.
func (t *table64) get(k uint64) uint32 {
	mask := len(t.keys) - 1
	for j := t.home(k); ; j = (j + 1) & mask {
		if v := t.vals[j]; v == 0 || t.keys[j] == k {
			return v
		}
	}
}

func (t *table64) grow() {
	keys, vals := t.keys, t.vals
	t.alloc(64 - t.shift + 1)
	mask := len(t.keys) - 1
	for i, v := range vals {
		if v == 0 {
			continue
		}
		j := t.home(keys[i])
		for t.vals[j] != 0 {
			j = (j + 1) & mask
		}
		t.keys[j], t.vals[j] = keys[i], v
	}
}
