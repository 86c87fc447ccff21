// deploy/config.yaml (the config the image bakes in and the Kubernetes ConfigMap mounts) run as the
// container runs it, as far as this machine allows: as the image's non-root user (uid 1000, when
// the test runs as root), with real HAProxy and processbin workers. Only the image's paths and the
// ports are moved (exec, proxy_config_path, admin and worker ports). It checks what the manifest
// relies on: the probes' paths answer 200, requests pass the listener, what is not a worker fits
// the memory the manifest reserves for it, and SIGTERM ends it with exit 0 within the bound that
// terminationGracePeriodSeconds is derived from. test/unit/deploy.test.ts checks the figures.
import { chownSync, cpSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { parseAllDocuments, parseDocument } from "yaml";
import { afterEach, describe, expect, it } from "vitest";
import { findExecutable } from "../../src/backends/os/executable.js";
import { loadConfigText } from "../../src/config/load.js";
import { isAlive, killAll, MONOCEROS, pollFor, pollForAsync, PROCESSBIN, ROOT, watchMonoceros } from "../support/monoceros.js";

const haproxy = findExecutable("haproxy");
if (!haproxy.ok) console.log("SKIPPED deploy-config tests: haproxy is not installed (make test installs it as root: apt-get install -y haproxy)");

/** The image's user (deploy/Dockerfile's USER), taken when the test runs as root. */
const IMAGE_UID = 1000;
/** Room for one `monoceros ctl` run (kubectl exec) beside Monoceros, HAProxy and the watchdog: ~56 MiB measured. */
const CTL_RSS_BYTES = 64 * 1024 * 1024;
const MIB = 1024 * 1024;

const folders: string[] = [];
const monocerosPids: number[] = [];
const workerPids: number[] = [];
afterEach(() => {
  for (const pid of monocerosPids.splice(0)) {
    try {
      if (isAlive(pid) && readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("dist/monoceros")) process.kill(pid, "SIGKILL");
    } catch {
      // gone
    }
  }
  killAll(workerPids.splice(0));
  for (const folder of folders.splice(0)) rmSync(folder, { recursive: true, force: true });
  // The control socket's default folder, made by Monoceros for the image's user: only if empty
  // (another Monoceros of that user may be using it).
  try {
    rmdirSync(join(tmpdir(), `monoceros-${IMAGE_UID}`));
  } catch {
    // not there, or in use
  }
});

/** The pod's memory beyond its workers, as the manifest reserves it: requests − Σ limits.memory × replicas. */
function reservedOverheadBytes(): number {
  const documents = parseAllDocuments(readFileSync(join(ROOT, "deploy/kubernetes.yaml"), "utf8"));
  const deployment = (Array.isArray(documents) ? documents : []).map((d) => d.toJS() as { kind: string; spec: { template: { spec: { containers: { resources: { requests: { memory: string } } }[] } } } }).find((m) => m.kind === "Deployment");
  const request = deployment?.spec.template.spec.containers[0]?.resources.requests.memory ?? "";
  const match = /^(\d+)Mi$/.exec(request);
  if (match === null) throw new Error(`the Deployment's memory request is not in Mi: ${request}`);
  const loaded = loadConfigText(readFileSync(join(ROOT, "deploy/config.yaml"), "utf8"));
  if (!loaded.ok) throw new Error(loaded.errors.join("\n"));
  return Number(match[1]) * MIB - loaded.config.pools.reduce((sum, pool) => sum + pool.limits.memoryBytes * pool.replicas, 0);
}

function rssBytes(pid: number, field: "VmRSS" | "VmHWM"): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(match?.[1] ?? 0) * 1024;
}

function childrenOf(pid: number): number[] {
  return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
}

