package flowlog

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// messyInput is a few megabytes of lines of every kind a Reader meets:
// records, malformed lines, blank, NODATA and SKIPDATA lines, CRLF ends,
// over-long lines, and header lines that change the format midway.
func messyInput(lines int) []byte {
	rng := rand.New(rand.NewPCG(3, 4))
	var b bytes.Buffer
	custom := "srcaddr dstaddr bytes start end action account-id"
	for i := range lines {
		switch k := rng.IntN(1000); {
		case k < 3:
			b.WriteString("not a flow record at all\n")
		case k < 5:
			b.WriteString(strings.Repeat("9", 300) + "\n") // over the test's line limit
		case k < 7:
			b.WriteString("\n")
		case k < 9:
			b.WriteString("2 123456789012 eni-1 - - - - - - - 1600000000 1600000060 - NODATA\n")
		case k == 9:
			b.WriteString(custom + "\n")
			custom, _ = strings.CutPrefix(custom, "x")
		case k == 10:
			b.WriteString(strings.Join(DefaultFields(), " ") + "\n")
		case k < 20:
			fmt.Fprintf(&b, "10.0.%d.%d 10.1.0.%d %d 1600000000 1600000060 ACCEPT %d\r\n", i%200, i%250, i%7, i, 100+i%3)
		default:
			fmt.Fprintf(&b, "2 %d eni-%x 10.0.%d.%d 2001:db8::%x %d %d 6 %d %d 1600000000 1600000060 ACCEPT OK\n",
				123456789000+i%5, i%30, i%200, i%250, i%999, 1024+i%60000, 443, i%10, i*3)
		}
	}
	return b.Bytes()
}

func readEvery(t *testing.T, in io.Reader, opts ...Option) ([]Record, Stats, error) {
	t.Helper()
	r, err := NewReader(in, opts...)
	require.NoError(t, err)
	defer r.Close()
	var recs []Record
	for r.Next() {
		recs = append(recs, *r.Record())
	}
	return recs, r.Stats(), r.Err()
}

// collectLines is a LineRender that keeps each chunk's records in the
// chunk's Out, a Line made into its Record, and counts the Lines.
type collectLines struct {
	recs  *[]Record
	lines int
}

func (c *collectLines) Line(l *Line) {
	var rec Record
	l.Record(&rec)
	*c.recs = append(*c.recs, rec)
	c.lines++
}

func (c *collectLines) Record(rec *Record) { *c.recs = append(*c.recs, *rec) }

func (c *collectLines) Start(b *Batch) {
	recs, _ := b.Out.(*[]Record)
	if recs == nil {
		recs = new([]Record)
		b.Out = recs
	}
	*recs = (*recs)[:0]
	c.recs = recs
}

// readLines is readEvery through a LineRender, with workers.
func readLines(t *testing.T, in io.Reader, opts ...Option) ([]Record, Stats, error, int) {
	t.Helper()
	var renders []*collectLines
	var mu sync.Mutex
	r, err := NewReader(in, append(opts, WithLineRender(func() LineRender {
		mu.Lock()
		defer mu.Unlock()
		renders = append(renders, &collectLines{})
		return renders[len(renders)-1]
	}))...)
	require.NoError(t, err)
	defer r.Close()
	var recs []Record
	for {
		b, ok := r.NextBatch()
		if !ok {
			break
		}
		require.Empty(t, b.Records, "a LineRender's chunks keep no record")
		recs = append(recs, *b.Out.(*[]Record)...)
	}
	// A worker may start, and make its LineRender, only now.
	mu.Lock()
	defer mu.Unlock()
	lines := 0
	for _, c := range renders {
		lines += c.lines
	}
	return recs, r.Stats(), r.Err(), lines
}

// TestWorkersMatchSequential reads the same messy input with and without
// workers, plain, gzip and broken midway, and wants the same records,
// stats, skipped line numbers and errors.
func TestWorkersMatchSequential(t *testing.T) {
	t.Parallel()
	data := messyInput(30000)
	require.Greater(t, len(data), 4*lineChunkBytes, "the input spans many chunks of either size")
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(data)
	_ = zw.Close()
	// Without CRLF ends, most lines are copied in runs (appendBlock).
	lf := bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n"))
	corrupt := append([]byte(nil), gz.Bytes()...)
	corrupt[len(corrupt)/2] ^= 0xff
	tests := []struct {
		name  string
		in    func() io.Reader
		limit int // the line limit; 200 when 0
	}{
		{"plain", func() io.Reader { return bytes.NewReader(data) }, 0},
		{"LF only", func() io.Reader { return bytes.NewReader(lf) }, 0},
		{"LF only, default line limit", func() io.Reader { return bytes.NewReader(lf) }, DefaultMaxLineBytes},
		{"gzip", func() io.Reader { return bytes.NewReader(gz.Bytes()) }, 0},
		{"one byte at a time", func() io.Reader { return iotest.OneByteReader(bytes.NewReader(data[:len(data)/100])) }, 0},
		{"corrupt gzip", func() io.Reader { return bytes.NewReader(corrupt) }, 0},
		{"read error", func() io.Reader {
			return io.MultiReader(bytes.NewReader(data[:len(data)/3]), iotest.ErrReader(io.ErrClosedPipe))
		}, 0},
		{"no final newline", func() io.Reader { return bytes.NewReader(data[:len(data)-1]) }, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			limit := cmp.Or(tt.limit, 200)
			want, wantStats, wantErr := readEvery(t, tt.in(), WithMaxLineBytes(limit))
			require.Positive(t, wantStats.Skipped)
			for _, workers := range []int{2, 5} {
				got, gotStats, gotErr := readEvery(t, tt.in(), WithMaxLineBytes(limit), WithWorkers(workers))
				require.Equal(t, len(want), len(got), "workers %d", workers)
				require.Equal(t, want, got, "workers %d", workers)
				require.Equal(t, wantStats, gotStats, "workers %d", workers)
				if wantErr == nil {
					require.NoError(t, gotErr)
				} else {
					require.EqualError(t, gotErr, wantErr.Error())
				}
				// A LineRender sees the same records, most as Lines.
				got, gotStats, gotErr, lines := readLines(t, tt.in(), WithMaxLineBytes(limit), WithWorkers(workers))
				require.Equal(t, want, got, "workers %d, line render", workers)
				require.Equal(t, wantStats, gotStats, "workers %d, line render", workers)
				require.Greater(t, lines, len(want)/2, "workers %d, line render", workers)
				if wantErr == nil {
					require.NoError(t, gotErr)
				} else {
					require.EqualError(t, gotErr, wantErr.Error())
				}
			}
		})
	}
}

