// Health checks and memory limits with real processes (supervisor mode; proxy mode behind HAProxy
// is in haproxy.test.ts): processbin turning unhealthy, a SIGSTOPped worker, an exec check, a
// worker speaking sd_notify (a Python fixture), and a worker growing its memory.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { adminPort, cleanUpAfterEach, fetchStatus, isAlive, pollForAsync, PROCESSBIN, ROOT, startMonoceros, workerPids, type Running } from "../support/monoceros.js";

const track = cleanUpAfterEach(afterEach);
const NOTIFY_WORKER = join(ROOT, "test/fixtures/notify-worker.py");

function run(pool: string): Running {
  return track(startMonoceros(`admin: {port: 0, host: 127.0.0.1}\nsupervisor:\n  workers:\n    - name: web\n${pool}`));
}

const recordsWith = (m: Running, msg: string) => m.records().filter((r) => r.msg === msg);

async function metricsText(m: Running): Promise<string> {
  const port = await m.waitFor("the admin port", () => adminPort(m));
  const response = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(5_000) });
  return response.text();
}

/** A worker's /status entry (the fields this file reads). */
interface WorkerStatus {
  id: string;
  pid: number | null;
  ready: boolean;
  health_check: { last_result: string | null; consecutive_failures: number; notify_status?: string | null } | null;
  memory: { rss_bytes: number | null; limit_bytes: number; samples_over_limit: number } | null;
}

async function workerStatus(m: Running, id: string): Promise<WorkerStatus | undefined> {
  const port = adminPort(m);
  if (port === undefined) return undefined;
  const status = (await fetchStatus(port)) as unknown as { pools: { workers: WorkerStatus[] }[] } | undefined;
  return status?.pools[0]?.workers.find((worker) => worker.id === id);
}

