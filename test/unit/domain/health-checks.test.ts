import { describe, expect, it } from "vitest";
import type { HealthCheckConfig, HealthProbeConfig } from "../../../src/config/types.js";
import { CHECK_TIMING } from "../../../src/domain/checks.js";
import { TIMING } from "../../../src/domain/supervisor.js";
import type { Command } from "../../../src/domain/types.js";
import { harness, pool, runsForever, server } from "../../support/harness.js";

const check = (probe: HealthProbeConfig, overrides: Partial<HealthCheckConfig> = {}): HealthCheckConfig => ({
  probe, intervalMs: 1_000, timeoutMs: 200, failureThreshold: 3, startPeriodMs: 0, ...overrides,
});
const http: HealthProbeConfig = { kind: "http", path: "/healthz", host: "127.0.0.1", startPort: 9100 };
const rotations = (commands: { command: Command }[]) =>
  commands.flatMap(({ command }) => (command.type === "proxyRotation" ? [command.endpoints.map((e) => (e.inRotation ? "1" : "0")).join("")] : []));
const probes = (commands: { atMs: number; command: Command }[]) =>
  commands.flatMap(({ atMs, command }) => (command.type === "probe" ? [{ atMs, worker: command.ref.worker, probe: command.probe }] : []));

describe("health checks in the core", () => {
  it("checks early until the first pass, then every interval, on start_port + i in supervisor mode", () => {
    const h = harness([pool({ replicas: 2, healthCheck: check(http) })], () => ({ ...runsForever, readyAfterMs: 250 }));
    h.runUntil(3_500);
    const worker0 = probes(h.commands).filter((p) => p.worker === 0);
    // 100 ms (refused), 300 ms (passes: ready), then the counted ones at 1000, 2000, 3000.
    expect(worker0.map((p) => p.atMs)).toEqual([100, 300, 1_000, 2_000, 3_000]);
    expect(worker0[0]?.probe).toEqual({ kind: "http", host: "127.0.0.1", port: 9100, path: "/healthz" });
    expect(probes(h.commands).find((p) => p.worker === 1)?.probe).toMatchObject({ port: 9101 });
    expect(h.runtime.state.pools[0]?.workers.every((w) => w.ready)).toBe(true);
    expect(h.metrics.filter((m) => m.metric === "healthCheck").map((m) => "result" in m && m.result)).not.toContain("fail"); // refusals before the first pass do not count
  });

  it("puts a worker in the proxy's rotation only once it passes, and takes it out at its first counted failure", () => {
    const h = harness([pool({ replicas: 1, healthCheck: check({ ...http, startPort: null }), server: server() })], (request) =>
      request.workerId === "web-proxy" ? runsForever : { ...runsForever, readyAfterMs: 150, unhealthyAfterMs: 1_500 });
    h.runUntil(1_000);
    const joinedAt = h.commands.find(({ command }) => command.type === "proxyRotation" && command.endpoints[0]?.inRotation)?.atMs;
    expect(joinedAt).toBe(300); // the second readiness check
    expect(probes(h.commands)[0]?.probe).toMatchObject({ port: 9090 }); // the worker's own port in proxy mode
    h.runUntil(2_100);
    expect(rotations(h.commands).slice(-1)).toEqual(["0"]);
    expect(h.commands.find(({ atMs, command }) => atMs > 1_000 && command.type === "proxyRotation")?.atMs).toBe(2_000);
  });

  it("restarts a worker failing failure_threshold counted checks in a row, as a planned restart that max_restarts does not count", () => {
    const h = harness([pool({ replicas: 1, maxRestarts: 0, healthCheck: check(http) })], (_, index) => (index === 0 ? { ...runsForever, unhealthyAfterMs: 1_500 } : runsForever));
    h.runUntil(5_000);
    // Counted checks at 1000 (pass), 2000, 3000, 4000 (fail ×3): SIGTERM at once with the third.
    expect(h.signals("SIGTERM")).toEqual([{ atMs: 4_000, workerId: "web-0", signal: "SIGTERM" }]);
    expect(h.spawns).toHaveLength(2);
    expect(h.runtime.exited).toBeNull(); // max_restarts 0 and still running
    const worker = h.runtime.state.pools[0]?.workers[0];
    expect(worker?.restarts).toBe(0);
    expect(worker?.plannedRestarts).toBe(1);
    expect(h.metrics).toContainEqual(expect.objectContaining({ metric: "limitEvent", pool: "web", limitEvent: "health" }));
    expect(h.metrics.filter((m) => m.metric === "healthCheck" && m.result === "fail")).toHaveLength(3);
  });

  it("does not count failures in start_period, and restarts a worker that never answers after it", () => {
    const h = harness([pool({ replicas: 1, healthCheck: check(http, { startPeriodMs: 5_000 }) })], (_, index) => (index === 0 ? { ...runsForever, readyAfterMs: Infinity } : runsForever));
    h.runUntil(8_500);
    // First counted check at start_period + interval = 6000; the third failure at 8000.
    expect(h.signals("SIGTERM").map((s) => s.atMs)).toEqual([8_000]);
  });

  it("treats a probe that never answers as a timeout by the next counted check at the latest, then SIGKILLs a worker that ignores SIGTERM (SIGSTOP)", () => {
    const stopped = { ...runsForever, unhealthyAfterMs: 1_500, unhealthyAs: "hung" as const, onSigterm: { kind: "ignore" as const } };
    const h = harness([pool({ replicas: 1, signalTimeoutMs: 2_000, healthCheck: check(http) })], (_, index) => (index === 0 ? stopped : runsForever));
    h.runUntil(10_000);
    // Hung probes at 2000, 3000, 4000: each given up on when the next is due (sooner than its
    // timeout + resultGraceMs = 1200 ms), so counted checks stay an interval apart.
    expect(200 + CHECK_TIMING.resultGraceMs).toBeGreaterThan(1_000);
    const sigterm = h.signals("SIGTERM")[0]?.atMs ?? 0;
    expect(sigterm).toBe(5_000);
    expect(h.signals("SIGKILL")).toEqual([{ atMs: sigterm + 2_000, workerId: "web-0", signal: "SIGKILL" }]);
    const failures = h.commands.filter(({ command }) => command.type === "log" && command.msg === "Worker failed its health check");
    expect(failures.length).toBeGreaterThanOrEqual(2);
  });

  it("does not count a probe Monoceros could not make (EMFILE), and ignores a result that comes for an earlier probe", () => {
    const h = harness([pool({ replicas: 1, healthCheck: check(http) })], () => ({ ...runsForever, probeLatencyMs: 150 }));
    h.runUntil(120);
    const ref = { pool: 0, worker: 0, generation: 1 };
    h.runtime.dispatch({ type: "checkResult", ref, seq: 1, result: "fail", detail: "connect EMFILE 127.0.0.1:9100", localError: true });
    h.runUntil(299);
    const worker = h.runtime.state.pools[0]?.workers[0];
    expect(worker?.ready).toBe(false); // the backend's own answer to probe 1 (at 250) was ignored
    expect(worker?.check.last).toBeNull();
    h.runUntil(450);
    expect(worker?.ready).toBe(true); // probe 2 (at 300) passed
    const warnings = h.commands.filter(({ command }) => command.type === "log" && command.msg.startsWith("Health check could not be made"));
    expect(warnings).toHaveLength(1);
    expect(h.metrics.filter((m) => m.metric === "healthCheck" && m.result !== "ok")).toEqual([]);
  });

  it("fills {{.Pid}}, {{.WorkerId}} and {{.Port}} into exec checks", () => {
    const h = harness([pool({ replicas: 1, healthCheck: check({ kind: "exec", argv: ["/bin/check", "{{.Pid}}", "--id={{ .WorkerId }}", ":{{.Port}}"] }), server: server() })]);
    h.runUntil(150);
    const pid = h.runtime.state.pools[0]?.workers[0]?.pid;
    expect(probes(h.commands)[0]?.probe).toEqual({ kind: "exec", argv: ["/bin/check", String(pid), "--id=web-0", ":9090"] });
  });
});

