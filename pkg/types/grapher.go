package types

import (
	"context"
	"io"
)

// GraphStats counts what a conversion did with its input.
type GraphStats struct {
	// Lines is the number of lines read.
	Lines int64
	// Used is the number of flow records drawn as edges.
	Used int64
	// Skipped is the number of malformed lines left out.
	Skipped int64
	// Nodes is the number of distinct addresses drawn.
	Nodes int64
	// FirstSkipped holds the line numbers of the first few skipped lines.
	FirstSkipped []int64
}

// Grapher converts a digest into a graph.
type Grapher interface {
	// Graph reads the digest to its end and writes the graph to w as it goes.
	// It returns ErrMalformedDigest (wrapped) when the digest breaks a limit or
	// holds malformed lines and no usable record.
	Graph(ctx context.Context, w io.Writer, digest io.Reader) (GraphStats, error)
}
