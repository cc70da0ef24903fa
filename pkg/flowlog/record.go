package flowlog

import (
	"net/netip"
	"strconv"
)

// Record is one flow record. Strings are "-" when the format lacks the field
// or AWS wrote "-".
type Record struct {
	// Version is the flow log version from the version field: 2 to 8 for
	// formats AWS defines today (higher values are accepted so that a future
	// version does not make every line malformed), and 2 when the format has
	// no version field or AWS wrote "-".
	Version int
	// AccountID is the AWS account id that owns the interface.
	AccountID string
	// InterfaceID is the id of the network interface (ENI).
	InterfaceID string
	// SrcAddr is the source address; always valid for a record returned by
	// Reader.Next.
	SrcAddr netip.Addr
	// DstAddr is the destination address; always valid for a record returned
	// by Reader.Next.
	DstAddr netip.Addr
	// SrcPort is the source port, 0 when "-".
	SrcPort int
	// DstPort is the destination port, 0 when "-".
	DstPort int
	// Protocol is the IANA protocol number, -1 when "-".
	Protocol int
	// Packets is the number of packets, 0 when "-".
	Packets int64
	// Bytes is the number of bytes, 0 when "-".
	Bytes int64
	// Start is the start of the capture window in unix seconds, 0 when "-".
	Start int64
	// End is the end of the capture window in unix seconds, 0 when "-".
	End int64
	// Action is "ACCEPT", "REJECT" or "-".
	Action string
	// LogStatus is "OK" for records returned by Reader.Next.
	LogStatus string
}

// Values of Record.Action and Record.LogStatus, kept as constants so records
// share them instead of allocating a string per line.
const (
	// ActionAccept is the action of accepted traffic.
	ActionAccept = "ACCEPT"
	// ActionReject is the action of rejected traffic.
	ActionReject = "REJECT"
	// Missing is the value AWS writes for a field with no value, and the value
	// a Record holds for a string field its format lacks.
	Missing = "-"
	// StatusOK is the log status of a record that carries a flow.
	StatusOK = "OK"
)

// AppendDigestLine appends rec as a version-2 digest line (14 space-separated
// fields: version account-id interface-id srcaddr dstaddr srcport dstport
// protocol packets bytes start end action log-status) followed by '\n'.
// Version is always written as 2, because a digest is a version 2 file
// whatever the versions of the files it was made from.
//
// The line always has 14 fields, so it reads back as the same record: empty
// strings and invalid addresses are written as "-", a protocol below 0 as
// "-", an empty log status as "OK", and whitespace inside a string (which no
// record read by a Reader contains) as '_'.
func AppendDigestLine(dst []byte, rec *Record) []byte {
	dst = append(dst, '2', ' ')
	dst = appendToken(dst, rec.AccountID, Missing)
	dst = append(dst, ' ')
	dst = appendToken(dst, rec.InterfaceID, Missing)
	dst = append(dst, ' ')
	dst = appendAddr(dst, rec.SrcAddr)
	dst = append(dst, ' ')
	dst = appendAddr(dst, rec.DstAddr)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, int64(rec.SrcPort), 10)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, int64(rec.DstPort), 10)
	dst = append(dst, ' ')
	if rec.Protocol < 0 {
		dst = append(dst, '-')
	} else {
		dst = strconv.AppendInt(dst, int64(rec.Protocol), 10)
	}
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, rec.Packets, 10)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, rec.Bytes, 10)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, rec.Start, 10)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, rec.End, 10)
	dst = append(dst, ' ')
	dst = appendToken(dst, rec.Action, Missing)
	dst = append(dst, ' ')
	dst = appendToken(dst, rec.LogStatus, StatusOK)
	return append(dst, '\n')
}

// appendToken appends s as one space-free token, or def when s is empty.
func appendToken(dst []byte, s, def string) []byte {
	if s == "" {
		return append(dst, def...)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == ' ' || c == '\t' || c == '\n' || c == '\r' {
			c = '_'
		}
		dst = append(dst, c)
	}
	return dst
}

// appendAddr appends a zone-free address, or "-" for an invalid one.
func appendAddr(dst []byte, a netip.Addr) []byte {
	if !a.IsValid() {
		return append(dst, '-')
	}
	return a.WithZone("").AppendTo(dst)
}
