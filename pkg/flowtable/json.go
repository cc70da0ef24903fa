package flowtable

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"time"
	"unicode/utf8"
)

// Meta names the graph a view is of, for the formats that show it.
type Meta struct {
	ID          string
	Start, Stop time.Time
}

// WriteJSON writes v as a graphology serialized graph (docs/views.md), which
// a web page imports with graph.import() as is. It streams: memory does not
// grow with the output.
func WriteJSON(w io.Writer, v *View, m Meta) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	b := make([]byte, 0, 1024)
	b = append(b, `{"attributes":{"id":`...)
	b = appendJSONString(b, m.ID)
	b = append(b, `,"start":`...)
	b = appendJSONString(b, m.Start.UTC().Format(time.RFC3339))
	b = append(b, `,"stop":`...)
	b = appendJSONString(b, m.Stop.UTC().Format(time.RFC3339))
	b = append(b, `,"params":{`...)
	for i, kv := range v.Params.Canonical() {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, kv[0])
		b = append(b, ':')
		b = appendJSONString(b, kv[1])
	}
	b = append(b, `},"records_read":`...)
	b = strconv.AppendInt(b, v.RecordsRead, 10)
	b = append(b, `,"records_used":`...)
	b = strconv.AppendInt(b, v.RecordsUsed, 10)
	b = append(b, `,"nodes":`...)
	b = strconv.AppendInt(b, int64(len(v.Nodes)), 10)
	b = append(b, `,"edges":`...)
	b = strconv.AppendInt(b, int64(len(v.Edges)), 10)
	b = append(b, "},\n"+`"options":{"type":"directed","multi":false,"allowSelfLoops":true},`+"\n"+`"nodes":[`...)
	for i := range v.Nodes {
		n := &v.Nodes[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, "\n"+`{"key":`...)
		b = appendJSONString(b, n.Key)
		b = append(b, `,"attributes":{"label":`...)
		b = appendJSONString(b, n.Key)
		b = appendInts(b, []string{`,"addresses":`, `,"bytes_in":`, `,"bytes_out":`, `,"flows_in":`, `,"flows_out":`, `,"rejected_in":`, `,"rejected_out":`},
			n.Addresses, n.BytesIn, n.BytesOut, n.FlowsIn, n.FlowsOut, n.RejectedIn, n.RejectedOut)
		b = append(b, `,"x":`...)
		b = strconv.AppendFloat(b, n.X, 'f', -1, 64)
		b = append(b, `,"y":`...)
		b = strconv.AppendFloat(b, n.Y, 'f', -1, 64)
		b = append(b, "}}"...)
		if b = flushIfFull(bw, b); b == nil {
			return fmt.Errorf("flowtable: write json: %w", bw.Flush())
		}
	}
	b = append(b, "],\n"+`"edges":[`...)
	for i := range v.Edges {
		e := &v.Edges[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, "\n"+`{"key":"e`...)
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, `","source":`...)
		b = appendJSONString(b, v.Nodes[e.Source].Key)
		b = append(b, `,"target":`...)
		b = appendJSONString(b, v.Nodes[e.Target].Key)
		b = append(b, `,"attributes":{`...)
		b = appendInts(b, []string{`"flows":`, `,"packets":`, `,"bytes":`, `,"accepted":`, `,"rejected":`, `,"first":`, `,"last":`},
			e.Flows, e.Packets, e.Bytes, e.Accepted, e.Rejected, e.First, e.Last)
		b = append(b, `,"ports":[`...)
		for j, pf := range e.Ports {
			if j > 0 {
				b = append(b, ',')
			}
			b = append(b, '[')
			b = strconv.AppendInt(b, int64(pf.Port), 10)
			b = append(b, ',')
			b = strconv.AppendInt(b, pf.Flows, 10)
			b = append(b, ']')
		}
		b = append(b, `],"other_ports":`...)
		b = strconv.AppendInt(b, e.OtherPorts, 10)
		b = append(b, "}}"...)
		if b = flushIfFull(bw, b); b == nil {
			return fmt.Errorf("flowtable: write json: %w", bw.Flush())
		}
	}
	b = append(b, "\n]}\n"...)
	if _, err := bw.Write(b); err != nil {
		return fmt.Errorf("flowtable: write json: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("flowtable: write json: %w", err)
	}
	return nil
}

// flushIfFull hands b to bw once it holds a few kilobytes and returns it
// emptied, or nil when bw failed.
func flushIfFull(bw *bufio.Writer, b []byte) []byte {
	if len(b) < 8<<10 {
		return b
	}
	if _, err := bw.Write(b); err != nil {
		return nil
	}
	return b[:0]
}

func appendInts(b []byte, names []string, values ...int64) []byte {
	for i, name := range names {
		b = append(b, name...)
		b = strconv.AppendInt(b, values[i], 10)
	}
	return b
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string; invalid UTF-8 becomes U+FFFD
// so the output is always valid JSON.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20 || c == 0x7f:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
