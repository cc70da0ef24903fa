package flowtable_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/flowtable"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
)

// TestParseParamsRejects names the parameter of every malformed value.
func TestParseParamsRejects(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"format=png":         "format",
		"group=subnet":       "group",
		"group=cidr:33":      "group",
		"group=cidr:24:129":  "group",
		"group=cidr:x":       "group",
		"action=DROP":        "action",
		"protocol=tcpx":      "protocol",
		"protocol=256":       "protocol",
		"port=65536":         "port",
		"port=20-10":         "port",
		"port=a":             "port",
		"addr=10.0.0.0/33":   "addr",
		"src=example.com":    "src",
		"dst=fe80::1%25eth0": "dst",
		"min_bytes=-1":       "min_bytes",
		"top=0":              "top",
		"top=many":           "top",
		"top=1&top=2":        "top",
		"port=" + strings.Repeat("1,", 300) + "1": "port",
	}
	for query, param := range cases {
		q, err := url.ParseQuery(query)
		require.NoError(t, err)
		_, err = flowtable.ParseParams(q)
		var pe *flowtable.ParamError
		require.ErrorAs(t, err, &pe, query)
		require.Equal(t, param, pe.Param, query)
		require.ErrorIs(t, err, types.ErrInvalidInput)
		require.Contains(t, err.Error(), "parameter "+param+"=")
	}
}

// TestParseParamsCanonical shows equal views have one canonical form, and
// that only view parameters make a view.
func TestParseParamsCanonical(t *testing.T) {
	t.Parallel()
	a := mustParams(t, "protocol=udp,tcp,6&port=443,22,22&addr=10.0.0.7,10.0.0.0/8&action=reject&group=cidr:24")
	b := mustParams(t, "group=CIDR:24:64&addr=10.1.2.3/8,10.0.0.7/32&port=22,443&protocol=6,17&action=REJECT")
	require.Equal(t, a.Canonical(), b.Canonical())
	require.Equal(t, flowtable.SVGCacheOf(a), flowtable.SVGCacheOf(b))
	require.Equal(t, [][2]string{{"group", "cidr:24:64"}, {"action", "REJECT"}, {"protocol", "6,17"}, {"port", "22,443"}, {"addr", "10.0.0.0/8,10.0.0.7"}}, a.Canonical())
	require.NotEqual(t, flowtable.SVGCacheOf(a).Tag, flowtable.SVGCacheOf(mustParams(t, "group=cidr:16")).Tag)

	require.False(t, mustParams(t, "start=x&stop=y").IsView())
	require.False(t, mustParams(t, "format=dot").IsView())
	require.True(t, mustParams(t, "format=json").IsView())
	require.True(t, mustParams(t, "format=dot&group=addr").IsView())
	require.True(t, mustParams(t, "top=5").IsView())
}

// TestAggregateOverCap answers a view over its caps with the counts, never a
// truncated view.
func TestAggregateOverCap(t *testing.T) {
	t.Parallel()
	_, table := graphBoth(t, readFile(t, filepath.Join(goldenDir, "basic.log")))
	_, err := flowtable.Aggregate(context.Background(), fromTable(table), mustParams(t, "group=addr"), flowtable.Limits{MaxNodes: 9})
	var tl *flowtable.TooLargeError
	require.ErrorAs(t, err, &tl)
	require.Equal(t, 10, tl.Nodes)
	require.Contains(t, err.Error(), "10 nodes, more than the limit of 9")
	require.Contains(t, err.Error(), "group=cidr:24")
	require.Contains(t, err.Error(), "top=")

	_, err = flowtable.Aggregate(context.Background(), fromTable(table), mustParams(t, "group=addr"), flowtable.Limits{MaxNodes: 100, MaxEdges: 10})
	require.ErrorAs(t, err, &tl)
	require.Contains(t, err.Error(), "11 edges, more than the limit of 10")

	v, err := flowtable.Aggregate(context.Background(), fromTable(table), mustParams(t, "group=cidr:8:32"), flowtable.Limits{MaxNodes: 9, MaxEdges: 10})
	require.NoError(t, err)
	require.Len(t, v.Nodes, 4)
}

