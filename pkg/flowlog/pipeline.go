package flowlog

import (
	"bytes"
	"fmt"
	"slices"
	"sync"
	"unsafe"
)

// chunkBytes is about how many bytes of lines a worker parses at a time
// when it keeps their records: enough to make handing a chunk over cheap
// beside parsing it (about 650 digest lines), few enough that a chunk and
// the records made of it stay in a core's cache and the chunks in flight
// take little memory. Measured on 1M lines: 64 KiB converts as fast as
// 128 KiB and faster than 256 KiB (0.26 s against 0.29 s), at 30 MB peak
// RSS against 37 and 52; a graph job of the service (which keeps records
// for its flow table) peaked at 93-101 MB with 64 KiB and 113-125 MB with
// 256 KiB.
const chunkBytes = 64 << 10

// lineChunkBytes is chunkBytes for a LineRender, which keeps no records,
// so that a chunk costs only its text and its edges', on two workers (see
// textChunkBytes). Measured converting 1M lines, best of 7 in three
// rounds: 256 KiB took 0.141-0.151 s, against 0.145-0.147 s for 128 KiB,
// 0.150-0.157 s for 64 KiB, 0.145-0.151 s for 512 KiB and 0.158-0.174 s
// for 1 MiB, at a peak RSS of 27 MB, against 24, 21, 37 and 54 MB.
const lineChunkBytes = 256 << 10

// textChunkBytes is the size of the chunks of text that n workers parse:
// chunkBytes when records are kept; for a LineRender, lineChunkBytes on
// two workers, and on more as much in all as two workers' chunks, each
// chunk smaller, down to chunkBytes. A chunk's edges take five times its
// text, so that the chunks in flight (chunksPerWorker a worker and two
// more) of 256 KiB take some 10 MB on two cores, and would take 60 on
// sixteen.
func textChunkBytes(n int, lines bool) int {
	if !lines {
		return chunkBytes
	}
	inflight := n*chunksPerWorker + 2
	return max(chunkBytes, min(lineChunkBytes, (2*chunksPerWorker+2)*lineChunkBytes/inflight))
}

// chunksPerWorker is how many chunks each worker may have queued or
// parsed ahead of the reader, bounding memory whatever the input's size.
const chunksPerWorker = 2

// WithWorkers parses lines on n goroutines (n > 1; otherwise lines are
// parsed by Next itself). Lines are read and cut in one goroutine, handed
// to the workers in chunks of whole lines, and their records returned by
// Next in input order, with the same stats, skipped line numbers and errors
// as a Reader without workers. Memory stays bounded: at most a few chunks
// per worker are in flight. A Reader with workers must be closed. A
// CompactedDigest is read by workers whenever n is at least 1.
func WithWorkers(n int) Option {
	return func(o *readerOptions) { o.workers = n }
}

// Render is work done on the records of each chunk of lines on the
// goroutine that parsed them, so that it runs on every core. Reader.NextBatch
// hands the Batch back, with what the Render left in its Out.
type Render func(b *Batch)

// Batch is the records of one chunk of lines, in input order, with the
// text their ids and numbers were read from, so that a Render can write
// a value again by copying it.
type Batch struct {
	// Records are the chunk's records.
	Records []Record
	// Out is the Render's own: it is kept from one use of the chunk to the
	// next, so that a Render can reuse what it put there.
	Out any

	data []byte        // the chunk's lines
	nums [][numRaw]raw // per record, where each raw value's text is
	size int           // Len
}

// The values of a Record whose text a Batch keeps, for Batch.Raw.
const (
	RawAccountID = iota
	RawInterfaceID
	RawSrcPort
	RawDstPort
	RawProtocol
	RawPackets
	RawBytes
	RawStart
	RawEnd
	numRaw
)

// rawFields are the format fields of the raw values, in their order.
var rawFields = [numRaw]int{fAccountID, fInterfaceID, fSrcPort, fDstPort, fProtocol, fPackets, fBytes, fStart, fEnd}

// raw is where a field's text sits in a chunk's lines; n is 0 when the
// format lacks the field.
type raw struct {
	off uint32
	n   uint32
}

// Len returns the size of the chunk's lines in bytes, so that a Render
// can size its output once; for a CompactedDigest's flows, which have no
// text, about the size of their lines.
func (b *Batch) Len() int { return b.size }

// size is the Len of the chunk's Batch.
func (c *chunk) size() int {
	if len(c.flows) > 0 {
		return len(c.flows) * recordTextBytes
	}
	return len(c.data)
}

