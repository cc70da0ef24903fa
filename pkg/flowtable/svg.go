package flowtable

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// ErrNoGraphviz is returned by RenderSVG when Graphviz is not installed.
var ErrNoGraphviz = errors.New("graphviz is not installed on the server (the svg format needs its dot and sfdp commands); ask for format=dot and lay it out yourself, or install the graphviz package")

// DotMaxNodes and DotMaxEdges bound the views laid out by Graphviz's dot;
// larger ones go to sfdp. Measured (BenchmarkRenderSVG, views with three
// labelled edges a node, on a busy two-core machine): dot takes 0.5 s for
// 25 nodes, 2 to 6 s for 50 and 51 s for 100, while sfdp without spline
// routing takes 0.3 s for 50 nodes, 1 s for 200 and 9 s for 2,000.
const (
	DotMaxNodes = 30
	DotMaxEdges = 100
)

// maxSVGBytes bounds the SVG Graphviz may write, so a runaway layout cannot
// exhaust memory; a 2,000-node view is a few megabytes.
const maxSVGBytes = 256 << 20

// renderVersion changes when the SVG for the same view would change, so
// stale cached renderings are not served.
const renderVersion = "svg1"

// SVGCacheSlots is how many rendered views are cached per graph. The
// canonical views of one graph are unbounded (min_bytes alone takes any
// number), so views share a fixed set of slots: a view evicts whatever
// other view held its slot, and storage holds at most this many SVGs beside
// each graph however many views are asked for.
const SVGCacheSlots = 16

// SVGCache says where a view's rendered SVG is cached: the object kind of
// its slot, and the tag that opens the cached object when it holds this
// view (and no other view that shares the slot).
type SVGCache struct {
	// Kind is the object kind: "svg-" and the slot's hex digit.
	Kind string
	// Tag names the view: a hash of the render version and the canonical
	// parameters.
	Tag string
}

// SVGCacheOf returns where the SVG of the view p is cached.
func SVGCacheOf(p Params) SVGCache {
	h := sha256.New()
	h.Write([]byte(renderVersion))
	for _, kv := range p.Canonical() {
		fmt.Fprintf(h, "\x00%s=%s", kv[0], kv[1])
	}
	sum := h.Sum(nil)
	return SVGCache{
		Kind: fmt.Sprintf("svg-%x", int(sum[0])%SVGCacheSlots),
		Tag:  hex.EncodeToString(sum[:12]),
	}
}

// Wrap returns the object to store for svg: the tag on a line of its own,
// then the SVG.
func (c SVGCache) Wrap(svg []byte) io.Reader {
	return io.MultiReader(strings.NewReader(c.Tag+"\n"), bytes.NewReader(svg))
}

// Open reads the tag line of a cached object and returns the SVG after it
// when the object holds this view; ok is false when the slot holds another
// view (or nothing readable).
func (c SVGCache) Open(rc io.Reader) (svg io.Reader, ok bool) {
	head := make([]byte, len(c.Tag)+1)
	if _, err := io.ReadFull(rc, head); err != nil || string(head) != c.Tag+"\n" {
		return nil, false
	}
	return rc, true
}

// SVGOptions says how Graphviz is run.
type SVGOptions struct {
	// Timeout bounds one layout; zero means none.
	Timeout time.Duration
	// Dir is the folder holding the dot and sfdp commands; empty means they
	// are looked for in PATH.
	Dir string
	// Engine forces "dot" or "sfdp"; empty chooses by the view's size.
	Engine string
}

// RenderSVG lays v out with Graphviz (dot for small views, sfdp for large
// ones), run as a process bounded by the timeout, and returns the SVG. It
// returns ErrNoGraphviz when Graphviz is missing.
func RenderSVG(ctx context.Context, v *View, m Meta, o SVGOptions) ([]byte, error) {
	engine, args := "dot", []string{"-Tsvg"}
	if o.Engine == "sfdp" || (o.Engine == "" && (len(v.Nodes) > DotMaxNodes || len(v.Edges) > DotMaxEdges)) {
		engine, args = "sfdp", []string{"-Tsvg", "-Goverlap=prism", "-Gsplines=false"}
	}
	if o.Dir != "" {
		engine = filepath.Join(o.Dir, engine)
	}
	path, err := exec.LookPath(engine)
	if err != nil {
		return nil, ErrNoGraphviz
	}
	timeout := o.Timeout
	var in bytes.Buffer
	if err := WriteDOT(&in, v, m); err != nil {
		return nil, err
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdin = &in
	out := &capped{max: maxSVGBytes}
	var stderr capped
	stderr.max = 4 << 10
	cmd.Stdout, cmd.Stderr = out, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("flowtable: %s took longer than %s to lay out %d nodes: %w", engine, timeout, len(v.Nodes), ctx.Err())
		}
		return nil, fmt.Errorf("flowtable: %s failed: %w: %s", engine, err, bytes.TrimSpace(stderr.Bytes()))
	}
	if out.over {
		return nil, fmt.Errorf("flowtable: %s wrote more than %d bytes of SVG", engine, maxSVGBytes)
	}
	return out.Bytes(), nil
}

// capped keeps at most max bytes and remembers it dropped the rest.
type capped struct {
	bytes.Buffer
	max  int
	over bool
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.max - c.Len(); len(p) > room {
		c.over = true
		if room > 0 {
			c.Buffer.Write(p[:room])
		}
		return len(p), nil
	}
	return c.Buffer.Write(p)
}
