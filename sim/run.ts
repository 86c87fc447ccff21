// One simulated run: a scenario on the memory backend and virtual clock, the real core and
// runtime, and the invariant monitor checking after every step.
import { createHash } from "node:crypto";
import { MemoryBackend } from "../src/backends/memory/memory-backend.js";
import { VirtualClock } from "../src/backends/memory/virtual-clock.js";
import { supervisorHealth } from "../src/domain/health.js";
import { createSupervisorState, PROXY_INDEX } from "../src/domain/state.js";
import type { Command, SupervisorEvent } from "../src/domain/types.js";
import { Runtime, type StepFunction } from "../src/runtime/runtime.js";
import { bump, countStep, type Coverage } from "./coverage.js";
import { InvariantMonitor, InvariantViolation } from "./invariants.js";
import { SurgeMonitor } from "./surge-model.js";
import { generateScenario, reloadedConfig, scriptForSpawn, SPAWN_LATENCY_MS, spawnLatencyMaxMs, type Scenario } from "./scenario.js";
import { describeCommand, describeEvent } from "../src/runtime/trace.js";

export interface RunOptions {
  /** Keep every trace line (for printing); the hash is always computed. */
  keepTrace?: boolean;
  /** Replace the core's decision function (to prove the simulator catches a broken policy). */
  step?: StepFunction;
  /** Replace the core's /health function the same way. */
  health?: HealthFunction;
  /** A bound on events per run, so a livelock ends as a violation instead of running forever. */
  maxEvents?: number;
}

export interface RunResult {
  seed: number;
  scenario: Scenario;
  events: number;
  simulatedMs: number;
  exitCode: number | null;
  violation: InvariantViolation | null;
  traceHash: string;
  trace: string[];
  /** How often each event, timer, command, fault and behaviour kind happened (see coverage.ts). */
  coverage: Coverage;
}

export type HealthFunction = typeof supervisorHealth;

const MAX_EVENTS_DEFAULT = 2_000_000;

export function runSeed(seed: number, options: RunOptions = {}): RunResult {
  return runScenario(generateScenario(seed), options);
}

export function runScenario(scenario: Scenario, options: RunOptions = {}): RunResult {
  const clock = new VirtualClock();
  const backend = new MemoryBackend(
    clock,
    (request, spawnIndex) =>
      scriptForSpawn(scenario, scenario.config.pools[request.ref.pool] ?? (scenario.config.pools[0] as never), spawnIndex, request.ref.worker === PROXY_INDEX),
    SPAWN_LATENCY_MS,
  );
  const state = createSupervisorState(scenario.config, scenario.seed, (pool) => ({ exec: "proxy", args: [], stopSignal: pool.name.endsWith("1") ? ("SIGUSR1" as const) : ("SIGTERM" as const) }));
  const health = options.health ?? supervisorHealth;
  const coverage: Coverage = new Map();
  const monitor = new InvariantMonitor(scenario.config, backend, {
    faultFree: scenario.faults === null,
    spawnLatencyMaxMs: spawnLatencyMaxMs(scenario),
    coreHealthy: (nowMs) => health(state, nowMs).healthy,
    count: (behaviour) => bump(coverage, `behaviour ${behaviour}`),
  });
  // Runs about surge are checked by the surge model alone (the slot model knows only in-place restarts).
  const surgeMonitor = scenario.config.pools.some((pool) => pool.maxSurge > 0) ? new SurgeMonitor(scenario.config, state, scenario.faults === null) : null;
  const hash = createHash("sha256");
  const trace: string[] = [];
  const maxEvents = options.maxEvents ?? MAX_EVENTS_DEFAULT;
  let events = 0;
  // Lines are hashed in chunks: one hash update per line cost a tenth of the run.
  let pending = "";
  const record = (line: string) => {
    pending += `${line}\n`;
    if (pending.length > 65_536) {
      hash.update(pending);
      pending = "";
    }
    if (options.keepTrace) trace.push(line);
  };
  const runtime = new Runtime(
    state,
    backend,
    clock,
    {
      observe: (event: SupervisorEvent, commands: readonly Command[], nowMs: number) => {
        events++;
        record(`${nowMs} > ${describeEvent(state, event)}`);
        for (const command of commands) if (command.type !== "log") record(`${nowMs}   < ${describeCommand(state, command)}`);
        countStep(coverage, event, commands);
        if (surgeMonitor !== null) surgeMonitor.afterStep(event, commands, nowMs);
        else monitor.afterStep(event, commands, nowMs);
      },
    },
    options.step,
  );

  let violation: InvariantViolation | null = null;
  try {
    for (const atMs of scenario.shutdownSignalsAtMs) {
      clock.setTimer(atMs, () => runtime.dispatch({ type: "shutdownRequested", signal: "SIGTERM" }));
    }
    // Reloads build on each other: the config each one hands over is the one the last applied.
    let config = scenario.config;
    scenario.operations.forEach((operation, requestId) => {
      clock.setTimer(operation.atMs, () => {
        if (operation.kind === "reload") {
          const next = reloadedConfig(config, operation, requestId);
          const proxyLaunches = Object.fromEntries(next.pools.filter((pool) => pool.server !== null).map((pool) => [pool.name, { exec: "proxy", args: [], stopSignal: "SIGTERM" as const }]));
          runtime.dispatch({ type: "reload", requestId, config: next, proxyLaunches });
          // Applied: every pool of the new config runs with it (a refused reload changed none).
          if (next.pools.every((pool) => state.pools.some((running) => running.removal === null && running.config === pool))) config = next;
          return;
        }
        runtime.dispatch(operation.kind === "scale"
          ? { type: "scale", requestId, pool: operation.pool, replicas: operation.replicas }
          : { type: "restartRequested", requestId, pool: operation.pool, worker: operation.worker });
      });
    });
    runtime.start();
    let instantMs = clock.nowMs();
    while (runtime.exited === null) {
      const nextAtMs = clock.nextAtMs();
      if (nextAtMs === null) {
        if (surgeMonitor === null) monitor.afterInstant(instantMs, Infinity); // nothing will ever happen: every deadline still pending is missed
        throw new InvariantViolation("shutdown finishes", "nothing left to happen, yet Monoceros has not exited (a hang)", clock.nowMs(), null);
      }
      if (nextAtMs !== instantMs) {
        if (surgeMonitor === null) monitor.afterInstant(instantMs, nextAtMs);
        instantMs = nextAtMs;
      }
      if (events > maxEvents) throw new InvariantViolation("runs end", `more than ${maxEvents} events`, clock.nowMs(), null);
      clock.runNext();
    }
    // Let what was already under way land (exits after SIGKILL), then check the end state.
    while (clock.runNext(clock.nowMs()));
    if (surgeMonitor === null) {
      monitor.afterInstant(clock.nowMs(), null);
      monitor.finish(clock.nowMs());
    }
  } catch (error) {
    if (!(error instanceof InvariantViolation)) throw error;
    violation = error;
  }
  for (const [fault, count] of Object.entries(backend.faults)) bump(coverage, `fault ${fault}`, count);
  return {
    seed: scenario.seed,
    scenario,
    events,
    simulatedMs: clock.nowMs(),
    exitCode: runtime.exited,
    violation,
    traceHash: hash.update(pending).digest("hex").slice(0, 16),
    trace,
    coverage,
  };
}
