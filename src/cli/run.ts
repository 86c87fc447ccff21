// `monoceros -c cfg.yaml`: supervise real workers until a signal (exit 0) or a spent restart
// budget (exit 1).
import { randomInt } from "node:crypto";
import { statSync } from "node:fs";
import { isAbsolute, resolve as resolvePath } from "node:path";
import { RunAsResolver } from "../backends/os/run-as.js";
import { LIMITS, type Config, type PoolConfig } from "../config/types.js";
import { findExecutable } from "../backends/os/executable.js";
import { NotifySockets } from "../backends/os/notify-socket.js";
import { OsBackend } from "../backends/os/os-backend.js";
import { ListenRegistry } from "../backends/os/listen-registry.js";
import { RealClock } from "../backends/os/real-clock.js";
import { AdminServer } from "../admin/server.js";
import { buildStatus, type StatusSources } from "../admin/status.js";
import { ControlServer, controlSocketDir, defaultControlSocketPath, ensureControlDir, type ControlResult } from "../control/server.js";
import { resolveTarget } from "../control/protocol.js";
import { sweepStaleSockets } from "../control/socket-file.js";
import { DebugTools } from "../debug/debug-tools.js";
import { RecordRing } from "../logs/record-ring.js";
import type { Command, SupervisorEvent } from "../domain/types.js";
import { activePool, activePools, createSupervisorState, type ProxyLaunch, type SupervisorState } from "../domain/state.js";
import { planReload } from "../domain/reload.js";
import { runningPool } from "../domain/supervisor.js";
import { describeCommand, describeEvent } from "../runtime/trace.js";
import { prepareProxy } from "../proxy/data-plane.js";
import { createDataPlanes, dataPlaneOf, PROXY_NAMES } from "../proxy/kinds.js";
import { readGroupCpuSeconds, readProcessStats } from "../metrics/process-stats.js";
import { Metrics } from "../metrics/registry.js";
import { CpuSpreadSampler, cpuSpreadSettingsFromEnv } from "../metrics/cpu-spread-sampler.js";
import { BUILD_INFO } from "../version.js";
import { loadConfigText } from "../config/load.js";
import { readConfigFile } from "./read-config-file.js";
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

/** An operator's request the core has not answered within this is reported as lost (it answers in the same step). */
const REPLY_TIMEOUT_MS = 5_000;

/** At most one record per admin error code per this interval. */
const ADMIN_PROBLEM_INTERVAL_MS = 1_000;

