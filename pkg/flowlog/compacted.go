package flowlog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
)

// feedFlows is how many merged flows a chunk of a CompactedDigest's
// Reader holds: about the records of a 64 KiB chunk of lines, and about
// 400 KiB of the edges drawn from them.
const feedFlows = 1024

// CompactedDigest is the digest of a PartitionedCompactor as a stream,
// for a Digester to hand on. Read gives its text, the lines WriteTo
// writes. A Reader with workers given it (see NewReader) takes its flows
// instead (WithWorkers, even of one), as the records that text would be
// read back as, in the same order and with the same stats: no line is
// written or parsed, and the workers make the records from the flows.
// It is read one way or the other, not both. Close stops either (a
// Reader then ends with an error) and closes the PartitionedCompactor;
// it must be called.
type CompactedDigest struct {
	c      *PartitionedCompactor
	mu     sync.Mutex
	pr     *io.PipeReader // set once Read began
	feed   bool           // set once a Reader took the flows
	closed chan struct{}
	once   sync.Once
}

// Digest returns the compacted digest as a stream that closes c when it
// is closed. Compact must have succeeded.
func (c *PartitionedCompactor) Digest() *CompactedDigest {
	return &CompactedDigest{c: c, closed: make(chan struct{})}
}

// errDigestTaken is Read's error once a Reader took the flows.
var errDigestTaken = errors.New("flowlog: the digest's flows were read as records")

// Read reads the digest's text.
func (d *CompactedDigest) Read(p []byte) (int, error) {
	d.mu.Lock()
	if d.feed {
		d.mu.Unlock()
		return 0, errDigestTaken
	}
	if d.pr == nil {
		pr, pw := io.Pipe()
		d.pr = pr
		go func() {
			_, err := d.c.WriteTo(pw)
			pw.CloseWithError(err)
			// The flows are read: their memory and files go at once.
			_ = d.c.Close()
		}()
	}
	pr := d.pr
	d.mu.Unlock()
	return pr.Read(p)
}

// takeFlows claims the flows for a Reader, unless the text is being read.
func (d *CompactedDigest) takeFlows() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.pr != nil || d.feed {
		return false
	}
	d.feed = true
	return true
}

// Close stops the reading and closes the PartitionedCompactor, removing its
// spill files, once the merge under way has stopped. Reading the digest to
// its end closes the PartitionedCompactor too.
func (d *CompactedDigest) Close() error {
	d.once.Do(func() { close(d.closed) })
	d.mu.Lock()
	pr := d.pr
	d.mu.Unlock()
	if pr != nil {
		_ = pr.Close()
	}
	return d.c.Close()
}

// errFeedStopped stops the merge of a digest whose Reader was closed.
var errFeedStopped = errors.New("flowlog: digest reader stopped")

// startFeed starts a pipeline of n workers that make d's flows into
// records, in batches, for r.
func startFeed(ctx context.Context, d *CompactedDigest, r *Reader, n, maxLine int, newRender func() Render, newLines func() LineRender) *pipeline {
	// Flows are handed over as records, with no text.
	pl := newPipeline(n, newRender, newLines, 0)
	// A line of values no longer than this each is never longer than
	// maxLine: the rest of a line is under 128 bytes.
	short := (maxLine - 128) / 4
	fr := flowRecords{in: &d.c.in, plain: d.c.in.plainNames(short), plainAddr: d.c.in.plainAddrs(short), maxLine: maxLine}
	for range n {
		go pl.recordChunks(fr, r.format)
	}
	go pl.feedFlows(ctx, d, r.format)
	return pl
}