describe.skipIf(!haproxy.ok)("deploy/config.yaml", () => {
  it("runs as the container would: probes answer, requests pass, its overhead fits the manifest, SIGTERM exits 0", async () => {
    const folder = mkdtempSync(join(tmpdir(), "monoceros-deploy-"));
    folders.push(folder);
    const asRoot = process.getuid?.() === 0;
    if (asRoot) chownSync(folder, IMAGE_UID, IMAGE_UID);
    // As the image's user, Monoceros must be able to read itself: a clone may sit in a folder only
    // root can enter (mktemp -d), so it runs from a copy of dist/ that user owns, as in the image.
    const dist = asRoot ? join(folder, "dist") : join(ROOT, "dist");
    if (asRoot) {
      cpSync(join(ROOT, "dist"), dist, { recursive: true });
      for (const path of [dist, ...readdirSync(dist).map((name) => join(dist, name))]) chownSync(path, IMAGE_UID, IMAGE_UID);
    }
    const base = 30_000 + Math.floor(Math.random() * 5_000);
    const adminPort = base + 50;
    const listenerPort = base + 51;
    const document = parseDocument(readFileSync(join(ROOT, "deploy/config.yaml"), "utf8"));
    document.setIn(["admin", "port"], adminPort);
    document.setIn(["supervisor", "workers", 0, "exec"], asRoot ? join(dist, basename(PROCESSBIN)) : PROCESSBIN);
    document.setIn(["supervisor", "workers", 0, "server", "proxy_config_path"], join(folder, "haproxy"));
    document.setIn(["supervisor", "workers", 0, "server", "port_arg", "start_port"], base);
    document.setIn(["supervisor", "workers", 0, "server", "listener_port"], listenerPort);
    const config = join(folder, "config.yaml");
    writeFileSync(config, document.toString());
    if (asRoot) chownSync(config, IMAGE_UID, IMAGE_UID);

    const argv = [process.execPath, asRoot ? join(dist, basename(MONOCEROS)) : MONOCEROS, "-c", config];
    // setpriv execs Monoceros in its own process: the pid is Monoceros's.
    const command = asRoot ? ["setpriv", `--reuid=${IMAGE_UID}`, `--regid=${IMAGE_UID}`, "--clear-groups", "--", ...argv] : argv;
    // As in the container: no XDG_RUNTIME_DIR, so the control socket goes to /tmp/monoceros-<uid>/.
    const env = { XDG_RUNTIME_DIR: undefined, HOME: folder };
    const m = watchMonoceros(command, { cwd: folder, env });
    const pid = m.pid;
    monocerosPids.push(pid);
    const status = async (path: string, port = adminPort) => {
      try {
        return (await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(5_000) })).status;
      } catch {
        return 0;
      }
    };

    // Readiness: /health is 200 once 3 of the 4 workers pass their checks and HAProxy runs.
    await pollForAsync(`/health 200 (stderr so far: ${m.stderrLines.slice(-3).join("\n")})`, async () => (await status("/health")) === 200, 30_000);
    workerPids.push(...m.records().filter((r) => r.msg === "Worker started").map((r) => r.pid as number));
    expect(await status("/")).toBe(200); // liveness
    for (let i = 0; i < 50; i++) expect(await status("/", listenerPort)).toBe(200);
    if (asRoot) expect(readFileSync(`/proc/${pid}/status`, "utf8")).toMatch(new RegExp(`^Uid:\\s+${IMAGE_UID}\\s`, "m"));

    // What is not a worker: Monoceros, HAProxy and the watchdog (its direct children other than workers).
    const others = childrenOf(pid).filter((p) => !workerPids.includes(p));
    expect(others.map((p) => readFileSync(`/proc/${p}/comm`, "utf8").trim()).sort()).toEqual(["haproxy", "sh"]);
    const overheadBytes = rssBytes(pid, "VmHWM") + others.reduce((sum, p) => sum + rssBytes(p, "VmRSS"), 0);
    console.log(`deploy-config: Monoceros peak RSS ${(rssBytes(pid, "VmHWM") / MIB).toFixed(0)} MiB, with HAProxy and the watchdog ${(overheadBytes / MIB).toFixed(0)} MiB; the manifest reserves ${(reservedOverheadBytes() / MIB).toFixed(0)} MiB`);
    expect(overheadBytes + CTL_RSS_BYTES).toBeLessThanOrEqual(reservedOverheadBytes());

    // Shutdown within the bound the grace period is derived from: 20 s + 15 s + 10 s.
    const stopAtMs = performance.now();
    m.child.kill("SIGTERM");
    expect((await m.exited).code).toBe(0);
    expect(performance.now() - stopAtMs).toBeLessThan(45_000);
    expect(m.records().find((r) => r.msg === "All workers stopped; exiting")).toMatchObject({ exit_code: 0 });
    await pollFor("every worker and HAProxy gone", () => [...workerPids, ...others].every((p) => !isAlive(p)), 10_000);
  }, 90_000);
});
