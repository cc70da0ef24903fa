package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"image"
	"image/png"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/stretchr/testify/require"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/flowlog/flowlogtest"
)

var updateScreenshots = flag.Bool("update-screenshots", false, "write the page's screenshots to docs/img")

// sampleWindow is the hour the sample flow logs in testdata/flowlogs cover.
const sampleWindow = "start=2026-11-01T10:00:00Z&stop=2026-11-01T11:00:00Z"

// binary is the service, built once for the browser tests.
var binary string

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "grapherd-web")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "vpcflow-grapherd")
	build := exec.Command("go", "build", "-o", binary, "..")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// serve runs the service binary on a loopback port with the environment
// given until the test ends, and answers its URL.
func serve(t *testing.T, env map[string]string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	cmd := exec.Command(binary)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "RUNTIME_HTTPSERVER_ADDRESS=" + addr,
		"RUNTIME_STATS_OUTPUT=NULLSTAT", "GRAPHERD_DATA_DIR=" + t.TempDir()}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("service output:\n%s", out.String())
		}
	})
	base := "http://" + addr
	deadline := time.Now().Add(20 * time.Second)
	for {
		if res, err := http.Get(base + "/healthz"); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return base
			}
		}
		select {
		case err := <-done:
			t.Fatalf("service exited before it was ready: %v\n%s", err, out.String())
		default:
		}
		require.True(t, time.Now().Before(deadline), "service not ready in time")
		time.Sleep(20 * time.Millisecond)
	}
}

// serveSample serves graphs of the sample flow logs, made by the built-in
// digester as in make run.
func serveSample(t *testing.T, env map[string]string) string {
	t.Helper()
	dir, err := filepath.Abs("../testdata/flowlogs")
	require.NoError(t, err)
	if env == nil {
		env = map[string]string{}
	}
	env["FLOW_LOGS_DIR"] = dir
	return serve(t, env)
}

// jsonView is the part of a JSON view the tests compare with the page.
type jsonView struct {
	Attributes struct {
		Nodes int `json:"nodes"`
		Edges int `json:"edges"`
	} `json:"attributes"`
	Nodes []struct {
		Key        string         `json:"key"`
		Attributes map[string]any `json:"attributes"`
	} `json:"nodes"`
	Edges []struct {
		Key        string         `json:"key"`
		Source     string         `json:"source"`
		Target     string         `json:"target"`
		Attributes map[string]any `json:"attributes"`
	} `json:"edges"`
}

func get(t *testing.T, target string) (int, http.Header, []byte) {
	t.Helper()
	res, err := http.Get(target)
	require.NoError(t, err)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res.StatusCode, res.Header, body
}

// fetchView asks the service itself for the JSON view the page drew.
func fetchView(t *testing.T, base, query string) jsonView {
	t.Helper()
	status, _, body := get(t, base+"/?"+query+"&format=json")
	require.Equal(t, http.StatusOK, status, "%s", body)
	var v jsonView
	require.NoError(t, json.Unmarshal(body, &v))
	require.Equal(t, len(v.Nodes), v.Attributes.Nodes)
	require.Equal(t, len(v.Edges), v.Attributes.Edges)
	return v
}

// makeGraph asks for a window's graph through the API and waits until it
// is made.
func makeGraph(t *testing.T, base, window string) {
	t.Helper()
	res, err := http.Post(base+"/?"+window, "", nil)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusAccepted, res.StatusCode)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		status, _, body := get(t, base+"/?"+window)
		if status == http.StatusOK {
			return
		}
		require.Equal(t, http.StatusNoContent, status, "%s", body)
		require.True(t, time.Now().Before(deadline), "graph not made in time")
		time.Sleep(50 * time.Millisecond)
	}
}

// page is one tab of a headless Chromium of its own, with its console and
// uncaught exceptions logged when the test fails.
type page struct {
	t    *testing.T
	ctx  context.Context
	base string
	mu   sync.Mutex
	logs []string
}

