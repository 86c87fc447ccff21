// The npm package as a user gets it: `npm pack` of the built dist/ into a temp folder, installed
// from the tarball into an empty project (its only dependency, the optional native socket addon,
// comes from the registry), then `npx monoceros --version`, `-k`, `ctl --help`, `schema`, and a short
// supervised run of the installed binary: a `listen` socket (which needs the addon, loaded from
// where npm put it), two `sleep` workers, SIGTERM, exit 0. Needs `make build` first (dist/).
// Skipped with the reason printed where the registry cannot be reached; it never waits for it.
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createConnection, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { isAlive, killAll, pollFor, pollForAsync, ROOT, watchMonoceros } from "../support/monoceros.js";

const PACKAGE = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { name: string; version: string; optionalDependencies: Record<string, string> };
/** npm install of a tarball with one small dependency takes a few seconds; a slow registry, more. */
const NPM_TIMEOUT_MS = 120_000;

/**
 * The environment for npm: ours, without what an npm above us (`npx vitest`, `npm test`) put in it
 * for its own project, above all npm_config_local_prefix, which would make `npm install` install
 * into this repository instead of the temp folder.
 */
function npmEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const key of Object.keys(env)) {
    // undefined: left out of a child's environment (Node skips such keys), also when merged over process.env.
    if (/^npm_(package_|lifecycle_|command$|execpath$|node_execpath$|config_local_prefix$)/.test(key) || key === "INIT_CWD") env[key] = undefined;
  }
  return env;
}

function npm(args: string[], cwd: string, timeoutMs = NPM_TIMEOUT_MS): SpawnSyncReturns<string> {
  return spawnSync("npm", [...args, "--no-audit", "--no-fund", "--no-update-notifier", "--loglevel=error"], { cwd, env: npmEnv(), encoding: "utf8", timeout: timeoutMs, killSignal: "SIGKILL" });
}

/** One line on why npm failed: the line that names the cause (`… reason: connect ECONNREFUSED …`), if any. */
function failure(result: SpawnSyncReturns<string>): string {
  if (result.error !== undefined) return result.error.message;
  const lines = result.stderr.split("\n").filter((line) => line.startsWith("npm error "));
  const cause = lines.find((line) => line.includes("reason:")) ?? lines.find((line) => / code /.test(line)) ?? lines[0];
  return `npm exited ${result.status ?? result.signal}${cause === undefined ? "" : `: ${cause.slice("npm error ".length)}`}`;
}

/** Whether the registry answers for the one package the install fetches (30 s at most). */
function registryAvailability(): { ok: true } | { ok: false; reason: string } {
  const [addon] = Object.keys(PACKAGE.optionalDependencies);
  const result = npm(["view", `${addon}@${PACKAGE.optionalDependencies[addon as string]}`, "version", "--fetch-retries=0", "--fetch-timeout=20000", "--prefer-online"], tmpdir(), 30_000);
  return result.status === 0 ? { ok: true } : { ok: false, reason: failure(result) };
}

const registry = registryAvailability();
if (!registry.ok) console.log(`SKIPPED npm-pack tests: the npm registry cannot be reached (${registry.reason}); run them where it can: make test-integration`);

const folders: string[] = [];
const monocerosPids: number[] = [];
const workerPids: number[] = [];
afterAll(() => {
  // Monoceros first (killing its workers first would only make it start new ones); by pid, and only
  // while the pid is still the installed Monoceros.
  for (const pid of monocerosPids) {
    try {
      if (isAlive(pid) && readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("monoceros")) process.kill(pid, "SIGKILL");
    } catch {
      // gone
    }
  }
  killAll(workerPids);
  for (const folder of folders) rmSync(folder, { recursive: true, force: true });
});

function tempFolder(prefix: string): string {
  const folder = mkdtempSync(join(tmpdir(), prefix));
  folders.push(folder);
  return folder;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address !== null ? address.port : 0));
    });
  });
}

function connects(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host: "127.0.0.1" });
    socket.setTimeout(2_000, () => {
      socket.destroy();
      resolve(false);
    });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

