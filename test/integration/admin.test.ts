// The admin endpoint of a running dist/monoceros: metrics that move, /health, /status, errors.
import { createServer, type Server } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { killAll, PROCESSBIN, startMonoceros, workerPids, type Running } from "../support/monoceros.js";

const started: Running[] = [];
const servers: Server[] = [];
afterEach(async () => {
  for (const running of started.splice(0)) {
    // Monoceros first: killing its workers first would only make it start new ones.
    await running.stop();
    killAll(workerPids(running));
  }
  for (const server of servers.splice(0)) server.close();
});

// Below Linux's ephemeral range (32768+), so a client connection cannot hold the port.
const freePort = () => 30_000 + Math.floor(Math.random() * 2_700);

function run(port: number, poolFields: string): Running {
  const running = startMonoceros(`admin:\n  port: ${port}\n  host: 127.0.0.1\nsupervisor:\n  workers:\n    - name: web\n      exec: ${PROCESSBIN}\n${poolFields}`);
  started.push(running);
  return running;
}

async function get(port: number, path: string): Promise<{ status: number; text: string }> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: response.status, text: await response.text() };
}

/** The value of one sample line, e.g. metric(text, 'monoceros_workerpool_sigkill_total{pool="web"}'). */
function metric(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

async function scrapeUntil(m: Running, port: number, what: string, probe: (text: string) => boolean, timeoutMs = 20_000): Promise<string> {
  let last = "";
  await m.waitFor(
    what,
    () => {
      void get(port, "/metrics").then((r) => (last = r.text), () => undefined);
      return probe(last);
    },
    timeoutMs,
  );
  return last;
}

describe("admin endpoint", () => {
  it("serves the original's metric names and labels, with per-worker process figures", async () => {
    const port = freePort();
    const m = run(port, `      replicas: 2\n      max_restarts: -1\n      args: [--log-interval, 10s]\n`);
    // Running means spawned: a worker just exec'ing has a tiny RSS, so wait until both have loaded.
    const loaded = (t: string) => ["web-0", "web-1"].every((w) => (metric(t, `monoceros_workerpool_process_resident_memory_bytes{pool="web",worker="${w}"}`) ?? 0) > 1_000_000);
    const text = await scrapeUntil(m, port, "two running, loaded workers", (t) => metric(t, 'monoceros_workerpool_worker_state{pool="web",state="running"}') === 2 && loaded(t));
    expect(metric(text, 'monoceros_workerpool_restarts_total{pool="web",worker_type="worker"}')).toBe(0);
    expect(metric(text, 'monoceros_workerpool_restarts_total{pool="web",worker_type="proxy"}')).toBe(0);
    expect(metric(text, 'monoceros_workerpool_sigkill_total{pool="web"}')).toBe(0);
    expect(metric(text, "monoceros_supervisor_sigterm_received")).toBe(0);
    for (const worker of ["web-0", "web-1"]) {
      expect(metric(text, `monoceros_workerpool_process_resident_memory_bytes{pool="web",worker="${worker}"}`)).toBeGreaterThan(1_000_000);
      expect(metric(text, `monoceros_workerpool_process_open_fds{pool="web",worker="${worker}"}`)).toBeGreaterThan(2);
      expect(metric(text, `monoceros_workerpool_process_cpu_seconds_total{pool="web",worker="${worker}"}`)).toBeGreaterThanOrEqual(0);
      expect(metric(text, `monoceros_workerpool_process_start_time_seconds{pool="web",worker="${worker}"}`)).toBeGreaterThan(Date.now() / 1000 - 120);
    }
    expect(text).toMatch(/^monoceros_build_info\{version="[^"]+",revision="[^"]+",branch="[^"]+",nodeversion="v\d+[^"]*"\} 1$/m);
    expect(text).toMatch(/^process_resident_memory_bytes \d+/m);
    const status = JSON.parse((await get(port, "/status")).text) as { pools: { workers: { id: string; state: string; pid: number; rss_bytes: number }[] }[] };
    // The third slot is free: room for a surge replacement (max_surge 1, the default).
    expect(status.pools[0]!.workers.map((w) => [w.id, w.state])).toEqual([["web-0", "running"], ["web-1", "running"], ["web-2", "vacant"]]);
    expect(status.pools[0]!.workers[0]!.rss_bytes).toBeGreaterThan(1_000_000);
    expect((await get(port, "/nope")).status).toBe(404);
  });

  it("counts a restart and a lifespan restart", async () => {
    const port = freePort();
    const m = run(port, `      replicas: 1\n      max_restarts: -1\n      limits: {lifespan: 1500ms}\n      args: [--exit-after, 700ms]\n`);
    const afterCrash = await scrapeUntil(m, port, "a restart", (t) => (metric(t, 'monoceros_workerpool_restarts_total{pool="web",worker_type="worker"}') ?? 0) >= 1);
    expect(metric(afterCrash, 'monoceros_workerpool_limits_events_total{pool="web",limit_event="time"}')).toBe(0);
    m.child.kill("SIGTERM");
    await m.exited;
    const lifespan = run(port, `      replicas: 1\n      max_restarts: 0\n      limits: {lifespan: 800ms}\n      args: [--log-interval, 10s]\n`);
    const text = await scrapeUntil(lifespan, port, "a lifespan restart", (t) => (metric(t, 'monoceros_workerpool_limits_events_total{pool="web",limit_event="time"}') ?? 0) >= 1);
    await scrapeUntil(lifespan, port, "its restart counted", (t) => (metric(t, 'monoceros_workerpool_restarts_total{pool="web",worker_type="worker"}') ?? 0) >= 1);
    expect(metric(text, 'monoceros_workerpool_sigkill_total{pool="web"}')).toBe(0);
  });

  it("stays up during shutdown: sigterm_received 1, /health 503, a SIGKILL counted; /health 200 only once enough workers run", async () => {
    const port = freePort();
    // A second pool whose worker takes 3 s to exit keeps Monoceros (and its admin endpoint) up
    // after the first pool's workers were SIGKILLed at 1.5 s, so that count can be scraped.
    const slowPool = `    - name: slow\n      replicas: 1\n      max_restarts: -1\n      exec: ${PROCESSBIN}\n      signal_timeout: 10s\n      args: [--signal-timeout, 3s, --log-interval, 10s]\n`;
    const m = run(port, `      replicas: 2\n      max_restarts: -1\n      desired_healthy_percentage: 100\n      startup_wait_time: 1500ms\n      signal_timeout: 1500ms\n      args: [--ignore-signals, --log-interval, 10s]\n${slowPool}`);
    await m.waitFor("the admin endpoint", () => m.records().some((r) => r.msg?.toString().startsWith("Admin endpoint listening")));
    const early = await get(port, "/health");
    expect(early.status).toBe(503);
    // The first worker runs, the second waits for startup_wait_time; neither has run min_uptime (1 s) yet, or only the first has.
    expect(early.text).toMatch(/^pool web: (0 of 2 workers up \(0% < 100%\); 1 more running but not ready or not yet for restart_policy\.min_uptime|1 of 2 workers up \(50% < 100%\))\n$/);
    let health = early;
    await m.waitFor("healthy", () => {
      void get(port, "/health").then((r) => (health = r), () => undefined);
      return health.status === 200;
    });
    expect(health.text).toBe("ok\n");
    await m.waitFor("all three workers ready", () => m.stderrLines.filter((l) => l.includes("processbin started")).length === 3);
    m.child.kill("SIGTERM");
    const during = await scrapeUntil(m, port, "sigterm_received 1", (t) => metric(t, "monoceros_supervisor_sigterm_received") === 1);
    expect(during).toBeTruthy();
    expect(await get(port, "/health")).toEqual({ status: 503, text: "shutting down\n" });
    await scrapeUntil(m, port, "two SIGKILLs counted", (t) => metric(t, 'monoceros_workerpool_sigkill_total{pool="web"}') === 2);
    expect((await m.exited).code).toBe(0);
  });

  it("fails with exit 2 and starts no worker when the admin port is in use", async () => {
    const port = freePort();
    const blocker = createServer();
    servers.push(blocker);
    await new Promise<void>((resolve) => blocker.listen(port, "127.0.0.1", resolve));
    const m = run(port, `      replicas: 2\n      max_restarts: -1\n`);
    const { code } = await m.exited;
    expect(code).toBe(2);
    expect(m.stderrLines).toEqual([`admin: cannot listen on 127.0.0.1:${port}: port ${port} is already in use`]);
  });

  it("fails with exit 2 on an address that is not on this machine", async () => {
    const m = startMonoceros(`admin:\n  port: ${freePort()}\n  host: 192.0.2.1\nsupervisor:\n  workers:\n    - {name: web, replicas: 1, exec: ${PROCESSBIN}, max_restarts: 1}\n`);
    started.push(m);
    const { code } = await m.exited;
    expect(code).toBe(2);
    expect(m.stderrLines).toEqual([expect.stringMatching(/^admin: cannot listen on 192\.0\.2\.1:\d+: address 192\.0\.2\.1 is not available on this machine$/)]);
  });
});
