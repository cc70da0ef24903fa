// Package convert is the `vpcflow-grapherd convert` command: the grapher
// with no server around it, for a user with a digest or flow-log files in
// hand and for benchmarks. It streams its inputs into one DOT graph.
package convert

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/flowlog"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/grapher"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
)

// ctxCheckLines is how often, in records, compaction checks the context.
const ctxCheckLines = 4096

// compactBatch is how many records --digest hands the compactor at once.
const compactBatch = 512

// maxFirstSkipped is how many skipped lines the summary names.
const maxFirstSkipped = 5

const usage = `usage: vpcflow-grapherd convert [-o FILE] [--digest] [FILE...]

Converts VPC flow log digests, or raw flow-log files as AWS delivers them
(plain or gzip, default or custom format, or Parquet), into one Graphviz DOT
graph. A malformed Parquet file is skipped and counted like a malformed line;
Parquet cannot be read from stdin.
Reads the FILEs in order as one stream of records, or stdin when there is
none ("-" also names stdin). Writes DOT to stdout, or atomically to FILE
with -o. Prints the used and skipped line counts to stderr.

Flags:
`

// Run runs `vpcflow-grapherd convert [-o FILE] [--digest] [FILE...]`; args
// exclude the word "convert". It returns an error naming the file for an
// unreadable or undecompressable input, one wrapping types.ErrMalformedDigest
// when the inputs hold malformed lines and no usable record, and nil after
// printing the usage for -h.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("convert", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	out := fs.String("o", "", "write the graph to `FILE` (atomically) instead of stdout")
	digest := fs.Bool("digest", false, "compact the records first, as the built-in digester does (one edge per flow)")
	maxLine := fs.Int("max-line-bytes", flowlog.DefaultMaxLineBytes, "skip lines longer than this")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return fmt.Errorf("convert: %w", err)
	}
	inputs := fs.Args()
	if len(inputs) == 0 {
		inputs = []string{"-"}
	}
	for _, name := range inputs {
		if err := checkReadable(name); err != nil {
			return err
		}
	}

	c := &converter{
		stdin:      stdin,
		readerOpts: []flowlog.Option{flowlog.WithMaxLineBytes(*maxLine), flowlog.WithWorkers(grapher.ParseWorkers())},
	}
	if *digest {
		// Flows beyond the default budget spill to TMPDIR, so compacting
		// a month of flow logs takes no more memory than an hour's.
		c.compactor = flowlog.NewPartitionedCompactor(flowlog.PartitionOptions{})
		defer c.compactor.Close()
	}
	var err error
	if *out == "" {
		err = c.run(ctx, inputs, stdout)
	} else {
		err = writeOutput(*out, func(w io.Writer) error { return c.run(ctx, inputs, w) })
	}
	fmt.Fprintln(stderr, c.summary())
	return err
}