func openPage(t *testing.T, base string) *page {
	t.Helper()
	path, err := exec.LookPath("chromium")
	require.NoError(t, err, "the browser tests need Debian's chromium: make chromium installs it")
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 900),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		// WebGL without a GPU: ANGLE on SwiftShader, the software renderer
		// Debian's chromium ships.
		chromedp.Flag("use-angle", "swiftshader"),
		chromedp.Flag("enable-unsafe-swiftshader", true),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 4*time.Minute)
	p := &page{t: t, ctx: ctx, base: base}
	console := chromedp.Events(ctx, runtime.ConsoleAPICalled)
	exceptions := chromedp.Events(ctx, runtime.ExceptionThrown)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for ev, err := range console {
			if err != nil {
				return
			}
			var args []string
			for _, a := range ev.Args {
				args = append(args, string(a.Value)+a.Description)
			}
			p.log("console.%s: %s", ev.Type, strings.Join(args, " "))
		}
	}()
	go func() {
		defer wg.Done()
		for ev, err := range exceptions {
			if err != nil {
				return
			}
			d := ev.ExceptionDetails
			text := d.Text
			if d.Exception != nil {
				text += " " + d.Exception.Description
			}
			p.log("exception: %s", text)
		}
	}()
	t.Cleanup(func() {
		cancelTimeout()
		cancelTab()
		cancelAlloc()
		wg.Wait()
		if t.Failed() {
			p.mu.Lock()
			t.Logf("browser log:\n%s", strings.Join(p.logs, "\n"))
			p.mu.Unlock()
		}
	})
	return p
}

func (p *page) log(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.logs = append(p.logs, fmt.Sprintf(format, args...))
}

func (p *page) open(path string) {
	p.t.Helper()
	require.NoError(p.t, chromedp.Do(p.ctx, chromedp.Navigate(p.base+path)))
}

func (p *page) eval(expr string) string {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](expr))
	require.NoError(p.t, err, expr)
	return v
}

func (p *page) evalBool(expr string) bool {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[bool](expr))
	require.NoError(p.t, err, expr)
	return v
}

func (p *page) do(actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	require.NoError(p.t, chromedp.Do(p.ctx, actions...))
}

// settle waits until the page has finished with its view: an end state,
// and for ready, the counts it drew. It answers the state.
func (p *page) settle() string {
	p.t.Helper()
	state, err := chromedp.Run(p.ctx, chromedp.Poll[string](`(() => {
		const s = document.documentElement.dataset.state;
		if (!["ready", "failed", "notfound", "error"].includes(s)) return false;
		if (s === "ready" && document.getElementById("graph").dataset.nodes === undefined) return false;
		return s;
	})()`, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(2*time.Minute)))
	require.NoError(p.t, err, "the page did not settle; it says %q", p.message())
	return state
}

func (p *page) message() string {
	v, _ := chromedp.Run(p.ctx, chromedp.Evaluate[string](`document.getElementById("message").textContent`))
	return v
}

// requireDrawn checks the page drew the view: the counts on #graph equal
// the service's own JSON view of the page's query, sigma's WebGL canvases
// are there with live contexts, and the drawing has coloured pixels (nodes
// and edges are coloured; the background and labels are not).
func (p *page) requireDrawn(query string) jsonView {
	p.t.Helper()
	want, err := url.ParseQuery(query)
	require.NoError(p.t, err)
	// The page's address bar says which view it is on: wait for this one.
	deadline := time.Now().Add(30 * time.Second)
	for {
		require.Equal(p.t, "ready", p.settle(), "the page says %q", p.message())
		got, err := url.ParseQuery(p.pageQuery())
		require.NoError(p.t, err)
		if reflect.DeepEqual(want, got) {
			break
		}
		require.True(p.t, time.Now().Before(deadline), "the page shows %v, not %v", got, want)
		time.Sleep(50 * time.Millisecond)
	}
	view := fetchView(p.t, p.base, query)
	at := p.eval(`location.search`)
	require.Equal(p.t, strconv.Itoa(len(view.Nodes)), p.eval(`document.getElementById("graph").dataset.nodes`), "nodes drawn at %s", at)
	require.Equal(p.t, strconv.Itoa(len(view.Edges)), p.eval(`document.getElementById("graph").dataset.edges`), "edges drawn at %s", at)
	require.True(p.t, p.evalBool(`["nodes", "edges"].every((layer) => {
		const c = document.querySelector("#graph canvas.sigma-" + layer);
		const gl = c && (c.getContext("webgl2") || c.getContext("webgl"));
		return !!gl && !gl.isContextLost();
	})`), "sigma's WebGL canvases are missing or lost")
	if len(view.Nodes) > 0 {
		require.Greater(p.t, p.colouredPixels(), 200, "the graph area has (almost) no coloured pixels: nothing was drawn")
	}
	return view
}