// feedFlows hands d's merged flows out in chunks, in order, until they
// end, the pipeline stops or d is closed. The chunks carry the Reader's
// format f, which no chunk changes.
func (pl *pipeline) feedFlows(ctx context.Context, d *CompactedDigest, f format) {
	defer close(pl.order)
	defer close(pl.work)
	take := func() *chunk {
		c := pl.takeOr(d.closed)
		if c == nil {
			pl.digestClosed(d)
		}
		return c
	}
	c := take()
	if c == nil {
		return
	}
	send := func() bool {
		c.formatIn, c.formatOut = f, f
		select {
		case pl.order <- c:
		case <-pl.stop:
			return false
		case <-d.closed:
			pl.digestClosed(d)
			return false
		}
		// The Reader waits for a chunk in order to be worked, and the
		// workers never wait long.
		select {
		case pl.work <- c:
		case <-pl.stop:
			return false
		}
		return true
	}
	var flows int64
	err := d.c.merge(func(e *flowEntry) error {
		if len(c.flows) == 0 {
			c.firstLine = flows
		}
		flows++
		c.flows = append(c.flows, *e)
		if len(c.flows) < feedFlows {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if !send() {
			return errFeedStopped
		}
		if c = take(); c == nil {
			return errFeedStopped
		}
		return nil
	})
	if err == nil {
		// A digest shorter than a chunk meets no check above.
		err = ctx.Err()
	}
	// The flows are merged: their memory and files go at once. The
	// workers still read the names and addresses, which stay.
	_ = d.c.Close()
	switch {
	case errors.Is(err, errFeedStopped):
		return
	case err != nil:
		c.flows, c.err, c.firstLine = c.flows[:0], fmt.Errorf("flowlog: read digest: %w", err), flows
	case len(c.flows) == 0:
		pl.free <- c
		return
	}
	send()
}

// errDigestClosed ends a Reader of a digest closed before its flows ended.
var errDigestClosed = errors.New("flowlog: the digest was closed before its last flow was read")

// digestClosed makes the Reader's end an error if d was closed.
func (pl *pipeline) digestClosed(d *CompactedDigest) {
	select {
	case <-d.closed:
		pl.feedErr = errDigestClosed
	default:
	}
}

// recordChunks makes the records of the chunks of flows it is handed,
// and renders them, until there are no more.
func (pl *pipeline) recordChunks(fr flowRecords, f format) {
	fr.p = newParser(f)
	render, lines := pl.makeRender(), pl.makeLineRender()
	for c := range pl.work {
		work(c, func() {
			fr.records(c, lines)
			pl.renderWith(render, c)
		})
	}
}

// flowRecords makes flows into the records their digest lines are read
// back as, one goroutine's.
type flowRecords struct {
	in *interner
	// plain is, by name number, whether the name is written and read
	// back as it is, and short enough for any line to hold it; plainAddr
	// the same for an address.
	plain, plainAddr []bool
	maxLine          int // the longest line a Reader of the text keeps
	p                parser
	line             []byte
	rec              Record
}

// records makes the chunk's flows into its records, counted as lines
// are, handing them to lr when it is not nil.
func (fr *flowRecords) records(c *chunk, lr LineRender) {
	c.recs, c.firstSkip = c.recs[:0], c.firstSkip[:0]
	c.noFlow, c.skipped, c.used = 0, 0, 0
	c.lines = int64(len(c.flows))
	if c.err != nil {
		return
	}
	if lr != nil {
		b := Batch{Out: c.out, size: c.size()}
		lr.Start(&b)
		c.out = b.Out
	}
	for i := range c.flows {
		rec := &fr.rec
		n := len(c.recs)
		if lr == nil {
			if n == cap(c.recs) {
				c.recs = slices.Grow(c.recs, 1)
			}
			rec = &c.recs[:n+1][n]
		}
		switch fr.record(rec, &c.flows[i]) {
		case lineRecord:
			c.used++
			if lr != nil {
				lr.Record(rec)
			} else {
				c.recs = c.recs[:n+1]
			}
		case lineNoFlow:
			c.noFlow++
		default:
			c.skip(c.firstLine + int64(i) + 1)
		}
	}
}

// record makes e into rec, or says why its line is no record.
func (fr *flowRecords) record(rec *Record, e *flowEntry) lineKind {
	k, t := &e.key, &e.totals
	fr.in.record(rec, e)
	if fr.plain[k.account] && fr.plain[k.iface] && fr.plainAddr[k.src] && fr.plainAddr[k.dst] &&
		t.start >= 0 && t.end >= 0 && isAction(rec.Action) {
		return lineRecord
	}
	// Any other flow (a blank in a name, a missing address, a long name)
	// is read back from its line, as a Reader of the text would.
	fr.line = AppendDigestLine(fr.line[:0], rec)
	if len(fr.line)-1 > fr.maxLine {
		return lineMalformed // skipped, as a Reader skips a long line
	}
	fr.p.out = rec
	return fr.p.parse(fr.line[:len(fr.line)-1])
}

func isAction(s string) bool { return s == ActionAccept || s == ActionReject || s == Missing }

// recordTextBytes is about the text of a digest line, for Batch.Len.
const recordTextBytes = 128

// plainNames says of each name whether a digest line holds it as it is
// (printable ASCII and no blank, which AppendDigestLine would change and
// a Reader would split at) and it is at most short bytes long, and no
// longer than an id may be (MaxIDBytes).
func (in *interner) plainNames(short int) []bool {
	plain := make([]bool, len(in.names))
	for i, s := range in.names {
		plain[i] = s != "" && len(s) <= min(short, MaxIDBytes)
		for j := 0; j < len(s) && plain[i]; j++ {
			plain[i] = s[j] > ' ' && s[j] < 0x7f
		}
	}
	return plain
}

// plainAddrs says of each address whether it is valid and its text is at
// most short bytes long.
func (in *interner) plainAddrs(short int) []bool {
	plain := make([]bool, len(in.addrs))
	for i, a := range in.addrs {
		// An address is at most 45 bytes long, and its zone.
		plain[i] = a.IsValid() && (a.Is4() || 45+1+len(a.Zone()) <= short)
	}
	return plain
}