// checkReadable fails early, before any output, for an input that cannot
// be opened or is a directory.
func checkReadable(name string) error {
	if name == "-" {
		return nil
	}
	f, err := os.Open(name)
	if err != nil {
		return fmt.Errorf("convert: cannot read input: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return fmt.Errorf("convert: cannot read %q: %w", name, err)
	}
	if info.IsDir() {
		return fmt.Errorf("convert: cannot read %q: is a directory", name)
	}
	return nil
}

// converter streams inputs into one graph and keeps the counts.
type converter struct {
	stdin      io.Reader
	readerOpts []flowlog.Option
	compactor  *flowlog.PartitionedCompactor // nil unless --digest

	lines, used, skipped int64
	firstSkipped         []string
	edges, nodes         int64
}

func (c *converter) run(ctx context.Context, inputs []string, w io.Writer) error {
	gw := grapher.NewWriter(w)
	for _, name := range inputs {
		if err := c.read(ctx, name, gw); err != nil {
			return err
		}
	}
	if c.compactor != nil {
		if _, err := c.compactor.Compact(ctx); err != nil {
			return fmt.Errorf("convert: %w", err)
		}
		if err := c.compactor.Each(gw.Edge); err != nil {
			return fmt.Errorf("convert: %w", err)
		}
	}
	c.edges, c.nodes = gw.Edges(), gw.Nodes()
	if c.used == 0 && c.skipped > 0 {
		return fmt.Errorf("convert: no usable record, %d malformed lines: %w", c.skipped, types.ErrMalformedDigest)
	}
	if err := gw.Close(); err != nil {
		return fmt.Errorf("convert: %w", err)
	}
	return nil
}

// read draws (or, with --digest, compacts) the records of one input.
func (c *converter) read(ctx context.Context, name string, gw *grapher.Writer) error {
	var in io.Reader = c.stdin
	display := "stdin"
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return fmt.Errorf("convert: cannot read input: %w", err)
		}
		defer f.Close()
		in, display = f, name
	}
	opts := append([]flowlog.Option{flowlog.WithContext(ctx)}, c.readerOpts...)
	if c.compactor == nil {
		opts = append(opts, flowlog.WithLineRender(gw.NewLineRender))
	}
	rd, err := flowlog.NewReader(in, opts...)
	if errors.Is(err, flowlog.ErrMalformedParquet) {
		// A broken file is skipped and counted, as a broken line is.
		c.skipped++
		if len(c.firstSkipped) < maxFirstSkipped {
			c.firstSkipped = append(c.firstSkipped, display+" (malformed Parquet)")
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("convert: read %q: %w", display, err)
	}
	defer rd.Close()
	defer func() {
		s := rd.Stats()
		c.lines += s.Lines
		c.used += s.Used
		c.skipped += s.Skipped
		for _, n := range s.FirstSkipped {
			if len(c.firstSkipped) < maxFirstSkipped {
				c.firstSkipped = append(c.firstSkipped, fmt.Sprintf("%s:%d", display, n))
			}
		}
	}()
	if c.compactor == nil {
		if err := grapher.Copy(ctx, gw, rd); err != nil {
			return fmt.Errorf("convert: %q: %w", display, err)
		}
		return nil
	}
	batch := make([]flowlog.Record, 0, compactBatch)
	for n := 1; rd.Next(); n++ {
		if batch = append(batch, *rd.Record()); len(batch) == compactBatch {
			if err := c.compactor.AddAll(batch); err != nil {
				return fmt.Errorf("convert: %w", err)
			}
			batch = batch[:0]
		}
		if n%ctxCheckLines == 0 {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("convert: %w", err)
			}
		}
	}
	if err := c.compactor.AddAll(batch); err != nil {
		return fmt.Errorf("convert: %w", err)
	}
	if err := rd.Err(); err != nil {
		return fmt.Errorf("convert: read %q: %w", display, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("convert: %w", err)
	}
	return nil
}

// summary is the line printed to stderr.
func (c *converter) summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "used %d, skipped %d lines", c.used, c.skipped)
	if len(c.firstSkipped) > 0 {
		fmt.Fprintf(&b, " (first skipped: %s)", strings.Join(c.firstSkipped, ", "))
	}
	if c.compactor != nil {
		fmt.Fprintf(&b, "; compacted into %d flows", c.compactor.Len())
	}
	fmt.Fprintf(&b, "; drew %d edges between %d nodes", c.edges, c.nodes)
	return b.String()
}

// writeOutput runs write on the file at path. A regular (or new) file is
// written atomically: to a temporary file next to it, renamed to path only
// when write succeeded, so path never holds a partial graph. Anything else,
// such as /dev/null or a pipe, is written in place: renaming over it would
// replace the device rather than write to it.
func writeOutput(path string, write func(io.Writer) error) error {
	if resolved, err := filepath.EvalSymlinks(path); err == nil {
		path = resolved
	}
	info, err := os.Stat(path)
	if err == nil && !info.Mode().IsRegular() {
		if info.IsDir() {
			return fmt.Errorf("convert: output %q is a directory", path)
		}
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			return fmt.Errorf("convert: open output: %w", err)
		}
		werr := write(f)
		if cerr := f.Close(); cerr != nil && werr == nil {
			werr = fmt.Errorf("convert: write output: %w", cerr)
		}
		return werr
	}
	return writeAtomically(path, write)
}

// writeAtomically runs write on a temporary file next to path and renames
// it to path only when write succeeded.
func writeAtomically(path string, write func(io.Writer) error) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("convert: create output: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if err := write(tmp); err != nil {
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("convert: write output: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("convert: write output: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("convert: write output: %w", err)
	}
	return nil
}
