// Proxy mode end to end with a real HAProxy (Debian's 2.6) and real workers, under bounded load
// on 127.0.0.1. Skipped with the reason printed where HAProxy is not installed; .ci/run treats
// that skip as a failure, because CI (root) installs it through `make test`.
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { findExecutable } from "../../src/backends/os/executable.js";
import { cleanUpAfterEach, isAlive, proxyPoolConfig, ROOT, startMonoceros, workerPids, type Running } from "../support/monoceros.js";

const haproxy = findExecutable("haproxy");
if (!haproxy.ok) console.log("SKIPPED haproxy tests: haproxy is not installed (make test installs it as root: apt-get install -y haproxy)");

const track = cleanUpAfterEach(afterEach);

interface Pool {
  m: Running;
  listener: number;
  /** server.proxy_config_path */
  folder: string;
}

function run(options: { algorithm?: string; exec?: string; replicas?: number; extra?: string; signalTimeout?: string; args?: string } = {}): Pool {
  const start = 23_000 + Math.floor(Math.random() * 8_000);
  const { yaml, folder } = proxyPoolConfig({
    proxy: "haproxy", admin: true, replicas: options.replicas ?? 3, exec: options.exec, signalTimeout: options.signalTimeout ?? "5s",
    poolExtra: options.extra, args: options.args, algorithm: options.algorithm ?? "ROUND_ROBIN", startPort: start, listenerPort: start + 50,
    serverSignalTimeout: "10s", folderPrefix: "monoceros-haproxy-",
  });
  return { m: track(startMonoceros(yaml)), listener: start + 50, folder };
}

interface Reply {
  ok: boolean;
  status?: number | string;
  worker: string;
  pid: string;
}

async function get(listener: number, path = "/"): Promise<Reply> {
  try {
    const response = await fetch(`http://127.0.0.1:${listener}${path}`, { signal: AbortSignal.timeout(15_000) });
    const body = await response.text();
    const reply = { ok: response.status === 200, worker: response.headers.get("x-worker-id") ?? "", pid: /pid=(\d+)/.exec(body)?.[1] ?? "" };
    return reply.ok ? reply : { ...reply, status: response.status };
  } catch (error) {
    return { ok: false, worker: "", pid: "", status: String((error as { cause?: unknown }).cause ?? error) };
  }
}

