// Command gendigest writes a synthetic VPC flow log digest: N version 2
// records between K distinct addresses (IPv4 and IPv6, ACCEPT and REJECT),
// the same bytes for the same flags, for benchmarks and `make bench`.
//
//	go run ./tools/gendigest -lines 1000000 -addrs 20000 -o /tmp/digest.log
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/flowlog/flowlogtest"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "gendigest:", err)
		}
		os.Exit(2)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("gendigest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	lines := fs.Int("lines", 1000, "number of records")
	addrs := fs.Int("addrs", 20000, "number of distinct addresses")
	seed := fs.Uint64("seed", 1, "pseudo-random seed")
	ipv6 := fs.Int("ipv6-every", 10, "every Nth address is IPv6 (-1: IPv4 only)")
	out := fs.String("o", "", "write to `FILE` instead of stdout")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *lines < 0 || *addrs < 1 || *addrs > flowlogtest.MaxAddrs {
		return fmt.Errorf("need -lines >= 0 and 1 <= -addrs <= %d", flowlogtest.MaxAddrs)
	}
	spec := flowlogtest.Spec{Lines: *lines, Addrs: *addrs, Seed: *seed, IPv6Every: *ipv6}
	n, err := write(*out, stdout, spec)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "gendigest: %d lines, %d addresses, %d bytes\n", *lines, *addrs, n)
	return nil
}

// write writes the digest to the file named out, or to stdout when out is
// empty, and returns its size.
func write(out string, stdout io.Writer, spec flowlogtest.Spec) (int64, error) {
	if out == "" {
		return flowlogtest.WriteDigest(stdout, spec)
	}
	f, err := os.Create(out)
	if err != nil {
		return 0, fmt.Errorf("create output: %w", err)
	}
	n, err := flowlogtest.WriteDigest(f, spec)
	if cerr := f.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("close output: %w", cerr)
	}
	return n, err
}
