// A scenario is everything one simulated run needs, generated from a seed: a config, how the
// fake workers (and proxies) behave, and when shutdown signals arrive.
import type { Config, HealthCheckConfig, PoolConfig } from "../src/config/types.js";
import type { FakeChildScript, FakeProcessScript, ReplayableEvent, SigtermBehaviour } from "../src/backends/memory/memory-backend.js";
import { SPAWN_ERROR_KINDS } from "./coverage.js";
import { Rng } from "./rng.js";

export interface FaultRates {
  spawnFailure: number;
  crash: number;
  ignoreSigterm: number;
  slowSigterm: number;
  /** Mean time a crashing worker runs before it crashes. */
  meanLifetimeMs: number;
  /** A spawn reported up to SLOW_SPAWN_MAX_MS late (longer than many exits take). */
  slowSpawn: number;
  /** The leader survives SIGKILL for a while (D state); a quarter of those for ever. */
  sigkillResist: number;
  /** The leader's exit is reported up to 8 s after it happened. */
  lateExitReport: number;
  /** 1–3 children in the worker's group that may outlive it, ignore SIGTERM, survive SIGKILL a while or for ever, hold its output. */
  leftovers: number;
  /** A process outside the group holds the output after the leader exits, for a while or for ever. */
  outputHeld: number;
  /** Events about an incarnation are sent again after its slot's next incarnation started. */
  staleEvents: number;
  /** Pools with a health check: a worker answers only after a while (past start_period, or never). Absent: 0. */
  slowReady?: number;
  /** …fails its checks from some moment on (fail, timeout, no answer at all), may recover, may be stopped (SIGSTOP); notify: falls silent or sends STOPPING=1. */
  unhealthy?: number;
  /** Pools with limits.memory: a worker's memory grows (for good, or falling back now and then). */
  memoryGrowth?: number;
}

export interface Scenario {
  seed: number;
  config: Config;
  faults: FaultRates | null;
  /** When SIGTERM/SIGINT reach Monoceros; at least one, so every run ends. */
  shutdownSignalsAtMs: number[];
  /** Operator requests (ctl scale, ctl restart) in runs about surge; empty otherwise. */
  operations: Operation[];
}

export type Operation = { atMs: number; pool: number } & (
  | { kind: "scale"; replicas: number }
  | { kind: "restart"; worker: number | null }
  /**
   * A reload: the pool's args changed (its workers replaced), its replicas, a field only a restart can
   * change (refused), or the pool removed and a copy under a new name (and ports) added.
   */
  | { kind: "reload"; change: "args" | "replicas" | "server" | "settings" | "replacePool" }
);

/** A real fork and exec take about a millisecond; with none, a worker that crashes at once would loop without time passing. */
export const SPAWN_LATENCY_MS = 1;
/** The slowest a slow spawn is reported. */
export const SLOW_SPAWN_MAX_MS = 3_000;
const SPAWN_ERRORS = Object.keys(SPAWN_ERROR_KINDS) as (keyof typeof SPAWN_ERROR_KINDS)[];
const REPLAYABLE: readonly ReplayableEvent[] = ["spawned", "exited", "groupEmpty", "outputClosed"];

