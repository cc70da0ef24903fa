package flowlog

import (
	"bytes"
	"net/netip"
	"unsafe"
)

// Line is a line of the default format as the fast parse read it (see
// parseDefault), handed to a LineRender in place of its record: its
// addresses and action, and where the text of each raw value sits, so
// that a value can be written again by copying its text.
type Line struct {
	// SrcAddr and DstAddr are the line's addresses: IPv4, or IPv6 with no
	// zone.
	SrcAddr, DstAddr netip.Addr
	// Action is ActionAccept, ActionReject or Missing.
	Action string

	text []byte      // the line and what follows it in its chunk
	raws [numRaw]raw // from the start of text
	nums [7]int64    // the values of RawSrcPort to RawEnd
}

// Raw returns the text value f (RawAccountID to RawEnd) was read from:
// for a number, its digits, which may have leading zeros.
func (l *Line) Raw(f int) []byte {
	r := l.raws[f]
	return l.text[r.off : r.off+r.n : r.off+r.n]
}

// RawPadded is Raw with what follows the text, as Batch.RawPadded.
func (l *Line) RawPadded(f, pad int) (text []byte, n int, ok bool) {
	r := l.raws[f]
	end := int(r.off) + (int(r.n)+pad-1)/pad*pad
	if end > cap(l.text) {
		return nil, 0, false
	}
	return l.text[r.off:end:end], int(r.n), true
}

// Text returns the text the line's raw values sit in, from the start of
// the line to the end of what follows it, and Span where value f (RawAccountID
// to RawEnd) sits in it: Raw(f) is Text()[off:off+n]. The values sit in
// the order of their fields, each ending before the next begins.
func (l *Line) Text() []byte { return l.text }

// Span returns where value f sits in Text.
func (l *Line) Span(f int) (off, n int) {
	r := l.raws[f]
	return int(r.off), int(r.n)
}

// Number returns the value of number f (RawSrcPort to RawEnd).
func (l *Line) Number(f int) int64 { return l.nums[f-RawSrcPort] }

// Record fills rec with the line's record, as Reader.Next returns it,
// though with strings of its own rather than shared ones.
func (l *Line) Record(rec *Record) {
	*rec = Record{Version: 2, SrcAddr: l.SrcAddr, DstAddr: l.DstAddr, Action: l.Action, LogStatus: StatusOK}
	fillDefault(rec, l, string(l.Raw(RawAccountID)), string(l.Raw(RawInterfaceID)))
}

// fillDefault fills rec's numbers and ids from l.
func fillDefault(rec *Record, l *Line, account, iface string) {
	rec.SrcPort, rec.DstPort, rec.Protocol = int(l.nums[0]), int(l.nums[1]), int(l.nums[2])
	rec.Packets, rec.Bytes, rec.Start, rec.End = l.nums[3], l.nums[4], l.nums[5], l.nums[6]
	rec.AccountID, rec.InterfaceID = account, iface
}

// parseDefault parses a line of the default format, as a digest's lines
// are, when it has the exact shape vpcflow-digesterd and AWS write (see
// scanDefault). It fills r.out exactly as split and parseFields would,
// and notes in r.raws where the raw values sit in the line (where
// rawNumbers finds them from r.fields on the general path). It returns
// false, having filled nothing that matters, for any other line, which
// parse then reads the general way.
func (r *parser) parseDefault(line []byte) bool {
	l := &r.line
	if !scanDefault(line, l) {
		return false
	}
	l.text = line
	rec := r.out
	rec.Version = 2
	rec.SrcAddr, rec.DstAddr, rec.Action, rec.LogStatus = l.SrcAddr, l.DstAddr, l.Action, StatusOK
	fillDefault(rec, l, r.strOf(fAccountID, l.Raw(RawAccountID)), r.strOf(fInterfaceID, l.Raw(RawInterfaceID)))
	r.raws, r.rawsInLine = l.raws, true
	return true
}

// scanDefault reads a line of the default format into l (all but its
// text) when it has the exact shape vpcflow-digesterd and AWS write: the
// version 2, fields apart by single spaces, ids of at most MaxIDBytes,
// IPv4 or zoneless IPv6 addresses, numbers without signs and a log status
// of OK. It reads the
// line once, where split and parseFields each read it again, and returns
// false for any other line, which the general way may still read.
func scanDefault(line []byte, l *Line) bool {
	end, ok := scanDefaultAt(line, l)
	return ok && end == len(line)
}

