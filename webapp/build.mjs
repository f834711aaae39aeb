// Builds the web app into api/static/app/, which is committed: the server needs no Node.
//   cd webapp && npm ci && npm run build
// build-info.json records a digest of every input (tests/test_webapp.py checks it is current).
import { createHash } from "node:crypto";
import { cpSync, existsSync, mkdirSync, renameSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const target = join(here, "..", "api", "static", "app");
// Built beside the target and swapped in at the end: a running server never serves half a build.
const out = `${target}.building`;
// The inputs whose digest build-info.json keeps, in this order.
const INPUTS = ["build.mjs", "package.json", "package-lock.json", "public", "src"];
const TARGET = ["es2020", "chrome100", "safari15", "firefox100"];

function files(path) {
  if (statSync(path).isDirectory()) {
    return readdirSync(path).sort().flatMap((name) => files(join(path, name)));
  }
  return [path];
}

export function sourcesDigest() {
  const hash = createHash("sha256");
  for (const input of INPUTS) {
    for (const file of files(join(here, input))) {
      hash.update(relative(here, file).split("\\").join("/"));
      hash.update("\0");
      hash.update(readFileSync(file));
      hash.update("\0");
    }
  }
  return hash.digest("hex");
}

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

// Scripts: the frame, sign-in and the feed in app.js; every other screen and the big libraries
// (hls.js, tus-js-client, Firebase) in chunks loaded when first needed. CSS imports in scripts
// are left out of them here and gathered into one app.css below, so that a lazily loaded
// screen is styled at once.
const scripts = await esbuild.build({
  entryPoints: { app: join(here, "src", "main.jsx") },
  metafile: true,
  outdir: join(out, "assets"),
  entryNames: "[name]",
  chunkNames: "chunks/[name]-[hash]",
  bundle: true,
  splitting: true,
  format: "esm",
  target: TARGET,
  minify: true,
  legalComments: "linked",
  jsx: "automatic",
  jsxImportSource: "preact",
  loader: { ".css": "empty" },
  define: { "process.env.NODE_ENV": '"production"' },
  logLevel: "warning",
});
// The chunks app.js imports at once: the shell names them (modulepreload), to fetch them in
// parallel with app.js instead of after it.
const entry = Object.entries(scripts.metafile.outputs).find(([path]) => path.endsWith("/assets/app.js"))[1];
const preload = entry.imports.filter((i) => i.kind === "import-statement").map((i) => relative(join(out, "assets"), i.path));
writeFileSync(join(out, "assets", "preload.json"), JSON.stringify(preload) + "\n");
// Styles: the base sheet, then every screen's, in name order.
const screens = readdirSync(join(here, "src", "screens")).filter((name) => name.endsWith(".css")).sort();
await esbuild.build({
  stdin: {
    contents: ["app.css", ...screens.map((name) => `screens/${name}`)].map((path) => `@import "./${path}";`).join("\n"),
    resolveDir: join(here, "src"),
    loader: "css",
  },
  outfile: join(out, "assets", "app.css"),
  bundle: true,
  minify: true,
  target: TARGET,
  logLevel: "warning",
});
await esbuild.build({
  entryPoints: [join(here, "src", "sw.js")],
  define: { BUILD: JSON.stringify(sourcesDigest().slice(0, 16)) },
  outfile: join(out, "sw.js"),
  bundle: true,
  format: "iife",
  minify: true,
  logLevel: "warning",
});
cpSync(join(here, "public"), out, { recursive: true });

writeFileSync(
  join(out, "build-info.json"),
  JSON.stringify({ sources_sha256: sourcesDigest(), inputs: INPUTS }, null, 2) + "\n",
);
rmSync(`${target}.old`, { recursive: true, force: true });
if (existsSync(target)) renameSync(target, `${target}.old`);
renameSync(out, target);
rmSync(`${target}.old`, { recursive: true, force: true });