/** The longest any spawn of this scenario takes to be reported. */
export function spawnLatencyMaxMs(scenario: Scenario): number {
  return scenario.faults !== null && scenario.faults.slowSpawn > 0 ? SLOW_SPAWN_MAX_MS : SPAWN_LATENCY_MS;
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
        { minUptimeMs: 5_000, backoffInitialMs: 1_000, backoffMaxMs: 10_000, windowMs: 60_000 },
        { minUptimeMs: rng.int(0, 5_000), backoffInitialMs: rng.int(0, 1_000), backoffMaxMs: rng.int(0, 60_000), windowMs: rng.chance(0.5) ? null : rng.int(1, 600_000) },
      ]),
      healthCheck: null,
      maxUnavailable: 1,
      maxSurge: 0,
      readyTimeoutMs: 60_000,
      listen: [],
      reusePort: true,
      env: {},
      cwd: null,
      user: null,
      group: null,
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
        slowSpawn: pick(rng, [0, 0, 0.05, 0.3]),
        sigkillResist: pick(rng, [0, 0, 0.05, 0.2]),
        lateExitReport: pick(rng, [0, 0, 0.05, 0.2]),
        leftovers: pick(rng, [0, 0, 0.1, 0.4]),
        outputHeld: pick(rng, [0, 0, 0.1, 0.3]),
        staleEvents: pick(rng, [0, 0, 0.2, 0.6]),
      };
  const horizonMs = pick(rng, [1_000, 60_000, 600_000, 3_600_000]);
  let firstSignalAtMs = rng.int(0, horizonMs);
  let shutdownSignalsAtMs = [firstSignalAtMs];
  const extraSignals = pick(rng, [0, 0, 0, 1, 2]);
  // Sometimes a burst (an operator hammering Ctrl-C), so a third signal can find spawns still in flight.
  const spreadMs = extraSignals > 0 && rng.chance(0.3) ? 5 : 20_000;
  for (let i = 0; i < extraSignals; i++) shutdownSignalsAtMs.push(firstSignalAtMs + rng.int(0, spreadMs));
  shutdownSignalsAtMs.sort((a, b) => a - b);
  // Drawn after everything else, so that the draws above mean what they meant before checks existed.
  // Now and then a short run about checks: every pool checked often (a probe that hangs then
  // takes longer than the interval), its workers often unhealthy; or one about limits: every pool
  // with limits.memory and a short lifespan, few restarts at once, so restarts are held back.
  const about = rng.chance(0.06) ? pick(rng, ["checks", "limits"] as const) : null;
  if (about !== null) {
    const shiftMs = Math.min(0, (about === "checks" ? rng.int(2_000, 10_000) : rng.int(20_000, 60_000)) - firstSignalAtMs);
    shutdownSignalsAtMs = shutdownSignalsAtMs.map((atMs) => atMs + shiftMs);
    firstSignalAtMs += shiftMs;
  }
  pools.forEach((pool, poolIndex) => {
    pool.healthCheck = about === "checks" || rng.chance(0.4) ? healthCheckFor(rng, pool, poolIndex, about === "checks" ? firstSignalAtMs / 4 : firstSignalAtMs) : null;
    // Memory is sampled every second whatever the pools: in long runs that would be most of the events.
    if (about === "limits" || rng.chance(firstSignalAtMs <= 60_000 ? 0.2 : firstSignalAtMs <= 120_000 ? 0.1 : firstSignalAtMs <= 600_000 ? 0.02 : 0)) pool.limits.memoryBytes = pick(rng, [64, 100, 256]) * MIB;
    pool.maxUnavailable = about === "limits" ? pick(rng, [1, 1, 2]) : pick(rng, [1, 1, 2, 3, pool.replicas, 100, Math.ceil(pool.replicas * 0.25)]);
    if (about === "limits") pool.limits.lifespanMs = rng.int(1_000, 10_000);
  });
  if (faults !== null) {
    faults.slowReady = pick(rng, [0, 0.1, 0.3]);
    faults.unhealthy = about === "checks" ? pick(rng, [0.3, 0.6]) : pick(rng, [0, 0.05, 0.2, 0.5]);
    faults.memoryGrowth = about === "limits" ? 0.6 : pick(rng, [0, 0.1, 0.3, 0.6]);
  }
  // Drawn last, so the draws above keep their meaning: about a third of the runs are about surge
  // (replacements started first, ids that move), with scaling and rolling restarts by an operator.
  const operations: Operation[] = [];
  // Three seeds in ten (by the seed, so the runs of the others keep their meaning), and not the
  // short runs about checks or limits: those are for the in-place models' rules.
  if (about === null && seed % 10 >= 7) {
    pools.forEach((pool, poolIndex) => {
      pool.maxSurge = pick(rng, [1, 1, 2, pool.replicas]);
      pool.readyTimeoutMs = pool.restartPolicy.minUptimeMs + pick(rng, [500, 5_000, 60_000]);
      const count = pick(rng, [0, 1, 3, 6]);
      for (let i = 0; i < count; i++) {
        const atMs = rng.int(0, Math.max(1, firstSignalAtMs + 1_000));
        const kind = pick(rng, ["scale", "scale", "restart", "restart", "reload"] as const);
        if (kind === "scale") operations.push({ atMs, pool: poolIndex, kind, replicas: pick(rng, [0, 1, pool.replicas, pool.replicas + 1, pool.replicas * 2, 9]) });
        else if (kind === "restart") operations.push({ atMs, pool: poolIndex, kind, worker: rng.chance(0.5) ? null : rng.int(0, pool.replicas + pool.maxSurge) });
        else operations.push({ atMs, pool: poolIndex, kind, change: pick(rng, ["args", "args", "replicas", "settings", "server", "replacePool"] as const) });
      }
    });
    operations.sort((a, b) => a.atMs - b.atMs);
  }
  return { seed, config: { admin: { port: 0, host: null }, pools }, faults, shutdownSignalsAtMs, operations };
}

