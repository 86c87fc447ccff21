import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { HealthCheckConfig, HealthProbeConfig, PoolConfig } from "../../../src/config/types.js";
import { CHECK_TIMING } from "../../../src/domain/checks.js";
import { RESOURCE_ERROR_CODES, step, TIMING } from "../../../src/domain/supervisor.js";
import type { StepFunction } from "../../../src/runtime/runtime.js";
import { runScenario, runSeed } from "../../../sim/run.js";
import type { Scenario } from "../../../sim/scenario.js";
import { mergeCoverage, missingKinds, type Coverage } from "../../../sim/coverage.js";
import { RESOURCE_ERRORS, SPEC } from "../../../sim/spec.js";
import { NO_BACKOFF } from "../../support/harness.js";

const SEEDS = 1_000;

/** A generated health check as the config loader would accept it (http without a proxy needs ports of its own). */
function healthCheckOf(
  check: { kind: "http" | "exec" | "notify"; intervalMs: number; timeoutShare: number; failureThreshold: number; startPeriodMs: number; ownPorts: boolean } | null,
  poolIndex: number,
  proxyMode: boolean,
): HealthCheckConfig | null {
  if (check === null) return null;
  const probe: HealthProbeConfig = check.kind === "http"
    ? { kind: "http", path: "/healthz", host: "127.0.0.1", startPort: check.ownPorts || !proxyMode ? 9_500 + poolIndex * 100 : null }
    : check.kind === "exec" ? { kind: "exec", argv: ["check", "{{.Pid}}", "{{.WorkerId}}"] } : { kind: "notify" };
  const timeoutMs = Math.max(1, Math.round(check.intervalMs * check.timeoutShare));
  return { probe, intervalMs: check.intervalMs, timeoutMs, failureThreshold: check.failureThreshold, startPeriodMs: check.startPeriodMs };
}

