// Builds the web console into ../static: one ES module bundle (app.js), one stylesheet (app.css), index.html.
// Run by `npm run build` (make ui); the output ships in the Python wheel, so nothing needs Node at run time.
import { build } from "esbuild";
import { copyFileSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "static");
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

await build({
  entryPoints: { app: join(here, "src", "main.jsx") },
  bundle: true,
  format: "esm",
  target: "es2022",
  minify: true,
  jsx: "automatic",
  jsxImportSource: "preact",
  loader: { ".css": "css" },
  outdir: out,
  legalComments: "linked",
  logLevel: "warning",
});
copyFileSync(join(here, "src", "index.html"), join(out, "index.html"));
// precompressed copies, served to browsers that accept gzip
for (const name of ["app.js", "app.css"]) {
  const gz = gzipSync(readFileSync(join(out, name)), { level: 9 });
  writeFileSync(join(out, `${name}.gz`), gz);
  console.log(`${name}: ${(statSync(join(out, name)).size / 1024).toFixed(1)} KiB (${(gz.length / 1024).toFixed(1)} KiB gzip)`);
}