const MIB = 1024 * 1024;
/** About how many counted checks a worker, and a pool, get in a run at most: short intervals only in short runs (checks are most of a run's events). */
const CHECKS_PER_WORKER_MAX = 10;
const CHECKS_PER_POOL_MAX = 20;

/** A check whose interval lets runMs of checks stay within the bounds above. */
function healthCheckFor(rng: Rng, pool: PoolConfig, poolIndex: number, runMs: number): HealthCheckConfig {
  const shortestMs = Math.ceil(Math.max(runMs / CHECKS_PER_WORKER_MAX, (runMs * pool.replicas) / CHECKS_PER_POOL_MAX));
  const intervalMs = Math.max(pick(rng, [100, 250, 1_000, 5_000, rng.int(100, 10_000)]), shortestMs);
  const kind = pick(rng, ["http", "exec", "notify"] as const);
  return {
    probe: kind === "http"
      // In proxy mode on the worker's own port (startPort null) or on ports of its own; without a proxy only the latter exist.
      ? { kind, path: "/healthz", host: "127.0.0.1", startPort: pool.server !== null && rng.chance(0.5) ? null : 9_500 + poolIndex * 100 }
      : kind === "exec" ? { kind, argv: ["check", "--pid={{.Pid}}", "{{.WorkerId}}"] } : { kind },
    intervalMs,
    timeoutMs: pick(rng, [intervalMs, Math.min(intervalMs, 200), rng.int(1, intervalMs)]),
    failureThreshold: pick(rng, [1, 2, 3, 3, rng.int(1, 10)]),
    startPeriodMs: pick(rng, [0, 0, 1_000, rng.int(0, 30_000)]),
  };
}

/** What the n-th spawn does; drawn from its own stream so that it does not depend on other draws. */
export function scriptForSpawn(scenario: Scenario, pool: PoolConfig, spawnIndex: number, isProxy = false): FakeProcessScript {
  const rng = new Rng((scenario.seed * 7919 + spawnIndex * 104729) | 0);
  const faults = scenario.faults;
  const promptExit = { kind: "exit", afterMs: rng.int(0, 50), code: 143, signal: null } as const;
  if (faults === null) {
    return { exitAfterMs: null, exitCode: 0, exitSignal: null, onSigterm: promptExit };
  }
  const timeoutMs = isProxy && pool.server !== null ? pool.server.signalTimeoutMs : pool.signalTimeoutMs;
  const onSigterm: SigtermBehaviour = rng.chance(faults.ignoreSigterm)
    ? { kind: "ignore" }
    : rng.chance(faults.slowSigterm)
      ? { kind: "exit", afterMs: rng.int(0, timeoutMs * 2), code: 0, signal: null }
      : promptExit;
  // A proxy fails to start less often than a worker, but crashes as often (the simulator is nastier than life), and is as nasty otherwise.
  const spawnError = rng.chance(isProxy ? faults.spawnFailure / 3 : faults.spawnFailure) ? pick(rng, SPAWN_ERRORS) : undefined;
  const crashes = rng.chance(faults.crash);
  const bySignal = rng.chance(0.3);
  const script: FakeProcessScript = {
    ...(spawnError === undefined ? {} : { spawnError }),
    exitAfterMs: crashes ? (isProxy ? proxyLifetimeMs(rng) : rng.int(0, faults.meanLifetimeMs * 2)) : null,
    exitCode: bySignal ? null : pick(rng, [0, 1, 2, 137]),
    exitSignal: bySignal ? pick(rng, ["SIGSEGV", "SIGABRT", "SIGKILL"]) : null,
    onSigterm,
    ...nastiness(rng, faults, timeoutMs),
  };
  // Drawn last, so that the draws above mean what they meant before checks existed; a proxy has neither.
  if (!isProxy && pool.healthCheck !== null) unhealthiness(rng, faults, pool.healthCheck, script);
  if (!isProxy && pool.limits.memoryBytes > 0) memoryUse(rng, faults, pool.limits.memoryBytes, script);
  return script;
}

