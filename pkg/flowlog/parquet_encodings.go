package flowlog

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The decoders of the Parquet encodings a flow-log column may use. Each
// reads values one at a time from a page's bytes and allocates nothing:
// a count or a length a page claims is only ever compared with the bytes
// left, so a claim costs no memory, and no more values are read from a
// page than its header holds.

// errParquetData is why a page's values could not be read.
var errParquetData = errors.New("parquet page data malformed")

// bitsAt returns the w bits (w ≤ 64) at bit offset bit of b, least
// significant first, as the RLE/bit-packing hybrid and the delta encoding
// pack them; ok is false when b ends first.
func bitsAt(b []byte, bit uint64, w uint) (v uint64, ok bool) {
	if w == 0 {
		return 0, true
	}
	start, shift := bit/8, uint(bit%8)
	if (bit+uint64(w)+7)/8 > uint64(len(b)) {
		return 0, false
	}
	if start+8 <= uint64(len(b)) {
		v = binary.LittleEndian.Uint64(b[start:])
	} else {
		for k := start; k < uint64(len(b)); k++ {
			v |= uint64(b[k]) << (8 * (k - start))
		}
	}
	v >>= shift
	if shift+w > 64 {
		v |= uint64(b[start+8]) << (64 - shift)
	}
	if w < 64 {
		v &= 1<<w - 1
	}
	return v, true
}

// rleDecoder reads the RLE/bit-packing hybrid: the definition levels of
// an optional column (w = 1) and the dictionary indexes of a page
// (w ≤ 32). Runs are read as the values are; a run longer than the values
// asked for costs nothing.
type rleDecoder struct {
	b      []byte
	i      int // the next run's header
	w      uint
	run    uint64 // values left in the current run
	rle    bool   // the run repeats val; else it is bit-packed
	val    uint64
	packed []byte // a bit-packed run's bytes
	bit    uint64 // the next value's bit in packed
}

func (d *rleDecoder) reset(b []byte, w uint) {
	*d = rleDecoder{b: b, w: w}
}

func (d *rleDecoder) next() (uint64, error) {
	for d.run == 0 {
		h, n := binary.Uvarint(d.b[d.i:])
		if n <= 0 {
			return 0, fmt.Errorf("%w: RLE run header at byte %d of %d", errParquetData, d.i, len(d.b))
		}
		d.i += n
		if h&1 == 0 {
			width := int(d.w+7) / 8
			if width > len(d.b)-d.i {
				return 0, fmt.Errorf("%w: RLE run value past the end", errParquetData)
			}
			d.val = 0
			for k := range width {
				d.val |= uint64(d.b[d.i+k]) << (8 * k)
			}
			d.i += width
			d.rle, d.run = true, h>>1
			continue
		}
		// A bit-packed run of h>>1 groups of 8 values, w bytes a group;
		// writers pad the last group, but a reader need not have it whole.
		groups := h >> 1
		if groups > uint64(len(d.b)) {
			groups = uint64(len(d.b))
		}
		end := min(len(d.b), d.i+int(groups)*int(d.w))
		d.packed, d.bit = d.b[d.i:end], 0
		d.i = end
		d.rle, d.run = false, groups*8
	}
	d.run--
	if d.rle {
		return d.val, nil
	}
	v, ok := bitsAt(d.packed, d.bit, d.w)
	if !ok {
		return 0, fmt.Errorf("%w: bit-packed run cut short", errParquetData)
	}
	d.bit += uint64(d.w)
	return v, nil
}

// deltaDecoder reads DELTA_BINARY_PACKED integers: a header (block size,
// miniblocks a block, the count of values, the first value), then blocks
// of a minimum delta, one bit width a miniblock and the miniblocks'
// packed deltas. Arithmetic wraps, as the writer's did, so an INT32
// column's values are the low 32 bits of what it returns.
type deltaDecoder struct {
	b        []byte
	i        int // where the current miniblock's bytes start (or the next block)
	perMini  uint64
	blockMin int // miniblocks a block
	left     uint64
	started  bool
	last     uint64
	minDelta uint64
	widths   []byte // of the current block
	mini     int    // the current miniblock
	pos      uint64 // values of it read
}

