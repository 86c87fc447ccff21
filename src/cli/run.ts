// `monoceros -c cfg.yaml`: supervise real workers until a signal (exit 0) or a spent restart
// budget (exit 1).
import { randomInt } from "node:crypto";
import type { Config, PoolConfig } from "../config/types.js";
import { findExecutable } from "../backends/os/executable.js";
import { NotifySockets } from "../backends/os/notify-socket.js";
import { OsBackend } from "../backends/os/os-backend.js";
import { RealClock } from "../backends/os/real-clock.js";
import { AdminServer } from "../admin/server.js";
import { createSupervisorState, type SupervisorState } from "../domain/state.js";
import { prepareProxy } from "../proxy/data-plane.js";
import { createDataPlanes, dataPlaneOf, PROXY_NAMES } from "../proxy/kinds.js";
import { readProcessStats } from "../metrics/process-stats.js";
import { Metrics } from "../metrics/registry.js";
import { BUILD_INFO } from "../version.js";
import { createLogger, debugRenderer, type Logger } from "../logs/logger.js";
import { OutputChannel } from "../logs/output-channel.js";
import { LimitedRecords } from "../logs/record-limiter.js";
import type { TextChannel } from "../logs/worker-output.js";
import { Runtime } from "../runtime/runtime.js";
import { onCrash } from "./crash-guard.js";
import { EXIT_CODES } from "./exit-codes.js";
import { handleSignals, type HandledSignal } from "./signals.js";

/** How long the last log lines may take to drain at exit. */
const EXIT_FLUSH_TIMEOUT_MS = 2_000;

/** Reports kept until the logger exists. */
const EARLY_REPORTS_MAX = 256;

/** At most one record per admin error code per this interval. */
const ADMIN_PROBLEM_INTERVAL_MS = 1_000;

export interface RunOptions {
  debug: boolean;
  warnings: readonly string[];
  stderr: (line: string) => void;
}

/**
 * Start-up checks that need the machine: every `exec` and proxy binary can be run. Also returns
 * where each pool's proxy binary was found (by pool index), so it is looked up once.
 */