export interface RunOptions {
  /** The config file, read again on a reload. */
  configPath: string;
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
  const runAs = new RunAsResolver();
  const proxyPaths = config.pools.map((pool, index) => {
    if (pool.cwd !== null) {
      const folder = folderProblem(pool.cwd);
      if (folder !== null) problems.push(`supervisor.workers[${index}].cwd: ${pool.cwd}: ${folder}`);
    }
    try {
      runAs.resolve(pool.user, pool.group);
    } catch (error) {
      problems.push(`supervisor.workers[${index}].${pool.user !== null ? "user" : "group"}: ${error instanceof Error ? error.message : String(error)}`);
    }
    // A relative path with a slash is the workers' folder's (the child resolves it after chdir).
    const exec = pool.cwd !== null && pool.exec.includes("/") && !isAbsolute(pool.exec) ? resolvePath(pool.cwd, pool.exec) : pool.exec;
    const found = findExecutable(exec);
    if (!found.ok) problems.push(`supervisor.workers[${index}].exec: cannot run "${pool.exec}"${exec === pool.exec ? "" : ` (in ${pool.cwd})`}: ${found.reason}`);
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
  let onScaleSignal: ((delta: 1 | -1) => void) | null = null;
  let onReloadSignal: (() => void) | null = null;
  const stopHandlingSignals = handleSignals({
    shutdown: (signal) => onShutdownSignal(signal),
    scale: (delta) => (onScaleSignal === null ? report("warn", "Signal received before the workers started; ignored", { signal: delta > 0 ? "SIGTTIN" : "SIGTTOU" }) : onScaleSignal(delta)),
    reload: () => (onReloadSignal === null ? report("warn", "Signal received before the workers started; ignored", { signal: "SIGHUP" }) : onReloadSignal()),
    log: (level, msg, fields) => report(level, msg, fields),
  });
  // Each pool's proxy through its kind's data plane; the proxy lifecycle is the core's, the same for all.
  const dataPlanes = createDataPlanes((level, msg, fields) => report(level, msg, fields));
  // By pool index: the config each pool started with (its proxy's files and its sockets were made from it).
  const startedConfigs: PoolConfig[] = [...config.pools];
  let state: SupervisorState;
  try {
    state = createSupervisorState(config, randomInt(2 ** 31), (pool) => prepareProxy(dataPlaneOf(dataPlanes, pool), pool, proxyPaths[config.pools.indexOf(pool)] ?? pool.server?.proxyBinary ?? "envoy"));
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
  // The CPU-spread advisor (GET /, /status, /metrics): every worker's CPU seconds on its own unref'd timer.
  const cpuSpreadKnobs = cpuSpreadSettingsFromEnv(process.env);
  for (const problem of cpuSpreadKnobs.problems) report("warn", problem, {});
  const cpuSpread = new CpuSpreadSampler({ state, readCpuSeconds: readGroupCpuSeconds, nowMs: () => performance.now(), settings: cpuSpreadKnobs.settings, onProblem: (code, message) => adminRecords.note(code, message), sampleWhileRead: true });
  metrics.setCpuSpreadSource((pool) => cpuSpread.report(pool)?.ratio ?? null);
  const statusSources: StatusSources = {
    state,
    stats: readProcessStats,
    toEpochMs: (clockMs) => performance.timeOrigin + clockMs,
    nowMs: () => performance.now(),
    cpuSpread,
  };
  const admin = new AdminServer(metrics, statusSources, (code, message) => adminRecords.note(code, message));
  let adminPort: number;
  try {
    adminPort = await admin.listen({ port: config.admin.port, host: config.admin.host ?? undefined });
  } catch (error) {
    stopHandlingSignals();
    options.stderr(`admin: ${error instanceof Error ? error.message : String(error)}`);
    return EXIT_CODES.usage;
  }

  // The pools' `listen` sockets: bound before any worker starts, like the admin port.
  const listenSockets = new ListenRegistry(config.pools, (message) => report("warn", message, {}));
  try {
    listenSockets.openInitial();
  } catch (error) {
    stopHandlingSignals();
    await admin.close();
    options.stderr(`listen: ${error instanceof Error ? error.message : String(error)}`);
    return EXIT_CODES.usage;
  }
  // The control socket (monoceros ctl): bound before any worker starts, like the admin port.
  const ring = new RecordRing();
  let request: ((event: OperatorRequest) => Promise<ControlResult>) | null = null;
  let reload: (() => Promise<ControlResult>) | null = null;
  // ctl debug and ctl profile; each run is logged with who asked.
  const debugTools = new DebugTools(state, { report: (level, msg, fields) => report(level, msg, fields), socketPath: (): string | null => control.path() });
  const control = new ControlServer(
    {
      status: () => buildStatus(statusSources),
      restart: async (target) => {
        // Worker ids run over every slot of a pool (not only replicas); no /proc read for this.
        const resolved = resolveTarget(target, activePools(state).map((pool) => ({ name: pool.config.name, replicas: pool.workers.length })));
        if (!resolved.ok) return { ok: false, error: resolved.error };
        const pool = activePool(state, resolved.value.pool)?.index ?? -1;
        return request === null ? notRunning() : request({ type: "restartRequested", pool, worker: resolved.value.worker });
      },
      scale: async (poolName, replicas) => {
        const pool = activePool(state, poolName)?.index;
        if (pool === undefined) return { ok: false, error: `no pool named ${poolName} (pools: ${activePools(state).map((candidate) => candidate.config.name).join(", ")})` };
        const started = startedConfigs[pool] as PoolConfig;
        if (replicas > scaleLimit(started)) return { ok: false, error: `pool ${poolName} can be scaled to at most ${scaleLimit(started)} workers while Monoceros runs: ${scaleLimitReason(started)}` };
        return request === null ? notRunning() : request({ type: "scale", pool, replicas });
      },
      reload: async () => (reload === null ? notRunning() : reload()),
      logs: ring,
      debug: (debugRequest, stream) => debugTools.debug(debugRequest, stream),
      profile: (profileRequest, stream) => debugTools.profile(profileRequest, stream),
    },
    (message, fields) => report("warn", message, fields),
  );
  const controlPath = config.admin.controlSocket ?? defaultControlSocketPath(process.env, process.getuid?.() ?? 0, process.pid);
  try {
    if (config.admin.controlSocket == null) {
      const dir = controlSocketDir(process.env, process.getuid?.() ?? 0);
      ensureControlDir(dir);
      await sweepStaleSockets(dir);
    }
    await control.listen(controlPath);
  } catch (error) {
    stopHandlingSignals();
    await admin.close();
    listenSockets.closeAll();
    options.stderr(`admin.control_socket: ${error instanceof Error ? error.message : String(error)}`);
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
  logger.info({ path: controlPath }, "Control socket listening (monoceros ctl)");
  // On a fatal error, the records still buffered for a slow reader are written before the exit.
  const removeFlushCleanup = onCrash(() => {
    stdout.flushSyncForExit();
    stderr.flushSyncForExit();
  }, "flushOutput");
  const finish = async (code: number): Promise<number> => {
    // Up until the last worker has gone, so the shutdown could be watched; closed now.
    await Promise.all([admin.close(), control.close()]);
    cpuSpread.stop();
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
    onWorkerOutput: (poolName, workerId, text) => ring.pushLines(text, poolName, workerId),
    listenSockets,
    onProblem: (message) => logger.warn(message),
    onLogCollision: () => metrics.logJsonCollision(),
  });
  debugTools.useEnvironment(backend.helperEnv());
  const removeCrashCleanup = onCrash(() => backend.killAllNow());
  let exited = false;
  const replies = new Map<number, (reply: Extract<Command, { type: "reply" }>) => void>();
  let nextRequestId = 1;
  const code = await new Promise<number>((resolve) => {
    const runtime = new Runtime(state, backend, new RealClock(), {
      log: (level, msg, fields) => {
        logAt(logger, level, msg, fields);
        ring.push({ level, ts: Date.now() / 1000, msg, ...fields });
      },
      reply: (command) => replies.get(command.requestId)?.(command),
      // -d: every event the core takes and what it decides (spawns with exec and args, signals, timers
      // set and fired, checks and their results, rotation changes), as debug records. Not cancelled
      // timers (the core cancels defensively), nor logs and metrics (they are written already).
      ...(options.debug ? { observe: (event: SupervisorEvent, commands: readonly Command[]) => {
        logger.debug({ event: describeEvent(state, event) }, "Core event");
        for (const command of commands) {
          if (command.type !== "log" && command.type !== "metric" && command.type !== "cancelTimer") logger.debug({ command: describeCommand(state, command) }, "Core decision");
        }
      } } : {}),
      releaseLane: (pool, lane) => listenSockets.release(pool, lane),
      metric: (event) => metrics.record(event),
      poolRemoved: (index) => {
        const pool = state.pools[index]?.config;
        if (pool === undefined) return;
        listenSockets.removePool(index);
        if (pool.server !== null) dataPlaneOf(dataPlanes, pool).forget(pool);
        metrics.removePool(pool);
        metrics.setProxyMode(activePools(state).some((active) => active.config.server !== null));
      },
      proxy: (command) => {
        const pool = state.pools[command.pool]?.config;
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
    request = (event) => new Promise<ControlResult>((answer) => {
      if (exited) {
        answer(notRunning());
        return;
      }
      const requestId = nextRequestId++;
      const timer = setTimeout(() => {
        replies.delete(requestId);
        answer({ ok: false, error: "no answer from the supervisor core" });
      }, REPLY_TIMEOUT_MS);
      replies.set(requestId, (reply) => {
        clearTimeout(timer);
        replies.delete(requestId);
        answer(reply.ok ? { ok: true, result: { message: reply.message, plan: reply.plan } } : { ok: false, error: reply.message });
      });
      runtime.dispatch({ ...event, requestId } as SupervisorEvent);
    });
    reload = async () => {
      // Read and checked here (file system, executables); what it changes is the core's decision.
      const file = readConfigFile(options.configPath);
      const loaded = file.ok ? loadConfigText(file.text) : null;
      const checked = loaded?.ok === true ? startupCheck(loaded.config) : null;
      const problems = !file.ok ? [file.error] : loaded?.ok === false ? [...loaded.errors] : (checked?.problems ?? []);
      const failed = (reasons: readonly string[]): ControlResult => {
        metrics.record({ metric: "configReload", result: "failed" });
        for (const problem of reasons) logger.error({ problem, config: options.configPath }, "Config reload failed: nothing changed");
        return { ok: false, error: `config not reloaded, nothing changed: ${reasons.join("; ")}` };
      };
      if (problems.length > 0 || loaded === null || !loaded.ok || checked === null) return failed(problems);
      const next = loaded.config;
      for (const [index, pool] of next.pools.entries()) {
        const running = activePool(state, pool.name);
        const started = running === undefined ? undefined : startedConfigs[running.index];
        if (started !== undefined && running !== undefined && pool.replicas > scaleLimit(started) && pool.replicas !== running.config.replicas) {
          problems.push(`supervisor.workers[${index}].replicas: ${pool.replicas} is more than ${scaleLimitReason(started)}`);
        }
      }
      // What the core will decide, planned here first: pools are added only if it will accept them,
      // as adding one writes its proxy's files and opens its sockets.
      const plan = planReload({ admin: state.admin, pools: state.pools.map(runningPool) }, next, (a, b) => resolvePath(a) === resolvePath(b));
      if (!plan.ok) problems.push(...plan.problems);
      if (problems.length > 0 || !plan.ok) return failed(problems);
      if (request === null) return notRunning();
      const added = plan.added.map((pool, offset) => ({ pool, index: state.pools.length + offset, proxyPath: checked.proxyPaths[next.pools.indexOf(pool)] ?? null }));
      const proxyLaunches: Record<string, ProxyLaunch> = {};
      for (const { pool, index, proxyPath } of added) {
        try {
          listenSockets.addPool(index, pool);
          if (pool.server !== null) proxyLaunches[pool.name] = prepareProxy(dataPlaneOf(dataPlanes, pool), pool, proxyPath ?? pool.server.proxyBinary);
        } catch (error) {
          for (const other of added) listenSockets.removePool(other.index);
          return failed([`supervisor.workers[${next.pools.indexOf(pool)}]: cannot set up the added pool ${pool.name}: ${error instanceof Error ? error.message : String(error)}`]);
        }
      }
      const result = await request({ type: "reload", config: next, proxyLaunches });
      if (!result.ok) {
        for (const { index } of added) listenSockets.removePool(index);
        return result;
      }
      for (const { pool, index } of added) {
        startedConfigs[index] = pool;
        metrics.addPool(pool);
      }
      metrics.setProxyMode(activePools(state).some((active) => active.config.server !== null));
      return result;
    };
    onReloadSignal = () => {
      if (!exited) void reload?.();
    };
    onScaleSignal = (delta) => {
      if (exited) return;
      for (const poolState of activePools(state)) {
        const replicas = Math.max(0, poolState.replicas + delta);
        if (replicas <= scaleLimit(startedConfigs[poolState.index] as PoolConfig)) void request?.({ type: "scale", pool: poolState.index, replicas });
        else logger.warn({ pool: poolState.config.name, replicas, reason: scaleLimitReason(poolState.config) }, "Not scaled up: at its limit");
      }
    };
    runtime.start();
  });
  exited = true;
  backend.close();
  listenSockets.closeAll();
  removeCrashCleanup();
  return finish(code);
}

/** An operator's request as the core takes it, before it is given a request id. */
type OperatorRequest =
  | { type: "scale"; pool: number; replicas: number }
  | { type: "restartRequested"; pool: number; worker: number | null }
  | { type: "reload"; config: Config; proxyLaunches: Readonly<Record<string, ProxyLaunch>> };

/**
 * HAProxy declares its servers in its config file, written before it starts: a pool behind it can
 * grow only into the slots declared then (replicas + max_surge, less the max_surge kept for
 * replacements). Envoy reads its endpoints from a file rewritten on each change: no limit but ours.
 */
function scaleLimit(pool: PoolConfig): number {
  return pool.server?.proxy === "haproxy" ? pool.replicas : LIMITS.replicasMax;
}

function scaleLimitReason(pool: PoolConfig): string {
  return pool.server?.proxy === "haproxy"
    ? `HAProxy's servers are declared when it starts (replicas ${pool.replicas} + max_surge ${pool.maxSurge}); raise replicas in the config and restart to go further`
    : `at most ${LIMITS.replicasMax} workers per pool`;
}

/** Why a pool's cwd cannot be the workers' folder, or null. */
function folderProblem(path: string): string | null {
  try {
    return statSync(path).isDirectory() ? null : "not a folder";
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === "ENOENT" ? "no such folder" : code === "EACCES" ? "permission denied" : error instanceof Error ? error.message : String(error);
  }
}

function notRunning(): ControlResult {
  return { ok: false, error: "Monoceros is not running workers (starting up or shut down)" };
}

function logAt(logger: Logger, level: "debug" | "info" | "warn" | "error", msg: string, fields: Readonly<Record<string, unknown>>): void {
  logger[level](fields, msg);
}
