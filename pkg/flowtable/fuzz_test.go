package flowtable_test

import (
	"context"
	"net/url"
	"path/filepath"
	"testing"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/flowtable"
)

// FuzzReaders feeds arbitrary bytes to the table and DOT readers and the
// aggregation: they end in a record stream or an error, never a panic.
func FuzzReaders(f *testing.F) {
	dot, table := graphBoth(f, readFile(f, filepath.Join(goldenDir, "basic.log")))
	f.Add(table)
	f.Add(dot)
	f.Add(table[:len(table)/2])
	f.Add([]byte("GVT1\x7f\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, open := range []flowtable.Open{fromTable(b), fromDOT(b)} {
			_, _ = flowtable.Aggregate(context.Background(), open, flowtable.Params{Group: flowtable.Group{Kind: flowtable.GroupENI}}, flowtable.Limits{})
		}
	})
}

// FuzzParseParams parses arbitrary queries: a Params or a ParamError.
func FuzzParseParams(f *testing.F) {
	for _, gv := range goldenViews {
		f.Add(gv.query)
	}
	f.Add("port=1-2,3&protocol=tcp,256&addr=::/0")
	f.Fuzz(func(t *testing.T, query string) {
		q, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		p, err := flowtable.ParseParams(q)
		if err != nil {
			return
		}
		// The canonical form parses back to the same view.
		again := url.Values{}
		for _, kv := range p.Canonical() {
			again.Set(kv[0], kv[1])
		}
		p2, err := flowtable.ParseParams(again)
		if err != nil {
			t.Fatalf("canonical form %v of %q does not parse: %v", again, query, err)
		}
		if !equalCanonical(p.Canonical(), p2.Canonical()) {
			t.Fatalf("canonical form of %q changes when parsed again: %v then %v", query, p.Canonical(), p2.Canonical())
		}
	})
}

func equalCanonical(a, b [][2]string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
