package flowtable

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// WriteDOT writes v as a DOT digraph meant for people: nodes labelled with
// their key and traffic, edges coloured by action (green all accepted, red
// all rejected, orange mixed), thicker for more bytes, and labelled with
// flows, bytes and the busiest ports. Graphviz lays it out for the SVG view.
func WriteDOT(w io.Writer, v *View, m Meta) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	fmt.Fprintf(bw, "digraph %s {\n", quoteDOT("view "+m.ID))
	bw.WriteString("\tgraph [fontname=\"Helvetica\" fontsize=10 overlap=false outputorder=edgesfirst]\n")
	bw.WriteString("\tnode [shape=box style=\"rounded,filled\" fillcolor=\"#f4f6f8\" color=\"#8a99a8\" fontname=\"Helvetica\" fontsize=10]\n")
	bw.WriteString("\tedge [fontname=\"Helvetica\" fontsize=8 arrowsize=0.6]\n")
	for i := range v.Nodes {
		n := &v.Nodes[i]
		label := fmt.Sprintf("%s\nout %s / %s\nin %s / %s", n.Key,
			humanBytes(n.BytesOut), flows(n.FlowsOut), humanBytes(n.BytesIn), flows(n.FlowsIn))
		if n.Addresses > 1 {
			label = fmt.Sprintf("%s\n%d addresses", label, n.Addresses)
		}
		fmt.Fprintf(bw, "\tn%d [label=%s]\n", i, quoteDOT(label))
	}
	for i := range v.Edges {
		e := &v.Edges[i]
		fmt.Fprintf(bw, "\tn%d -> n%d [color=%q penwidth=%s label=%s]\n", e.Source, e.Target,
			edgeColor(e), strconv.FormatFloat(penWidth(e.Bytes), 'f', 1, 64), quoteDOT(edgeLabel(e)))
	}
	bw.WriteString("}\n")
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("flowtable: write dot: %w", err)
	}
	return nil
}

func edgeColor(e *Edge) string {
	switch {
	case e.Accepted == e.Flows:
		return "#2e9e44"
	case e.Rejected == e.Flows:
		return "#d62728"
	default:
		return "#ff8c00"
	}
}

// penWidth grows with the log of bytes: 1 for a kilobyte, 6 for a terabyte.
func penWidth(bytes int64) float64 {
	if bytes <= 1000 {
		return 1
	}
	return min(1+math.Log10(float64(bytes)/1000), 8)
}

func edgeLabel(e *Edge) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s, %s", flows(e.Flows), humanBytes(e.Bytes))
	for i, pf := range e.Ports {
		if i == 3 {
			break
		}
		sep := ", "
		if i == 0 {
			sep = "\nport "
		}
		fmt.Fprintf(&b, "%s%d", sep, pf.Port)
	}
	if len(e.Ports) > 3 || e.OtherPorts > 0 {
		b.WriteString(", …")
	}
	return b.String()
}

func flows(n int64) string {
	if n == 1 {
		return "1 flow"
	}
	return strconv.FormatInt(n, 10) + " flows"
}

// humanBytes writes n in decimal units: 950 B, 1.2 kB, 3.4 MB.
func humanBytes(n int64) string {
	const units = "kMGTPE"
	if n < 1000 && n > -1000 {
		return strconv.FormatInt(n, 10) + " B"
	}
	f := float64(n)
	i := -1
	for math.Abs(f) >= 1000 && i < len(units)-1 {
		f /= 1000
		i++
	}
	return strconv.FormatFloat(f, 'f', 1, 64) + " " + units[i:i+1] + "B"
}

// quoteDOT quotes s as a DOT string: quotes and backslashes escaped, a
// newline as DOT's centred line break, other control characters dropped.
func quoteDOT(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r < 0x20 || r == 0x7f || r == 0xfffd:
			b.WriteByte('?')
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