describe("notify checks in the core", () => {
  const notify = check({ kind: "notify" }, { intervalMs: 1_000, timeoutMs: 1_000, failureThreshold: 2 });
  it("sets WATCHDOG_USEC and asks for a NOTIFY_SOCKET; READY=1 makes it ready, silence restarts it", () => {
    const h = harness([pool({ replicas: 1, healthCheck: notify, server: server() })], (request, index) =>
      request.workerId === "web-proxy" ? runsForever : index === 1 ? { ...runsForever, readyAfterMs: 1_500, unhealthyAfterMs: 3_200, watchdogEveryMs: 400 } : runsForever);
    h.runUntil(1_499);
    const worker = h.spawns.find((s) => s.workerId === "web-0");
    expect(worker?.notify).toBe(true);
    expect(worker?.env.WATCHDOG_USEC).toBe("1000000");
    expect(h.runtime.state.pools[0]?.workers[0]?.ready).toBe(false); // no READY=1 yet (its counted check at 1000 failed: 1 of 2)
    h.runUntil(1_500);
    expect(h.runtime.state.pools[0]?.workers[0]?.ready).toBe(true);
    expect(rotations(h.commands).slice(-1)).toEqual(["1"]);
    // Keepalives at 1900, 2300, 2700, 3100, then silence: the counted check at 4000 still saw one,
    // those at 5000 and 6000 see none: restart at 6000.
    h.runUntil(6_500);
    expect(h.signals("SIGTERM").filter((s) => s.workerId === "web-0").map((s) => s.atMs)).toEqual([6_000]);
    expect(h.metrics).toContainEqual(expect.objectContaining({ metric: "limitEvent", pool: "web", limitEvent: "health" }));
  });

  it("restarts a worker that pings WATCHDOG=1 but never sends READY=1 (its init hung)", () => {
    const h = harness([pool({ replicas: 1, healthCheck: notify })], (_, index) => (index === 0 ? { ...runsForever, readyAfterMs: Infinity } : runsForever));
    const ref = { pool: 0, worker: 0, generation: 1 };
    for (let atMs = 100; atMs <= 3_000; atMs += 300) {
      h.runUntil(atMs);
      h.runtime.dispatch({ type: "notify", ref, ready: false, watchdog: true, stopping: false, status: null });
    }
    h.runUntil(3_500);
    // Counted checks at 1000 and 2000 see keepalives but no READY=1: restart at the second.
    expect(h.signals("SIGTERM").map((s) => s.atMs)).toEqual([2_000]);
    const restart = h.commands.find(({ command }) => command.type === "log" && command.msg.startsWith("Restarting worker: it failed"))?.command;
    expect(restart).toMatchObject({ fields: { detail: "keepalive received, but no READY=1 yet" } });
  });

  it("takes a worker that sent STOPPING=1 out of the rotation and shows its STATUS", () => {
    const h = harness([pool({ replicas: 1, healthCheck: notify })]);
    h.runUntil(10);
    const ref = { pool: 0, worker: 0, generation: 1 };
    h.runtime.dispatch({ type: "notify", ref, ready: false, watchdog: false, stopping: true, status: "draining" });
    const worker = h.runtime.state.pools[0]?.workers[0];
    expect(worker?.ready).toBe(false);
    expect(worker?.check.status).toBe("draining");
    expect(worker?.check.stoppingSent).toBe(true);
  });
});