// Raw returns the text value f (RawAccountID to RawEnd) of record i was
// read from: for a number, the digits, or "-" for a missing value; nil
// when the line's format lacks the field, and for records read from
// Parquet. Records[i] holds the value it gives; the text may still differ
// from how the value is written (a leading zero, say).
func (b *Batch) Raw(i, f int) []byte {
	if b.nums == nil {
		return nil
	}
	r := b.nums[i][f]
	return b.data[r.off : r.off+r.n : r.off+r.n]
}

// RawPadded is Raw with what follows the text in the chunk, so that the
// text (its first n bytes) can be copied in whole blocks of pad bytes;
// false when fewer than its length rounded up to pad bytes follow.
func (b *Batch) RawPadded(i, f, pad int) (text []byte, n int, ok bool) {
	if b.nums == nil {
		return nil, 0, false
	}
	r := b.nums[i][f]
	end := int(r.off) + (int(r.n)+pad-1)/pad*pad
	if end > cap(b.data) || r.n == 0 {
		return nil, 0, false
	}
	return b.data[r.off:end:end], int(r.n), true
}

// WithRender has each goroutine that parses chunks (see WithWorkers) call
// a Render of its own, made by newRender, on every chunk it parsed: a
// Render may keep state of its own, such as what it has learnt from
// earlier chunks, without locking. It applies only to a Reader with
// workers, whose records are then read with NextBatch.
func WithRender(newRender func() Render) Option {
	return func(o *readerOptions) { o.newRender = newRender }
}

// LineRender formats a chunk's records as its lines are parsed, on the
// goroutine parsing them, where a Render formats them once they are all
// parsed and kept (see WithLineRender). Its calls for a chunk are Start,
// then Line or Record for each line that is a record, in input order.
type LineRender interface {
	// Start begins a chunk of lines: b has no records, only its Len, and
	// its Out, which the LineRender may set as a Render does.
	Start(b *Batch)
	// Line is a line the fast parse read; it is valid for the call only.
	Line(l *Line)
	// Record is the record of a line read the general way; it is valid
	// for the call only.
	Record(rec *Record)
}

// WithLineRender is WithRender for work that needs no record kept: each
// goroutine that parses chunks hands every record of a chunk to a
// LineRender of its own, made by newRender, as it parses it, and keeps
// none. A line of the default format in the shape AWS and
// vpcflow-digesterd write reaches it as a Line, so that it is never made
// into a Record at all. NextBatch then returns Batches with no Records
// and what the LineRender left in their Out; the Reader's stats are those
// of a Reader without it. It applies only to a Reader with workers, and
// takes the place of WithRender.
func WithLineRender(newRender func() LineRender) Option {
	return func(o *readerOptions) { o.newLines = newRender }
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
	flows               []flowEntry   // a CompactedDigest's, made into recs
	nums                [][numRaw]raw // for a Render only
	out                 any           // what the Render made of recs
	reparsed            bool          // parsed again by the Reader, not yet rendered
	keepRaw             bool          // fill nums
	lines, noFlow       int64
	used                int64 // records: len(recs) unless rendered by line
	skipped             int64
	firstSkip           []int64
	done                chan struct{}
}

// pipeline is the goroutines parsing a Reader's lines.
type pipeline struct {
	// chunkBytes is how many bytes of lines a chunk is cut at.
	chunkBytes int
	work       chan *chunk
	order      chan *chunk // the same chunks, in input order
	free       chan *chunk
	stop       chan struct{}
	once       sync.Once
	cur        *chunk
	next       int // the next record of cur
	// newRender makes each parsing goroutine's Render, and newLines its
	// LineRender; nil for none.
	newRender func() Render
	newLines  func() LineRender
	render    Render     // the Reader's own, for chunks it parses again
	lines     LineRender // the same for newLines
	batch     Batch      // what NextBatch returned last
	// feedErr is why a CompactedDigest's feed stopped before its flows
	// ended, set before order is closed.
	feedErr error
}

// startPipeline starts reading r's lines and parsing them on n workers.
func startPipeline(r *Reader, n int, newRender func() Render, newLines func() LineRender) *pipeline {
	pl := newPipeline(n, newRender, newLines, textChunkBytes(n, newLines != nil))
	for range n {
		go pl.parseChunks()
	}
	go pl.cut(&r.src, r.format)
	return pl
}

