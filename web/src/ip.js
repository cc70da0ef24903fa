// Addresses and CIDR prefixes as (version, bits as a BigInt, prefix length),
// so a search for an address finds the network node that holds it and a
// search for a network finds the addresses inside it.

function parseV4(s) {
  const parts = s.split(".");
  if (parts.length !== 4) return null;
  let n = 0n;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return null;
    n = (n << 8n) | BigInt(p);
  }
  return n;
}

function parseV6(s) {
  let tail = [];
  const v4 = s.match(/^(.*:)(\d+\.\d+\.\d+\.\d+)$/);
  if (v4) {
    const n = parseV4(v4[2]);
    if (n === null) return null;
    s = v4[1] + "0:0";
    tail = [Number(n >> 16n), Number(n & 0xffffn)];
  }
  const halves = s.split("::");
  if (halves.length > 2) return null;
  const words = (h) => (h === "" ? [] : h.split(":"));
  const head = words(halves[0]);
  const rest = halves.length === 2 ? words(halves[1]) : [];
  const missing = 8 - head.length - rest.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return null;
  const all = [...head, ...Array(halves.length === 2 ? missing : 0).fill("0"), ...rest];
  let n = 0n;
  for (const w of all) {
    if (!/^[0-9a-f]{1,4}$/i.test(w)) return null;
    n = (n << 16n) | BigInt(parseInt(w, 16));
  }
  if (tail.length) n = (n & ~0xffffffffn) | (BigInt(tail[0]) << 16n) | BigInt(tail[1]);
  return n;
}

// parsePrefix reads "10.0.0.1", "10.0.0.0/8", "2001:db8::/32"; null when it
// is neither an address nor a prefix.
export function parsePrefix(text) {
  const s = text.trim();
  const [addr, len, extra] = s.split("/");
  if (extra !== undefined) return null;
  const v = addr.includes(":") ? 6 : 4;
  const n = v === 4 ? parseV4(addr) : parseV6(addr);
  if (n === null) return null;
  const max = v === 4 ? 32 : 128;
  let bits = max;
  if (len !== undefined) {
    if (!/^\d{1,3}$/.test(len) || Number(len) > max) return null;
    bits = Number(len);
  }
  return { v, n, bits, max };
}

// overlaps tells whether two prefixes share any address: one holds the other.
export function overlaps(a, b) {
  if (a.v !== b.v) return false;
  const shift = BigInt(a.max - Math.min(a.bits, b.bits));
  return a.n >> shift === b.n >> shift;
}

// isNetwork tells a network node ("10.0.1.0/24") from an address node.
export function isNetwork(label) {
  return typeof label === "string" && label.includes("/");
}