describe("planned restarts in the core", () => {
  it("gives a worker still in the proxy's rotation its grace even when its first failed check (failure_threshold 1) decides", () => {
    const h = harness([pool({ replicas: 1, healthCheck: check({ ...http, startPort: null }, { failureThreshold: 1 }), server: server() })], (request) =>
      request.workerId === "web-proxy" ? runsForever : { ...runsForever, unhealthyAfterMs: 1_500 });
    h.runUntil(2_500);
    const outAt = h.commands.find(({ atMs, command }) => atMs > 1_000 && command.type === "proxyRotation")?.atMs;
    const sigtermAt = h.signals("SIGTERM").find((s) => s.workerId === "web-0")?.atMs;
    expect(outAt).toBe(2_000);
    expect(sigtermAt).toBe(2_000 + TIMING.rotationGraceMs);
  });

  it("ends a planned restart whose replacement crashes before it is ready, so it holds back nobody", () => {
    const limits = { lifespanMs: 0, jitterRatio: 0, memoryBytes: 100 * 1024 * 1024 };
    const crashes = { ...runsForever, readyAfterMs: Infinity, exitAfterMs: 500, exitCode: 1 };
    const h = harness([pool({ replicas: 2, limits, maxUnavailable: 1, maxRestarts: Infinity, healthCheck: check(http) })], (request, index) =>
      request.workerId === "web-0" ? (index === 0 ? { ...runsForever, rssBytes: 200 * 1024 * 1024 } : crashes) : { ...runsForever, rssBytes: 50 * 1024 * 1024, rssGrowthBytesPerSecond: 10 * 1024 * 1024 });
    h.runUntil(12_000);
    // web-0: memory restart at 3 s; its replacement crashes at 3.5 s (before any pass). web-1 passes
    // the limit after 5 s and is restarted on its third sample over it (8 s), not held back behind
    // web-0 (nor only once it is over twice the limit, after 15 s).
    expect(h.commands.some(({ command }) => command.type === "log" && command.msg === "Planned restart ended: the replacement exited or failed to start before it was ready")).toBe(true);
    expect(h.signals("SIGTERM").find((s) => s.workerId === "web-1")?.atMs).toBe(8_000);
  });
});