// TestWorkersStopOnClose leaves no goroutine behind when the reader is
// closed midway or its context ends.
func TestWorkersStopOnClose(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	data := messyInput(30000)
	r, err := NewReader(bytes.NewReader(data), WithWorkers(2))
	require.NoError(t, err)
	for range 10 {
		require.True(t, r.Next())
	}
	r.Close()
	r.Close()

	ctx, cancel := context.WithCancel(context.Background())
	r, err = NewReader(bytes.NewReader(data), WithWorkers(2), WithContext(ctx))
	require.NoError(t, err)
	require.True(t, r.Next())
	cancel()
	for r.Next() {
	}
	require.ErrorIs(t, r.Err(), context.Canceled)
}

// TestTextChunkBytes checks that a LineRender's chunks are lineChunkBytes
// on two workers and shrink with more, to chunkBytes, so that the text in
// flight never passes two workers' while the chunks stay as large as
// records' chunks, and that chunks that keep records stay chunkBytes.
func TestTextChunkBytes(t *testing.T) {
	t.Parallel()
	inflight := func(n int) int { return n*chunksPerWorker + 2 }
	require.Equal(t, lineChunkBytes, textChunkBytes(2, true))
	require.Equal(t, chunkBytes, textChunkBytes(64, true))
	prev := lineChunkBytes
	for n := 2; n <= 64; n++ {
		size := textChunkBytes(n, true)
		require.Equal(t, chunkBytes, textChunkBytes(n, false), "%d workers keeping records", n)
		require.LessOrEqual(t, size, prev, "%d workers", n)
		require.GreaterOrEqual(t, size, chunkBytes, "%d workers", n)
		if size > chunkBytes {
			require.LessOrEqual(t, inflight(n)*size, inflight(2)*lineChunkBytes, "%d workers", n)
		}
		prev = size
	}
	require.Less(t, textChunkBytes(4, true), lineChunkBytes)
}

// panicLines is a LineRender that panics at its line at.
type panicLines struct {
	at   int64
	seen *atomic.Int64 // the subtest's own: a closed read's workers may finish their chunks
}

func (p panicLines) Start(*Batch) {}
func (p panicLines) Line(*Line) {
	if p.seen.Add(1) == p.at {
		panic("render bug")
	}
}
func (p panicLines) Record(*Record) { p.Line(nil) }

// TestWorkersRecoverPanics reads with a Render, a LineRender, and the
// flows of a digest, each of which panics at one chunk, the first or a
// later one: the read fails with an error that says so, and every worker
// stops, where the panic, on a goroutine nothing above could recover, took
// the process down.
func TestWorkersRecoverPanics(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	data := messyInput(30000)
	for _, at := range []int64{1, 3000} {
		opts := map[string]func(p panicLines) Option{
			"render": func(p panicLines) Option {
				return WithRender(func() Render {
					return func(b *Batch) {
						for range b.Records {
							p.Line(nil)
						}
					}
				})
			},
			"line render": func(p panicLines) Option { return WithLineRender(func() LineRender { return p }) },
		}
		for name, opt := range opts {
			t.Run(fmt.Sprintf("%s at %d", name, at), func(t *testing.T) {
				r, err := NewReader(bytes.NewReader(data), WithWorkers(2), WithMaxLineBytes(200), opt(panicLines{at, new(atomic.Int64)}))
				require.NoError(t, err)
				for r.Next() {
				}
				require.ErrorContains(t, r.Err(), "panicked: render bug")
				r.Close()
			})
		}
		t.Run(fmt.Sprintf("digest at %d", at), func(t *testing.T) {
			d, _ := compacted(t, poolRecords(5, 5000, 30000), 100, 512) // chunks of 1,024 flows
			p := panicLines{at, new(atomic.Int64)}
			r, err := NewReader(d, WithWorkers(2), WithLineRender(func() LineRender { return p }))
			require.NoError(t, err)
			for r.Next() {
			}
			require.ErrorContains(t, r.Err(), "panicked: render bug")
			r.Close()
			require.NoError(t, d.Close())
		})
	}
}