// newPipeline returns the channels and free chunks of a pipeline of n
// workers, none of its goroutines started, whose chunks are cut at size
// bytes of text; 0 for chunks that hold no text.
func newPipeline(n int, newRender func() Render, newLines func() LineRender, size int) *pipeline {
	if newLines != nil {
		newRender = nil
	}
	inflight := n * chunksPerWorker
	pl := &pipeline{
		chunkBytes: size,
		work:       make(chan *chunk, inflight),
		order:      make(chan *chunk, inflight),
		free:       make(chan *chunk, inflight+2),
		stop:       make(chan struct{}),
		newRender:  newRender,
		newLines:   newLines,
	}
	for range inflight + 2 {
		c := &chunk{done: make(chan struct{}, 1), keepRaw: newRender != nil}
		if size > 0 {
			c.data = make([]byte, 0, size+1024)
		}
		pl.free <- c
	}
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
			work(c, func() {
				c.parse(&p, pl.makeLineRender())
				pl.renderWith(pl.makeRender(), c)
			})
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
		// Whole lines already read are copied in runs; the line after
		// them, which the buffer holds only in part, is read alone.
		if room := pl.chunkBytes - len(c.data); room > 0 {
			n := len(c.data)
			var first int64
			if c.data, first = src.appendBlock(c.data, room); len(c.data) > n {
				if n == 0 {
					c.firstLine = first
				}
				continue
			}
		}
		line, long, ok := src.next()
		// The chunk being filled is handed over when it is full, when the
		// input ends, and before an over-long line.
		if (!ok || long || len(c.data) >= pl.chunkBytes) && len(c.data) > 0 {
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
func (pl *pipeline) take() *chunk { return pl.takeOr(nil) }

// takeOr is take, which returns nil too once quit is closed.
func (pl *pipeline) takeOr(quit <-chan struct{}) *chunk {
	select {
	case <-quit:
		return nil
	case c := <-pl.free:
		c.data, c.recs, c.nums, c.firstSkip, c.flows = c.data[:0], c.recs[:0], c.nums[:0], c.firstSkip[:0], c.flows[:0]
		c.longLine, c.err, c.reparsed = false, nil, false
		c.lines, c.noFlow, c.skipped, c.used = 0, 0, 0, 0
		return c
	case <-pl.stop:
		return nil
	}
}

// parseChunks parses the chunks it is handed until there are no more.
func (pl *pipeline) parseChunks() {
	p := newParser(format{})
	render, lines := pl.makeRender(), pl.makeLineRender()
	for c := range pl.work {
		work(c, func() {
			c.parse(&p, lines)
			pl.renderWith(render, c)
		})
	}
}

// work runs do, a worker's work on c, then says c is done. A panic in do
// (a Render's bug, say) becomes c's error, which fails the read: nothing
// above a worker's goroutine could recover it, and a bug must fail a job,
// not the process.
func work(c *chunk, do func()) {
	defer func() { c.done <- struct{}{} }()
	recovering(c, do)
}

// recovering runs do, work on c, making a panic in it c's error.
func recovering(c *chunk, do func()) {
	defer func() {
		if p := recover(); p != nil {
			c.err = fmt.Errorf("flowlog: reading the lines from line %d panicked: %v", c.firstLine+1, p)
		}
	}()
	do()
}

// makeRender returns a new Render, or nil when the pipeline has none.
func (pl *pipeline) makeRender() Render {
	if pl.newRender == nil {
		return nil
	}
	return pl.newRender()
}

// makeLineRender returns a new LineRender, or nil when the pipeline has
// none.
func (pl *pipeline) makeLineRender() LineRender {
	if pl.newLines == nil {
		return nil
	}
	return pl.newLines()
}

// renderWith runs render, when there is one, on the chunk's records.
func (pl *pipeline) renderWith(render Render, c *chunk) {
	if render != nil && c.err == nil {
		b := Batch{Records: c.recs, Out: c.out, data: c.data, nums: c.nums, size: c.size()}
		render(&b)
		c.out = b.Out
	}
}

// parse parses the chunk's lines with c.formatIn, as Reader.Next would,
// keeping their records, or handing them to lr when it is not nil.
func (c *chunk) parse(p *parser, lr LineRender) {
	p.format = c.formatIn
	if cap(p.fields) < p.format.n+1 {
		p.fields = make([][]byte, 0, p.format.n+1)
	}
	c.recs, c.nums, c.firstSkip = c.recs[:0], c.nums[:0], c.firstSkip[:0]
	c.noFlow, c.skipped, c.used = 0, 0, 0
	if lr != nil {
		b := Batch{Out: c.out, data: c.data, size: len(c.data)}
		lr.Start(&b)
		c.out = b.Out
	}
	line := c.firstLine
	if c.longLine {
		c.lines = 1
		c.skip(line + 1)
		c.formatOut = p.format
		return
	}
	if lr != nil {
		c.parseLines(p, lr)
		return
	}
	for data := c.data; len(data) > 0; {
		i := bytes.IndexByte(data, '\n')
		line++
		// The line is parsed straight into the next slot of recs, which
		// counts only once the line is a record.
		n := len(c.recs)
		if n == cap(c.recs) {
			c.recs = slices.Grow(c.recs, 1)
		}
		p.out = &c.recs[:n+1][n]
		switch p.parse(data[:i]) {
		case lineRecord:
			c.recs = c.recs[:n+1]
			if c.keepRaw {
				c.nums = append(c.nums, p.rawsOf(c.data, data))
			}
		case lineNoFlow:
			c.noFlow++
		default:
			c.skip(line)
		}
		data = data[i+1:]
	}
	c.lines = line - c.firstLine
	c.used = int64(len(c.recs))
	c.formatOut = p.format
}

// parseLines is parse handing each record to lr: a line the fast parse
// reads as its Line, which it fills in place, any other as its Record.
func (c *chunk) parseLines(p *parser, lr LineRender) {
	line := c.firstLine
	l := &p.line
	p.out = &p.rec
	for data := c.data; len(data) > 0; {
		line++
		// A line of the usual shape is read where it starts, its end
		// found as it is read; any other is cut at its newline first.
		if p.format.isDefault {
			if end, ok := scanDefaultAt(data, l); ok {
				// The text runs on to the end of the chunk, for copies
				// in whole blocks.
				l.text = data
				lr.Line(l)
				c.used++
				data = data[min(end+1, len(data)):]
				continue
			}
		}
		i := bytes.IndexByte(data, '\n')
		switch p.parse(data[:i]) {
		case lineRecord:
			lr.Record(&p.rec)
			c.used++
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

// rawsOf returns where the raw values of the record just parsed from the
// line at the start of rest sit in data, the chunk both are in.
func (p *parser) rawsOf(data, rest []byte) [numRaw]raw {
	if !p.rawsInLine {
		return p.rawNumbers(data)
	}
	nums := p.raws
	at := uint32(len(data) - len(rest))
	for k := range nums {
		nums[k].off += at
	}
	return nums
}

// rawNumbers returns where the text of each number of the record just
// parsed sits in data, the chunk its line is in.
func (p *parser) rawNumbers(data []byte) [numRaw]raw {
	var nums [numRaw]raw
	base := uintptr(unsafe.Pointer(unsafe.SliceData(data)))
	for k, f := range rawFields {
		if i := p.format.idx[f]; i >= 0 {
			b := p.fields[i]
			nums[k] = raw{off: uint32(uintptr(unsafe.Pointer(unsafe.SliceData(b))) - base), n: uint32(len(b))}
		}
	}
	return nums
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
		if c := pl.cur; c != nil && pl.next < len(c.recs) {
			r.rec = c.recs[pl.next]
			pl.next++
			return true
		}
		if _, ok := r.nextChunk(); !ok {
			return false
		}
	}
}

// NextBatch returns the next chunk of lines' Batch, with what the Reader's
// Render (see WithRender) left in its Out, or false at EOF or on a read
// error, as Next does. The Batch is valid until the next call. A Reader
// is read either with Next or with NextBatch, never both; NextBatch needs
// a Reader with workers (see Batched).
func (r *Reader) NextBatch() (*Batch, bool) {
	if r.pl == nil {
		return nil, false
	}
	c, ok := r.nextChunk()
	if !ok {
		return nil, false
	}
	pl := r.pl
	pl.next = len(c.recs)
	if pl.render == nil {
		pl.render = pl.makeRender()
	}
	if c.reparsed {
		// A header line changed the format after the chunk was handed
		// out, and it was parsed again here: render it again too.
		pl.renderWith(pl.render, c)
	}
	pl.batch = Batch{Records: c.recs, Out: c.out, data: c.data, nums: c.nums, size: c.size()}
	return &pl.batch, true
}

// Batched reports whether the Reader parses on workers, so that NextBatch
// can read it.
func (r *Reader) Batched() bool { return r.pl != nil }

// nextChunk frees the current chunk, takes the next one in input order,
// counts its lines and makes it current; it returns false at the end of
// the input or on a read error.
func (r *Reader) nextChunk() (*chunk, bool) {
	pl := r.pl
	for {
		if c := pl.cur; c != nil {
			pl.cur = nil
			pl.free <- c
		}
		c, ok := <-pl.order
		if !ok {
			if r.err == nil {
				r.err = pl.feedErr
			}
			return nil, false
		}
		<-c.done
		if c.formatIn != r.format {
			// A header line changed the format after this chunk was
			// handed out: parse it again, here, with the right one.
			c.formatIn, c.reparsed = r.format, true
			if pl.newLines != nil && pl.lines == nil {
				pl.lines = pl.newLines()
			}
			recovering(c, func() { c.parse(&r.parser, pl.lines) })
		}
		r.format = c.formatOut
		r.stats.Lines += c.lines
		r.stats.Used += c.used
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
			return nil, false
		}
		pl.cur, pl.next = c, 0
		return c, true
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
