// Command gensample writes the sample of VPC Flow Logs the quick start graphs:
// a small but realistic tree in the layouts AWS delivers to S3 (three
// accounts, several network interfaces, both key layouts, gzip and plain
// files, a custom format, NODATA and SKIPDATA lines, records inside and
// outside the sample's hour), the digest that hour must compact to, and a
// README saying which window to ask for.
//
// The output is deterministic: the same program writes the same bytes, so the
// sample is checked in and a test proves it is up to date. Regenerate it from
// the repository root with:
//
//	go run ./tools/gensample
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "gensample:", err)
		}
		os.Exit(2)
	}
}

// run parses the flags and writes the sample.
func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("gensample", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "testdata/flowlogs", "folder to write the sample to; its AWSLogs folder is replaced")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	s := newSample()
	if err := s.write(*out); err != nil {
		return err
	}
	_, err := fmt.Fprintf(stdout, "wrote %d files (%d flow records, %d in the window, %d digest lines) to %s\n",
		len(s.files), s.countRecords(), s.countInWindow(), len(expectedDigest(s.allRecords(), windowStart, windowStop)), *out)
	return err
}