// maxDeltaBlock bounds a block's values; writers use 128.
const maxDeltaBlock = 1 << 16

// reset starts reading the values at the start of b, of which there may
// be at most limit.
func (d *deltaDecoder) reset(b []byte, limit uint64) error {
	*d = deltaDecoder{b: b}
	var vals [3]uint64
	for k := range vals {
		v, n := binary.Uvarint(d.b[d.i:])
		if n <= 0 {
			return fmt.Errorf("%w: delta header cut short", errParquetData)
		}
		d.i += n
		vals[k] = v
	}
	block, minis, total := vals[0], vals[1], vals[2]
	if block == 0 || block%128 != 0 || block > maxDeltaBlock || minis == 0 || block%minis != 0 || (block/minis)%32 != 0 {
		return fmt.Errorf("%w: delta blocks of %d values in %d miniblocks", errParquetData, block, minis)
	}
	if total > limit {
		return fmt.Errorf("%w: %d delta values claimed, at most %d", errParquetData, total, limit)
	}
	first, n := binary.Varint(d.b[d.i:])
	if n <= 0 {
		return fmt.Errorf("%w: delta header cut short", errParquetData)
	}
	d.i += n
	d.perMini, d.blockMin, d.left, d.last = block/minis, int(minis), total, uint64(first)
	return nil
}

func (d *deltaDecoder) next() (uint64, error) {
	if d.left == 0 {
		return 0, fmt.Errorf("%w: more values than the delta header holds", errParquetData)
	}
	d.left--
	if !d.started {
		d.started = true
		return d.last, nil
	}
	if d.widths == nil || d.pos == d.perMini {
		if err := d.nextMini(); err != nil {
			return 0, err
		}
	}
	w := uint(d.widths[d.mini])
	v, ok := bitsAt(d.b[d.i:], d.pos*uint64(w), w)
	if !ok {
		return 0, fmt.Errorf("%w: delta miniblock cut short", errParquetData)
	}
	d.pos++
	d.last += d.minDelta + v
	return d.last, nil
}

// nextMini moves to the next miniblock, reading a block's header when
// the block is done.
func (d *deltaDecoder) nextMini() error {
	if d.widths != nil {
		d.i += int(d.perMini * uint64(d.widths[d.mini]) / 8)
		d.mini++
	}
	if d.i > len(d.b) {
		return fmt.Errorf("%w: delta miniblock cut short", errParquetData)
	}
	if d.widths == nil || d.mini == d.blockMin {
		md, n := binary.Varint(d.b[d.i:])
		if n <= 0 || d.blockMin > len(d.b)-d.i-n {
			return fmt.Errorf("%w: delta block header cut short", errParquetData)
		}
		d.i += n
		d.minDelta = uint64(md)
		d.widths = d.b[d.i : d.i+d.blockMin]
		d.i += d.blockMin
		d.mini = 0
	}
	if d.widths[d.mini] > 64 {
		return fmt.Errorf("%w: delta bit width %d", errParquetData, d.widths[d.mini])
	}
	d.pos = 0
	return nil
}

// end reads the values left and returns where they end in b: the start
// of what follows them, as in DELTA_LENGTH_BYTE_ARRAY.
func (d deltaDecoder) end() (int, error) {
	for d.left > 0 {
		if _, err := d.next(); err != nil {
			return 0, err
		}
	}
	end := d.i
	if d.widths != nil {
		end += int(d.perMini * uint64(d.widths[d.mini]) / 8)
	}
	if end > len(d.b) {
		return 0, fmt.Errorf("%w: delta values cut short", errParquetData)
	}
	return end, nil
}
