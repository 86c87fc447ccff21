import { describe, expect, it } from "vitest";
import { healthText } from "../../../src/admin/status.js";
import { Metrics } from "../../../src/metrics/registry.js";
import type { ProcessStats } from "../../../src/runtime/ports.js";
import { harness, pool, runsForever } from "../../support/harness.js";

const BUILD = { version: "1.2.3", revision: "abc", branch: "main" };

describe("metrics", () => {
  it("exposes the original's metrics, counters at 0 per pool from the start", async () => {
    const h = harness([pool({ name: "web", replicas: 2, limits: { lifespanMs: 60_000, jitterRatio: 0, memoryBytes: 0 } })]);
    h.runUntil(0);
    const metrics = new Metrics({ admin: { port: 0, host: null }, pools: h.runtime.state.pools.map((p) => p.config) }, h.runtime.state, () => null, BUILD);
    const text = await metrics.text();
    for (const line of [
      'monoceros_workerpool_restarts_total{pool="web",worker_type="worker"} 0',
      'monoceros_workerpool_restarts_total{pool="web",worker_type="proxy"} 0',
      'monoceros_workerpool_sigkill_total{pool="web"} 0',
      'monoceros_workerpool_limits_events_total{pool="web",limit_event="time"} 0',
      "monoceros_workerpool_failed_to_parse_log_json_total 0",
      "monoceros_supervisor_sigterm_received 0",
      "monoceros_supervisor_proxy_mode 0",
      `monoceros_build_info{version="1.2.3",revision="abc",branch="main",nodeversion="${process.version}"} 1`,
      'monoceros_workerpool_worker_state{pool="web",state="running"} 2',
    ]) {
      expect(text).toContain(line);
    }
    expect(text).toMatch(/^# HELP process_cpu_seconds_total /m);
    expect(text).toMatch(/^# HELP nodejs_heap_size_total_bytes /m);
  });

  it("counts what the core reports and every metric has HELP text", async () => {
    const h = harness([pool({ name: "web", replicas: 1, maxRestarts: 5 })], (_r, index) => (index < 2 ? { ...runsForever, exitAfterMs: 10 } : runsForever));
    const metrics = new Metrics({ admin: { port: 0, host: null }, pools: h.runtime.state.pools.map((p) => p.config) }, h.runtime.state, () => null, BUILD);
    h.runUntil(1_000);
    for (const event of h.metrics) metrics.record(event);
    metrics.logJsonCollision();
    const text = await metrics.text();
    expect(text).toContain('monoceros_workerpool_restarts_total{pool="web",worker_type="worker"} 2');
    expect(text).toContain("monoceros_workerpool_failed_to_parse_log_json_total 1");
    const names = new Set([...text.matchAll(/^([a-z_]+)(?:\{| )/gm)].map((m) => m[1]!.replace(/_(bucket|sum|count)$/, "")));
    const helped = new Set([...text.matchAll(/^# HELP (\S+) \S/gm)].map((m) => m[1]));
    for (const name of names) expect(helped.has(name) || helped.has(name.replace(/_total$/, "")), name).toBe(true);
  });

  it("reads per-worker process figures at scrape time and skips a worker that exited meanwhile", async () => {
    const h = harness([pool({ name: "web", replicas: 2 })]);
    h.runUntil(0);
    const [first, second] = h.runtime.state.pools[0]!.workers;
    const stats: ProcessStats = { cpuSeconds: 1.5, rssBytes: 1000, virtualMemoryBytes: 2000, openFds: 7, maxFds: 1024, virtualMemoryMaxBytes: null, startTimeSeconds: 1700000000 };
    const metrics = new Metrics({ admin: { port: 0, host: null }, pools: h.runtime.state.pools.map((p) => p.config) }, h.runtime.state, (pid) => (pid === first!.pid ? stats : null), BUILD);
    const text = await metrics.text();
    expect(text).toContain('monoceros_workerpool_process_cpu_seconds_total{pool="web",worker="web-0"} 1.5');
    expect(text).toContain('monoceros_workerpool_process_resident_memory_bytes{pool="web",worker="web-0"} 1000');
    expect(text).toContain('monoceros_workerpool_process_open_fds{pool="web",worker="web-0"} 7');
    expect(text).toContain('monoceros_workerpool_process_start_time_seconds{pool="web",worker="web-0"} 1700000000');
    expect(text).not.toMatch(new RegExp(`^monoceros_workerpool_process_\\w+\\{pool="web",worker="${second!.id}"\\}`, "m"));
    expect(text).toMatch(/# TYPE monoceros_workerpool_process_cpu_seconds_total counter/);
    // Readiness is the core's, not /proc's: every worker has it.
    expect(text).toContain(`monoceros_workerpool_worker_ready{pool="web",worker="${first!.id}"} 1`);
    expect(text).toContain(`monoceros_workerpool_worker_ready{pool="web",worker="${second!.id}"} 1`);
  });

  it("counts health checks by result and memory and health limit events, from 0 for pools that have them", async () => {
    const check = { probe: { kind: "http" as const, path: "/h", host: "127.0.0.1", startPort: 9100 }, intervalMs: 1_000, timeoutMs: 100, failureThreshold: 1, startPeriodMs: 0 };
    const h = harness([pool({ name: "web", replicas: 1, healthCheck: check, limits: { lifespanMs: 0, jitterRatio: 0, memoryBytes: 1024 } })]);
    const metrics = new Metrics({ admin: { port: 0, host: null }, pools: h.runtime.state.pools.map((p) => p.config) }, h.runtime.state, () => null, BUILD);
    let text = await metrics.text();
    for (const result of ["ok", "fail", "timeout"]) expect(text).toContain(`monoceros_workerpool_health_checks_total{pool="web",result="${result}"} 0`);
    for (const event of ["memory", "health"]) expect(text).toContain(`monoceros_workerpool_limits_events_total{pool="web",limit_event="${event}"} 0`);
    metrics.record({ metric: "healthCheck", pool: "web", result: "timeout" });
    metrics.record({ metric: "limitEvent", pool: "web", limitEvent: "health" });
    text = await metrics.text();
    expect(text).toContain('monoceros_workerpool_health_checks_total{pool="web",result="timeout"} 1');
    expect(text).toContain('monoceros_workerpool_limits_events_total{pool="web",limit_event="health"} 1');
    expect(text).toContain('monoceros_workerpool_worker_ready{pool="web",worker="web-0"} 0'); // not passed a check yet
  });

  it("names no gauge like a counter (promtool's lint; the prom-client defaults nodejs_active_*_total are left out)", async () => {
    const h = harness([pool({ name: "web", replicas: 1 })]);
    h.runUntil(0);
    const metrics = new Metrics({ admin: { port: 0, host: null }, pools: h.runtime.state.pools.map((p) => p.config) }, h.runtime.state, () => null, BUILD);
    const text = await metrics.text();
    const types = [...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1]!, m[2]!] as const);
    expect(types.filter(([name, type]) => name.endsWith("_total") && type !== "counter")).toEqual([]);
    expect(types.filter(([name, type]) => type === "counter" && !name.endsWith("_total"))).toEqual([]);
    // What the per-type gauges still say (their sum is the total that was left out).
    expect(text).toMatch(/^# TYPE nodejs_active_handles gauge$/m);
    expect(text).not.toMatch(/^nodejs_active_(handles|requests|resources)_total/m);
  });

  it("exposes limits.memory per pool that has one, following a reload", async () => {
    const limits = (memoryBytes: number) => ({ lifespanMs: 0, jitterRatio: 0, memoryBytes });
    const h = harness([pool({ name: "web", replicas: 1, limits: limits(512 * 1024 * 1024) }), pool({ name: "other", replicas: 1 })]);
    h.runUntil(0);
    const metrics = new Metrics({ admin: { port: 0, host: null }, pools: h.runtime.state.pools.map((p) => p.config) }, h.runtime.state, () => null, BUILD);
    let text = await metrics.text();
    expect(text).toContain(`monoceros_workerpool_memory_limit_bytes{pool="web"} ${512 * 1024 * 1024}`);
    expect(text).not.toContain('monoceros_workerpool_memory_limit_bytes{pool="other"}');
    const [web, other] = h.runtime.state.pools;
    web!.config = { ...web!.config, limits: limits(0) };
    other!.config = { ...other!.config, limits: limits(1024) };
    text = await metrics.text();
    expect(text).not.toContain('monoceros_workerpool_memory_limit_bytes{pool="web"}');
    expect(text).toContain('monoceros_workerpool_memory_limit_bytes{pool="other"} 1024');
  });

  it("answers /health like the original and says which pool is short, and 503 from shutdown on", () => {
    const h = harness([pool({ name: "web", replicas: 4, desiredHealthyPercentage: 75, startupWaitMs: 1_000 })]);
    h.runUntil(1_000);
    expect(healthText(h.runtime.state, h.clock.nowMs())).toEqual({ healthy: false, text: "pool web: 2 of 4 workers up (50% < 75%)\n" });
    h.runUntil(2_000);
    expect(healthText(h.runtime.state, h.clock.nowMs())).toEqual({ healthy: true, text: "ok\n" });
    h.runtime.dispatch({ type: "shutdownRequested", signal: "SIGTERM" });
    expect(healthText(h.runtime.state, h.clock.nowMs())).toEqual({ healthy: false, text: "shutting down\n" });
  });
});
