package flowlog

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// maxThriftDepth bounds how deeply the structs of a footer or a page
// header may nest: a few levels in the format.
const maxThriftDepth = 32

// maxThriftMemory bounds what decoding a footer may take: what its lists
// and strings become in memory. A list element of a byte or two can be a
// struct of hundreds of bytes (a ColumnChunk is 560), so a footer's bytes
// alone do not bound it. A flow-log file's footer takes well under a
// megabyte; one of thousands of row groups, tens.
const maxThriftMemory = 128 << 20

// thriftStructBytes is what a struct in a list is counted as: the largest
// of the format's (a ColumnChunk with its metadata), and some.
const thriftStructBytes = 640

// errThriftLength is why a footer or a page header was refused before
// it was decoded.
var errThriftLength = errors.New("thrift length out of bounds")

// checkThriftLengths walks the Thrift compact-protocol struct at the start
// of b, as a footer or a page header is written, and fails when a string,
// a binary value, a list, a set or a map claims more than the bytes left
// after it. The decoder allocates what each claims before reading it, up
// to 2 GiB, so a claim is checked here first; every element takes a byte
// at least, so no claim within the bytes can allocate more than they hold
// over again; and what the lists and strings become in memory is counted,
// and bounded by maxThriftMemory. It returns the struct's length.
func checkThriftLengths(b []byte) (int, error) {
	w := thriftWalker{b: b}
	if err := w.skipStruct(0); err != nil {
		return 0, err
	}
	return w.i, nil
}

type thriftWalker struct {
	b   []byte
	i   int
	mem int64 // what the lists and strings walked take decoded
}

// charge counts n bytes of decoded memory.
func (w *thriftWalker) charge(n int64) error {
	w.mem += n
	if w.mem > maxThriftMemory {
		return fmt.Errorf("%w: lists and strings that would take more than %d bytes decoded, at byte %d", errThriftLength, maxThriftMemory, w.i)
	}
	return nil
}

func (w *thriftWalker) byte() (byte, error) {
	if w.i >= len(w.b) {
		return 0, fmt.Errorf("%w: cut short", errThriftLength)
	}
	c := w.b[w.i]
	w.i++
	return c, nil
}

func (w *thriftWalker) uvarint() (uint64, error) {
	v, n := binary.Uvarint(w.b[w.i:])
	if n <= 0 {
		return 0, fmt.Errorf("%w: bad varint at byte %d", errThriftLength, w.i)
	}
	w.i += n
	return v, nil
}

// length reads a length or a count and checks it against the bytes left,
// each element taking one at least.
func (w *thriftWalker) length() (int, error) {
	n, err := w.uvarint()
	if err != nil {
		return 0, err
	}
	if n > uint64(len(w.b)-w.i) {
		return 0, fmt.Errorf("%w: %d claimed at byte %d, %d left", errThriftLength, n, w.i, len(w.b)-w.i)
	}
	return int(n), nil
}

func (w *thriftWalker) skipStruct(depth int) error {
	if depth > maxThriftDepth {
		return fmt.Errorf("%w: structs nested deeper than %d", errThriftLength, maxThriftDepth)
	}
	for {
		h, err := w.byte()
		if err != nil {
			return err
		}
		t := h & 0x0f
		if t == 0 {
			return nil
		}
		if h>>4 == 0 {
			// The field's id follows, in full.
			if _, err := w.uvarint(); err != nil {
				return err
			}
		}
		if t == 1 || t == 2 {
			continue // a boolean field holds its value in its type
		}
		if err := w.skip(t, depth); err != nil {
			return err
		}
	}
}

// skip passes over a value of compact type t.
func (w *thriftWalker) skip(t byte, depth int) error {
	switch t {
	case 1, 2, 3: // a boolean in a list, or a byte
		_, err := w.byte()
		return err
	case 4, 5, 6: // i16, i32, i64
		_, err := w.uvarint()
		return err
	case 7: // double
		return w.advance(8)
	case 8: // binary
		n, err := w.length()
		if err != nil {
			return err
		}
		if err := w.charge(int64(n)); err != nil {
			return err
		}
		return w.advance(n)
	case 9, 10: // list, set
		h, err := w.byte()
		if err != nil {
			return err
		}
		n := int(h >> 4)
		if n == 15 {
			if n, err = w.length(); err != nil {
				return err
			}
		} else if n > len(w.b)-w.i {
			return fmt.Errorf("%w: %d elements claimed at byte %d", errThriftLength, n, w.i)
		}
		each := int64(24) // a string's or a slice's header, or a number
		if h&0x0f == 12 {
			each = thriftStructBytes
		}
		if err := w.charge(int64(n) * each); err != nil {
			return err
		}
		for range n {
			if err := w.skip(h&0x0f, depth+1); err != nil {
				return err
			}
		}
		return nil
	case 11: // map
		n, err := w.length()
		if err != nil || n == 0 {
			return err
		}
		kv, err := w.byte()
		if err != nil {
			return err
		}
		if err := w.charge(int64(n) * 2 * thriftStructBytes); err != nil {
			return err
		}
		for range n {
			if err := w.skip(kv>>4, depth+1); err != nil {
				return err
			}
			if err := w.skip(kv&0x0f, depth+1); err != nil {
				return err
			}
		}
		return nil
	case 12: // struct
		return w.skipStruct(depth + 1)
	case 13: // uuid
		return w.advance(16)
	}
	return fmt.Errorf("%w: unknown type %d at byte %d", errThriftLength, t, w.i)
}

func (w *thriftWalker) advance(n int) error {
	if n > len(w.b)-w.i {
		return fmt.Errorf("%w: cut short", errThriftLength)
	}
	w.i += n
	return nil
}