describe("deterministic simulation", () => {
  it(`keeps every invariant over ${SEEDS} generated scenarios`, () => {
    const failures: string[] = [];
    let events = 0;
    const coverage: Coverage = new Map();
    for (let seed = 1; seed <= SEEDS; seed++) {
      const result = runSeed(seed);
      events += result.events;
      mergeCoverage(coverage, result.coverage);
      if (result.violation) failures.push(`seed ${seed}: ${result.violation.message}`);
    }
    expect(failures).toEqual([]);
    expect(events).toBeGreaterThan(SEEDS * 10);
    expect(missingKinds(coverage), "kinds of event, timer, command, fault or behaviour these seeds never exercised").toEqual([]);
  });

  it("gives a byte-identical trace for the same seed", () => {
    for (const seed of [7, 42, 1234]) {
      const first = runSeed(seed, { keepTrace: true });
      const second = runSeed(seed, { keepTrace: true });
      expect(second.trace).toEqual(first.trace);
      expect(second.traceHash).toBe(first.traceHash);
    }
    expect(runSeed(7).traceHash).not.toBe(runSeed(8).traceHash);
  });

  const brokenPolicies: [string, StepFunction, string][] = [
    [
      "never escalates to SIGKILL",
      (state, event, nowMs) => step(state, event, nowMs).filter((c) => !(c.type === "signal" && c.signal === "SIGKILL")),
      // Whichever comes first: a process alive signal_timeout after SIGTERM, or one alive after a third signal.
      "SIGKILL",
    ],
    [
      "ignores the restart budget",
      (state, event, nowMs) => {
        for (const pool of state.pools) for (const worker of pool.workers) worker.restarts = 0;
        return step(state, event, nowMs);
      },
      "no spawn after shutdown began",
    ],
    [
      "stops a proxy together with its workers",
      (state, event, nowMs) => {
        const commands = step(state, event, nowMs);
        const extra = commands.flatMap((command) => {
          const proxy = command.type === "drainProxy" ? state.pools[command.pool]?.proxy : null;
          return proxy?.pid != null && command.type === "drainProxy"
            ? [{ type: "signal" as const, ref: { pool: command.pool, worker: -1, generation: proxy.generation }, pid: proxy.pid, signal: "SIGTERM" as const }]
            : [];
        });
        return [...commands, ...extra];
      },
      "the proxy is signalled only after all workers of its pool exited",
    ],
    [
      "never takes a worker out of the proxy's rotation",
      (state, event, nowMs) => step(state, event, nowMs).filter((c) => !(c.type === "proxyRotation" && c.endpoints.some((e) => !e.inRotation) && event.type !== "start")),
      // Whichever comes first: a worker left in it, or (the rotation that puts it back dropped too) one kept out.
      "the proxy's rotation",
    ],
    [
      "never finishes a shutdown",
      (state, event, nowMs) => step(state, event, nowMs).filter((c) => c.type !== "exit"),
      "shutdown finishes",
    ],
  ];

  it.each(brokenPolicies)("catches a core that %s, with a replayable seed", (_name, broken, invariant) => {
    let caught: { seed: number; message: string } | null = null;
    for (let seed = 1; seed <= 2_000 && caught === null; seed++) {
      const result = runSeed(seed, { step: broken });
      if (result.violation) caught = { seed, message: result.violation.message };
    }
    expect(caught).not.toBeNull();
    expect(caught?.message).toContain(invariant);
    const replay = runSeed(caught?.seed ?? 0, { step: broken });
    expect(replay.violation?.message).toBe(caught?.message);
  });

  it("holds for scenarios fast-check generates and shrinks: proxy mode, restart policies, health checks, memory limits, max_unavailable and every fault", () => {
    const rate = fc.double({ min: 0, max: 1, noNaN: true });
    const poolArb = fc.record({
      replicas: fc.integer({ min: 1, max: 5 }),
      signalTimeoutMs: fc.integer({ min: 1, max: 20_000 }),
      maxRestarts: fc.oneof(fc.constant(Infinity), fc.integer({ min: 0, max: 10 })),
      startupWaitMs: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 3_000 })),
      desiredHealthyPercentage: fc.integer({ min: 0, max: 100 }),
      lifespanMs: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 120_000 })),
      jitterRatio: fc.double({ min: 0, max: 1, noNaN: true }),
      restartPolicy: fc.oneof(
        fc.constant(NO_BACKOFF),
        fc.record({
          minUptimeMs: fc.integer({ min: 0, max: 10_000 }),
          backoffInitialMs: fc.integer({ min: 0, max: 2_000 }),
          backoffMaxMs: fc.integer({ min: 0, max: 60_000 }),
          windowMs: fc.option(fc.integer({ min: 1, max: 600_000 })),
        }),
      ),
      proxySignalTimeoutMs: fc.option(fc.integer({ min: 1, max: 20_000 })),
      healthCheck: fc.option(
        fc.record({
          kind: fc.constantFrom("http", "exec", "notify"),
          // Short intervals only down to 250 ms: a run is up to 2 simulated minutes of checks.
          intervalMs: fc.integer({ min: 250, max: 10_000 }),
          timeoutShare: fc.double({ min: 0, max: 1, noNaN: true }),
          failureThreshold: fc.integer({ min: 1, max: 10 }),
          startPeriodMs: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 30_000 })),
          ownPorts: fc.boolean(),
        }),
      ),
      memoryMiB: fc.oneof(fc.constant(0), fc.integer({ min: 16, max: 512 })),
      maxUnavailable: fc.integer({ min: 1, max: 6 }),
    });
    const scenarioArb = fc.record({
      seed: fc.integer(),
      pools: fc.array(poolArb, { minLength: 1, maxLength: 3 }),
      faults: fc.option(
        fc.record({
          spawnFailure: fc.double({ min: 0, max: 0.5, noNaN: true }),
          crash: rate,
          ignoreSigterm: rate,
          slowSigterm: rate,
          meanLifetimeMs: fc.integer({ min: 100, max: 600_000 }),
          slowSpawn: rate,
          sigkillResist: rate,
          lateExitReport: rate,
          leftovers: rate,
          outputHeld: rate,
          staleEvents: rate,
          slowReady: rate,
          unhealthy: rate,
          memoryGrowth: rate,
        }),
      ),
      signals: fc.array(fc.integer({ min: 0, max: 120_000 }), { minLength: 1, maxLength: 4 }),
    });
    fc.assert(
      fc.property(scenarioArb, (generated) => {
        const pools: PoolConfig[] = generated.pools.map((p, index) => ({
          name: `p${index}`, replicas: p.replicas, exec: "worker", args: [], signalTimeoutMs: p.signalTimeoutMs, maxRestarts: p.maxRestarts,
          startupWaitMs: p.startupWaitMs, desiredHealthyPercentage: p.desiredHealthyPercentage,
          limits: { lifespanMs: p.lifespanMs, jitterRatio: p.jitterRatio, memoryBytes: p.memoryMiB * 1024 * 1024 }, restartPolicy: p.restartPolicy,
          healthCheck: healthCheckOf(p.healthCheck, index, p.proxySignalTimeoutMs !== null), maxUnavailable: p.maxUnavailable,
          maxSurge: 0, readyTimeoutMs: 60_000, listen: [], reusePort: true, env: {}, cwd: null, user: null, group: null,
          server: p.proxySignalTimeoutMs === null ? null : {
            proxy: index % 2 === 0 ? "envoy" : "haproxy", portArgName: "--port", portValueTemplate: "{{.Port}}", startPort: 9000 + index * 100,
            signalTimeoutMs: p.proxySignalTimeoutMs, healthCheckPath: "/health", loadBalancerAlgorithm: "ROUND_ROBIN", proxyConfigPath: `./proxy${index}`,
            proxyAdminPort: 0, listenerPort: 10_000 + index, proxyBinary: "proxy",
          },
        }));
        const scenario: Scenario = {
          seed: generated.seed,
          config: { admin: { port: 0, host: null }, pools },
          faults: generated.faults,
          shutdownSignalsAtMs: [...generated.signals].sort((a, b) => a - b),
          operations: [],
        };
        const result = runScenario(scenario);
        if (result.violation !== null) throw new Error(result.violation.message);
      }),
      { numRuns: 200 },
    );
  });

  it("states the core's bounds independently, and they agree with the core's", () => {
    const { killWaitMs, outputDrainMs, rotationGraceMs, spawnRetryMinMs, spawnRetryMaxMs, proxyRestartBaseMs, proxyRestartMaxMs, proxyStableAfterMs } = TIMING;
    const { resultGraceMs, timerSlackMs: checkTimerSlackMs, memorySampleIntervalMs, memorySamplesOverLimit, memoryUrgentFactor } = CHECK_TIMING;
    expect(SPEC).toEqual({
      killWaitMs, outputDrainMs, rotationGraceMs, spawnRetryMinMs, spawnRetryMaxMs, proxyRestartBaseMs, proxyRestartMaxMs, proxyStableAfterMs,
      resultGraceMs, checkTimerSlackMs, memorySampleIntervalMs, memorySamplesOverLimit, memoryUrgentFactor,
    });
    expect([...RESOURCE_ERRORS].sort()).toEqual([...RESOURCE_ERROR_CODES].sort());
  });
});