describe("memory limits in the core", () => {
  const limits = { lifespanMs: 0, jitterRatio: 0, memoryBytes: 100 * 1024 * 1024 };
  it("restarts a worker over limits.memory on 3 samples in a row, naming RSS, limit and pid", () => {
    const h = harness([pool({ replicas: 2, limits })], (_, index) => (index === 0 ? { ...runsForever, rssBytes: 90 * 1024 * 1024, rssGrowthBytesPerSecond: 5 * 1024 * 1024 } : { ...runsForever, rssBytes: 50 * 1024 * 1024 }));
    h.runUntil(5_000);
    // 95, 100 (not over), 105, 110, 115 MiB at 1..5 s: over at 3, 4, 5 s.
    expect(h.signals("SIGTERM").map((s) => [s.atMs, s.workerId])).toEqual([[5_000, "web-0"]]);
    const record = h.commands.find(({ command }) => command.type === "log" && command.msg.startsWith("Restarting worker: its memory"))?.command;
    expect(record).toMatchObject({ fields: { rss_bytes: 115 * 1024 * 1024, limit_bytes: 100 * 1024 * 1024, pid: 1000, cause: "memory" } });
    expect(h.metrics).toContainEqual(expect.objectContaining({ metric: "limitEvent", pool: "web", limitEvent: "memory" }));
    expect(h.runtime.state.pools[0]?.workers[0]?.restarts).toBe(0);
  });

  it("never empties a pool whose workers all leak at once: max_unavailable at a time, the rest held back", () => {
    const leak = { ...runsForever, rssBytes: 200 * 1024 * 1024, onSigterm: { kind: "exit" as const, afterMs: 500, code: 0, signal: null } };
    const h = harness([pool({ replicas: 4, limits, maxUnavailable: 1 })], (_, index) => (index < 4 ? leak : runsForever));
    let most = 0;
    for (let atMs = 0; atMs <= 10_000; atMs += 10) {
      h.runUntil(atMs);
      const pool0 = h.runtime.state.pools[0];
      most = Math.max(most, pool0?.workers.filter((w) => w.plannedRestart !== null).length ?? 0);
      expect(pool0?.workers.filter((w) => w.status !== "running").length).toBeLessThanOrEqual(1);
    }
    expect(most).toBe(1);
    expect(h.spawns).toHaveLength(8); // all four were restarted, one after the other
    expect(h.commands.some(({ command }) => command.type === "log" && command.msg.startsWith("Planned restart held back"))).toBe(true);
  });

  it("does not hold back a worker over twice its limit", () => {
    const h = harness([pool({ replicas: 2, limits, maxUnavailable: 1, signalTimeoutMs: 60_000 })], (_, index) =>
      index === 0 ? { ...runsForever, rssBytes: 150 * 1024 * 1024, onSigterm: { kind: "ignore" } } : index === 1 ? { ...runsForever, rssBytes: 300 * 1024 * 1024 } : runsForever);
    h.runUntil(3_000);
    expect(h.signals("SIGTERM").map((s) => s.workerId).sort()).toEqual(["web-0", "web-1"]);
    const urgent = h.commands.find(({ command }) => command.type === "log" && command.msg.startsWith("Restarting worker: its memory") && command.fields.worker_id === "web-1")?.command;
    expect(urgent).toMatchObject({ fields: { urgent: true } });
  });

  it("calls off a held-back memory restart when the worker's memory falls under the limit", () => {
    const h = harness([pool({ replicas: 2, limits, maxUnavailable: 1 })], () => ({ ...runsForever, rssBytes: 200 * 1024 * 1024 }));
    h.runUntil(3_000);
    const held = h.runtime.state.pools[0]?.workers.find((w) => w.heldBack !== null);
    expect(held?.heldBack?.cause).toBe("memory");
    h.runtime.dispatch({ type: "memorySampled", samples: [{ ref: { pool: 0, worker: held?.index ?? 0, generation: 1 }, rssBytes: 1024 }] });
    expect(held?.heldBack).toBeNull();
  });

  it("does not hold back a worker failing its health check behind a memory restart", () => {
    const h = harness([pool({ replicas: 2, limits, maxUnavailable: 1, healthCheck: check(http), signalTimeoutMs: 60_000 })], (_, index) =>
      index === 0 ? { ...runsForever, rssBytes: 200 * 1024 * 1024, onSigterm: { kind: "ignore" } } : index === 1 ? { ...runsForever, unhealthyAfterMs: 3_500 } : runsForever);
    h.runUntil(7_000);
    // web-0 is in its memory restart (ignoring SIGTERM for a minute); web-1 fails at 4, 5, 6 s and is restarted at once anyway.
    expect(h.signals("SIGTERM").map((s) => [s.atMs, s.workerId])).toEqual([[3_000, "web-0"], [6_000, "web-1"]]);
  });
});
