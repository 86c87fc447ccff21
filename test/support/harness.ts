// A supervisor on the memory backend and virtual clock, for tests that read like the spec.
import { MemoryBackend, type FakeProcessScript } from "../../src/backends/memory/memory-backend.js";
import { VirtualClock } from "../../src/backends/memory/virtual-clock.js";
import type { Config, PoolConfig, ServerConfig } from "../../src/config/types.js";
import { createSupervisorState } from "../../src/domain/state.js";
import type { Command, MetricEvent, SupervisorEvent } from "../../src/domain/types.js";
import { Runtime } from "../../src/runtime/runtime.js";
import type { SpawnRequest } from "../../src/runtime/ports.js";

/** No quick exits, no backoff: every exit restarts at once and counts as up at once (the policy before restart_policy). */
export const NO_BACKOFF: PoolConfig["restartPolicy"] = { minUptimeMs: 0, backoffInitialMs: 0, backoffMaxMs: 0, windowMs: null };

export function pool(overrides: Partial<PoolConfig> = {}): PoolConfig {
  return {
    name: "web",
    replicas: 2,
    exec: "./server",
    args: [],
    signalTimeoutMs: 10_000,
    maxRestarts: 3,
    startupWaitMs: 0,
    desiredHealthyPercentage: 0,
    limits: { lifespanMs: 0, jitterRatio: 0, memoryBytes: 0 },
    restartPolicy: NO_BACKOFF,
    healthCheck: null,
    maxUnavailable: 1,
    // Surge off by default here, so tests of in-place restarts read as before; surge tests set it.
    maxSurge: 0,
    readyTimeoutMs: 60_000,
    listen: [],
    reusePort: true,
    env: {},
    cwd: null,
    user: null,
    group: null,
    server: null,
    ...overrides,
  };
}

/** A proxy-mode `server` section (Envoy, workers from port 9090, listener 8080) with these changes. */
export function server(overrides: Partial<ServerConfig> = {}): ServerConfig {
  return {
    proxy: "envoy", portArgName: "--port", portValueTemplate: "{{.Port}}", startPort: 9090, signalTimeoutMs: 10_000, healthCheckPath: "/health",
    loadBalancerAlgorithm: "ROUND_ROBIN", proxyConfigPath: "./envoy", proxyAdminPort: 0, listenerPort: 8080, proxyBinary: "envoy", ...overrides,
  };
}

export const runsForever: FakeProcessScript = {
  exitAfterMs: null, exitCode: 0, exitSignal: null, onSigterm: { kind: "exit", afterMs: 10, code: 143, signal: null },
};

export interface Harness {
  clock: VirtualClock;
  backend: MemoryBackend;
  runtime: Runtime;
  spawns: SpawnRequest[];
  commands: { atMs: number; command: Command }[];
  metrics: MetricEvent[];
  events: { atMs: number; event: SupervisorEvent }[];
  /** Runs timers up to and including this simulated time. */
  runUntil(atMs: number): void;
  /** Runs until Monoceros exits (bounded); returns the exit code. */
  runToExit(limitMs?: number): number | null;
  signals(signal?: "SIGTERM" | "SIGKILL"): { atMs: number; workerId: string; signal: string }[];
}

export function harness(pools: PoolConfig[], scriptFor: (request: SpawnRequest, index: number) => FakeProcessScript = () => runsForever, seed = 1): Harness {
  const config: Config = { admin: { port: 0, host: null }, pools };
  const clock = new VirtualClock();
  const spawns: SpawnRequest[] = [];
  const backend = new MemoryBackend(clock, (request, index) => {
    spawns.push(request);
    return scriptFor(request, index);
  });
  const commands: Harness["commands"] = [];
  const metrics: MetricEvent[] = [];
  const events: Harness["events"] = [];
  const state = createSupervisorState(config, seed, () => ({ exec: "envoy", args: ["-c", "bootstrap.yaml"], stopSignal: "SIGTERM" as const }));
  const runtime = new Runtime(state, backend, clock, {
    metric: (metric) => metrics.push(metric),
    observe: (event, cmds, atMs) => {
      events.push({ atMs, event });
      for (const command of cmds) commands.push({ atMs, command });
    },
  });
  runtime.start();
  const h: Harness = {
    clock, backend, runtime, spawns, commands, metrics, events,
    runUntil(atMs) {
      while (clock.runNext(atMs));
      clock.advanceTo(atMs);
    },
    runToExit(limitMs = 24 * 3_600_000) {
      while (runtime.exited === null && clock.runNext(limitMs));
      while (clock.runNext(clock.nowMs()));
      return runtime.exited;
    },
    signals(signal) {
      return commands
        .filter((c): c is { atMs: number; command: Extract<Command, { type: "signal" }> } => c.command.type === "signal" && (signal === undefined || c.command.signal === signal))
        .map(({ atMs, command }) => {
          const pool = state.pools[command.ref.pool];
          const process = command.ref.worker === -1 ? pool?.proxy : pool?.workers[command.ref.worker];
          return { atMs, workerId: process?.id ?? "?", signal: command.signal };
        });
    },
  };
  return h;
}