/**
 * How a worker answers its checks: ready at once, after a while (maybe past start_period) or never;
 * unhealthy from some moment (a failure, a timeout, no answer at all), for good or recovering;
 * a stopped process (SIGSTOP) that neither answers nor reacts to SIGTERM; slow answers; notify
 * workers whose keepalives are too slow, fall silent, or who send STOPPING=1 (and then exit).
 */
function unhealthiness(rng: Rng, faults: FaultRates, check: HealthCheckConfig, script: FakeProcessScript): void {
  const { intervalMs, startPeriodMs, failureThreshold } = check;
  if (rng.chance(faults.slowReady ?? 0)) script.readyAfterMs = pick(rng, [rng.int(0, startPeriodMs + intervalMs), rng.int(0, startPeriodMs + intervalMs * (failureThreshold + 2)), Infinity]);
  const unhealthy = faults.unhealthy ?? 0;
  if (rng.chance(unhealthy)) {
    script.unhealthyAfterMs = rng.int(0, startPeriodMs + intervalMs * 20);
    script.unhealthyAs = pick(rng, ["fail", "timeout", "hung"] as const);
    if (rng.chance(0.4)) script.healthyAgainAfterMs = script.unhealthyAfterMs + rng.int(0, intervalMs * (failureThreshold + 1));
    if (script.unhealthyAs !== "fail" && rng.chance(0.3)) script.onSigterm = { kind: "ignore" };
  }
  if (rng.chance(0.2)) script.probeLatencyMs = rng.int(0, Math.ceil(check.timeoutMs * 1.5));
  if (rng.chance(0.05)) script.probeLocalErrorEvery = pick(rng, [1, 2, 3, 7]);
  if (check.probe.kind !== "notify") return;
  // Half the interval as sd_notify users do (the default), just under it, or any: too slow now and then.
  const watchdogEveryMs = pick(rng, [undefined, undefined, Math.floor(intervalMs * 0.9), rng.int(Math.ceil(intervalMs / 4), intervalMs * 2)]);
  if (watchdogEveryMs !== undefined) script.watchdogEveryMs = watchdogEveryMs;
  if (rng.chance(unhealthy / 2)) {
    const stoppingAfterMs = rng.int(0, startPeriodMs + intervalMs * 10);
    script.stoppingAfterMs = stoppingAfterMs;
    // A service that says it is stopping usually does, soon; now and then one goes on for ever.
    if (rng.chance(0.7)) script.exitAfterMs = Math.min(script.exitAfterMs ?? Infinity, stoppingAfterMs + rng.int(0, intervalMs * 2));
  }
  // A worker slow to be ready (or never) that pings all along: its keepalives are no passes.
  if (script.readyAfterMs !== undefined && rng.chance(0.5)) script.keepaliveBeforeReady = true;
}

/**
 * Memory against limits.memory: a leader stable under it, near it or over it from the start;
 * growing for good, or falling back now and then (so a held-back restart may be called off); and
 * children with memory of their own, so only the group's sum is over the limit.
 */
function memoryUse(rng: Rng, faults: FaultRates, limitBytes: number, script: FakeProcessScript): void {
  script.rssBytes = Math.round(limitBytes * pick(rng, [0.1, 0.5, 0.9, 0.97, rng.chance(0.1) ? 1.1 : 0.3]));
  const growth = faults.memoryGrowth ?? 0;
  if (rng.chance(growth)) {
    const growthBytesPerSecond = Math.round(limitBytes * pick(rng, [0.01, 0.05, 0.2, 1]));
    script.rssGrowthBytesPerSecond = growthBytesPerSecond;
    // Falling back before the leader reaches 1.9 × the limit: over it for a while (its restart may be
    // held back, then called off), not urgent by itself; one that grows for good becomes urgent.
    const headroomMs = Math.floor(((limitBytes * 1.9 - script.rssBytes) / growthBytesPerSecond) * 1000);
    if (rng.chance(0.5)) script.rssDropEveryMs = Math.max(1, Math.min(rng.int(1_000, 8_000), headroomMs));
  }
  if (rng.chance(0.3)) {
    const children: FakeChildScript[] = [...(script.children ?? [])];
    for (let count = rng.int(1, 2); count > 0; count--) {
      children.push({
        exitAfterLeaderMs: 0, onSigterm: { kind: "exit", afterMs: 0, code: null, signal: null }, holdsOutput: false,
        rssBytes: Math.round(limitBytes * pick(rng, [0.05, 0.2, 0.5])), rssGrowthBytesPerSecond: rng.chance(growth) ? Math.round(limitBytes * 0.02) : 0,
      });
    }
    script.children = children;
  }
}