// scanDefaultAt is scanDefault for the line at the start of text, which
// ends at its first newline or at the end of text, so that a chunk's lines
// need not be found before they are read: it returns where the line ends
// (its newline, or len(text)). A line scanDefault refuses, it refuses.
func scanDefaultAt(line []byte, l *Line) (int, bool) {
	if len(line) < 2 || line[0] != '2' || line[1] != ' ' {
		return 0, false
	}
	i := 2
	var ok bool
	var raws [numRaw]raw
	var acct, iface []byte
	if acct, i, ok = token(line, i); !ok || len(acct) > MaxIDBytes {
		return 0, false
	}
	raws[RawAccountID] = raw{off: 2, n: uint32(len(acct))}
	start := i
	if iface, i, ok = token(line, i); !ok || len(iface) > MaxIDBytes {
		return 0, false
	}
	raws[RawInterfaceID] = raw{off: uint32(start), n: uint32(len(iface))}
	var src, dst netip.Addr
	if src, i, ok = addrField(line, i); !ok {
		return 0, false
	}
	if dst, i, ok = addrField(line, i); !ok {
		return 0, false
	}
	var nums [7]int64
	for k := range nums {
		start = i
		if nums[k], i, ok = digitsField(line, i); !ok {
			return 0, false
		}
		raws[RawSrcPort+k] = raw{off: uint32(start), n: uint32(i - 1 - start)}
	}
	if nums[0] > 65535 || nums[1] > 65535 || nums[2] > 255 {
		return 0, false
	}
	var tok []byte
	if tok, i, ok = token(line, i); !ok {
		return 0, false
	}
	var action string
	switch string(tok) {
	case ActionAccept:
		action = ActionAccept
	case ActionReject:
		action = ActionReject
	case Missing:
		action = Missing
	default:
		return 0, false
	}
	// The last field ends the line.
	if len(line)-i < 2 || line[i] != 'O' || line[i+1] != 'K' || (len(line)-i > 2 && line[i+2] != '\n') {
		return 0, false
	}
	l.SrcAddr, l.DstAddr, l.Action = src, dst, action
	l.raws, l.nums = raws, nums
	return i + 2, true
}

// token returns the non-empty field at line[i:] ending in a space, and the
// index after that space; false when the field is empty, holds a tab or
// ends the line (at a newline or the end of line).
func token(line []byte, i int) ([]byte, int, bool) {
	for j := i; j < len(line); j++ {
		// One comparison for the bytes of a token, most of them.
		if c := line[j]; c <= ' ' {
			if c == '\t' || c == '\n' || (c == ' ' && j == i) {
				return nil, 0, false
			}
			if c == ' ' {
				return line[i:j:j], j + 1, true
			}
		}
	}
	return nil, 0, false
}

// digitsField parses the field at line[i:], ending in a space, as 1 to 18
// decimal digits, and returns its value and the index after the space.
func digitsField(line []byte, i int) (int64, int, bool) {
	// One digit more than may be taken, so that a nineteenth is refused.
	end := min(len(line), i+19)
	var n int64
	j := i
	for ; j < end; j++ {
		d := uint64(line[j]) - '0'
		if d > 9 {
			break
		}
		n = n*10 + int64(d)
	}
	if j == i || j-i > 18 || j >= len(line) || line[j] != ' ' {
		return 0, 0, false
	}
	return n, j + 1, true
}

// addrField parses the field at line[i:], ending in a space, as
// parser.addr does, and returns the address and the index after the space.
func addrField(line []byte, i int) (netip.Addr, int, bool) {
	if a, j, ok := ipv4Field(line, i); ok {
		return a, j, true
	}
	if a, j, ok := ipv6Field(line, i); ok {
		return a, j, true
	}
	tok, j, ok := token(line, i)
	if !ok || len(tok) > 64 || bytes.IndexByte(tok, ':') < 0 || bytes.IndexByte(tok, '%') >= 0 {
		return netip.Addr{}, 0, false
	}
	// As in parser.addr, ParseAddr keeps no reference to the line.
	a, err := netip.ParseAddr(unsafe.String(unsafe.SliceData(tok), len(tok)))
	if err != nil {
		return netip.Addr{}, 0, false
	}
	return a, j, true
}

