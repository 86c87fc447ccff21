// Simulator throughput: events per wall second over many seeds, and one simulated day of 64
// workers with 1 h lifespans and random crashes.
import { runScenario, runSeed } from "../sim/run.js";
import type { Scenario } from "../sim/scenario.js";

export interface SimBenchResult {
  seeds: number;
  events: number;
  wallMs: number;
  eventsPerSecond: number;
  day: { events: number; wallMs: number; simulatedHours: number; violation: string | null };
}

export function benchSimulator(seeds = 3_000): SimBenchResult {
  for (let seed = 1; seed <= 200; seed++) runSeed(seed); // warm-up (JIT)
  let events = 0;
  const started = performance.now();
  for (let seed = 1; seed <= seeds; seed++) events += runSeed(seed).events;
  const wallMs = performance.now() - started;

  const day: Scenario = {
    seed: 2026,
    config: {
      admin: { port: 0, host: null },
      pools: [{
        name: "web", replicas: 64, exec: "worker", args: [], signalTimeoutMs: 15_000, maxRestarts: Infinity, startupWaitMs: 0,
        desiredHealthyPercentage: 75, limits: { lifespanMs: 3_600_000, jitterRatio: 0.1, memoryBytes: 0 },
        restartPolicy: { minUptimeMs: 1_000, backoffInitialMs: 100, backoffMaxMs: 30_000, windowMs: null }, healthCheck: null, maxUnavailable: 1, maxSurge: 0, readyTimeoutMs: 60_000, listen: [], reusePort: true, env: {}, cwd: null, user: null, group: null, server: null,
      }],
    },
    faults: {
      spawnFailure: 0.01, crash: 0.5, ignoreSigterm: 0.05, slowSigterm: 0.1, meanLifetimeMs: 1_800_000,
      slowSpawn: 0.01, sigkillResist: 0.01, lateExitReport: 0.01, leftovers: 0.05, outputHeld: 0.05, staleEvents: 0.05,
    },
    shutdownSignalsAtMs: [24 * 3_600_000],
    operations: [],
  };
  const dayStarted = performance.now();
  const dayResult = runScenario(day);
  const dayWallMs = performance.now() - dayStarted;
  return {
    seeds, events, wallMs, eventsPerSecond: Math.round(events / (wallMs / 1000)),
    day: { events: dayResult.events, wallMs: dayWallMs, simulatedHours: dayResult.simulatedMs / 3_600_000, violation: dayResult.violation?.message ?? null },
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const result = benchSimulator();
  console.log(JSON.stringify(result, null, 2));
}