/** The faults real processes add beyond exiting: slow spawns, D state, late reports, leftovers, held output, stale events. */
function nastiness(rng: Rng, faults: FaultRates, timeoutMs: number): Partial<FakeProcessScript> {
  const script: Partial<FakeProcessScript> = {};
  if (rng.chance(faults.slowSpawn)) script.spawnLatencyMs = rng.int(SPAWN_LATENCY_MS + 1, SLOW_SPAWN_MAX_MS);
  if (rng.chance(faults.sigkillResist)) script.sigkillDelayMs = survivesSigkill(rng);
  if (rng.chance(faults.lateExitReport)) script.exitReportDelayMs = rng.int(1, 8_000);
  if (rng.chance(faults.leftovers)) {
    const children: FakeChildScript[] = [];
    for (let count = rng.int(1, 3); children.length < count; ) {
      children.push({
        exitAfterLeaderMs: rng.chance(0.5) ? rng.int(0, 10_000) : null,
        onSigterm: rng.chance(0.3) ? { kind: "ignore" } : { kind: "exit", afterMs: rng.int(0, timeoutMs * 2), code: null, signal: null },
        sigkillDelayMs: rng.chance(0.2) ? survivesSigkill(rng) : 0,
        holdsOutput: rng.chance(0.5),
      });
    }
    script.children = children;
  }
  if (rng.chance(faults.outputHeld)) script.outputHeldAfterExitMs = rng.chance(0.3) ? null : rng.int(1, 6_000);
  if (rng.chance(faults.staleEvents)) {
    const replays: { event: ReplayableEvent; afterMs: number }[] = [];
    for (let count = rng.int(1, 4); replays.length < count; ) replays.push({ event: pick(rng, REPLAYABLE), afterMs: rng.chance(0.5) ? 0 : rng.int(1, 3_000) });
    script.staleReplays = replays;
  }
  return script;
}

/** A crashing proxy runs either briefly or long enough to count as stable (10 s), so both its backoff and its reset are exercised. */
function proxyLifetimeMs(rng: Rng): number {
  return rng.chance(0.5) ? rng.int(0, 2_000) : rng.int(5_000, 60_000);
}

/** D state: SIGKILL takes effect after up to three kill waits, or (one in four) never. */
function survivesSigkill(rng: Rng): number | null {
  return rng.chance(0.25) ? null : rng.int(1, 15_000);
}

/** The config a reload operation hands to the core: the scenario's, with one pool changed as the operation says. */
export function reloadedConfig(config: Config, operation: Extract<Operation, { kind: "reload" }>, generation: number): Config {
  return {
    ...config,
    pools: config.pools.flatMap((pool, index) => {
      if (index !== operation.pool || operation.change !== "replacePool") return [pool];
      // Ports and proxy folder of their own: the old pool may still be stopping.
      const server = pool.server === null ? null : { ...pool.server, startPort: pool.server.startPort + 1_000 * (generation + 1), listenerPort: pool.server.listenerPort + 1_000 * (generation + 1), proxyConfigPath: `${pool.server.proxyConfigPath}-r${generation}` };
      return [{ ...pool, name: `${pool.name}r${generation}`, server }];
    }).map((pool, index) => {
      if (index !== operation.pool) return pool;
      switch (operation.change) {
        case "args":
          return { ...pool, args: [...pool.args, `--reload=${generation}`] };
        case "replicas":
          return { ...pool, replicas: pool.replicas + 1 };
        case "settings":
          return { ...pool, maxRestarts: pool.maxRestarts + 1, readyTimeoutMs: pool.readyTimeoutMs + 1_000 };
        case "replacePool":
          return pool;
        case "server":
          // A pool in supervisor mode has no server: a changed listen address is as fixed.
          return pool.server === null ? { ...pool, reusePort: !pool.reusePort } : { ...pool, server: { ...pool.server, listenerPort: pool.server.listenerPort + 1 } };
      }
    }),
  };
}
