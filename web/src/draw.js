// Drawing a view with sigma (WebGL): sizes and colours from the traffic,
// ForceAtlas2 in a web worker, search and selection through the renderer's
// reducers. The graph container's data attributes say what was drawn, for
// people's tools and the browser tests alike.
import Graph from "graphology";
import Sigma from "sigma";
import forceAtlas2 from "graphology-layout-forceatlas2";
import FA2Layout from "graphology-layout-forceatlas2/worker";
import circlepack from "graphology-layout/circlepack";
import { overlaps, parsePrefix } from "./ip.js";

export const COLORS = {
  node: "#3b6ea8",
  match: "#8250df",
  dim: "#d5d9df",
  dimEdge: "#e8eaee",
  accept: "#1a7f37",
  reject: "#cf222e",
  mixed: "#d4730b",
};

// edgeColor follows the readable DOT: green when every flow was accepted,
// red when every flow was rejected, orange otherwise.
export function edgeColor(a) {
  if (a.rejected === 0 && a.accepted > 0) return COLORS.accept;
  if (a.accepted === 0 && a.rejected > 0) return COLORS.reject;
  return COLORS.mixed;
}

// seeded is a small deterministic generator (mulberry32), so a view without
// server positions always starts from the same picture.
function seeded(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// prepare sets, on the serialized view before it is imported (cheaper than
// updating a live graph), what sigma draws from its attributes: node size by
// traffic (area grows with bytes), edge width by the log of bytes, edge
// colour by action. It answers whether the server gave every node a
// position.
function prepare(data) {
  let maxTraffic = 1;
  let maxBytes = 1;
  let positioned = true;
  for (const { attributes: a } of data.nodes) {
    maxTraffic = Math.max(maxTraffic, (a.bytes_in || 0) + (a.bytes_out || 0));
    if (!Number.isFinite(a.x) || !Number.isFinite(a.y)) positioned = false;
  }
  for (const { attributes: a } of data.edges) maxBytes = Math.max(maxBytes, a.bytes || 0);
  // Sizes are in screen pixels: the more nodes, the smaller they start.
  const maxSize = Math.min(18, Math.max(3, 100 / Math.sqrt(data.nodes.length || 1)));
  const minSize = Math.max(1, maxSize / 5);
  for (const n of data.nodes) {
    const a = n.attributes;
    a.label ??= n.key;
    a.size = minSize + (maxSize - minSize) * Math.sqrt(((a.bytes_in || 0) + (a.bytes_out || 0)) / maxTraffic);
    a.color = COLORS.node;
  }
  const maxWidth = Math.min(5, Math.max(1, maxSize / 3));
  const logMax = Math.log1p(maxBytes);
  for (const { attributes: a } of data.edges) {
    a.size = 0.5 + (maxWidth - 0.5) * (Math.log1p(a.bytes || 0) / logMax);
    a.color = edgeColor(a);
  }
  return positioned;
}

// place gives a view without server positions a seeded circle packing
// that keeps each network's addresses together.
function place(graph) {
  graph.updateEachNodeAttributes((node, a) => ({ ...a, net: String(a.label).split(/[.:]/).slice(0, 2).join(".") }));
  circlepack.assign(graph, { hierarchyAttributes: ["net"], rng: seeded(1) });
}

export class GraphView {
  constructor(container, { onSelect }) {
    this.container = container;
    this.onSelect = onSelect;
    this.matches = new Set();
    this.selected = null;
    this.neighbours = new Set();
    this.layout = null;
    this.layoutTimer = null;
    this.pending = null;
    this.renderer = new Sigma(new Graph(), container, {
      defaultEdgeType: "arrow",
      enableEdgeEvents: true,
      zIndex: true,
      labelFont: "system-ui, DejaVu Sans, sans-serif",
      labelColor: { color: "#1f2328" },
      labelRenderedSizeThreshold: 7,
      nodeReducer: (node, data) => this.reduceNode(node, data),
      edgeReducer: (edge, data) => this.reduceEdge(edge, data),
    });
    this.renderer.on("afterRender", () => this.afterRender());
    // The details panel narrows the stage; sigma itself only follows the window.
    new ResizeObserver(() => this.renderer.scheduleRender()).observe(container);
    this.renderer.on("clickNode", ({ node }) => this.onSelect({ kind: "node", key: node }));
    this.renderer.on("clickEdge", ({ edge }) => this.onSelect({ kind: "edge", key: edge }));
    this.renderer.on("clickStage", () => this.onSelect(null));
  }

  get graph() {
    return this.renderer.getGraph();
  }

  // clear forgets what was drawn, so nothing reports counts of an old view
  // while a new one is on its way.
  clear() {
    this.stopLayout();
    this.layout?.kill();
    this.layout = null;
    this.pending = null;
    for (const k of ["nodes", "edges", "firstFrameMs", "firstFrameAt", "drawMs", "highlighted", "focus", "selected"]) delete this.container.dataset[k];
    this.matches = new Set();
    this.selected = null;
    this.renderer.setGraph(new Graph());
  }

  // show draws a JSON view. since is when its request was sent; the
  // counts, the time to the first frame and the part of it spent drawing
  // are published once sigma has rendered the imported graph.
  show(data, since) {
    const start = performance.now();
    this.clear();
    const graph = new Graph({ type: "directed", allowSelfLoops: true, ...(data.options || {}) });
    const positioned = prepare(data);
    graph.import(data);
    if (!positioned) place(graph);
    this.pending = { graph, since, start };
    this.renderer.getCamera().setState({ x: 0.5, y: 0.5, ratio: 1, angle: 0 });
    this.renderer.setGraph(graph);
    this.startLayout();
  }

  afterRender() {
    const p = this.pending;
    if (!p || this.graph !== p.graph) return;
    this.pending = null;
    const ds = this.container.dataset;
    const now = performance.now();
    ds.firstFrameMs = String(Math.round(now - p.since));
    ds.firstFrameAt = String(Math.round(now));
    ds.drawMs = String(Math.round(now - p.start));
    ds.nodes = String(p.graph.order);
    ds.edges = String(p.graph.size);
  }

  reduceNode(node, data) {
    if (!this.selected && !this.matches.size) return data;
    const res = { ...data };
    if (this.matches.has(node)) Object.assign(res, { color: COLORS.match, highlighted: true, forceLabel: true, zIndex: 2 });
    const sel = this.selected;
    if (sel) {
      if (sel.kind === "node" ? node === sel.key : this.neighbours.has(node)) {
        Object.assign(res, { highlighted: true, forceLabel: true, zIndex: 3 });
      } else if (sel.kind === "node" && this.neighbours.has(node)) {
        res.zIndex = 1;
      } else if (!this.matches.has(node)) {
        Object.assign(res, { color: COLORS.dim, label: "", zIndex: 0 });
      }
    }
    return res;
  }

  reduceEdge(edge, data) {
    const sel = this.selected;
    if (!sel) return data;
    if (sel.kind === "edge") {
      return edge === sel.key ? { ...data, size: data.size + 2, zIndex: 2 } : { ...data, color: COLORS.dimEdge, zIndex: 0 };
    }
    return this.graph.hasExtremity(edge, sel.key) ? { ...data, zIndex: 1 } : { ...data, color: COLORS.dimEdge, zIndex: 0 };
  }

  // select shows one node with its neighbours, or one edge with its ends,
  // and dims the rest; null clears. It answers whether the item exists.
  select(sel) {
    const g = this.graph;
    if (sel && !(sel.kind === "node" ? g.hasNode(sel.key) : g.hasEdge(sel.key))) sel = null;
    this.selected = sel;
    this.neighbours = new Set();
    if (sel?.kind === "node") g.forEachNeighbor(sel.key, (n) => this.neighbours.add(n));
    if (sel?.kind === "edge") this.neighbours = new Set(g.extremities(sel.key));
    if (sel) this.container.dataset.selected = sel.key;
    else delete this.container.dataset.selected;
    this.renderer.refresh({ skipIndexation: true });
    return sel !== null;
  }

  // search highlights the nodes an address, a CIDR prefix or (for account
  // and interface nodes) a piece of a name points at, and moves the camera
  // to them. It answers the matching keys.
  async search(query) {
    const q = query.trim();
    const keys = [];
    if (q) {
      const prefix = parsePrefix(q);
      this.graph.forEachNode((node, a) => {
        const label = String(a.label ?? node);
        const p = prefix && parsePrefix(label);
        if (prefix ? p && overlaps(prefix, p) : label.toLowerCase().includes(q.toLowerCase())) keys.push(node);
      });
    }
    this.matches = new Set(keys);
    const ds = this.container.dataset;
    ds.highlighted = String(keys.length);
    delete ds.focus;
    this.renderer.refresh({ skipIndexation: true });
    if (keys.length) await this.focus(keys);
    return keys;
  }

  // focus animates the camera to frame the given nodes. The layout stops
  // first so they stay where the camera goes.
  async focus(keys) {
    this.stopLayout();
    let minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
    for (const k of keys) {
      const d = this.renderer.getNodeDisplayData(k);
      if (!d) continue;
      minX = Math.min(minX, d.x); maxX = Math.max(maxX, d.x);
      minY = Math.min(minY, d.y); maxY = Math.max(maxY, d.y);
    }
    if (minX === Infinity) return;
    const extent = Math.max(maxX - minX, maxY - minY);
    const target = { x: (minX + maxX) / 2, y: (minY + maxY) / 2, ratio: Math.min(1, Math.max(0.2, extent * 1.5)) };
    const camera = this.renderer.getCamera();
    await camera.animate(target, { duration: 600 });
    const s = camera.getState();
    this.container.dataset.focus = [s.x, s.y, s.ratio].map((v) => v.toFixed(4)).join(",");
  }

  // startLayout runs ForceAtlas2 in a web worker for a while (longer for
  // larger graphs), then stops it; the page stays responsive meanwhile.
  startLayout() {
    const g = this.graph;
    if (!g.order) return;
    this.stopLayout();
    if (!this.layout) {
      this.layout = new FA2Layout(g, { settings: { ...forceAtlas2.inferSettings(g), gravity: 1 } });
    }
    this.layout.start();
    this.layoutTimer = setTimeout(() => this.stopLayout(), Math.min(3000 + g.order * 2, 20000));
    this.onLayout(true);
  }

  stopLayout() {
    clearTimeout(this.layoutTimer);
    if (this.layout?.isRunning()) this.layout.stop();
    this.onLayout(false);
  }

  layoutRunning() {
    return !!this.layout?.isRunning();
  }

  onLayout(running) {
    this.container.dataset.layout = running ? "running" : "stopped";
    this.container.dispatchEvent(new Event("layoutchange"));
  }
}