// pageQuery is the view query of the page's address bar (its own
// parameters, such as a selection, left out).
func (p *page) pageQuery() string {
	p.t.Helper()
	u, err := url.Parse(p.eval(`location.href`))
	require.NoError(p.t, err)
	q := u.Query()
	for _, k := range []string{"node", "edge", "q"} {
		q.Del(k)
	}
	return q.Encode()
}

func (p *page) colouredPixels() int {
	p.t.Helper()
	shot, err := chromedp.Run(p.ctx, chromedp.Screenshot(chromedp.ID("graph")))
	require.NoError(p.t, err)
	img, err := png.Decode(bytes.NewReader(shot))
	require.NoError(p.t, err)
	return countColoured(img)
}

func countColoured(img image.Image) int {
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			hi, lo := max(r, g, bl), min(r, g, bl)
			if hi-lo > 60<<8 {
				n++
			}
		}
	}
	return n
}

// change sets a view control as a person would, firing its change event.
func (p *page) change(id, value string) {
	p.t.Helper()
	p.do(chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => {
		const c = document.getElementById(%q);
		c.value = %q;
		c.dispatchEvent(new Event("change", {bubbles: true}));
	})()`, id, value)))
}

func (p *page) screenshot(name string) {
	p.t.Helper()
	if !*updateScreenshots {
		return
	}
	shot, err := chromedp.Run(p.ctx, chromedp.CaptureScreenshot())
	require.NoError(p.t, err)
	require.NoError(p.t, os.MkdirAll("../docs/img", 0o755))
	require.NoError(p.t, os.WriteFile(filepath.Join("../docs/img", name), shot, 0o644))
}

// search finds text with the page's search box and answers the camera
// (x, y, ratio) the page moved to.
func (p *page) search(text string) [3]float64 {
	p.t.Helper()
	p.do(chromedp.Evaluate[chromedp.Void](`document.getElementById("q").value = ""`), chromedp.SendKeys(chromedp.ID("q"), text),
		chromedp.Click(chromedp.CSS(`#search button[type="submit"]`)))
	require.Equal(p.t, text, p.eval(`document.getElementById("q").value`))
	focus, err := chromedp.Run(p.ctx, chromedp.Poll[string](`document.getElementById("graph").dataset.focus`,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(30*time.Second)))
	require.NoError(p.t, err)
	var camera [3]float64
	parts := strings.Split(focus, ",")
	require.Len(p.t, parts, 3)
	for i, s := range parts {
		camera[i], err = strconv.ParseFloat(s, 64)
		require.NoError(p.t, err)
	}
	return camera
}

// contains tells whether a node's label (an address or a network) shares
// an address with prefix.
func contains(prefix netip.Prefix, label string) bool {
	if p, err := netip.ParsePrefix(label); err == nil {
		return prefix.Overlaps(p)
	}
	a, err := netip.ParseAddr(label)
	return err == nil && prefix.Contains(a)
}

