// Package grapher turns flow-log digests into graphs. DOT streams a digest
// into a Graphviz DOT digraph, one node per distinct address and one edge per
// flow record, reading its input once and writing as it goes, so memory grows
// with the number of distinct addresses and never with the number of lines.
package grapher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/flowlog"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
)

// ctxCheckLines is how many lines pass between two checks of the context:
// often enough to stop within milliseconds, rarely enough to cost nothing.
const ctxCheckLines = 4096

// DOT converts a digest, or any flow-log input flowlog.Reader accepts, into
// a DOT digraph. The zero value is ready to use.
type DOT struct {
	// Logger receives one summary line per conversion (at Info when lines
	// were skipped, Debug otherwise); nil discards it.
	Logger *slog.Logger
	// MaxLineBytes is the longest line accepted; longer lines are skipped as
	// malformed. Zero means flowlog.DefaultMaxLineBytes.
	MaxLineBytes int
}

var _ types.Grapher = (*DOT)(nil)

// Graph reads the digest to its end and writes the graph to w as it goes.
// It returns types.ErrMalformedDigest (wrapped) when the digest holds
// malformed (or over-long) lines and no usable record, or cannot be
// decompressed; the context's error when ctx ends first; otherwise the read
// or write error that stopped it. Only a nil error means w received a
// complete graph. The stats are filled in every case.
func (d *DOT) Graph(ctx context.Context, w io.Writer, digest io.Reader) (types.GraphStats, error) {
	return d.GraphWithSink(ctx, w, digest, nil)
}

// GraphWithSink is Graph that also hands every record it draws, in order,
// to sink (when not nil), so a second rendering such as the flow table is
// made in the same pass over the digest. A sink error stops the graph.
func (d *DOT) GraphWithSink(ctx context.Context, w io.Writer, digest io.Reader, sink func(*flowlog.Record) error) (types.GraphStats, error) {
	logger := d.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	gw := NewWriter(w)
	gw.sink = sink
	// With no sink to hand records to, none is kept: the workers format
	// each line's edge as they parse it.
	render := flowlog.WithLineRender(gw.NewLineRender)
	if sink != nil {
		render = flowlog.WithRender(gw.NewRender)
	}
	rd, err := flowlog.NewReader(digest, flowlog.WithContext(ctx), flowlog.WithMaxLineBytes(d.MaxLineBytes),
		flowlog.WithWorkers(ParseWorkers()), render)
	if err != nil {
		return types.GraphStats{}, classify(err)
	}
	defer rd.Close()
	err = Copy(ctx, gw, rd)
	stats := Stats(rd, gw)
	if err == nil {
		err = checkUsable(stats)
		if cerr := gw.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}
	level := slog.LevelDebug
	if stats.Skipped > 0 {
		level = slog.LevelInfo
	}
	logger.Log(ctx, level, "digest graphed",
		slog.Int64("lines", stats.Lines), slog.Int64("used", stats.Used),
		slog.Int64("skipped", stats.Skipped), slog.Any("first_skipped", stats.FirstSkipped),
		slog.Int64("nodes", stats.Nodes))
	return stats, err
}

// ParseWorkers is how many goroutines parse a digest's lines while the
// graph is written: one per core the process may use, so that parsing, the
// larger half of the work, spreads over the cores while records still reach
// the writer in order.
func ParseWorkers() int { return runtime.GOMAXPROCS(0) }

// Copy draws every record rd yields into gw, checking ctx every few
// thousand lines. It does not close gw, so several inputs can be drawn into
// one graph. It returns the context's error, gw's write error, or rd's read
// error, wrapping types.ErrMalformedDigest when the input cannot be
// decompressed.
func Copy(ctx context.Context, gw *Writer, rd *flowlog.Reader) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("grapher: %w", err)
	}
	if rd.Batched() {
		if err := copyBatches(ctx, gw, rd); err != nil {
			return err
		}
	}
	for n := 1; rd.Next(); n++ {
		if err := gw.Edge(rd.Record()); err != nil {
			return err
		}
		if n%ctxCheckLines == 0 {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("grapher: %w", err)
			}
		}
	}
	if err := rd.Err(); err != nil {
		return classify(err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("grapher: %w", err)
	}
	return nil
}

// copyBatches is Copy for a Reader with workers: chunks whose edges a
// Render of gw formatted are written as they are, others record by record.
func copyBatches(ctx context.Context, gw *Writer, rd *flowlog.Reader) error {
	for {
		b, ok := rd.NextBatch()
		if !ok {
			return nil
		}
		if et, ok := b.Out.(*edgeText); ok && et.w == gw {
			if err := gw.drawBatch(b.Records, et); err != nil {
				return err
			}
		} else {
			for i := range b.Records {
				if err := gw.Edge(&b.Records[i]); err != nil {
					return err
				}
			}
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("grapher: %w", err)
		}
	}
}

// Stats returns the conversion stats of one input read by rd into gw.
func Stats(rd *flowlog.Reader, gw *Writer) types.GraphStats {
	s := rd.Stats()
	return types.GraphStats{
		Lines:        s.Lines,
		Used:         s.Used,
		Skipped:      s.Skipped,
		Nodes:        gw.Nodes(),
		FirstSkipped: s.FirstSkipped,
	}
}

// checkUsable returns types.ErrMalformedDigest (wrapped) when the input had
// malformed lines and nothing else: such a digest is not merely empty, it is
// not a digest, and no retry will change that.
func checkUsable(s types.GraphStats) error {
	if s.Used == 0 && s.Skipped > 0 {
		return fmt.Errorf("grapher: no usable record, %d malformed lines (first: %v): %w",
			s.Skipped, s.FirstSkipped, types.ErrMalformedDigest)
	}
	return nil
}

// classify wraps a read error, marking undecompressable input as a
// malformed digest.
func classify(err error) error {
	if errors.Is(err, flowlog.ErrCorrupt) {
		return fmt.Errorf("grapher: read digest: %w: %w", types.ErrMalformedDigest, err)
	}
	return fmt.Errorf("grapher: read digest: %w", err)
}
