package flowtable

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// csvHeader names the columns of a CSV view.
var csvHeader = []string{"source", "target", "flows", "packets", "bytes", "accepted", "rejected", "first", "last", "ports", "other_ports"}

// csvText is a text cell as a spreadsheet shows it, not runs it: a node's
// key (an account or interface id, as whoever wrote the flow log chose)
// that starts as a formula does (= + - @, a tab or a carriage return) is
// prefixed with ', as OWASP advises. A "-" alone is no formula.
func csvText(s string) string {
	if len(s) > 1 && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// WriteCSV writes one row per edge of v, after a header row, for
// spreadsheets and pandas; ports are "port:flows" pairs joined by spaces.
func WriteCSV(w io.Writer, v *View) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(csvHeader); err != nil {
		return fmt.Errorf("flowtable: write csv: %w", err)
	}
	row := make([]string, len(csvHeader))
	var ports strings.Builder
	for i := range v.Edges {
		e := &v.Edges[i]
		ports.Reset()
		for j, pf := range e.Ports {
			if j > 0 {
				ports.WriteByte(' ')
			}
			fmt.Fprintf(&ports, "%d:%d", pf.Port, pf.Flows)
		}
		row[0], row[1] = csvText(v.Nodes[e.Source].Key), csvText(v.Nodes[e.Target].Key)
		for j, n := range []int64{e.Flows, e.Packets, e.Bytes, e.Accepted, e.Rejected, e.First, e.Last} {
			row[2+j] = strconv.FormatInt(n, 10)
		}
		row[9] = ports.String()
		row[10] = strconv.FormatInt(e.OtherPorts, 10)
		if err := cw.Write(row); err != nil {
			return fmt.Errorf("flowtable: write csv: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("flowtable: write csv: %w", err)
	}
	return nil
}