func TestPageMakesSampleGraphAndFollowsItsControls(t *testing.T) {
	base := serveSample(t, nil)
	p := openPage(t, base)

	// Opening the page with a window makes its graph: nothing else asks.
	p.open("/ui/?" + sampleWindow + "&group=cidr:24")
	grouped := p.requireDrawn(sampleWindow + "&group=cidr:24")
	require.NotEmpty(t, grouped.Nodes)
	status, _, _ := get(t, base+"/?"+sampleWindow)
	require.Equal(t, http.StatusOK, status, "the page made the graph")
	require.Contains(t, p.message(), fmt.Sprintf("%d nodes, %d edges", len(grouped.Nodes), len(grouped.Edges)))
	p.screenshot("ui-grouped.png")

	// A filter fetches and draws the matching view, and lands in the URL.
	p.change("action", "REJECT")
	rejected := p.requireDrawn(sampleWindow + "&group=cidr:24&action=REJECT")
	require.Less(t, len(rejected.Edges), len(grouped.Edges))
	require.Contains(t, p.eval(`location.search`), "action=REJECT")
	for _, e := range rejected.Edges {
		require.EqualValues(t, 0, e.Attributes["accepted"])
	}

	// Per address, filters cleared.
	p.do(chromedp.Click(chromedp.ID("reset")))
	p.requireDrawn(p.pageQuery())
	p.change("group", "addr")
	addrs := p.requireDrawn(sampleWindow + "&group=addr")
	require.Greater(t, len(addrs.Nodes), len(grouped.Nodes))

	// Search highlights the nodes in a network, or one address, and moves
	// the camera to them.
	net := netip.MustParsePrefix("203.0.113.0/24")
	var matches []string
	for _, n := range addrs.Nodes {
		if contains(net, n.Key) {
			matches = append(matches, n.Key)
		}
	}
	require.Greater(t, len(matches), 1)
	camera := p.search(net.String())
	require.Equal(t, strconv.Itoa(len(matches)), p.eval(`document.getElementById("graph").dataset.highlighted`))
	require.Contains(t, p.eval(`location.search`), "q=203.0.113.0%2F24")

	// A match opens its details.
	p.do(chromedp.Click(chromedp.CSS(`#matches button`)))
	selected := p.eval(`document.getElementById("graph").dataset.selected || ""`)
	require.Contains(t, matches, selected)
	require.Equal(t, selected, p.eval(`document.getElementById("details-title").textContent`))
	require.False(t, p.evalBool(`document.getElementById("details").hidden`))
	require.Contains(t, p.eval(`document.getElementById("details-body").textContent`), "Busiest peers")
	require.Contains(t, p.eval(`location.search`), "node="+url.QueryEscape(selected))
	p.screenshot("ui-addresses.png")

	zoomed := p.search(selected)
	require.Equal(t, "1", p.eval(`document.getElementById("graph").dataset.highlighted`))
	require.Less(t, zoomed[2], 0.5, "the camera zoomed in on the address")
	require.NotEqual(t, camera, zoomed, "the camera moved to the address")

	// The camera is centred on the address, so a click in the middle of
	// the graph lands on it; Escape closes the details first.
	p.do(chromedp.KeyEvent(kb.Escape))
	require.True(t, p.evalBool(`document.getElementById("details").hidden`))
	var box struct{ X, Y, Width, Height float64 }
	require.NoError(t, json.Unmarshal([]byte(p.eval(`JSON.stringify(document.getElementById("graph").getBoundingClientRect())`)), &box))
	p.do(chromedp.MouseClickXY(box.X+box.Width/2, box.Y+box.Height/2))
	require.Equal(t, selected, p.eval(`document.getElementById("graph").dataset.selected || ""`), "a click on the node selects it")
	require.False(t, p.evalBool(`document.getElementById("details").hidden`))

	// Every download link of the view answers its format.
	links := p.eval(`JSON.stringify([...document.querySelectorAll("#downloads a")].map((a) => a.href))`)
	var hrefs []string
	require.NoError(t, json.Unmarshal([]byte(links), &hrefs))
	require.Len(t, hrefs, 4)
	for _, href := range hrefs {
		status, header, body := get(t, href)
		require.Equal(t, http.StatusOK, status, "%s: %s", href, body)
		format := map[string]string{"dot": "text/vnd.graphviz", "json": "application/json", "csv": "text/csv", "svg": "image/svg+xml"}
		u, err := url.Parse(href)
		require.NoError(t, err)
		require.Contains(t, header.Get("Content-Type"), format[u.Query().Get("format")], href)
		require.Equal(t, "addr", u.Query().Get("group"), href)
	}

	// Drilling into a network shows its addresses.
	p.change("group", "cidr:24")
	p.requireDrawn(sampleWindow + "&group=cidr:24")
	p.search(net.String())
	p.do(chromedp.Click(chromedp.CSS(`#matches button`)))
	network := p.eval(`document.getElementById("details-title").textContent`)
	require.True(t, contains(net, network), network)
	p.do(chromedp.Click(chromedp.ID("drill")))
	drilled := p.requireDrawn(sampleWindow + "&group=addr&addr=" + url.QueryEscape(network))
	query := p.pageQuery()
	require.Contains(t, query, "group=addr")
	require.Contains(t, query, "addr="+url.QueryEscape(network))
	for _, e := range drilled.Edges {
		require.True(t, contains(net, e.Source) || contains(net, e.Target), "%s -> %s", e.Source, e.Target)
	}
}

