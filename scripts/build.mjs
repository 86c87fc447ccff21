// Bundles each entry point into one file under dist/, for start-up time and so `dist/monoceros`
// runs with nothing but Node (no node_modules needed next to it). Monoceros itself is a CommonJS
// bundle (dist/monoceros.cjs) run with a V8 code cache written here by a small loader
// (dist/monoceros-loader.cjs, from scripts/loader.cjs), which dist/monoceros starts (from
// scripts/launcher.js: a shell script and an ES module in one); processbin is a plain ESM executable.
import { execFileSync } from "node:child_process";
import { chmodSync, copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { build } from "esbuild";

const ENTRY_POINTS = {
  monoceros: { entry: "src/cli/bin.ts", codeCache: true },
  processbin: { entry: "src/processbin/main.ts", codeCache: false },
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
  const point = ENTRY_POINTS[name];
  if (!point) throw new Error(`unknown entry point ${name}; known: ${Object.keys(ENTRY_POINTS).join(", ")}`);
  const executable = `dist/${name}`;
  const outfile = point.codeCache ? `${executable}.cjs` : executable;
  await build({
    entryPoints: [point.entry],
    outfile,
    bundle: true,
    platform: "node",
    format: point.codeCache ? "cjs" : "esm",
    target: "node20",
    sourcemap: false,
    legalComments: "none",
    minify: true,
    logLevel: "warning",
    define: {
      __MONOCEROS_VERSION__: JSON.stringify(version),
      __MONOCEROS_REVISION__: JSON.stringify(git(["rev-parse", "--short=12", "HEAD"], "unknown")),
      __MONOCEROS_BRANCH__: JSON.stringify(git(["rev-parse", "--abbrev-ref", "HEAD"], "unknown")),
      // CommonJS has no import.meta: modules that locate files (createRequire) get the bundle's own URL.
      ...(point.codeCache ? { "import.meta.url": "__monocerosImportMetaUrl" } : {}),
    },
    // CommonJS dependencies bundled into ESM still call require() for Node built-ins.
    banner: point.codeCache ? { js: 'var __monocerosImportMetaUrl = require("node:url").pathToFileURL(__filename).href;' } : { js: "#!/usr/bin/env node\nimport { createRequire as __monocerosCreateRequire } from 'node:module';\nconst require = __monocerosCreateRequire(import.meta.url);" },
  });
  if (point.codeCache) {
    copyFileSync("scripts/launcher.js", executable);
    copyFileSync("scripts/loader.cjs", `${executable}-loader.cjs`);
    // The cache holds what one validation compiles: every module's top level and the config path.
    rmSync(`${executable}.v8cache`, { force: true });
    execFileSync(process.execPath, [`${executable}-loader.cjs`, "--validate", "-c", "examples/config.yaml"], {
      env: { ...process.env, MONOCEROS_WRITE_CODE_CACHE: "1" },
      stdio: "ignore",
    });
  }
  chmodSync(executable, 0o755);
}

// The config's JSON Schema beside the bundle (for the npm package and copies of dist/), printed by
// the bundle just built, so the two always agree. The repository's copy is schema/ (make schema).
if (names.includes("monoceros")) {
  writeFileSync("dist/monoceros.schema.json", execFileSync(process.execPath, ["dist/monoceros", "schema"], { encoding: "utf8" }));
}
