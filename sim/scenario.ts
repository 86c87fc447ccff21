// A scenario is everything one simulated run needs, generated from a seed: a config, how the
// fake workers behave, and when shutdown signals arrive.
import type { Config, PoolConfig } from "../src/config/types.js";
import type { FakeProcessScript } from "../src/backends/memory/memory-backend.js";
import { Rng } from "./rng.js";

export interface FaultRates {
  spawnFailure: number;
  crash: number;
  ignoreSigterm: number;
  slowSigterm: number;
  /** Mean time a crashing worker runs before it crashes. */
  meanLifetimeMs: number;
}

export interface Scenario {
  seed: number;
  config: Config;
  faults: FaultRates | null;
  /** When SIGTERM/SIGINT reach Monoceros; at least one, so every run ends. */
  shutdownSignalsAtMs: number[];
}

const pick = <T>(rng: Rng, items: readonly T[]): T => items[rng.int(0, items.length - 1)] as T;

export function generateScenario(seed: number): Scenario {
  const rng = new Rng(seed);
  const pools: PoolConfig[] = [];
  const poolCount = rng.int(1, 3);
  for (let index = 0; index < poolCount; index++) {
    const lifespanMs = rng.chance(0.5) ? rng.int(1_000, 300_000) : 0;
    const proxyMode = rng.chance(0.3);
    pools.push({
      name: `pool${index}`,
      replicas: rng.int(1, 6),
      exec: "worker",
      args: [],
      signalTimeoutMs: pick(rng, [100, 1_000, 5_000, 15_000, rng.int(1, 20_000)]),
      maxRestarts: pick(rng, [Infinity, 0, 1, 2, 5, 20, 1_000]),
      startupWaitMs: rng.chance(0.5) ? 0 : rng.int(1, 2_000),
      desiredHealthyPercentage: rng.int(0, 100),
      limits: { lifespanMs, jitterRatio: pick(rng, [0, 1e-9, 0.0001, 0.1, 0.5, 1, rng.float()]), memoryBytes: 0 },
      restartPolicy: pick(rng, [
        { minUptimeMs: 0, backoffInitialMs: 0, backoffMaxMs: 0, windowMs: null },
        { minUptimeMs: 1_000, backoffInitialMs: 100, backoffMaxMs: 30_000, windowMs: null },
        { minUptimeMs: rng.int(0, 5_000), backoffInitialMs: rng.int(0, 1_000), backoffMaxMs: rng.int(0, 60_000), windowMs: rng.chance(0.5) ? null : rng.int(1, 600_000) },
      ]),
      server: proxyMode
        ? {
            proxy: "envoy", portArgName: "--port", portValueTemplate: "{{.Port}}", startPort: 9000 + index * 100, signalTimeoutMs: pick(rng, [100, 5_000, 20_000]),
            healthCheckPath: "/health", loadBalancerAlgorithm: "ROUND_ROBIN", proxyConfigPath: `./proxy${index}`, proxyAdminPort: 0, listenerPort: 10_000 + index, proxyBinary: "proxy",
          }
        : null,
    });
  }
  const faults: FaultRates | null = rng.chance(0.2)
    ? null
    : {
        spawnFailure: pick(rng, [0, 0.01, 0.1, 0.3]),
        crash: pick(rng, [0, 0.1, 0.5, 0.9]),
        ignoreSigterm: pick(rng, [0, 0.1, 0.5]),
        slowSigterm: pick(rng, [0, 0.1, 0.5]),
        meanLifetimeMs: pick(rng, [10, 1_000, 30_000, 600_000]),
      };
  const horizonMs = pick(rng, [1_000, 60_000, 600_000, 3_600_000]);
  const firstSignalAtMs = rng.int(0, horizonMs);
  const shutdownSignalsAtMs = [firstSignalAtMs];
  const extraSignals = pick(rng, [0, 0, 0, 1, 2]);
  for (let i = 0; i < extraSignals; i++) shutdownSignalsAtMs.push(firstSignalAtMs + rng.int(0, 20_000));
  shutdownSignalsAtMs.sort((a, b) => a - b);
  return { seed, config: { admin: { port: 0, host: null }, pools }, faults, shutdownSignalsAtMs };
}

/** What the n-th spawn does; drawn from its own stream so that it does not depend on event order. */
export function scriptForSpawn(scenario: Scenario, pool: PoolConfig, spawnIndex: number, isProxy = false): FakeProcessScript {
  const rng = new Rng((scenario.seed * 7919 + spawnIndex * 104729) | 0);
  const faults = scenario.faults;
  const promptExit = { kind: "exit", afterMs: rng.int(0, 50), code: 143, signal: null } as const;
  if (faults === null) {
    return { exitAfterMs: null, exitCode: 0, exitSignal: null, onSigterm: promptExit };
  }
  if (isProxy) {
    // A proxy rarely crashes, but it may, and it may be slow or deaf to SIGTERM like anything else.
    return {
      exitAfterMs: rng.chance(faults.crash / 3) ? rng.int(0, faults.meanLifetimeMs * 4) : null,
      exitCode: 1,
      exitSignal: null,
      onSigterm: rng.chance(faults.ignoreSigterm) ? { kind: "ignore" } : promptExit,
    };
  }
  if (rng.chance(faults.spawnFailure)) {
    return { spawnError: pick(rng, ["ENOENT", "EAGAIN", "EMFILE", "ENOMEM"]), exitAfterMs: null, exitCode: null, exitSignal: null, onSigterm: promptExit };
  }
  const crashes = rng.chance(faults.crash);
  const bySignal = rng.chance(0.3);
  const onSigterm = rng.chance(faults.ignoreSigterm)
    ? ({ kind: "ignore" } as const)
    : rng.chance(faults.slowSigterm)
      ? ({ kind: "exit", afterMs: rng.int(0, pool.signalTimeoutMs * 2), code: 0, signal: null } as const)
      : promptExit;
  return {
    exitAfterMs: crashes ? rng.int(0, faults.meanLifetimeMs * 2) : null,
    exitCode: bySignal ? null : pick(rng, [0, 1, 2, 137]),
    exitSignal: bySignal ? pick(rng, ["SIGSEGV", "SIGABRT", "SIGKILL"]) : null,
    onSigterm,
  };
}