/** Until every worker answers through HAProxy (health checks pass a moment after each starts). */
async function untilAllServing(pool: Pool, replicas = 3): Promise<void> {
  const deadline = performance.now() + 30_000;
  while (performance.now() < deadline) {
    const seen = new Set<string>();
    for (let i = 0; i < replicas * 4; i++) {
      const reply = await get(pool.listener);
      if (reply.ok) seen.add(reply.worker);
    }
    if (seen.size === replicas) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error("HAProxy never served every worker");
}

/** `clients` loops of `requests` each, at once; bounded in count and by each request's timeout. */
async function load(listener: number, clients: number, requests: number, path = "/"): Promise<Reply[]> {
  const replies: Reply[] = [];
  await Promise.all(
    Array.from({ length: clients }, async () => {
      for (let i = 0; i < requests; i++) replies.push(await get(listener, path));
    }),
  );
  return replies;
}

const countBy = (replies: Reply[]) => {
  const counts = new Map<string, number>();
  for (const reply of replies) counts.set(reply.worker, (counts.get(reply.worker) ?? 0) + 1);
  return counts;
};

describe.skipIf(!haproxy.ok)("proxy mode with HAProxy", () => {
  it("ROUND_ROBIN reaches every worker, evenly", async () => {
    const pool = run();
    await untilAllServing(pool);
    const counts = countBy(await load(pool.listener, 1, 90));
    expect([...counts.keys()].sort()).toEqual(["web_web-0", "web_web-1", "web_web-2"]);
    for (const count of counts.values()) expect(count).toBe(30);
    // Its files straight in proxy_config_path: the config it runs on and its runtime API socket.
    expect(readdirSync(pool.folder).sort()).toEqual(["haproxy.cfg", "haproxy.sock"]);
    expect(pool.m.records().find((r) => r.msg === "Proxy started")).toBeDefined();
  });

  it("LEAST_REQUEST sends clearly fewer requests to a slow worker", async () => {
    const pool = run({ algorithm: "LEAST_REQUEST", exec: join(ROOT, "test/fixtures/slow-first-worker.sh") });
    await untilAllServing(pool);
    const replies = await load(pool.listener, 6, 30);
    expect(replies.every((r) => r.ok)).toBe(true);
    const counts = countBy(replies);
    const slow = counts.get("web_web-0") ?? 0;
    expect(slow).toBeLessThan(Math.min(counts.get("web_web-1") ?? 0, counts.get("web_web-2") ?? 0) / 2);
  });

  it("loses no request when a worker is killed under load, and puts its replacement back in rotation", async () => {
    const pool = run();
    await untilAllServing(pool);
    const victim = Number(pool.m.records().find((r) => r.msg === "Worker started" && r.worker_id === "web-1")?.pid);
    const during = load(pool.listener, 4, 150);
    await new Promise((r) => setTimeout(r, 300)); // setup: let the load get going
    process.kill(victim, "SIGKILL");
    const replies = await during;
    expect(replies.filter((r) => !r.ok)).toEqual([]);
    const replacement = await pool.m.waitFor("the replacement of web-1", () => pool.m.records().filter((r) => r.msg === "Worker started" && r.worker_id === "web-1").at(1)?.pid);
    const deadline = performance.now() + 20_000;
    let seenReplacement = false;
    while (!seenReplacement && performance.now() < deadline) {
      seenReplacement = (await load(pool.listener, 1, 6)).some((r) => r.pid === String(replacement));
    }
    expect(seenReplacement).toBe(true);
  });

  it("loses no request across lifespan restarts under load", async () => {
    const pool = run({ replicas: 4, extra: "      limits: {lifespan: 2s, jitter_ratio: 1}\n" });
    await untilAllServing(pool, 4);
    const lifespanStops = () => pool.m.records().filter((r) => r.msg === "Stopping worker because it reached its lifespan").length;
    const failed: Reply[] = [];
    let sent = 0;
    // Steady load until at least 4 workers were recycled: at most 60 batches of 4 × 100 requests.
    for (let batch = 0; batch < 60 && lifespanStops() < 4; batch++) {
      const replies = await load(pool.listener, 4, 100);
      sent += replies.length;
      failed.push(...replies.filter((r) => !r.ok));
    }
    expect(lifespanStops()).toBeGreaterThanOrEqual(4);
    expect(sent).toBeGreaterThan(0);
    expect(failed).toEqual([]);
  });

  /** Steady load (batches of 4 × 100 requests, at most 60) until done() holds; every reply that failed. */
  async function loadUntil(pool: Pool, done: () => boolean): Promise<{ sent: number; failed: Reply[] }> {
    const failed: Reply[] = [];
    let sent = 0;
    for (let batch = 0; batch < 60 && !done(); batch++) {
      const replies = await load(pool.listener, 4, 100);
      sent += replies.length;
      failed.push(...replies.filter((r) => !r.ok));
    }
    return { sent, failed };
  }

  it("loses no request across memory restarts under load (processbin --grow-memory): out of the rotation first, then SIGTERM", async () => {
    const pool = run({
      replicas: 3,
      args: "[--log-interval, 10s, --grow-memory, 30MiB, --grow-memory-max, 400MiB]",
      extra: "      limits: {memory: 120MiB}\n      health_check: {http: {path: /health}, interval: 500ms, timeout: 400ms}\n",
    });
    await untilAllServing(pool);
    const memoryRestarts = () => pool.m.records().filter((r) => r.msg === "Restarting worker: its memory stayed over limits.memory");
    const { sent, failed } = await loadUntil(pool, () => memoryRestarts().length >= 3);
    expect(memoryRestarts().length).toBeGreaterThanOrEqual(3);
    expect(sent).toBeGreaterThan(0);
    expect(failed).toEqual([]);
    // max_unavailable 1 (the default): the second waited for the first to be back.
    expect(pool.m.records().some((r) => r.msg === "Planned restart held back: max_unavailable workers of the pool are restarting already")).toBe(true);
  });

  it("takes a worker failing its HTTP check out of the rotation at once and restarts it, losing no request (processbin --unhealthy-after)", async () => {
    const pool = run({
      replicas: 3,
      args: "[--log-interval, 10s, --unhealthy-after, 3s]",
      // Started 1.5 s apart, so they turn unhealthy one at a time (all at once, nothing would be left to serve).
      extra: "      health_check: {http: {path: /health}, interval: 300ms, timeout: 250ms, failure_threshold: 2}\n      startup_wait_time: 1500ms\n",
    });
    await untilAllServing(pool);
    const healthRestarts = () => pool.m.records().filter((r) => r.msg === "Restarting worker: it failed its health check failure_threshold times in a row");
    const { failed } = await loadUntil(pool, () => healthRestarts().length >= 3);
    expect(healthRestarts().length).toBeGreaterThanOrEqual(3);
    expect(failed).toEqual([]);
    const outOfRotation = pool.m.records().find((r) => r.msg === "Worker failed its health check; out of the rotation until it passes again");
    expect(outOfRotation).toMatchObject({ consecutive_failures: 1, detail: "HTTP 503" });
  });

  it("shuts down under load: requests in flight complete, HAProxy stops last, nothing is left", async () => {
    const pool = run();
    await untilAllServing(pool);
    const inFlight = load(pool.listener, 3, 1, "/slow?ms=1500");
    await new Promise((r) => setTimeout(r, 400)); // setup: the slow requests are at the workers
    pool.m.child.kill("SIGTERM");
    const replies = await inFlight;
    expect(replies.map((r) => r.ok)).toEqual([true, true, true]);
    expect((await pool.m.exited).code).toBe(0);
    const records = pool.m.records();
    const lastWorkerExit = Math.max(...records.filter((r) => r.msg === "Worker exited").map((r) => r.ts as number));
    const proxyExit = records.find((r) => r.msg === "Proxy exited");
    expect(proxyExit?.ts as number).toBeGreaterThanOrEqual(lastWorkerExit);
    const proxyPid = Number(records.find((r) => r.msg === "Proxy started")?.pid);
    for (const pid of [proxyPid, ...workerPids(pool.m)]) expect(isAlive(pid)).toBe(false);
  });
});
