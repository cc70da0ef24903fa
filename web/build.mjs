// Builds web/dist from web/src: the page, its stylesheet, one script bundle
// and the licences of the third-party code in that bundle. Every option is
// fixed and nothing depends on the clock or the machine, so the same sources
// and lockfile give the same bytes (make check-assets relies on it).
import * as esbuild from "esbuild";
import { copyFileSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = dirname(fileURLToPath(import.meta.url));
const dist = join(root, "dist");

rmSync(dist, { recursive: true, force: true });
mkdirSync(dist);

const result = await esbuild.build({
  absWorkingDir: root,
  entryPoints: { app: "src/main.js", style: "src/style.css" },
  outdir: "dist",
  bundle: true,
  format: "esm",
  target: ["es2020", "chrome100", "firefox100"],
  minify: true,
  sourcemap: false,
  legalComments: "none",
  charset: "utf8",
  metafile: true,
  logLevel: "warning",
});
copyFileSync(join(root, "src/index.html"), join(dist, "index.html"));
writeFileSync(join(dist, "THIRD_PARTY_LICENSES.txt"), licences(result.metafile));

// licences lists every npm package with code in the bundle, with its
// licence text, sorted by name.
function licences(metafile) {
  const packages = new Set();
  for (const input of Object.keys(metafile.inputs)) {
    const m = input.match(/node_modules\/((?:@[^/]+\/)?[^/]+)\//);
    if (m) packages.add(m[1]);
  }
  const parts = [
    "Third-party code bundled in app.js, with the licence of each package.\n",
  ];
  for (const name of [...packages].sort()) {
    const dir = join(root, "node_modules", name);
    const meta = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
    const file = readdirSync(dir).sort().find((f) => /^(licen[cs]e|copying)/i.test(f));
    if (!file) throw new Error(`${name}: no licence file to ship`);
    parts.push(
      "=".repeat(78),
      `${meta.name} ${meta.version} (${meta.license})`,
      "=".repeat(78),
      readFileSync(join(dir, file), "utf8").trimEnd(),
      "",
    );
  }
  return parts.join("\n") + "\n";
}