describe.skipIf(!registry.ok)("the npm package", () => {
  let project = "";

  it("packs only the built bundle, README and package.json, and installs from the tarball into an empty folder", () => {
    const packed = tempFolder("monoceros-pack-");
    // --ignore-scripts: prepack would rebuild dist/ under the other tests that run it; it is built.
    const pack = npm(["pack", "--ignore-scripts", "--json", "--pack-destination", packed], ROOT);
    expect(pack.status, failure(pack)).toBe(0);
    const [info] = JSON.parse(pack.stdout) as { filename: string; files: { path: string }[] }[];
    expect(info?.filename).toBe(`${PACKAGE.name}-${PACKAGE.version}.tgz`);
    expect(info?.files.map((f) => f.path).sort()).toEqual(["README.md", "dist/monoceros", "dist/monoceros-loader.cjs", "dist/monoceros.cjs", "dist/monoceros.schema.json", "dist/monoceros.v8cache", "dist/package.json", "package.json"]);

    project = tempFolder("monoceros-install-");
    // A package.json of its own, so npm installs here and not into a project above the folder.
    writeFileSync(join(project, "package.json"), '{ "name": "monoceros-install-test", "private": true }\n');
    const install = npm(["install", join(packed, info?.filename ?? "")], project);
    expect(install.status, failure(install)).toBe(0);
    // Every dependency is in the bundle: only Monoceros and the native addon for this platform.
    const installed = readdirSync(join(project, "node_modules")).filter((name) => !name.startsWith(".")).sort();
    expect(installed[0]).toBe("monoceros");
    expect(installed.slice(1).every((name) => name.startsWith("node-unix-socket-linux-"))).toBe(true);
    if (process.platform === "linux" && process.arch === "x64") expect(installed).toHaveLength(2);
  }, NPM_TIMEOUT_MS + 60_000);

  it("runs npx monoceros --version, -k and ctl --help from the install", () => {
    expect(project, "installed by the test before").not.toBe("");
    const npx = (args: string[]) => spawnSync("npx", ["--no-install", "monoceros", ...args], { cwd: project, env: npmEnv(), encoding: "utf8", timeout: 60_000, killSignal: "SIGKILL" });
    const version = npx(["--version"]);
    expect(version.status, version.stderr).toBe(0);
    expect(version.stdout).toMatch(new RegExp(`^monoceros ${PACKAGE.version.replaceAll(".", "\\.")} \\(revision `));
    const valid = npx(["-k", "-c", join(ROOT, "examples/basic.yaml")]);
    expect(valid.status, valid.stderr).toBe(0);
    expect(valid.stdout).toContain("config is valid");
    const invalid = npx(["-k", "-c", join(project, "missing.yaml")]);
    expect(invalid.status).toBe(2);
    const ctl = npx(["ctl", "--help"]);
    expect(ctl.status, ctl.stderr).toBe(0);
    expect(ctl.stdout).toContain("Usage: monoceros ctl");
    // The schema file shipped beside the bundle is what the bundle prints.
    const schema = npx(["schema"]);
    expect(schema.status, schema.stderr).toBe(0);
    expect(schema.stdout).toBe(readFileSync(join(project, "node_modules/monoceros/dist/monoceros.schema.json"), "utf8"));
  }, 180_000);

  it("supervises workers on a listen socket from the install, and exits 0 on SIGTERM", async () => {
    expect(project, "installed by the test before").not.toBe("");
    const port = await freePort();
    const config = join(project, "config.yaml");
    writeFileSync(config, [
      "admin: {port: 0, host: 127.0.0.1}",
      "supervisor:",
      "  workers:",
      "    - name: sleeper",
      "      replicas: 2",
      "      exec: sleep",
      '      args: ["1000"]',
      "      max_restarts: -1",
      "      desired_healthy_percentage: 100",
      `      listen: ["127.0.0.1:${port}"]`,
      "",
    ].join("\n"));
    mkdirSync(join(project, "run"));
    // The installed binary itself, as a process manager or container would start it: `npx` does not
    // pass SIGTERM on (npm exec exits and leaves its child running).
    const m = watchMonoceros([join(project, "node_modules/.bin/monoceros"), "-c", config], { cwd: join(project, "run"), env: npmEnv() });
    monocerosPids.push(m.pid);
    const workers = await pollFor("two workers started", () => {
      const started = m.records().filter((r) => r.msg === "Worker started").map((r) => r.pid as number);
      return started.length === 2 && started;
    }, 30_000);
    workerPids.push(...workers);
    // The socket Monoceros holds for the workers (made by the native addon, found in node_modules).
    expect(await connects(port)).toBe(true);
    const adminPort = m.records().find((r) => r.msg === "Admin endpoint listening (/metrics, /health, /status)")?.port as number;
    await pollForAsync("/health 200", async () => (await fetch(`http://127.0.0.1:${adminPort}/health`)).status === 200, 30_000);

    m.child.kill("SIGTERM");
    expect((await m.exited).code).toBe(0);
    expect(m.records().find((r) => r.msg === "All workers stopped; exiting")).toMatchObject({ exit_code: 0 });
    await pollFor("the workers gone", () => workers.every((pid) => !isAlive(pid)), 10_000);
  }, 90_000);
});
