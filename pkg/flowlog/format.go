package flowlog

import "strings"

// The fields a Record is made of, as indexes into format.idx.
const (
	fVersion = iota
	fAccountID
	fInterfaceID
	fSrcAddr
	fDstAddr
	fSrcPort
	fDstPort
	fProtocol
	fPackets
	fBytes
	fStart
	fEnd
	fAction
	fLogStatus
	numRecordFields
)

// DefaultFields are the fields of the default (version 2) format, in order;
// a digest is written in this format.
func DefaultFields() []string {
	return []string{
		"version", "account-id", "interface-id", "srcaddr", "dstaddr",
		"srcport", "dstport", "protocol", "packets", "bytes",
		"start", "end", "action", "log-status",
	}
}

// recordFieldNames maps the name of each field a Record holds to its index.
var recordFieldNames = map[string]int{
	"version":      fVersion,
	"account-id":   fAccountID,
	"interface-id": fInterfaceID,
	"srcaddr":      fSrcAddr,
	"dstaddr":      fDstAddr,
	"srcport":      fSrcPort,
	"dstport":      fDstPort,
	"protocol":     fProtocol,
	"packets":      fPackets,
	"bytes":        fBytes,
	"start":        fStart,
	"end":          fEnd,
	"action":       fAction,
	"log-status":   fLogStatus,
}

// otherFieldNames are the fields of versions 3 to 8 that a Record does not
// hold; a header line is recognised by naming known fields, and these are
// read past.
var otherFieldNames = map[string]bool{
	"vpc-id": true, "subnet-id": true, "instance-id": true, "tcp-flags": true,
	"type": true, "pkt-srcaddr": true, "pkt-dstaddr": true, "region": true,
	"az-id": true, "sublocation-type": true, "sublocation-id": true,
	"pkt-src-aws-service": true, "pkt-dst-aws-service": true,
	"flow-direction": true, "traffic-path": true, "reject-reason": true,
	"resource-id": true, "encryption-status": true,
}

// format says where each Record field sits in a line.
type format struct {
	// n is the number of fields a line of this format has.
	n int
	// idx holds the position of each Record field, -1 when the format lacks it.
	idx [numRecordFields]int
	// isDefault says the fields are DefaultFields, in order.
	isDefault bool
}

// newFormat builds the format of a line holding fields, ignoring fields it
// does not know. Names are matched case-insensitively, with '_' read as '-'
// and an AWS "${name}" placeholder read as name.
func newFormat(fields []string) format {
	f := format{n: len(fields)}
	for i := range f.idx {
		f.idx[i] = -1
	}
	for i, name := range fields {
		if k, ok := recordFieldNames[normaliseFieldName(name)]; ok && f.idx[k] < 0 {
			f.idx[k] = i
		}
	}
	f.isDefault = f.n == numRecordFields
	for k, i := range f.idx {
		f.isDefault = f.isDefault && k == i
	}
	return f
}

// normaliseFieldName turns "${Account_ID}" into "account-id".
func normaliseFieldName(name string) string {
	name = strings.TrimSuffix(strings.TrimPrefix(name, "${"), "}")
	return strings.ReplaceAll(strings.ToLower(name), "_", "-")
}

// knownFieldName reports whether name is a field AWS defines.
func knownFieldName(name string) bool {
	name = normaliseFieldName(name)
	_, ok := recordFieldNames[name]
	return ok || otherFieldNames[name] || strings.HasPrefix(name, "ecs-")
}

// parseHeader returns the format a header line names, and false when line is
// not a header. A header is a line whose every token is shaped like a field
// name (a letter, then letters, digits, '-' or '_', optionally inside "${}")
// and that names at least two fields AWS defines. No flow record has that
// shape: every record holds at least one number or address.
func parseHeader(line []byte) (format, bool) {
	known := 0
	tokens := 0
	for i := 0; i < len(line); {
		for i < len(line) && isSpace(line[i]) {
			i++
		}
		j := i
		for j < len(line) && !isSpace(line[j]) {
			j++
		}
		if j == i {
			break
		}
		tok := line[i:j]
		if !isFieldNameShaped(tok) {
			return format{}, false
		}
		tokens++
		if knownFieldName(string(tok)) {
			known++
		}
		i = j
	}
	if known < 2 {
		return format{}, false
	}
	names := make([]string, 0, tokens)
	for _, tok := range strings.Fields(string(line)) {
		names = append(names, tok)
	}
	return newFormat(names), true
}

// isFieldNameShaped reports whether tok looks like a field name.
func isFieldNameShaped(tok []byte) bool {
	if len(tok) > 3 && tok[0] == '$' && tok[1] == '{' && tok[len(tok)-1] == '}' {
		tok = tok[2 : len(tok)-1]
	}
	if len(tok) == 0 || !isLetter(tok[0]) {
		return false
	}
	for _, c := range tok[1:] {
		if !isLetter(c) && !isDigit(c) && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

func isLetter(c byte) bool { return (c|0x20) >= 'a' && (c|0x20) <= 'z' }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
func isSpace(c byte) bool  { return c == ' ' || c == '\t' }
