import { describe, expect, it } from "vitest";
import { supervisorHealth } from "../../../src/domain/health.js";
import { TIMING } from "../../../src/domain/supervisor.js";
import { harness, pool, runsForever } from "../../support/harness.js";

const crashesAfter = (ms: number, code = 1) => ({ ...runsForever, exitAfterMs: ms, exitCode: code });
const ignoresSigterm = { ...runsForever, onSigterm: { kind: "ignore" } as const };

describe("supervisor core", () => {
  it("starts replicas workers in index order with the original's ids and MULTIPROCESS_WORKER_ID", () => {
    const h = harness([pool({ name: "web", replicas: 3 })]);
    h.runUntil(0);
    expect(h.spawns.map((s) => [s.workerId, s.env.MULTIPROCESS_WORKER_ID])).toEqual([
      ["web-0", "web_web-0"],
      ["web-1", "web_web-1"],
      ["web-2", "web_web-2"],
    ]);
  });

  it("staggers starts by startup_wait_time", () => {
    const h = harness([pool({ replicas: 3, startupWaitMs: 500 })]);
    h.runUntil(2_000);
    const spawnTimes = h.commands.filter((c) => c.command.type === "spawn").map((c) => c.atMs);
    expect(spawnTimes).toEqual([0, 500, 1000]);
  });

  it("puts the port flag before the configured args in proxy mode", () => {
    const h = harness([
      pool({ args: ["--log-structured"], server: { proxy: "envoy", portArgName: "--port", portValueTemplate: "{{ .Port }}", startPort: 9090, signalTimeoutMs: 10_000, healthCheckPath: "/health", loadBalancerAlgorithm: "ROUND_ROBIN", proxyConfigPath: "./envoy", proxyAdminPort: 0, listenerPort: 10_000, proxyBinary: "envoy" } }),
    ]);
    h.runUntil(0);
    expect(h.spawns.filter((s) => s.workerId !== "web-proxy").map((s) => s.args)).toEqual([
      ["--port", "9090", "--log-structured"],
      ["--port", "9091", "--log-structured"],
    ]);
  });

  it("restarts a crashed worker until max_restarts, then shuts the pool down and exits 1", () => {
    const h = harness([pool({ replicas: 2, maxRestarts: 2 })], (request) => (request.workerId === "web-0" ? crashesAfter(100) : runsForever));
    expect(h.runToExit()).toBe(1);
    const web0Spawns = h.spawns.filter((s) => s.workerId === "web-0").length;
    expect(web0Spawns).toBe(3); // the first start and 2 restarts
    expect(h.signals("SIGTERM").map((s) => s.workerId)).toEqual(["web-1"]);
    expect(h.metrics.filter((m) => m.metric === "restart")).toHaveLength(2);
    expect([...h.backend.alive()]).toHaveLength(0);
  });

  it("with max_restarts 0 (the original's default) shuts down on the first exit", () => {
    const h = harness([pool({ replicas: 2, maxRestarts: 0 })], (request) => (request.workerId === "web-1" ? crashesAfter(50, 0) : runsForever));
    expect(h.runToExit()).toBe(1);
    expect(h.spawns).toHaveLength(2);
  });

  it("restarts without limit when max_restarts is negative (Infinity)", () => {
    const h = harness([pool({ replicas: 1, maxRestarts: Infinity })], () => crashesAfter(10));
    h.runUntil(10_000);
    expect(h.spawns.length).toBeGreaterThan(900);
    expect(h.runtime.exited).toBeNull();
  });

  it("retries a failed spawn with growing delays, counting it against max_restarts", () => {
    const h = harness([pool({ replicas: 1, maxRestarts: 3 })], () => ({ ...runsForever, spawnError: "ENOENT" }));
    expect(h.runToExit()).toBe(1);
    const spawnTimes = h.commands.filter((c) => c.command.type === "spawn").map((c) => c.atMs);
    expect(spawnTimes).toEqual([0, TIMING.spawnRetryMinMs, TIMING.spawnRetryMinMs * 3, TIMING.spawnRetryMinMs * 7]);
  });

  it("recycles a worker after its lifespan plus jitter, gracefully, without charging max_restarts", () => {
    const lifespanMs = 60_000;
    const h = harness([pool({ replicas: 1, maxRestarts: 0, limits: { lifespanMs, jitterRatio: 0.5, memoryBytes: 0 } })]);
    h.runUntil(10 * lifespanMs);
    const stops = h.signals("SIGTERM");
    expect(stops.length).toBeGreaterThanOrEqual(6);
    expect(h.runtime.exited).toBeNull(); // max_restarts 0 and still running
    expect(h.metrics.filter((m) => m.metric === "limitEvent")).toHaveLength(stops.length);
    let startedAt = 0;
    for (const stop of stops) {
      const lived = stop.atMs - startedAt;
      expect(lived).toBeGreaterThanOrEqual(lifespanMs);
      expect(lived).toBeLessThanOrEqual(lifespanMs * 1.5);
      startedAt = stop.atMs + 10; // the fake worker exits 10 ms after SIGTERM and is replaced at once
    }
  });

  it("accepts any jitter_ratio in [0, 1], tiny ones included (the original panics on them)", () => {
    for (const jitterRatio of [0, 1e-12, 1e-6, 1]) {
      const h = harness([pool({ replicas: 1, limits: { lifespanMs: 1_000, jitterRatio, memoryBytes: 0 } })]);
      h.runUntil(5_000);
      expect(h.signals("SIGTERM").length).toBeGreaterThanOrEqual(2);
    }
  });

  it("on SIGTERM sends SIGTERM to every worker, SIGKILL after signal_timeout to those still alive, then exits 0", () => {
    const h = harness([pool({ replicas: 2, signalTimeoutMs: 15_000 })], (request) => (request.workerId === "web-1" ? ignoresSigterm : runsForever));
    h.runUntil(1_000);
    h.runtime.dispatch({ type: "shutdownRequested", signal: "SIGTERM" });
    expect(h.runToExit()).toBe(0);
    expect(h.signals()).toEqual([
      { atMs: 1_000, workerId: "web-0", signal: "SIGTERM" },
      { atMs: 1_000, workerId: "web-1", signal: "SIGTERM" },
      { atMs: 16_000, workerId: "web-1", signal: "SIGKILL" },
    ]);
    expect(h.metrics.filter((m) => m.metric === "sigkill")).toHaveLength(1);
  });

  it("honours a signal during a staggered start: no worker is started after it", () => {
    const h = harness([pool({ replicas: 5, startupWaitMs: 1_000 })]);
    h.runUntil(1_500);
    h.runtime.dispatch({ type: "shutdownRequested", signal: "SIGINT" });
    expect(h.runToExit()).toBe(0);
    expect(h.spawns.map((s) => s.workerId)).toEqual(["web-0", "web-1"]);
    expect(h.clock.nowMs()).toBeLessThan(2_000);
  });

  it("a second signal does not disturb the shutdown; a third SIGKILLs every worker at once", () => {
    const h = harness([pool({ replicas: 2, signalTimeoutMs: 30_000 })], () => ignoresSigterm);
    h.runUntil(100);
    h.runtime.dispatch({ type: "shutdownRequested", signal: "SIGTERM" });
    h.runUntil(200);
    h.runtime.dispatch({ type: "shutdownRequested", signal: "SIGTERM" });
    h.runUntil(300);
    expect(h.signals("SIGKILL")).toEqual([]);
    h.runtime.dispatch({ type: "shutdownRequested", signal: "SIGTERM" });
    expect(h.runToExit()).toBe(0);
    expect(h.signals("SIGKILL").map((s) => s.atMs)).toEqual([300, 300]);
  });

  it("gives up on a process not reported gone after SIGKILL, so shutdown is bounded", () => {
    const h = harness([pool({ replicas: 1, signalTimeoutMs: 1_000 })], () => ignoresSigterm);
    h.runUntil(0);
    // A process that does not die even on SIGKILL (e.g. stuck in the kernel): the backend never reports its exit.
    h.backend.signal = () => {};
    h.runtime.dispatch({ type: "shutdownRequested", signal: "SIGTERM" });
    expect(h.runToExit()).toBe(0);
    expect(h.clock.nowMs()).toBe(1_000 + TIMING.killWaitMs);
  });

  it("a signal before start exits at once without starting anything", () => {
    const h = harness([pool({ replicas: 3, startupWaitMs: 100 })]);
    h.runtime.dispatch({ type: "shutdownRequested", signal: "SIGTERM" });
    expect(h.runToExit()).toBe(0);
    expect(h.spawns.length).toBeLessThanOrEqual(1);
  });

  it("computes pool health like the original and reports unhealthy from the moment shutdown begins", () => {
    const h = harness([pool({ replicas: 4, desiredHealthyPercentage: 75, maxRestarts: Infinity })], (request, index) =>
      request.workerId === "web-0" && index === 0 ? { ...runsForever, spawnError: "EAGAIN" } : runsForever,
    );
    h.runUntil(0);
    expect(supervisorHealth(h.runtime.state, h.clock.nowMs()).pools[0]).toMatchObject({ running: 3, runningPercentage: 75, healthy: true });
    h.runUntil(1_000);
    expect(supervisorHealth(h.runtime.state, h.clock.nowMs()).healthy).toBe(true);
    h.runtime.dispatch({ type: "shutdownRequested", signal: "SIGTERM" });
    expect(supervisorHealth(h.runtime.state, h.clock.nowMs()).healthy).toBe(false);
  });
});
