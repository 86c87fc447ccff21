// `monoceros -c cfg.yaml`: supervise real workers until a signal (exit 0) or a spent restart
// budget (exit 1).
import { randomInt } from "node:crypto";
import type { Config } from "../config/types.js";
import { findExecutable } from "../backends/os/executable.js";
import { OsBackend } from "../backends/os/os-backend.js";
import { RealClock } from "../backends/os/real-clock.js";
import { AdminServer } from "../admin/server.js";
import { createSupervisorState } from "../domain/state.js";
import { readProcessStats } from "../metrics/process-stats.js";
import { Metrics } from "../metrics/registry.js";
import { BUILD_INFO } from "../version.js";
import { createLogger, type Logger } from "../logs/logger.js";
import { OutputChannel } from "../logs/output-channel.js";
import { Runtime } from "../runtime/runtime.js";
import { onCrash } from "./crash-guard.js";
import { EXIT_CODES } from "./exit-codes.js";

/** How long the last log lines may take to drain at exit. */
const EXIT_FLUSH_TIMEOUT_MS = 2_000;

export interface RunOptions {
  debug: boolean;
  warnings: readonly string[];
  stderr: (line: string) => void;
}

/** Start-up checks that need the machine: every `exec` can be run. */
export function startupProblems(config: Config): string[] {
  return config.pools.flatMap((pool, index) => {
    const found = findExecutable(pool.exec);
    return found.ok ? [] : [`supervisor.workers[${index}].exec: cannot run "${pool.exec}": ${found.reason}`];
  });
}

export async function runSupervisor(config: Config, options: RunOptions): Promise<number> {
  const problems = startupProblems(config);
  if (problems.length > 0) {
    for (const line of problems) options.stderr(line);
    return EXIT_CODES.usage;
  }
  const state = createSupervisorState(config, randomInt(2 ** 31));
  const metrics = new Metrics(config, state, readProcessStats, BUILD_INFO);
  // The admin endpoint is bound before any worker starts: a port in use fails with nothing to clean up.
  const admin = new AdminServer(metrics, {
    state,
    stats: readProcessStats,
    toEpochMs: (clockMs) => performance.timeOrigin + clockMs,
    nowMs: () => performance.now(),
  });
  let adminPort: number;
  try {
    adminPort = await admin.listen({ port: config.admin.port, host: config.admin.host ?? undefined });
  } catch (error) {
    options.stderr(`admin: ${error instanceof Error ? error.message : String(error)}`);
    return EXIT_CODES.usage;
  }

  const stdout = new OutputChannel(1);
  const stderr = new OutputChannel(2);
  const logger = createLogger({ debug: options.debug, destination: { write: (text) => stderr.write(text) } });
  for (const warning of options.warnings) logger.warn(warning);
  logger.info({ port: adminPort, host: config.admin.host ?? "*" }, "Admin endpoint listening (/metrics, /health, /status)");

  const backend = new OsBackend({
    channels: { stdout, stderr, records: stderr },
    onProblem: (message) => logger.warn(message),
    onLogCollision: () => metrics.logJsonCollision(),
  });
  const removeCrashCleanup = onCrash(() => backend.killAllNow());
  const code = await new Promise<number>((resolve) => {
    const runtime = new Runtime(state, backend, new RealClock(), {
      log: (level, msg, fields) => logAt(logger, level, msg, fields),
      metric: (event) => metrics.record(event),
      exit: resolve,
    });
    const onSignal = (signal: NodeJS.Signals) => runtime.dispatch({ type: "shutdownRequested", signal });
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
    runtime.start();
  });
  backend.close();
  removeCrashCleanup();
  // Up until the last worker has gone, so the shutdown could be watched; closed now.
  await admin.close();
  await Promise.all([stdout.flush(EXIT_FLUSH_TIMEOUT_MS), stderr.flush(EXIT_FLUSH_TIMEOUT_MS)]);
  return code;
}

function logAt(logger: Logger, level: "debug" | "info" | "warn" | "error", msg: string, fields: Readonly<Record<string, unknown>>): void {
  logger[level](fields, msg);
}
