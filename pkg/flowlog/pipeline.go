package flowlog

import (
	"bytes"
	"sync"
)

// chunkBytes is about how many bytes of lines a worker parses at a time:
// enough to make handing a chunk over cheap beside parsing it, few enough
// that the chunks in flight stay a few megabytes.
const chunkBytes = 256 << 10

// chunksPerWorker is how many chunks each worker may have queued or
// parsed ahead of the reader, bounding memory whatever the input's size.
const chunksPerWorker = 2

// WithWorkers parses lines on n goroutines (n > 1; otherwise lines are
// parsed by Next itself). Lines are read and cut in one goroutine, handed
// to the workers in chunks of whole lines, and their records returned by
// Next in input order, with the same stats, skipped line numbers and errors
// as a Reader without workers. Memory stays bounded: at most a few chunks
// per worker are in flight. A Reader with workers must be closed.
func WithWorkers(n int) Option {
	return func(o *readerOptions) { o.workers = n }
}

// chunk is a run of whole lines and, once parsed, their records.
type chunk struct {
	data      []byte // lines, each ending in '\n'
	firstLine int64  // the number of lines before the chunk
	// longLine, when set, makes the chunk one over-long line, with no data.
	longLine bool
	// err ends the input, after the chunks before it.
	err error

	formatIn, formatOut format
	recs                []Record
	lines, noFlow       int64
	skipped             int64
	firstSkip           []int64
	done                chan struct{}
}

// pipeline is the goroutines parsing a Reader's lines.
type pipeline struct {
	work  chan *chunk
	order chan *chunk // the same chunks, in input order
	free  chan *chunk
	stop  chan struct{}
	once  sync.Once
	cur   *chunk
	next  int // the next record of cur
}

// startPipeline starts reading r's lines and parsing them on n workers.
func startPipeline(r *Reader, n int) *pipeline {
	inflight := n * chunksPerWorker
	pl := &pipeline{
		work:  make(chan *chunk, inflight),
		order: make(chan *chunk, inflight),
		free:  make(chan *chunk, inflight+2),
		stop:  make(chan struct{}),
	}
	for range inflight + 2 {
		pl.free <- &chunk{data: make([]byte, 0, chunkBytes+1024), done: make(chan struct{}, 1)}
	}
	for range n {
		go pl.parseChunks()
	}
	go pl.cut(&r.src, r.format)
	return pl
}

// cut reads src's lines into chunks and hands them out, in order, until
// the input ends or the pipeline stops.
func (pl *pipeline) cut(src *lineSource, f format) {
	defer close(pl.order)
	defer close(pl.work)
	first := true
	c := pl.take()
	if c == nil {
		return
	}
	send := func(c *chunk) bool {
		c.formatIn = f
		if first {
			// A header line in the first chunk sets the format the rest
			// is parsed with: parsing that chunk here, before handing out
			// others, keeps them from being parsed twice.
			first = false
			p := newParser(f)
			c.parse(&p)
			c.done <- struct{}{}
			f = c.formatOut
			select {
			case pl.order <- c:
				return true
			case <-pl.stop:
				return false
			}
		}
		select {
		case pl.order <- c:
		case <-pl.stop:
			return false
		}
		select {
		case pl.work <- c:
		case <-pl.stop:
			return false
		}
		return true
	}
	for {
		line, long, ok := src.next()
		// The chunk being filled is handed over when it is full, when the
		// input ends, and before an over-long line.
		if (!ok || long || len(c.data) >= chunkBytes) && len(c.data) > 0 {
			if !send(c) {
				return
			}
			if c = pl.take(); c == nil {
				return
			}
		}
		switch {
		case !ok:
			if src.err != nil {
				c.err, c.firstLine = src.err, src.lines
				send(c)
			}
			return
		case long:
			c.firstLine, c.longLine = src.lines-1, true
			if !send(c) {
				return
			}
			if c = pl.take(); c == nil {
				return
			}
		default:
			if len(c.data) == 0 {
				c.firstLine = src.lines - 1
			}
			c.data = append(append(c.data, line...), '\n')
		}
	}
}

// take returns a free chunk, emptied, or nil once the pipeline stops.
func (pl *pipeline) take() *chunk {
	select {
	case c := <-pl.free:
		c.data, c.recs, c.firstSkip = c.data[:0], c.recs[:0], c.firstSkip[:0]
		c.longLine, c.err = false, nil
		c.lines, c.noFlow, c.skipped = 0, 0, 0
		return c
	case <-pl.stop:
		return nil
	}
}

// parseChunks parses the chunks it is handed until there are no more.
func (pl *pipeline) parseChunks() {
	p := newParser(format{})
	for c := range pl.work {
		c.parse(&p)
		c.done <- struct{}{}
	}
}

// parse parses the chunk's lines with c.formatIn, as Reader.Next would.
func (c *chunk) parse(p *parser) {
	p.format = c.formatIn
	if cap(p.fields) < p.format.n+1 {
		p.fields = make([][]byte, 0, p.format.n+1)
	}
	c.recs, c.firstSkip = c.recs[:0], c.firstSkip[:0]
	c.noFlow, c.skipped = 0, 0
	line := c.firstLine
	if c.longLine {
		c.lines = 1
		c.skip(line + 1)
		c.formatOut = p.format
		return
	}
	for data := c.data; len(data) > 0; {
		i := bytes.IndexByte(data, '\n')
		line++
		switch p.parse(data[:i]) {
		case lineRecord:
			c.recs = append(c.recs, p.rec)
		case lineNoFlow:
			c.noFlow++
		default:
			c.skip(line)
		}
		data = data[i+1:]
	}
	c.lines = line - c.firstLine
	c.formatOut = p.format
}

func (c *chunk) skip(line int64) {
	if len(c.firstSkip) < maxFirstSkipped {
		c.firstSkip = append(c.firstSkip, line)
	}
	c.skipped++
}

// nextParsed is Next for a Reader with workers.
func (r *Reader) nextParsed() bool {
	pl := r.pl
	for {
		if c := pl.cur; c != nil {
			if pl.next < len(c.recs) {
				r.rec = c.recs[pl.next]
				pl.next++
				return true
			}
			pl.cur = nil
			pl.free <- c
		}
		c, ok := <-pl.order
		if !ok {
			return false
		}
		<-c.done
		if c.formatIn != r.format {
			// A header line changed the format after this chunk was
			// handed out: parse it again, here, with the right one.
			c.formatIn = r.format
			c.parse(&r.parser)
		}
		r.format = c.formatOut
		r.stats.Lines += c.lines
		r.stats.Used += int64(len(c.recs))
		r.stats.NoFlow += c.noFlow
		for _, n := range c.firstSkip {
			if r.stats.Skipped < maxFirstSkipped {
				r.firstSkip[r.stats.Skipped] = n
			}
			r.stats.Skipped++
		}
		r.stats.Skipped += c.skipped - int64(len(c.firstSkip))
		if c.err != nil {
			r.err = c.err
			pl.free <- c
			r.Close()
			return false
		}
		pl.cur, pl.next = c, 0
	}
}

// Close stops the workers of a Reader made WithWorkers; it does nothing
// for other Readers. Records returned before stay valid. It is safe to
// call more than once.
func (r *Reader) Close() {
	if r.pl != nil {
		r.pl.once.Do(func() { close(r.pl.stop) })
	}
}