function startupCheck(config: Config): { problems: string[]; proxyPaths: (string | null)[] } {
  const problems: string[] = [];
  const proxyPaths = config.pools.map((pool, index) => {
    const found = findExecutable(pool.exec);
    if (!found.ok) problems.push(`supervisor.workers[${index}].exec: cannot run "${pool.exec}": ${found.reason}`);
    const probe = pool.healthCheck?.probe;
    if (probe?.kind === "exec") {
      const check = findExecutable(probe.argv[0] ?? "");
      if (!check.ok) problems.push(`supervisor.workers[${index}].health_check.exec[0]: cannot run "${probe.argv[0]}": ${check.reason}`);
    }
    if (probe?.kind === "notify") {
      // A dry run: the addon loads, and the sockets' folder can be made under TMPDIR and is short enough.
      try {
        new NotifySockets(() => {}, () => {}).closeAll();
      } catch (error) {
        problems.push(`supervisor.workers[${index}].health_check.notify: cannot create notify sockets here: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    if (pool.server === null) return null;
    const proxy = findExecutable(pool.server.proxyBinary);
    if (proxy.ok) return proxy.path;
    problems.push(`supervisor.workers[${index}].server.proxy_binary: cannot run "${pool.server.proxyBinary}": ${proxy.reason} (this pool's proxy is ${PROXY_NAMES[pool.server.proxy]}: install it, or set server.proxy_binary)`);
    return null;
  });
  return { problems, proxyPaths };
}

export async function runSupervisor(config: Config, options: RunOptions): Promise<number> {
  const { problems, proxyPaths } = startupCheck(config);
  if (problems.length > 0) {
    for (const line of problems) options.stderr(line);
    return EXIT_CODES.usage;
  }
  const earlyReports: [level: "info" | "warn", msg: string, fields: Record<string, unknown>][] = [];
  // Until the logger exists (after the admin port is bound), reports wait in a list (bounded; signal
  // records come at most one per signal per second).
  let report = (level: "info" | "warn", msg: string, fields: Record<string, unknown>): void => {
    if (earlyReports.length < EARLY_REPORTS_MAX) earlyReports.push([level, msg, fields]);
  };
  // Signals mean what src/cli/signals.ts says from here on. A shutdown asked for before the
  // runtime exists is remembered: then no worker is started.
  let shutdownBeforeStart: HandledSignal | null = null;
  let onShutdownSignal = (signal: HandledSignal): void => {
    shutdownBeforeStart ??= signal;
  };
  const stopHandlingSignals = handleSignals({ shutdown: (signal) => onShutdownSignal(signal), log: (level, msg, fields) => report(level, msg, fields) });
  const binaryFor = (pool: PoolConfig) => proxyPaths[config.pools.indexOf(pool)] ?? pool.server?.proxyBinary ?? "envoy";
  // Each pool's proxy through its kind's data plane; the proxy lifecycle is the core's, the same for all.
  const dataPlanes = createDataPlanes((level, msg, fields) => report(level, msg, fields));
  let state: SupervisorState;
  try {
    state = createSupervisorState(config, randomInt(2 ** 31), (pool) => prepareProxy(dataPlaneOf(dataPlanes, pool), pool, binaryFor(pool)));
  } catch (error) {
    stopHandlingSignals();
    options.stderr(`proxy: cannot write the proxy configuration: ${error instanceof Error ? error.message : String(error)}`);
    return EXIT_CODES.usage;
  }
  const metrics = new Metrics(config, state, readProcessStats, BUILD_INFO);
  metrics.setProxyMode(config.pools.some((pool) => pool.server !== null));
  // The admin endpoint is bound before any worker starts: a port in use fails with nothing to clean up.
  // A failed accept (EMFILE) leaves the admin server running: a record, at most one per error code per second.
  const adminRecords = new LimitedRecords(ADMIN_PROBLEM_INTERVAL_MS, (code, count, message) => report("warn", message, { error_code: code, count }));
  const admin = new AdminServer(
    metrics,
    {
      state,
      stats: readProcessStats,
      toEpochMs: (clockMs) => performance.timeOrigin + clockMs,
      nowMs: () => performance.now(),
    },
    (code, message) => adminRecords.note(code, message),
  );
  let adminPort: number;
  try {
    adminPort = await admin.listen({ port: config.admin.port, host: config.admin.host ?? undefined });
  } catch (error) {
    stopHandlingSignals();
    options.stderr(`admin: ${error instanceof Error ? error.message : String(error)}`);
    return EXIT_CODES.usage;
  }

  const stdout = new OutputChannel(1);
  const stderr = new OutputChannel(2);
  // With --debug, Monoceros's records and those that carry workers' plain lines are rendered readable.
  const render = options.debug ? await debugRenderer() : null;
  const logger = createLogger({ render, destination: { write: (text) => stderr.write(text) } });
  const records: TextChannel = render === null ? stderr : { write: (text, source) => stderr.write(render(text), source) };
  for (const warning of options.warnings) logger.warn(warning);
  if (process.pid === 1) {
    // Nobody else reaps orphaned zombies in a container without an init: their pids leak, and once a
    // pids limit is reached every spawn fails with EAGAIN (retried for ever, never charged).
    logger.warn("Monoceros runs as PID 1: orphaned zombies of workers' children are never reaped; run it under an init (tini, docker run --init, Kubernetes shareProcessNamespace)");
  }
  report = (level, msg, fields) => {
    logger[level](fields, msg);
  };
  for (const [level, msg, fields] of earlyReports.splice(0)) report(level, msg, fields);
  logger.info({ port: adminPort, host: config.admin.host ?? "*" }, "Admin endpoint listening (/metrics, /health, /status)");
  // On a fatal error, the records still buffered for a slow reader are written before the exit.
  const removeFlushCleanup = onCrash(() => {
    stdout.flushSyncForExit();
    stderr.flushSyncForExit();
  }, "flushOutput");
  const finish = async (code: number): Promise<number> => {
    // Up until the last worker has gone, so the shutdown could be watched; closed now.
    await admin.close();
    adminRecords.close();
    // Before the last flush, so the counts of signals held back are written too.
    stopHandlingSignals();
    await Promise.all([stdout.flush(EXIT_FLUSH_TIMEOUT_MS), stderr.flush(EXIT_FLUSH_TIMEOUT_MS)]);
    removeFlushCleanup();
    return code;
  };
  if (shutdownBeforeStart !== null) {
    logger.info({ signal: shutdownBeforeStart }, "Shutdown requested before any worker started; exiting");
    return finish(EXIT_CODES.ok);
  }

  const backend = new OsBackend({
    channels: { stdout, stderr, records },
    onProblem: (message) => logger.warn(message),
    onLogCollision: () => metrics.logJsonCollision(),
  });
  const removeCrashCleanup = onCrash(() => backend.killAllNow());
  let exited = false;
  const code = await new Promise<number>((resolve) => {
    const runtime = new Runtime(state, backend, new RealClock(), {
      log: (level, msg, fields) => logAt(logger, level, msg, fields),
      metric: (event) => metrics.record(event),
      proxy: (command) => {
        const pool = config.pools[command.pool];
        if (pool === undefined) return;
        try {
          dataPlaneOf(dataPlanes, pool).apply(pool, command);
        } catch (error) {
          logger.error({ pool: pool.name, error: String(error) }, "Could not update the proxy");
        }
      },
      exit: resolve,
    });
    onShutdownSignal = (signal) => {
      // Once the runtime has exited, a late signal has nothing left to stop.
      if (!exited) runtime.dispatch({ type: "shutdownRequested", signal });
    };
    runtime.start();
  });
  exited = true;
  backend.close();
  removeCrashCleanup();
  return finish(code);
}

function logAt(logger: Logger, level: "debug" | "info" | "warn" | "error", msg: string, fields: Readonly<Record<string, unknown>>): void {
  logger[level](fields, msg);
}
