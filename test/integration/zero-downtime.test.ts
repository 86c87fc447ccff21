// Zero downtime with real processes (issue 14): surge replacement, supervisor-held `listen`
// sockets, scaling and rolling restarts through `monoceros ctl`, under continuous load on
// 127.0.0.1 (new connections and keep-alive). Asserts no failed request, and how ids move.
import { execFile } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { findExecutable } from "../../src/backends/os/executable.js";
import { defaultControlSocketPath } from "../../src/control/socket-path.js";
import { startLoad, type LoadResult } from "../support/load.js";
import { adminPort, cleanUpAfterEach, fetchStatus, MONOCEROS, pollForAsync, PROCESSBIN, proxyPoolConfig, ROOT, startMonoceros, type Running } from "../support/monoceros.js";

const track = cleanUpAfterEach(afterEach);
const haproxy = findExecutable("haproxy");
if (!haproxy.ok) console.log("SKIPPED zero-downtime HAProxy test: haproxy is not installed (make test installs it as root: apt-get install -y haproxy)");

const randomPort = () => 23_000 + Math.floor(Math.random() * 8_000);

/** `monoceros ctl --socket <this Monoceros's socket> …`: exit code and output. */
function ctl(m: Running, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const socket = defaultControlSocketPath(process.env, process.getuid?.() ?? 0, m.pid);
  return new Promise((resolve) => {
    execFile(process.execPath, [MONOCEROS, "ctl", "--socket", socket, ...args], { cwd: ROOT, timeout: 30_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : 1, stdout, stderr });
    });
  });
}

function listenPool(port: number, fields: string): string {
  return `admin: {port: 0, host: 127.0.0.1}
supervisor:
  workers:
    - name: web
      replicas: 3
      max_restarts: -1
      exec: ${PROCESSBIN}
      args: [--listen-fd, "3", --log-count, "0"]
      listen: ["127.0.0.1:${port}"]
      restart_policy: {min_uptime: 300ms}
${fields}`;
}

async function running(m: Running, count: number): Promise<void> {
  await m.waitFor(`${count} workers running`, () => m.records().filter((r) => r.msg === "Worker started").length >= count, 20_000);
}

/** Until the port answers (a proxy's listener comes up a moment after its workers start). */
async function untilAnswering(port: number): Promise<void> {
  const deadline = performance.now() + 20_000;
  while (performance.now() < deadline) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(2_000) })).ok) return;
    } catch {
      // not yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing answers on port ${port}`);
}

