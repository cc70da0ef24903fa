package flowtable

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/flowlog"
)

// ErrNotGraph is returned (wrapped) by DOTReader for a stored DOT it cannot
// read records from.
var ErrNotGraph = errors.New("stored graph is not a flow graph")

// DOTReader reads the flow records back out of a stored, seed-compatible
// DOT graph as a stream, for graphs stored without a table: each edge
// statement's govpc_* attributes give the record, its colour the action, and
// the node statements (label=address) the addresses. Memory grows with the
// number of nodes only.
type DOTReader struct {
	br      *bufio.Reader
	nodes   map[string]netip.Addr
	rec     flowlog.Record
	line    int64
	records int64
	long    []byte
	err     error
	// the last ids, raw and unescaped, reused while records repeat them
	acctRaw, acct, eniRaw, eni string
}

// NewDOTReader reads records from the DOT graph r.
func NewDOTReader(r io.Reader) *DOTReader {
	return &DOTReader{br: bufio.NewReaderSize(r, 256<<10), nodes: make(map[string]netip.Addr)}
}

// Next reads up to the next edge statement; false at the end or on error.
func (d *DOTReader) Next() bool {
	for d.err == nil {
		line, err := d.readLine()
		if len(line) > 0 {
			d.line++
			if ok := d.parse(bytes.TrimSpace(line)); ok {
				d.records++
				return true
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				d.fail(fmt.Errorf("flowtable: read stored graph: %w", err))
			}
			return false
		}
	}
	return false
}

// Record returns the record Next read; it is reused by the next call.
func (d *DOTReader) Record() *flowlog.Record { return &d.rec }

// Err returns the error that stopped Next, nil at a clean end.
func (d *DOTReader) Err() error { return d.err }

func (d *DOTReader) fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

func (d *DOTReader) readLine() ([]byte, error) {
	line, err := d.br.ReadSlice('\n')
	if !errors.Is(err, bufio.ErrBufferFull) {
		return line, err
	}
	d.long = append(d.long[:0], line...)
	for errors.Is(err, bufio.ErrBufferFull) {
		line, err = d.br.ReadSlice('\n')
		d.long = append(d.long, line...)
	}
	return d.long, err
}

// parse handles one statement and reports whether it was an edge.
func (d *DOTReader) parse(line []byte) bool {
	id, rest, ok := cutID(line)
	if !ok {
		return false // digraph {, }, attributes of the graph
	}
	if arrow, ok := bytes.CutPrefix(rest, []byte("-> ")); ok {
		to, attrs, ok := cutID(arrow)
		if !ok {
			d.fail(fmt.Errorf("%w: line %d: edge without a target", ErrNotGraph, d.line))
			return false
		}
		return d.edge(id, to, attrs)
	}
	label := attr(rest, "label")
	if label == nil {
		return false
	}
	a, err := netip.ParseAddr(string(label))
	if err != nil {
		d.fail(fmt.Errorf("%w: line %d: node label %q is not an address", ErrNotGraph, d.line, label))
		return false
	}
	d.nodes[string(id)] = a
	return false
}

func (d *DOTReader) edge(from, to, attrs []byte) bool {
	src, ok1 := d.node(from)
	dst, ok2 := d.node(to)
	if !ok1 || !ok2 {
		d.fail(fmt.Errorf("%w: line %d: edge between undeclared nodes", ErrNotGraph, d.line))
		return false
	}
	rec := &d.rec
	*rec = flowlog.Record{Version: 2, LogStatus: flowlog.StatusOK, SrcAddr: src, DstAddr: dst}
	// Records mostly repeat the previous record's ids: keep the string
	// rather than making a new one per edge.
	if v := attr(attrs, "govpc_accountID"); string(v) != d.acctRaw {
		d.acctRaw, d.acct = string(v), unescape(v)
	}
	if v := attr(attrs, "govpc_eniID"); string(v) != d.eniRaw {
		d.eniRaw, d.eni = string(v), unescape(v)
	}
	rec.AccountID, rec.InterfaceID = d.acct, d.eni
	rec.SrcPort = int(d.int(attrs, "govpc_srcPort"))
	rec.DstPort = int(d.int(attrs, "govpc_dstPort"))
	rec.Protocol = int(d.int(attrs, "govpc_protocol"))
	rec.Packets = d.int(attrs, "govpc_packets")
	rec.Bytes = d.int(attrs, "govpc_bytes")
	rec.Start = d.int(attrs, "govpc_start")
	rec.End = d.int(attrs, "govpc_end")
	switch string(attr(attrs, "color")) {
	case "green":
		rec.Action = flowlog.ActionAccept
	case "red":
		rec.Action = flowlog.ActionReject
	default:
		rec.Action = flowlog.Missing
	}
	return d.err == nil
}

// node returns the address of a node id: its declared label, or the id
// itself when it is an address (quoted or not) that was never declared.
func (d *DOTReader) node(id []byte) (netip.Addr, bool) {
	if a, ok := d.nodes[string(id)]; ok {
		return a, true
	}
	a, err := netip.ParseAddr(string(bytes.Trim(id, `"`)))
	return a, err == nil
}

// int parses the integer attribute name; "-" (a missing protocol) is -1.
func (d *DOTReader) int(attrs []byte, name string) int64 {
	v := attr(attrs, name)
	if string(v) == "-" {
		return -1
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		d.fail(fmt.Errorf("%w: line %d: %s=%q is not a number", ErrNotGraph, d.line, name, v))
	}
	return n
}

// cutID splits a statement into its leading identifier and the rest.
func cutID(line []byte) (id, rest []byte, ok bool) {
	i := bytes.IndexByte(line, ' ')
	if i <= 0 || line[0] == '}' || bytes.HasPrefix(line, []byte("digraph")) {
		return nil, nil, false
	}
	return line[:i], line[i+1:], true
}

// attr returns the raw (still escaped) quoted value of name in an attribute
// list, or nil. Values are skipped over with their escapes, so a name inside
// a value never matches.
func attr(attrs []byte, name string) []byte {
	i := 0
	for i < len(attrs) {
		for i < len(attrs) && (attrs[i] == ' ' || attrs[i] == '[' || attrs[i] == ',') {
			i++
		}
		eq := bytes.IndexByte(attrs[i:], '=')
		if eq < 0 {
			return nil
		}
		key := attrs[i : i+eq]
		i += eq + 1
		if i >= len(attrs) || attrs[i] != '"' {
			return nil
		}
		i++
		start := i
		for i < len(attrs) && attrs[i] != '"' {
			if attrs[i] == '\\' {
				i++
			}
			i++
		}
		if i > len(attrs) {
			return nil
		}
		if string(key) == name {
			return attrs[start:i]
		}
		i++
	}
	return nil
}

// unescape undoes the grapher's escaping of a quoted DOT value: \" and \\;
// its "-" stands for a missing value and is kept as such.
func unescape(v []byte) string {
	if bytes.IndexByte(v, '\\') < 0 {
		return string(v)
	}
	out := make([]byte, 0, len(v))
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) {
			i++
		}
		out = append(out, v[i])
	}
	return string(out)
}
