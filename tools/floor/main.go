// Command floor is the converter's floor: it reads a file line by line and
// writes as many bytes as the graph of that file has to the same sink,
// parsing and formatting nothing. What `convert` takes beyond it is the
// cost of parsing and drawing.
//
//	go run ./tools/floor -bytes N -lines L FILE > /dev/null
//
// With -compare BIN it runs `BIN convert FILE` and itself, both to
// /dev/null, -runs times each, alternating, and prints the best wall time
// of each and their ratio: the best of several runs is the figure least
// disturbed by other work on the machine.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"time"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "floor:", err)
		}
		os.Exit(2)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("floor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int64("bytes", 0, "bytes to write in all, spread over the lines (the graph's size)")
	lines := fs.Int64("lines", 1, "the file's lines, to spread the bytes over")
	compare := fs.String("compare", "", "a vpcflow-grapherd binary to time against the floor")
	runs := fs.Int("runs", 5, "runs of each with -compare")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("want one input file, got %d", fs.NArg())
	}
	in := fs.Arg(0)
	if *compare != "" {
		return compareRuns(*compare, in, *runs, stdout)
	}
	f, err := os.Open(in)
	if err != nil {
		return err
	}
	defer f.Close()
	return floor(f, stdout, *n, *lines)
}

// floor reads the lines of r once and writes total bytes to w, an equal
// share per line (of lines lines) and the rest at the end.
func floor(r io.Reader, w io.Writer, total, lines int64) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	chunk := make([]byte, total/max(lines, 1))
	for i := range chunk {
		chunk[i] = 'x'
	}
	br := bufio.NewReaderSize(r, 128<<10)
	written := int64(0)
	for {
		_, err := br.ReadSlice('\n')
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return err
		}
		if _, err := bw.Write(chunk); err != nil {
			return err
		}
		written += int64(len(chunk))
	}
	if rest := total - written; rest > 0 {
		if _, err := bw.Write(make([]byte, rest)); err != nil {
			return err
		}
	}
	return bw.Flush()
}

func countLines(name string) (int64, error) {
	f, err := os.Open(name)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 128<<10)
	var n int64
	for {
		_, err := br.ReadSlice('\n')
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return 0, err
		}
		n++
	}
}

// compareRuns times `bin convert in` and the floor, both writing to
// /dev/null, and prints the best of runs for each and the ratio.
func compareRuns(bin, in string, runs int, stdout io.Writer) error {
	size, err := graphSize(bin, in)
	if err != nil {
		return err
	}
	lines, err := countLines(in)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	best := func(cmd func() *exec.Cmd) (time.Duration, error) {
		var b time.Duration
		for range runs {
			c := cmd()
			var stderr bytes.Buffer
			c.Stderr = &stderr
			start := time.Now()
			if err := c.Run(); err != nil {
				return 0, fmt.Errorf("%s: %w: %s", c.Args, err, stderr.Bytes())
			}
			if d := time.Since(start); b == 0 || d < b {
				b = d
			}
		}
		return b, nil
	}
	convert, err := best(func() *exec.Cmd { return devNull(exec.Command(bin, "convert", in)) })
	if err != nil {
		return err
	}
	floorTime, err := best(func() *exec.Cmd {
		return devNull(exec.Command(self, "-bytes", fmt.Sprint(size), "-lines", fmt.Sprint(lines), in))
	})
	if err != nil {
		return err
	}
	// How long each process takes to start and exit doing nothing: the
	// service's binary initialises every package it links (the AWS SDK's
	// tables among them) before convert runs, which the floor does not.
	convertStart, err := best(func() *exec.Cmd { return devNull(exec.Command(bin, "convert", "-h")) })
	if err != nil {
		return err
	}
	floorStart, err := best(func() *exec.Cmd { return devNull(exec.Command(self, "-bytes", "0", os.DevNull)) })
	if err != nil {
		return err
	}
	_, err = fmt.Fprint(stdout, summary(convert, floorTime, convertStart, floorStart, runs, size))
	return err
}

// summary is the comparison's report: both times, their ratio, and the
// ratio of the work alone, each process's start and exit taken away.
func summary(convert, floorTime, convertStart, floorStart time.Duration, runs int, size int64) string {
	// On an input too small to time, the rest may be nothing at all.
	rest := "none to compare"
	if convert > convertStart && floorTime > floorStart {
		rest = fmt.Sprintf("%.1fx", (convert-convertStart).Seconds()/(floorTime-floorStart).Seconds())
	}
	return fmt.Sprintf("convert: %.3f s, floor: %.3f s, ratio %.1fx (best of %d, %d graph bytes to /dev/null)\n"+
		"starting and exiting alone: convert %.3f s, floor %.3f s; ratio of the rest %s\n",
		convert.Seconds(), floorTime.Seconds(), convert.Seconds()/floorTime.Seconds(), runs, size,
		convertStart.Seconds(), floorStart.Seconds(), rest)
}

// devNull points the command's output at /dev/null, as a user's
// `> /dev/null` does; the summary on stderr is kept for errors.
func devNull(c *exec.Cmd) *exec.Cmd {
	if f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0); err == nil {
		c.Stdout = f
	}
	return c
}

// graphSize is the size of the graph convert makes of in.
func graphSize(bin, in string) (int64, error) {
	c := exec.Command(bin, "convert", in)
	out, err := c.StdoutPipe()
	if err != nil {
		return 0, err
	}
	if err := c.Start(); err != nil {
		return 0, err
	}
	n, err := io.Copy(io.Discard, out)
	if werr := c.Wait(); werr != nil && err == nil {
		err = werr
	}
	return n, err
}