func TestPageOpensASharedView(t *testing.T) {
	base := serveSample(t, nil)
	makeGraph(t, base, sampleWindow)
	view := fetchView(t, base, sampleWindow+"&group=cidr:24&action=REJECT")
	require.NotEmpty(t, view.Edges)
	edge := view.Edges[0]

	p := openPage(t, base)
	p.open("/ui/?" + sampleWindow + "&group=cidr:24&action=REJECT&edge=" + edge.Key)
	p.requireDrawn(sampleWindow + "&group=cidr:24&action=REJECT")
	require.Equal(t, "cidr:24", p.eval(`document.getElementById("group").value`))
	require.Equal(t, "REJECT", p.eval(`document.getElementById("action").value`))
	require.Equal(t, edge.Key, p.eval(`document.getElementById("graph").dataset.selected`))
	details := p.eval(`document.getElementById("details-body").textContent`)
	require.Contains(t, details, edge.Source)
	require.Contains(t, details, edge.Target)
	require.Contains(t, details, fmt.Sprintf("Flows%v", edge.Attributes["flows"]))
	first := time.Unix(int64(edge.Attributes["first"].(float64)), 0).UTC().Format(time.RFC3339)
	require.Contains(t, details, first)
}

func TestPageShowsWhyAGraphFailed(t *testing.T) {
	base := serveSample(t, nil)
	// No flow logs cover this window: the built-in digester fails it.
	const window = "start=2020-01-01T00:00:00Z&stop=2020-01-01T01:00:00Z"
	p := openPage(t, base)
	p.open("/ui/?" + window)
	require.Equal(t, "failed", p.settle(), "the page says %q", p.message())

	status, _, body := get(t, base+"/?"+window)
	require.Equal(t, http.StatusFailedDependency, status)
	var reason struct {
		Message string `json:"message"`
	}
	require.NoError(t, json.Unmarshal(body, &reason))
	require.NotEmpty(t, reason.Message)
	require.Equal(t, reason.Message, p.message())
	require.False(t, p.evalBool(`"nodes" in document.getElementById("graph").dataset`), "a failed view reports no counts")
	require.Equal(t, "Try again", p.eval(`document.querySelector("#actions button").textContent`))
}