async function untilFlowing(load: { answered: number }): Promise<void> {
  const deadline = performance.now() + 10_000;
  while (load.answered < 50 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
}

function expectNoFailures(result: LoadResult): void {
  expect(result.failures, `failed requests (of ${result.ok + result.failed})`).toEqual([]);
  expect(result.ok).toBeGreaterThan(500);
}

describe("zero downtime in supervisor mode with listen sockets", () => {
  it("loses no request while every worker is replaced by lifespan and ctl restart, and scaled up 3 → 6 (one SO_REUSEPORT socket per lane; ids move within replicas + max_surge)", async () => {
    const port = randomPort();
    const m = track(startMonoceros(listenPool(port, "      limits: {lifespan: 2s, jitter_ratio: 0.3}\n")));
    await running(m, 3);
    await untilAnswering(port);
    const load = startLoad(port, { newConnectionClients: 3, keepAliveClients: 3 });
    await untilFlowing(load);
    const restart = await ctl(m, ["restart", "web"]);
    expect(restart.code, restart.stderr).toBe(0);
    expect(restart.stdout).toContain("replace web-0");
    await m.waitFor("the rolling restart", () => m.records().filter((r) => r.msg === "Restarting worker: asked to (ctl restart)").length >= 3, 20_000);
    expect((await ctl(m, ["scale", "web", "6"])).code).toBe(0);
    await pollForAsync("six workers", async () => (await fetchStatus(adminPort(m) ?? 0))?.pools[0]?.workers.filter((w) => w.state === "running").length === 6 || undefined, 20_000);
    await new Promise((r) => setTimeout(r, 2_500));
    const result = await load.stop();
    expectNoFailures(result);
    // Ids: slots 0 .. replicas + max_surge - 1 at most (6 + 1 after scaling up).
    for (const worker of result.workers.keys()) expect(worker).toMatch(/^web_web-[0-6]$/);
    expect(m.records().filter((r) => r.msg === "Replacement is ready; stopping the worker it replaces").length).toBeGreaterThanOrEqual(3);
  }, 90_000);

  it("loses no request while scaled 3 → 6 → 2 → 5 → 1 with lifespan restarts (one socket shared by every worker: reuse_port false)", async () => {
    const port = randomPort();
    const m = track(startMonoceros(listenPool(port, "      reuse_port: false\n      limits: {lifespan: 2s, jitter_ratio: 0.3}\n")));
    await running(m, 3);
    await untilAnswering(port);
    const load = startLoad(port, { newConnectionClients: 3, keepAliveClients: 3 });
    await untilFlowing(load);
    for (const replicas of [6, 2, 5, 1]) {
      const scaled = await ctl(m, ["scale", "web", String(replicas)]);
      expect(scaled.code, scaled.stderr).toBe(0);
      await pollForAsync(`${replicas} workers`, async () => (await fetchStatus(adminPort(m) ?? 0))?.pools[0]?.workers.filter((w) => w.state === "running").length === replicas || undefined, 20_000);
    }
    await new Promise((r) => setTimeout(r, 1_000));
    expectNoFailures(await load.stop());
  }, 90_000);

  it("hands the sockets over with LISTEN_PID = the worker's pid, LISTEN_FDS and LISTEN_FDNAMES (a Python socket-activated server)", async () => {
    const port = randomPort();
    const python = findExecutable("python3");
    if (!python.ok) throw new Error("python3 is needed here");
    const m = track(startMonoceros(`admin: {port: 0, host: 127.0.0.1}
supervisor:
  workers:
    - name: py
      replicas: 2
      max_restarts: -1
      exec: ${python.path}
      args: [${join(ROOT, "test/fixtures/socket-activated.py")}]
      listen: ["127.0.0.1:${port}"]
`));
    await running(m, 2);
    const body = await pollForAsync("an answer", async () => {
      try {
        return await (await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(2_000) })).text();
      } catch {
        return undefined;
      }
    }, 20_000);
    const seen = JSON.parse(body) as { pid: number; listen_pid: string; listen_fds: string; listen_fdnames: string };
    expect(seen).toMatchObject({ listen_pid: String(seen.pid), listen_fds: "1", listen_fdnames: "py" });
    expect(m.records().filter((r) => r.msg === "Worker started").map((r) => r.pid)).toContain(seen.pid);
  }, 60_000);

  it("SIGTTIN adds a worker to every pool and SIGTTOU removes one; ctl status lists them", async () => {
    const port = randomPort();
    const m = track(startMonoceros(listenPool(port, "")));
    await running(m, 3);
    m.child.kill("SIGTTIN");
    await m.waitFor("a fourth worker", () => m.records().some((r) => r.msg === "Scaling pool" && r.replicas === 4) || undefined);
    // One at a time: two of one signal sent together may reach Monoceros as one (signals do not queue).
    m.child.kill("SIGTTOU");
    await m.waitFor("three workers", () => m.records().some((r) => r.msg === "Scaling pool" && r.replicas === 3) || undefined);
    m.child.kill("SIGTTOU");
    await m.waitFor("two workers", () => m.records().some((r) => r.msg === "Scaling pool" && r.replicas === 2) || undefined);
    const status = await ctl(m, ["status"]);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/^POOL\s+WORKER\s+PID\s+STATE/m);
    expect(status.stdout).toMatch(/^web\s+web-0\s+\d+\s+running/m);
    const json = JSON.parse((await ctl(m, ["status", "--json"])).stdout) as { pools: { replicas: number }[] };
    expect(json.pools[0]?.replicas).toBe(2);
    // ctl logs: a worker's own lines and Monoceros's records about it.
    const logs = await ctl(m, ["logs", "-n", "50", "web/0"]);
    expect(logs.code, logs.stderr).toBe(0);
    const lines = logs.stdout.trim().split("\n").map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines.some((record) => record.worker_id === "web-0" && String(record.worker_info_msg ?? "").includes("processbin started"))).toBe(true);
    expect(lines.some((record) => record.msg === "Worker started" && record.worker_id === "web-0")).toBe(true);
    expect(lines.every((record) => record.worker_id === "web-0")).toBe(true);
    const refused = await ctl(m, ["scale", "nope", "2"]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("no pool named nope");
  }, 60_000);

  it("SIGHUP reloads the config: changed args replace every worker under load (0 failed); an invalid config or a fixed key changes nothing and is counted", async () => {
    const port = randomPort();
    const m = track(startMonoceros(listenPool(port, "")));
    const configPath = m.child.spawnargs[m.child.spawnargs.indexOf("-c") + 1] as string;
    await running(m, 3);
    await untilAnswering(port);
    const load = startLoad(port, { newConnectionClients: 3, keepAliveClients: 3 });
    await untilFlowing(load);
    // args change (a worker-visible flag) and max_restarts (updated in place).
    writeFileSync(configPath, readFileSync(configPath, "utf8").replace('args: [--listen-fd, "3", --log-count, "0"]', 'args: [--listen-fd, "3", --log-count, "0", --log-fixed, reloaded]').replace("max_restarts: -1", "max_restarts: 100"));
    m.child.kill("SIGHUP");
    const reloaded = await m.waitFor("the reload", () => m.records().find((r) => r.msg === "Config reloaded"), 20_000);
    expect(reloaded.plan).toEqual(["pool web: replace every worker (args changed), rolling", "pool web: max_restarts updated (no worker replaced for them)"]);
    await m.waitFor("three replacements", () => m.records().filter((r) => r.msg === "Restarting worker: its pool's config changed (reload)").length >= 3 && m.records().filter((r) => r.msg === "Planned restart done").length >= 3, 30_000);
    expectNoFailures(await load.stop());
    // An invalid config: nothing changes, each problem logged, counted; so is a change only a restart can make.
    writeFileSync(configPath, readFileSync(configPath, "utf8").replace("replicas: 3", "replicas: 0"));
    const refused = await ctl(m, ["reload"]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("config not reloaded, nothing changed: supervisor.workers[0].replicas: must be a positive integer");
    writeFileSync(configPath, readFileSync(configPath, "utf8").replace("replicas: 0", "replicas: 3").replace(`127.0.0.1:${port}`, `127.0.0.1:${port + 1}`));
    const fixed = await ctl(m, ["reload"]);
    expect(fixed.stderr).toContain("supervisor.workers[0].listen changed: it is set up at start");
    const metrics = await (await fetch(`http://127.0.0.1:${adminPort(m)}/metrics`)).text();
    expect(metrics).toMatch(/^monoceros_config_reloads_total\{result="success"\} 1$/m);
    expect(metrics).toMatch(/^monoceros_config_reloads_total\{result="failed"\} 2$/m);
  }, 90_000);

  it("a reload adds a pool (its listen socket opened, its workers started) and removes one (its workers stop, its socket closes, its series go), under load on the pool that stays", async () => {
    const port = randomPort();
    const apiPort = port + 1;
    const m = track(startMonoceros(listenPool(port, "")));
    const configPath = m.child.spawnargs[m.child.spawnargs.indexOf("-c") + 1] as string;
    const original = readFileSync(configPath, "utf8");
    const pool = (name: string, listen: number) => original.slice(original.indexOf("    - name: web")).replace("name: web", `name: ${name}`).replace(`127.0.0.1:${port}`, `127.0.0.1:${listen}`);
    await running(m, 3);
    await untilAnswering(port);
    const load = startLoad(port, { newConnectionClients: 2, keepAliveClients: 2 });
    await untilFlowing(load);
    writeFileSync(configPath, `${original}${pool("api", apiPort)}`);
    const added = await ctl(m, ["reload"]);
    expect(added.code, added.stderr).toBe(0);
    expect(added.stdout).toContain("pool api: added (3 workers)");
    await untilAnswering(apiPort);
    await m.waitFor("api's workers", () => m.records().filter((r) => r.msg === "Worker started" && String(r.worker_id).startsWith("api-")).length >= 3, 20_000);
    // web stays, untouched: no worker of it replaced.
    expect(m.records().filter((r) => r.msg === "Worker started").length).toBe(6);
    expectNoFailures(await load.stop());
    // A pool whose ports are those of a pool being removed waits for the next reload.
    writeFileSync(configPath, `${original.slice(0, original.indexOf("    - name: web"))}${pool("api", apiPort)}${pool("web2", port)}`);
    const clash = await ctl(m, ["reload"]);
    expect(clash.code).toBe(1);
    expect(clash.stderr).toContain("supervisor.workers[1]: the listen address 127.0.0.1:" + port + " (" + port + ") overlap the listen address 127.0.0.1:" + port + " (" + port + ") of pool web, which is being removed");
    writeFileSync(configPath, `${original.slice(0, original.indexOf("    - name: web"))}${pool("api", apiPort)}`);
    const removed = await ctl(m, ["reload"]);
    expect(removed.code, removed.stderr).toBe(0);
    expect(removed.stdout).toContain("pool web: removed (its workers stop, out of the rotation first)");
    await m.waitFor("web gone", () => m.records().find((r) => r.msg === "Pool removed: all its processes have stopped" && r.pool === "web"), 20_000);
    const status = (await fetchStatus(adminPort(m) ?? 0)) as unknown as { pools: { name: string }[] };
    expect(status.pools.map((p) => p.name)).toEqual(["api"]);
    const metrics = await (await fetch(`http://127.0.0.1:${adminPort(m)}/metrics`)).text();
    expect(metrics).not.toMatch(/pool="web"/);
    expect(metrics).toMatch(/^monoceros_workerpool_restarts_total\{pool="api",worker_type="worker"\} 0$/m);
    await expect(fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(2_000) })).rejects.toThrow();
    expect((await fetch(`http://127.0.0.1:${apiPort}/`)).ok).toBe(true);
    // SIGTTIN now scales only the pool that is left.
    m.child.kill("SIGTTIN");
    await m.waitFor("api scaled to 4", () => m.records().find((r) => r.msg === "Scaling pool" && r.pool === "api" && r.replicas === 4), 20_000);
  }, 90_000);

  it("ctl without a running Monoceros exits 3 with a clear message", async () => {
    const result = await new Promise<{ code: number; stderr: string }>((resolve) => {
      execFile(process.execPath, [MONOCEROS, "ctl", "--socket", "/tmp/monoceros-no-such.sock", "status"], { cwd: ROOT }, (error, _stdout, stderr) => {
        resolve({ code: typeof error?.code === "number" ? error.code : 0, stderr });
      });
    });
    expect(result.code).toBe(3);
    expect(result.stderr).toMatch(/not running/);
  });
});