// TestAggregateCancelled stops reading when the context ends.
func TestAggregateCancelled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	recs := randomRecords(newRand(), 20000)
	_, err := flowtable.Aggregate(ctx, fromRecords(recs), mustParams(t, "group=addr"), flowtable.Limits{})
	require.ErrorIs(t, err, context.Canceled)
	openErr := errors.New("no table")
	_, err = flowtable.Aggregate(context.Background(), func() (flowtable.Source, io.Closer, error) { return nil, nil, openErr }, flowtable.Params{}, flowtable.Limits{})
	require.ErrorIs(t, err, openErr)
}

// TestRenderSVG lays views out with the real Graphviz, both engines, and
// parses the result as XML.
func TestRenderSVG(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("dot"); err != nil {
		t.Fatal("Graphviz is not installed: run make graphviz (make test installs it)")
	}
	_, table := graphBoth(t, readFile(t, filepath.Join(goldenDir, "basic.log")))
	v, err := flowtable.Aggregate(context.Background(), fromTable(table), mustParams(t, "group=addr"), flowtable.Limits{})
	require.NoError(t, err)
	big := manyNodes(t, flowtable.DotMaxNodes+20)
	for name, view := range map[string]*flowtable.View{"dot": v, "sfdp": big} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			svg, err := flowtable.RenderSVG(context.Background(), view, testMeta, flowtable.SVGOptions{Timeout: time.Minute})
			require.NoError(t, err)
			titles := svgTitles(t, svg)
			// Graphviz writes one <title> per node and edge, plus the graph's.
			require.Equal(t, 1+len(view.Nodes)+len(view.Edges), len(titles))
		})
	}
	_, err = flowtable.RenderSVG(context.Background(), v, testMeta, flowtable.SVGOptions{Dir: t.TempDir()})
	require.ErrorIs(t, err, flowtable.ErrNoGraphviz)
}

// manyNodes is a view of a ring of n addresses.
func manyNodes(t *testing.T, n int) *flowtable.View {
	t.Helper()
	recs := randomRecords(newRand(), 0)
	for i := range n {
		r := randomRecords(newRand(), 1)[0]
		r.SrcAddr = addrN(i)
		r.DstAddr = addrN((i + 1) % n)
		recs = append(recs, r)
	}
	v, err := flowtable.Aggregate(context.Background(), fromRecords(recs), mustParams(t, "group=addr"), flowtable.Limits{})
	require.NoError(t, err)
	require.Len(t, v.Nodes, n)
	return v
}

// svgTitles parses an SVG and returns the text of its <title> elements.
func svgTitles(t *testing.T, svg []byte) []string {
	t.Helper()
	dec := xml.NewDecoder(strings.NewReader(string(svg)))
	dec.Strict = true
	var titles []string
	var root string
	inTitle := false
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		switch el := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = el.Name.Local
			}
			inTitle = el.Name.Local == "title"
			if inTitle {
				titles = append(titles, "")
			}
		case xml.CharData:
			if inTitle {
				titles[len(titles)-1] += string(el)
			}
		case xml.EndElement:
			inTitle = false
		}
	}
	require.Equal(t, "svg", root)
	return titles
}

// TestSVGCacheSlots shows views share a bounded set of cache slots, and a
// slot holding another view is never served as this one.
func TestSVGCacheSlots(t *testing.T) {
	t.Parallel()
	kinds := map[string]flowtable.SVGCache{}
	var a, b flowtable.SVGCache
	for i := 1; a.Tag == ""; i++ {
		c := flowtable.SVGCacheOf(mustParams(t, fmt.Sprintf("format=svg&min_bytes=%d", i)))
		if prev, ok := kinds[c.Kind]; ok {
			a, b = prev, c
		}
		kinds[c.Kind] = c
		require.Less(t, i, 1000)
	}
	require.LessOrEqual(t, len(kinds), flowtable.SVGCacheSlots)
	require.Equal(t, a.Kind, b.Kind)
	require.NotEqual(t, a.Tag, b.Tag)

	stored, err := io.ReadAll(a.Wrap([]byte("<svg>a</svg>")))
	require.NoError(t, err)
	_, ok := b.Open(bytes.NewReader(stored))
	require.False(t, ok, "the slot holds another view")
	svg, ok := a.Open(bytes.NewReader(stored))
	require.True(t, ok)
	got, err := io.ReadAll(svg)
	require.NoError(t, err)
	require.Equal(t, "<svg>a</svg>", string(got))
	_, ok = a.Open(strings.NewReader("short"))
	require.False(t, ok)
}