func TestPageDrawsALargeViewWithinFiveSeconds(t *testing.T) {
	// One flow log file of random pairs among 5,000 addresses, laid out as
	// AWS delivers it: about as many edges as records.
	dir := t.TempDir()
	folder := filepath.Join(dir, "AWSLogs/123456789012/vpcflowlogs/us-east-1/2020/09/13")
	require.NoError(t, os.MkdirAll(folder, 0o755))
	var logs bytes.Buffer
	logs.WriteString("version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n")
	_, err := flowlogtest.WriteDigest(&logs, flowlogtest.Spec{Lines: 20200, Addrs: 5000, Seed: 3})
	require.NoError(t, err)
	name := "123456789012_vpcflowlogs_us-east-1_fl-0123456789abcdef0_20200913T1230Z_0a1b2c3d.log"
	require.NoError(t, os.WriteFile(filepath.Join(folder, name), logs.Bytes(), 0o644))
	base := serve(t, map[string]string{"FLOW_LOGS_DIR": dir})
	const window = "start=2020-09-13T12:00:00Z&stop=2020-09-13T13:00:00Z"
	makeGraph(t, base, window)
	view := fetchView(t, base, window+"&group=addr")
	require.GreaterOrEqual(t, len(view.Nodes), 4990)
	require.GreaterOrEqual(t, len(view.Edges), 20000)

	p := openPage(t, base)
	p.open("/ui/?" + window + "&group=addr")
	p.requireDrawn(window + "&group=addr")
	sinceRequest, err := strconv.Atoi(p.eval(`document.getElementById("graph").dataset.firstFrameMs`))
	require.NoError(t, err)
	sinceNavigation, err := strconv.Atoi(p.eval(`document.getElementById("graph").dataset.firstFrameAt`))
	require.NoError(t, err)
	drawing := p.eval(`document.getElementById("graph").dataset.drawMs`)
	t.Logf("%d nodes, %d edges: first frame %d ms after the page was opened, %d ms after the view was asked for, of which %s ms drawing",
		len(view.Nodes), len(view.Edges), sinceNavigation, sinceRequest, drawing)
	// The view reaches its first frame within 5 s of being asked for; the
	// figure from opening the page, its own loading included, is logged.
	require.LessOrEqual(t, sinceRequest, 5000, "first frame of the view later than 5 s")
	// The page stays responsive while ForceAtlas2 runs in its worker.
	if p.eval(`document.getElementById("graph").dataset.layout`) == "stopped" {
		p.do(chromedp.Click(chromedp.ID("layout")))
	}
	require.Equal(t, "running", p.eval(`document.getElementById("graph").dataset.layout`))
	require.Equal(t, "Stop layout", p.eval(`document.getElementById("layout").textContent`))
	p.do(chromedp.Click(chromedp.ID("layout")))
	require.Equal(t, "stopped", p.eval(`document.getElementById("graph").dataset.layout`))
	require.Equal(t, "Run layout", p.eval(`document.getElementById("layout").textContent`))
}

func TestPageOffersSmallerViewsOverTheCap(t *testing.T) {
	// The sample has 31 addresses and 15 /24 networks.
	base := serveSample(t, map[string]string{"GRAPHERD_VIEW_MAX_NODES": "20"})
	p := openPage(t, base)
	p.open("/ui/?" + sampleWindow + "&group=addr")
	require.Equal(t, "error", p.settle())
	status, _, body := get(t, base+"/?"+sampleWindow+"&group=addr&format=json")
	require.Equal(t, http.StatusUnprocessableEntity, status)
	var reason struct {
		Message string `json:"message"`
	}
	require.NoError(t, json.Unmarshal(body, &reason))
	require.Equal(t, reason.Message, p.message())
	require.False(t, p.evalBool(`"nodes" in document.getElementById("graph").dataset`), "a view over the cap reports no counts")
	offers := p.eval(`[...document.querySelectorAll("#actions button")].map((b) => b.textContent).join("|")`)
	require.Equal(t, "Group by /28|Group by /24|Top 10 edges", offers)

	p.do(chromedp.Click(chromedp.CSS(`#actions button:nth-child(3)`)))
	top := p.requireDrawn(sampleWindow + "&group=addr&top=10")
	require.Len(t, top.Edges, 10)
	p.do(chromedp.Evaluate[chromedp.Void](`document.getElementById("top").value = ""`), chromedp.Click(chromedp.CSS(`#view button[type="submit"]`)))
	require.Equal(t, "error", p.settle())
	p.do(chromedp.Click(chromedp.CSS(`#actions button:nth-child(2)`)))
	p.requireDrawn(sampleWindow + "&group=cidr:24")
}