describe("health checks with real processes", () => {
  it("supervisor mode: restarts a worker whose HTTP check fails failure_threshold times (processbin --unhealthy-after), not charged to max_restarts", async () => {
    const startPort = 24_000 + Math.floor(Math.random() * 6_000);
    const m = run(`      replicas: 2
      exec: ${PROCESSBIN}
      args: [--port-env, MONOCEROS_HEALTH_PORT, --unhealthy-after, 1500ms, --log-count, "0"]
      max_restarts: 0
      max_unavailable: 2
      health_check: {http: {path: /health, start_port: ${startPort}}, interval: 300ms, timeout: 200ms, failure_threshold: 2}
`);
    await m.waitFor("both workers ready", () => recordsWith(m, "Worker is ready").length >= 2, 20_000);
    const restart = await m.waitFor("a health restart", () => recordsWith(m, "Restarting worker: it failed its health check failure_threshold times in a row")[0], 20_000);
    expect(restart).toMatchObject({ cause: "health", result: "fail", detail: "HTTP 503", consecutive_failures: 2 });
    const failures = recordsWith(m, "Worker failed its health check; out of the rotation until it passes again");
    expect(failures.find((failure) => failure.worker_id === restart.worker_id)).toMatchObject({ consecutive_failures: 1 });
    // The replacement starts, passes, and Monoceros (max_restarts: 0) is still running.
    await m.waitFor("the replacement ready", () => recordsWith(m, "Worker is ready").length >= 3, 20_000);
    expect(recordsWith(m, "Too many restarts: shutting down")).toEqual([]);
    // Counted when the failing worker gets its SIGTERM: with surge, once its replacement is ready.
    await pollForAsync("the health limit event", async () => /^monoceros_workerpool_limits_events_total\{pool="web",limit_event="health"\} [1-9]/m.test(await metricsText(m)), 20_000);
    const metrics = await metricsText(m);
    expect(metrics).toMatch(/^monoceros_workerpool_health_checks_total\{pool="web",result="fail"\} [2-9]/m);
    expect(metrics).toMatch(/^monoceros_workerpool_health_checks_total\{pool="web",result="ok"\} [1-9]/m);
    expect(metrics).toMatch(/^monoceros_workerpool_worker_ready\{pool="web",worker="web-0"\} [01]$/m);
    expect(metrics).toMatch(/^monoceros_workerpool_restarts_total\{pool="web",worker_type="worker"\} [1-9]/m);
  }, 60_000);

  it("a SIGSTOPped worker: its checks time out, SIGTERM is not acted on, SIGKILL follows after signal_timeout", async () => {
    const startPort = 24_000 + Math.floor(Math.random() * 6_000);
    const m = run(`      replicas: 1
      exec: ${PROCESSBIN}
      args: [--port-env, MONOCEROS_HEALTH_PORT, --log-count, "0"]
      max_restarts: 0
      signal_timeout: 1s
      health_check: {http: {path: /health, start_port: ${startPort}}, interval: 300ms, timeout: 200ms, failure_threshold: 2}
`);
    await m.waitFor("the worker ready", () => recordsWith(m, "Worker is ready")[0], 20_000);
    const [pid] = workerPids(m);
    process.kill(pid as number, "SIGSTOP");
    const restart = await m.waitFor("a health restart", () => recordsWith(m, "Restarting worker: it failed its health check failure_threshold times in a row")[0], 20_000);
    expect(restart).toMatchObject({ pid, result: "timeout", detail: expect.stringMatching(/200 ms/) });
    const sigkill = await m.waitFor("the SIGKILL", () => recordsWith(m, "Worker did not exit within signal_timeout after SIGTERM; sending SIGKILL")[0], 20_000);
    expect(sigkill).toMatchObject({ worker_id: "web-0", signal_timeout_ms: 1_000 });
    await m.waitFor("its exit by SIGKILL", () => recordsWith(m, "Worker exited").find((r) => r.signal === "SIGKILL"), 20_000);
    await m.waitFor("a new worker ready", () => recordsWith(m, "Worker is ready").length >= 2, 20_000);
    expect(isAlive(pid as number)).toBe(false);
    expect(await metricsText(m)).toMatch(/^monoceros_workerpool_sigkill_total\{pool="web"\} 1$/m);
  }, 60_000);

  it("an exec check gets the worker's pid and id, and its output goes into the failure's record", async () => {
    const folder = mkdtempSync(join(tmpdir(), "monoceros-exec-check-"));
    const m = run(`      replicas: 2
      exec: ${PROCESSBIN}
      args: [--log-count, "0"]
      max_restarts: 0
      max_unavailable: 2
      health_check:
        exec: [sh, -c, 'kill -0 {{.Pid}} || exit 2; if [ -e "$0/sick-{{.WorkerId}}" ]; then echo "{{.WorkerId}} is sick"; exit 1; fi', ${folder}]
        interval: 300ms
        timeout: 250ms
        failure_threshold: 2
`);
    await m.waitFor("both workers ready", () => recordsWith(m, "Worker is ready").length >= 2, 20_000);
    writeFileSync(join(folder, "sick-web-1"), "");
    const restart = await m.waitFor("a health restart", () => recordsWith(m, "Restarting worker: it failed its health check failure_threshold times in a row")[0], 20_000);
    expect(restart).toMatchObject({ worker_id: "web-1", result: "fail", detail: expect.stringContaining("web-1 is sick") });
    expect(restart.detail).toMatch(/exit code 1/);
    expect(recordsWith(m, "Worker failed its health check; out of the rotation until it passes again").every((r) => r.worker_id === "web-1")).toBe(true);
  }, 60_000);

  it("notify: READY=1 late makes the worker ready, STATUS shows in /status, and silence after WATCHDOG=1 stops restarts it", async () => {
    const m = run(`      replicas: 1
      exec: ${NOTIFY_WORKER}
      args: ["1.5", "0.2", "1.5"]
      max_restarts: 0
      signal_timeout: 2s
      health_check: {notify: true, interval: 500ms, timeout: 500ms, failure_threshold: 2, start_period: 2s}
`);
    // Its plain stdout line comes wrapped in a record (worker_info_msg), as every plain line does.
    const started = await m.waitFor("the worker started", () => [...m.stdoutLines, ...m.stderrLines].find((line) => line.includes("notify-worker pid=")), 20_000);
    expect(started).toMatch(/watchdog_usec=500000/);
    const before = await pollStatus(m, (worker) => worker.pid !== null);
    expect(before.ready).toBe(false);
    const ready = await m.waitFor("READY=1", () => recordsWith(m, "Worker is ready")[0], 20_000);
    expect(ready).toMatchObject({ worker_id: "web-0" });
    const serving = await pollStatus(m, (worker) => worker.health_check?.notify_status === "serving");
    expect(serving.ready).toBe(true);
    const restart = await m.waitFor("a health restart", () => recordsWith(m, "Restarting worker: it failed its health check failure_threshold times in a row")[0], 20_000);
    expect(restart).toMatchObject({ result: "timeout", detail: "no READY=1 or WATCHDOG=1 within 500 ms" });
    await m.waitFor("the replacement started", () => recordsWith(m, "Worker started").length >= 2, 20_000);
    expect(recordsWith(m, "Too many restarts: shutting down")).toEqual([]);
  }, 60_000);

  async function pollStatus(m: Running, until: (worker: WorkerStatus) => boolean): Promise<WorkerStatus> {
    let last: WorkerStatus | undefined;
    const deadline = performance.now() + 20_000;
    while (performance.now() < deadline) {
      last = await workerStatus(m, "web-0");
      if (last !== undefined && until(last)) return last;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`timed out waiting for /status; last: ${JSON.stringify(last)}`);
  }
});

describe("memory limits with real processes", () => {
  it("restarts a worker whose group stays over limits.memory (processbin --grow-memory), naming RSS, limit and pid", async () => {
    const m = run(`      replicas: 2
      exec: ${PROCESSBIN}
      args: [--log-count, "0", --grow-memory, 40MiB, --grow-memory-max, 200MiB]
      max_restarts: 0
      limits: {memory: 100MiB}
`);
    const restart = await m.waitFor("a memory restart", () => recordsWith(m, "Restarting worker: its memory stayed over limits.memory")[0], 30_000);
    expect(restart).toMatchObject({ cause: "memory", limit_bytes: 100 * 1024 * 1024, samples_over_limit: 3 });
    expect(restart.rss_bytes as number).toBeGreaterThan(100 * 1024 * 1024);
    expect(workerPids(m)).toContain(restart.pid);
    await m.waitFor("a replacement", () => recordsWith(m, "Worker started").length >= 3, 20_000);
    // The limit counts as enforced when the old worker gets its SIGTERM: with surge, once its replacement is ready.
    await pollForAsync("the memory limit event", async () => /^monoceros_workerpool_limits_events_total\{pool="web",limit_event="memory"\} [1-9]/m.test(await metricsText(m)), 20_000);
    expect(recordsWith(m, "Too many restarts: shutting down")).toEqual([]);
  }, 60_000);
});