// ipv4Field parses the field at line[i:], ending in a space, as parseIPv4
// does (four decimal octets of at most 255, no leading zeros), and returns
// the address and the index after the space.
func ipv4Field(line []byte, i int) (netip.Addr, int, bool) {
	var a [4]byte
	j := i
	for k := range a {
		if j >= len(line) {
			return netip.Addr{}, 0, false
		}
		v := uint(line[j]) - '0'
		if v > 9 {
			return netip.Addr{}, 0, false
		}
		j++
		// "0" alone: a digit after it would be a leading zero, which
		// the separator check refuses.
		if v != 0 {
			for end := min(len(line), j+2); j < end; j++ {
				d := uint(line[j]) - '0'
				if d > 9 {
					break
				}
				v = v*10 + d
			}
			if v > 255 {
				return netip.Addr{}, 0, false
			}
		}
		sep := byte('.')
		if k == 3 {
			sep = ' '
		}
		if j >= len(line) || line[j] != sep {
			return netip.Addr{}, 0, false
		}
		a[k], j = byte(v), j+1
	}
	return netip.AddrFrom4(a), j, true
}

// hexValues are the values of the hex digits, upper and lower case, and
// 0xff for every other byte.
var hexValues = func() (t [256]byte) {
	for c := range t {
		switch {
		case '0' <= c && c <= '9':
			t[c] = byte(c - '0')
		case 'a' <= c && c <= 'f':
			t[c] = byte(c - 'a' + 10)
		case 'A' <= c && c <= 'F':
			t[c] = byte(c - 'A' + 10)
		default:
			t[c] = 0xff
		}
	}
	return t
}()

// ipv6Field parses the field at line[i:], ending in a space, as an IPv6
// address of hex groups alone (up to eight of one to four digits, one ::
// at most), and returns the address and the index after the space. It
// returns false for any other field, an embedded IPv4 address or a zone
// among them, which addrField then leaves to netip.ParseAddr: what it
// takes, ParseAddr takes too and reads as the same address, in one pass
// where ParseAddr's own makes three.
func ipv6Field(line []byte, i int) (netip.Addr, int, bool) {
	var groups [8]uint16
	n, ellipsis := 0, -1
	j := i
	if j+1 < len(line) && line[j] == ':' && line[j+1] == ':' {
		ellipsis, j = 0, j+2
		if j < len(line) && line[j] == ' ' {
			return netip.IPv6Unspecified(), j + 1, true
		}
	}
	for {
		var v uint16
		start := j
		for end := min(len(line), j+4); j < end; j++ {
			d := hexValues[line[j]]
			if d > 0xf {
				break
			}
			v = v<<4 | uint16(d)
		}
		if j == start || n == len(groups) || j >= len(line) {
			return netip.Addr{}, 0, false
		}
		groups[n], n = v, n+1
		c := line[j]
		j++
		if c == ' ' {
			break
		}
		if c != ':' || j >= len(line) {
			return netip.Addr{}, 0, false
		}
		if line[j] == ':' {
			if ellipsis >= 0 {
				return netip.Addr{}, 0, false
			}
			ellipsis, j = n, j+1
			if j < len(line) && line[j] == ' ' {
				j++
				break
			}
		}
	}
	// Without ::, eight groups; with it, seven at most, since it stands
	// for one group of zeros or more.
	if (ellipsis < 0 && n != len(groups)) || (ellipsis >= 0 && n == len(groups)) {
		return netip.Addr{}, 0, false
	}
	var a [16]byte
	put := func(at int, v uint16) { a[2*at], a[2*at+1] = byte(v>>8), byte(v) }
	if ellipsis < 0 {
		ellipsis = n
	}
	for k := range ellipsis {
		put(k, groups[k])
	}
	for k := ellipsis; k < n; k++ {
		put(len(groups)-n+k, groups[k])
	}
	return netip.AddrFrom16(a), j, true
}
