// dist/monoceros-loader.cjs: starts the bundle (dist/monoceros.cjs) with the V8 code cache written at
// build time (dist/monoceros.v8cache), so Node need not parse and compile ~1 MB of JavaScript on every
// start (about 35 ms here; Node 20 has no compile cache of its own). A cache V8 rejects (another
// Node version, other V8 flags, a rebuilt bundle) or a missing one only costs that time back.
// CommonJS, not an ES module: Node's ES module loader would cost about 7 ms more at each start.
// `MONOCEROS_WRITE_CODE_CACHE=1` makes this run write the cache when it exits: the build uses it.
"use strict";
const { readFileSync, writeFileSync } = require("node:fs");
const { createRequire } = require("node:module");
const { join } = require("node:path");
const { Script } = require("node:vm");

// First of all: SIGUSR1 must never open Node's inspector (127.0.0.1:9229 would let anyone on the
// host run code inside Monoceros). Any listener stops Node from starting it; this one is never
// removed (without one, SIGUSR1 would end the process). The bundle reports the signal.
process.on("SIGUSR1", () => {});
// A SIGUSR1 that came before this line, while Node itself was starting (the first ~50 ms), has
// opened the inspector, or is about to: close it, unless it was asked for on the command line.
const inspectorRequested = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? "").split(/\s+/)].some((arg) => /^--inspect(-brk|-wait)?(=|$)/.test(arg));
if (!inspectorRequested) {
  const inspector = require("node:inspector");
  if (inspector.url() !== undefined) inspector.close();
  // Node emits this when it has just started the inspector (it tells cluster workers so).
  process.on("internalMessage", (message) => {
    if (message?.cmd === "NODE_DEBUG_ENABLED") inspector.close();
  });
}

// dist/monoceros (as a shell script) kept NODE_EXTRA_CA_CERTS away from this Node, which makes no
// TLS connection: back in the environment now, before any worker or command inherits it.
const SAVED_CA_CERTS = "MONOCEROS_SAVED_NODE_EXTRA_CA_CERTS";
if (process.env[SAVED_CA_CERTS] !== undefined) {
  process.env.NODE_EXTRA_CA_CERTS = process.env[SAVED_CA_CERTS];
  delete process.env[SAVED_CA_CERTS];
}

const bundleFile = join(__dirname, "monoceros.cjs");
const cacheFile = join(__dirname, "monoceros.v8cache");
let cachedData;
try {
  cachedData = readFileSync(cacheFile);
} catch {
  // no cache: compile from source
}
// The same wrapper as Node's for CommonJS; the cache is only valid for this exact source text.
const source = `(function (exports, require, module, __filename, __dirname) {${readFileSync(bundleFile, "utf8")}\n})`;
const script = new Script(source, { filename: bundleFile, cachedData });
cachedData = undefined; // V8 has copied what it needs: the 1 MB buffer need not live on
if (process.env.MONOCEROS_WRITE_CODE_CACHE === "1") {
  process.on("exit", () => writeFileSync(cacheFile, script.createCachedData()));
}
const bundle = { exports: {} };
script.runInThisContext()(bundle.exports, createRequire(bundleFile), bundle, bundleFile, __dirname);
