// Builds the web app into api/static/app/, which is committed: the server needs no Node.
//   cd webapp && npm ci && npm run build
// build-info.json records a digest of every input (tests/test_webapp.py checks it is current).
import { createHash } from "node:crypto";
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "api", "static", "app");
// The inputs whose digest build-info.json keeps, in this order.
const INPUTS = ["build.mjs", "package.json", "package-lock.json", "public", "src"];

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

await esbuild.build({
  entryPoints: { app: join(here, "src", "main.jsx") },
  outdir: join(out, "assets"),
  entryNames: "[name]",
  chunkNames: "chunks/[name]-[hash]",
  assetNames: "[name]-[hash]",
  bundle: true,
  splitting: true,
  format: "esm",
  target: ["es2020", "chrome100", "safari15", "firefox100"],
  minify: true,
  legalComments: "linked",
  jsx: "automatic",
  jsxImportSource: "preact",
  define: { "process.env.NODE_ENV": '"production"' },
  logLevel: "warning",
});
await esbuild.build({
  entryPoints: [join(here, "src", "sw.js")],
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