describe.skipIf(!haproxy.ok)("zero downtime in proxy mode (HAProxy)", () => {
  it("loses no request while ctl restart replaces every worker, each replacement on a port of its own", async () => {
    const start = randomPort();
    const { yaml } = proxyPoolConfig({
      proxy: "haproxy", admin: true, replicas: 3, signalTimeout: "5s", startPort: start, listenerPort: start + 50,
      serverSignalTimeout: "10s", folderPrefix: "monoceros-zd-", args: "[--log-count, '0']",
    });
    const m = track(startMonoceros(yaml));
    await running(m, 3);
    await untilAnswering(start + 50);
    const load = startLoad(start + 50, { newConnectionClients: 3, keepAliveClients: 3 });
    await untilFlowing(load);
    await new Promise((r) => setTimeout(r, 1_000));
    expect((await ctl(m, ["restart", "web"])).code).toBe(0);
    await m.waitFor("three replacements", () => m.records().filter((r) => r.msg === "Replacement is ready; stopping the worker it replaces").length >= 3, 30_000);
    await new Promise((r) => setTimeout(r, 1_000));
    const result = await load.stop();
    expectNoFailures(result);
    const ports = m.records().filter((r) => r.msg === "Worker started").length;
    expect(ports).toBeGreaterThanOrEqual(6);
  }, 90_000);

  it("a reload adds a pool behind a HAProxy of its own (started first, then serving), and removing it stops its workers, then its HAProxy", async () => {
    const start = randomPort();
    const web = proxyPoolConfig({ proxy: "haproxy", admin: true, replicas: 2, signalTimeout: "5s", startPort: start, listenerPort: start + 50, folderPrefix: "monoceros-zd-", args: "[--log-count, '0']" });
    const api = proxyPoolConfig({ proxy: "haproxy", replicas: 2, signalTimeout: "5s", startPort: start + 100, listenerPort: start + 150, folderPrefix: "monoceros-zd-", args: "[--log-count, '0']" });
    const apiPool = api.yaml.slice(api.yaml.indexOf("    - name: web")).replace("name: web", "name: api");
    const m = track(startMonoceros(web.yaml));
    const configPath = m.child.spawnargs[m.child.spawnargs.indexOf("-c") + 1] as string;
    await running(m, 2);
    await untilAnswering(start + 50);
    writeFileSync(configPath, `${web.yaml}${apiPool}`);
    const added = await ctl(m, ["reload"]);
    expect(added.code, added.stderr).toBe(0);
    expect(added.stdout).toContain("pool api: added (2 workers, and its proxy first)");
    await untilAnswering(start + 150);
    const status = (await fetchStatus(adminPort(m) ?? 0)) as unknown as { pools: { name: string; proxy: { pid: number } | null }[] };
    const apiProxyPid = status.pools.find((p) => p.name === "api")?.proxy?.pid;
    expect(apiProxyPid).toBeGreaterThan(0);
    writeFileSync(configPath, web.yaml);
    const removed = await ctl(m, ["reload"]);
    expect(removed.code, removed.stderr).toBe(0);
    expect(removed.stdout).toContain("pool api: removed (its workers stop, out of the rotation first, then its proxy)");
    await m.waitFor("api gone", () => m.records().find((r) => r.msg === "Pool removed: all its processes have stopped" && r.pool === "api"), 30_000);
    const order = m.records().filter((r) => r.pool === "api" && (r.msg === "Worker exited" || r.msg === "Proxy exited")).map((r) => r.msg);
    expect(order).toEqual(["Worker exited", "Worker exited", "Proxy exited"]);
    expect(() => process.kill(apiProxyPid as number, 0)).toThrow();
    expect((await fetch(`http://127.0.0.1:${start + 50}/`)).ok).toBe(true);
  }, 90_000);
});
