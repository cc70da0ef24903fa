// The details panel: what a clicked node or edge holds, built with DOM
// calls only (never markup from data), so a label can never become markup.
import { isNetwork, parsePrefix } from "./ip.js";

// el makes an element; strings among children become text.
export function el(tag, props = {}, ...children) {
  const e = Object.assign(document.createElement(tag), props);
  for (const c of children.flat(Infinity)) if (c !== null && c !== undefined) e.append(c);
  return e;
}

const UNITS = ["B", "KB", "MB", "GB", "TB", "PB"];

// bytes writes a byte count in human units (1000-based, as the DOT labels).
export function bytes(n) {
  let i = 0;
  let v = n || 0;
  while (v >= 1000 && i < UNITS.length - 1) { v /= 1000; i++; }
  return `${i ? v.toFixed(v < 10 ? 1 : 0) : v} ${UNITS[i]}`;
}

const count = (n) => (n || 0).toLocaleString("en-US");
const time = (s) => (s ? new Date(s * 1000).toISOString().replace(".000Z", "Z") : "–");

function list(pairs) {
  return el("dl", {}, pairs.map(([k, v]) => [el("dt", {}, k), el("dd", { className: "num" }, v)]));
}

function portList(ports, others) {
  if (!ports?.length) return el("p", {}, "none");
  const items = ports.map(([port, flows]) => el("li", {}, `${port}: ${flows === 1 ? "1 flow" : `${count(flows)} flows`}`));
  if (others) items.push(el("li", {}, `and ${count(others)} other ports`));
  return el("ol", {}, items);
}

// busiest sums, over a node's edges, the bytes by peer and the flows by
// destination port, and answers the n biggest of each.
function busiest(graph, node, n) {
  const peers = new Map();
  const ports = new Map();
  graph.forEachEdge(node, (_, a, source, target) => {
    const peer = source === node ? target : source;
    peers.set(peer, (peers.get(peer) || 0) + (a.bytes || 0));
    for (const [port, flows] of a.ports || []) ports.set(port, (ports.get(port) || 0) + flows);
  });
  const top = (m) => [...m].sort((x, y) => y[1] - x[1] || (x[0] < y[0] ? -1 : 1)).slice(0, n);
  return { peers: top(peers), ports: top(ports) };
}

// nodeDetails describes a node; act is called with "select" and a node key
// (a peer was picked) or "drill" and a label (show that group's addresses).
export function nodeDetails(graph, node, act) {
  const a = graph.getNodeAttributes(node);
  const label = String(a.label ?? node);
  const { peers, ports } = busiest(graph, node, 8);
  const network = isNetwork(label);
  const kind = network ? "network" : parsePrefix(label) ? "address"
    : label.startsWith("eni-") ? "interface" : /^\d{12}$/.test(label) ? "account" : "node";
  return {
    title: label,
    body: [
      list([
        ["Kind", kind],
        ["Addresses", count(a.addresses)],
        ["Bytes in", bytes(a.bytes_in)],
        ["Bytes out", bytes(a.bytes_out)],
        ["Flows in", count(a.flows_in)],
        ["Flows out", count(a.flows_out)],
        ["Rejected in", count(a.rejected_in)],
        ["Rejected out", count(a.rejected_out)],
      ]),
      network
        ? el("button", { type: "button", id: "drill", onclick: () => act("drill", label) }, "Drill in: its addresses")
        : null,
      el("h3", {}, "Busiest peers (bytes both ways)"),
      peers.length
        ? el("ol", {}, peers.map(([peer, b]) =>
          el("li", {}, el("button", { type: "button", className: "link", onclick: () => act("select", peer) },
            String(graph.getNodeAttribute(peer, "label") ?? peer)), ` ${bytes(b)}`)))
        : el("p", {}, "none"),
      el("h3", {}, "Busiest destination ports (flows)"),
      portList(ports, 0),
    ],
  };
}

// edgeDetails describes an edge; act("select", key) picks one of its ends.
export function edgeDetails(graph, edge, act) {
  const a = graph.getEdgeAttributes(edge);
  const end = (n) => el("button", { type: "button", className: "link", onclick: () => act("select", n) },
    String(graph.getNodeAttribute(n, "label") ?? n));
  const [source, target] = graph.extremities(edge);
  return {
    title: "Flows",
    body: [
      el("p", {}, end(source), " → ", end(target)),
      list([
        ["Flows", count(a.flows)],
        ["Accepted", count(a.accepted)],
        ["Rejected", count(a.rejected)],
        ["Packets", count(a.packets)],
        ["Bytes", bytes(a.bytes)],
        ["First", time(a.first)],
        ["Last", time(a.last)],
      ]),
      el("h3", {}, "Destination ports (flows)"),
      portList(a.ports, a.other_ports),
    ],
  };
}
