// Bundles each entry point into one executable ESM file under dist/, for start-up time and so
// `dist/monoceros` runs with nothing but Node (no node_modules needed next to it).
import { execFileSync } from "node:child_process";
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { build } from "esbuild";

const ENTRY_POINTS = {
  monoceros: "src/cli/bin.ts",
  processbin: "src/processbin/main.ts",
};

function git(args, fallback) {
  try {
    return execFileSync("git", args, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim() || fallback;
  } catch {
    return fallback;
  }
}

const { version } = JSON.parse(readFileSync("package.json", "utf8"));
const wanted = process.argv.slice(2);
const names = wanted.length > 0 ? wanted : Object.keys(ENTRY_POINTS);
mkdirSync("dist", { recursive: true });
// The files have no extension; this marks them as ES modules wherever dist/ is copied.
writeFileSync("dist/package.json", '{ "type": "module" }\n');

for (const name of names) {
  const entry = ENTRY_POINTS[name];
  if (!entry) throw new Error(`unknown entry point ${name}; known: ${Object.keys(ENTRY_POINTS).join(", ")}`);
  const outfile = `dist/${name}`;
  await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    sourcemap: false,
    legalComments: "none",
    minify: true,
    logLevel: "warning",
    define: {
      __MONOCEROS_VERSION__: JSON.stringify(version),
      __MONOCEROS_REVISION__: JSON.stringify(git(["rev-parse", "--short=12", "HEAD"], "unknown")),
      __MONOCEROS_BRANCH__: JSON.stringify(git(["rev-parse", "--abbrev-ref", "HEAD"], "unknown")),
    },
    // CommonJS dependencies bundled into ESM still call require() for Node built-ins.
    banner: { js: "#!/usr/bin/env node\nimport { createRequire as __monocerosCreateRequire } from 'node:module';\nconst require = __monocerosCreateRequire(import.meta.url);" },
  });
  chmodSync(outfile, 0o755);
}
