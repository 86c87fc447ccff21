// Every decision about starting, restarting and stopping workers. `step` takes the state, one
// event and the current time, updates the state in place and returns the commands the runtime
// must carry out. No I/O, no clock, no randomness other than the seeded generator in the state.
import { proxyEndpoints } from "./identity.js";
import { doublingMs } from "./backoff.js";
import { CHECK_TIMING, checkConfigOf, firstCountedAtMs, nextCheckAtMs, probeDeadlineMs, probeFor, startCheck } from "./checks.js";
import { nextRandom } from "./random.js";
import { planReload, type RunningPool } from "./reload.js";
import { LIMITS } from "../config/types.js";
import {
  createPoolState, isLive, isMember, leaderRunning, newCheckState, newWorkerSlot, PROXY_INDEX, slotLaunch,
  type PoolState, type ProxyLaunch, type StopReason, type SupervisorState, type WorkerExit, type WorkerState,
} from "./state.js";
import { timerKey, type CheckResult, type Command, type PlannedCause, type SupervisorEvent, type TimerPayload, type WorkerRef } from "./types.js";

/** Bounds of our own; the config has no say in them. */
export const TIMING = {
  /**
   * A failed spawn is retried no sooner than this, doubling with each consecutive failure up to
   * spawnRetryMaxMs, even with backoff_initial: 0 (never a tight loop); the policy's backoff if longer.
   */
  spawnRetryMinMs: 100,
  spawnRetryMaxMs: 5_000,
  /** A crashed proxy is restarted after 100 ms, doubling with each quick crash up to 5 s. */
  proxyRestartBaseMs: 100,
  proxyRestartMaxMs: 5_000,
  /** How long after SIGKILL a process may take to be reported gone before we give up on it. */
  killWaitMs: 5_000,
  /**
   * After a worker's leader exited, how long its stdout and stderr may stay open (held by a process
   * outside its group) before the slot is freed anyway. Lines that come later are still forwarded.
   */
  outputDrainMs: 2_000,
  /**
   * In proxy mode a worker due for its lifespan restart leaves the proxy's rotation this long before
   * its SIGTERM, so the proxy has stopped sending it requests when it stops listening.
   */
  rotationGraceMs: 100,
  /** A proxy that ran this long before exiting is restarted after the shortest delay again. */
  proxyStableAfterMs: 10_000,
} as const;

/** Exit codes Monoceros itself ends with (see the README). */
export const EXIT = { requested: 0, restartBudgetExhausted: 1 } as const;

/** Signals after which a shutdown stops being graceful: the third one SIGKILLs everything. */
const FORCE_AFTER_REQUESTS = 3;

/** Spawn errors that say the machine is short of a resource: retried, never charged to max_restarts. */
export const RESOURCE_ERROR_CODES: readonly string[] = ["EMFILE", "ENFILE", "EAGAIN", "ENOMEM"];

type Out = Command[];

export function step(state: SupervisorState, event: SupervisorEvent, nowMs: number): Command[] {
  const out: Out = [];
  switch (event.type) {
    case "start":
      start(state, nowMs, out);
      break;
    case "spawned":
      onSpawned(state, event.ref, event.pid, nowMs, out);
      break;
    case "spawnFailed":
      onSpawnFailed(state, event.ref, event.errorCode, event.message, nowMs, out);
      break;
    case "exited":
      onExited(state, event.ref, { code: event.code, signal: event.signal, atMs: nowMs }, event.groupEmpty, event.outputClosed, nowMs, out);
      break;
    case "groupEmpty":
    case "outputClosed": {
      const found = lookup(state, event.ref);
      if (found === null || found.worker.status !== "exiting") return out;
      if (event.type === "groupEmpty") found.worker.groupEmpty = true;
      else found.worker.outputClosed = true;
      releaseIfDone(state, found.pool, found.worker, nowMs, out);
      break;
    }
    case "timer":
      onTimer(state, event.timer, nowMs, out);
      break;
    case "shutdownRequested":
      onShutdownRequested(state, event.signal, nowMs, out);
      break;
    case "checkResult":
      onCheckResult(state, event.ref, event.seq, event.localError === true ? null : event.result, event.detail, nowMs, out);
      break;
    case "notify":
      onNotify(state, event, nowMs, out);
      break;
    case "memorySampled":
      onMemorySampled(state, event.samples, nowMs, out);
      break;
    case "scale":
      onScale(state, event, nowMs, out);
      break;
    case "restartRequested":
      onRestartRequested(state, event, nowMs, out);
      break;
    case "reload":
      onReload(state, event, nowMs, out);
      break;
  }
  startMissingMembers(state, out);
  startHeldBackRestarts(state, nowMs, out);
  stopProxiesOfDrainedPools(state, nowMs, out);
  sendRotationChanges(state, out);
  finishPoolRemovals(state, out);
  finishShutdownIfDone(state, out);
  return out;
}

function start(state: SupervisorState, nowMs: number, out: Out): void {
  if (state.phase !== "idle") return;
  state.phase = "running";
  log(out, "info", "Monoceros started", { pools: state.pools.length, workers: state.pools.reduce((n, p) => n + p.config.replicas, 0) });
  for (const pool of state.pools) startPool(state, pool, nowMs, out);
  if (state.pools.some((pool) => pool.config.limits.memoryBytes > 0)) setTimer(out, nowMs + CHECK_TIMING.memorySampleIntervalMs, { kind: "memorySample" });
}

/** A pool's start (at start-up, or added by a reload): the proxy first, so its listener is up when the first worker joins the rotation. */
function startPool(state: SupervisorState, pool: PoolState, nowMs: number, out: Out): void {
  if (pool.proxy !== null) {
    sendRotationChanges(state, out);
    spawn(pool, pool.proxy, out);
  }
  startNextWorkers(state, pool, nowMs, out);
}

/** Staggered start: one worker, then the next after startup_wait_time; all at once when it is 0. */
function startNextWorkers(state: SupervisorState, pool: PoolState, nowMs: number, out: Out): void {
  while (pool.nextToStart < pool.workers.length) {
    const worker = pool.workers[pool.nextToStart] as WorkerState;
    pool.nextToStart++;
    if (worker.status !== "pending" || worker.restartAtMs !== null) continue;
    spawn(pool, worker, out);
    if (pool.config.startupWaitMs > 0 && pool.workers.slice(pool.nextToStart).some((next) => next.status === "pending" && next.restartAtMs === null)) {
      setTimer(out, nowMs + pool.config.startupWaitMs, { kind: "stagger", pool: pool.index });
      return;
    }
  }
}

/**
 * Spawns the worker's next incarnation; every one after the first counts in restarts_total, as in
 * the original (a surge replacement counts as the restart it is; a worker added by scaling up does not).
 */
function spawn(pool: PoolState, worker: WorkerState, out: Out, isRestart: boolean = worker.generation > 0): void {
  const isProxy = worker.index === PROXY_INDEX;
  if (isRestart) out.push({ type: "metric", metric: "restart", pool: pool.config.name, workerType: isProxy ? "proxy" : "worker" });
  if (worker.status === "vacant") {
    // A new occupant of the slot: its budget, backoff and history start afresh.
    worker.restarts = 0;
    worker.restartTimesMs = [];
    worker.quickExits = 0;
    worker.plannedRestarts = 0;
    worker.lastExit = null;
  }
  if (!isProxy) {
    const launch = slotLaunch(pool.config, worker.index);
    worker.env = launch.env;
    worker.args = launch.args;
  }
  worker.generation++;
  worker.status = "spawning";
  worker.pid = null;
  worker.startedAtMs = null;
  worker.stopReason = null;
  worker.sigtermAtMs = null;
  worker.sigkillAtMs = null;
  worker.restartAtMs = null;
  worker.groupEmpty = true;
  worker.outputClosed = true;
  worker.ready = false;
  worker.check = newCheckState(0);
  worker.rssBytes = null;
  worker.rssSampledAtMs = null;
  worker.samplesOverLimit = 0;
  worker.heldBack = null;
  worker.surgeFailed = false;
  const exec = isProxy ? (pool.proxyLaunch?.exec ?? "") : pool.config.exec;
  const notify = !isProxy && pool.config.healthCheck?.probe.kind === "notify";
  out.push({ type: "spawn", ref: refOf(pool, worker), exec, args: worker.args, env: worker.env, notify, lane: isProxy ? null : worker.lane });
}

function onSpawned(state: SupervisorState, ref: WorkerRef, pid: number, nowMs: number, out: Out): void {
  const found = lookup(state, ref);
  if (found === null || found.worker.status !== "spawning") {
    // Every spawn's outcome is handled before its slot is spawned again, so this is a second report
    // of a process already handled: it is supervised, or gone and its pid maybe another process's
    // by now. Signalling it could kill our own worker or a stranger.
    log(out, "error", "Process reported as started twice; ignoring the second report", { pid, ...refFields(state, ref) });
    return;
  }
  const { pool, worker } = found;
  worker.pid = pid;
  worker.startedAtMs = nowMs;
  if (worker.index === PROXY_INDEX) {
    worker.status = "running";
    // A restarted proxy starts from its files: send it the current rotation again.
    pool.rotationKey = "";
    log(out, "info", "Proxy started", { pool: pool.config.name, pid, restarts: worker.restarts });
    // A third shutdown signal came while it was being spawned: it is SIGKILLed like everything else.
    if (state.shutdownRequests >= FORCE_AFTER_REQUESTS) kill(pool, worker, nowMs, out);
    // Asked to stop while it was being spawned (its pool had drained): stop it now.
    else if (worker.stopReason === "shutdown") requestStop(pool, worker, "shutdown", nowMs, out);
    // Shutdown began while it was being spawned: it drains like the proxy it replaces would have.
    else if (state.phase === "stopping") out.push({ type: "drainProxy", pool: pool.index });
    return;
  }
  if (state.phase !== "running") {
    // Shutdown began while it was being spawned: it gets the same SIGTERM the others got, or the
    // same SIGKILL when a third signal came meanwhile.
    worker.status = "running";
    if (state.shutdownRequests >= FORCE_AFTER_REQUESTS) kill(pool, worker, nowMs, out);
    else requestStop(pool, worker, "shutdown", nowMs, out);
    return;
  }
  if (worker.retiring && worker.stopReason !== null) {
    // Asked to leave while it was being spawned (scaled down, or a replacement given up on): stopped now.
    worker.status = "running";
    log(out, "info", "Worker started while asked to stop; stopping it", { pool: pool.config.name, worker_id: worker.id, pid, reason: worker.stopReason });
    requestStop(pool, worker, worker.stopReason, nowMs, out);
    return;
  }
  worker.status = "running";
  log(out, "info", "Worker started", { pool: pool.config.name, worker_id: worker.id, pid, restarts: worker.restarts });
  const { lifespanMs, jitterRatio } = pool.config.limits;
  if (lifespanMs > 0) {
    const random = nextRandom(state.randomSeed);
    state.randomSeed = random.seed;
    const jitterMs = Math.floor(random.value * jitterRatio * lifespanMs);
    setTimer(out, nowMs + lifespanMs + jitterMs, { kind: "lifespan", ref });
  }
  if ((worker.replacing !== null || worker.plannedRestart !== null) && checkConfigOf(pool.config) === null) {
    // Without any check a replacement (surge, or the next incarnation of an in-place restart) counts as ready once it has run min_uptime.
    setTimer(out, nowMs + pool.config.restartPolicy.minUptimeMs, { kind: "settled", ref });
  }
  const check = checkConfigOf(pool.config);
  if (check === null) {
    markReady(pool, worker, nowMs, out);
    return;
  }
  worker.check.nextCountedAtMs = firstCountedAtMs(check, nowMs);
  const firstAtMs = check.probe.kind === "notify" ? worker.check.nextCountedAtMs : Math.min(nowMs + CHECK_TIMING.readinessFirstMs, worker.check.nextCountedAtMs);
  setTimer(out, firstAtMs, { kind: "check", ref });
}

/** No process was created: decided like an exit after 0 ms, and retried no sooner than spawnRetryMinMs. */
function onSpawnFailed(state: SupervisorState, ref: WorkerRef, errorCode: string, message: string, nowMs: number, out: Out): void {
  const found = lookup(state, ref);
  if (found === null || found.worker.status !== "spawning") return;
  const { pool, worker } = found;
  worker.lastExit = { code: null, signal: null, atMs: nowMs };
  const resourceError = RESOURCE_ERROR_CODES.includes(errorCode);
  log(out, "error", worker.index === PROXY_INDEX ? "Proxy failed to start" : "Worker failed to start", {
    pool: pool.config.name, worker_id: worker.id, error_code: errorCode, error: message, ...(resourceError ? { resource_error: true } : {}),
  });
  if (state.phase !== "running") {
    worker.status = "stopped";
    return;
  }
  if (worker.replacing !== null || worker.retiring) {
    // A replacement (or a worker leaving the pool) that never started: its slot is free again.
    if (worker.replacing !== null) failSurge(pool, worker, `it failed to start: ${errorCode}`, nowMs, out);
    vacate(pool, worker, out);
    return;
  }
  endPlannedRestart(pool, worker, out);
  decideRestart(state, pool, worker, 0, { spawnFailed: true, resourceError }, nowMs, out);
  if (worker.restartAtMs === null) {
    worker.status = "stopped"; // restart budget spent: shutting down
    return;
  }
  const floorMs = doublingMs(TIMING.spawnRetryMinMs, TIMING.spawnRetryMaxMs, worker.quickExits - 1);
  worker.restartAtMs = Math.max(worker.restartAtMs, nowMs + floorMs);
  waitForRestart(pool, worker, nowMs, out);
}

/**
 * The leader exited. The restart is decided now (a spent budget starts the shutdown at once),
 * carried out once the slot is released: nothing left in the group and its output closed.
 */
function onExited(state: SupervisorState, ref: WorkerRef, exit: WorkerExit, groupEmpty: boolean, outputClosed: boolean, nowMs: number, out: Out): void {
  const found = lookup(state, ref);
  if (found === null || !isLive(found.worker) || found.worker.status === "exiting") return;
  const { pool, worker } = found;
  const ranForMs = worker.startedAtMs === null ? 0 : nowMs - worker.startedAtMs;
  const wasStopReason = worker.stopReason;
  worker.status = "exiting";
  worker.lastExit = exit;
  worker.groupEmpty = groupEmpty;
  worker.outputClosed = outputClosed;
  cancelTimer(out, { kind: "lifespan", ref });
  cancelTimer(out, { kind: "sigterm", ref });
  cancelTimer(out, { kind: "settled", ref });
  // Not asked to stop, and by a signal or a non-zero code: something went wrong (warn); else info.
  const failed = wasStopReason === null && worker.sigtermAtMs === null && (exit.signal !== null || exit.code !== 0);
  log(out, failed ? "warn" : "info", worker.index === PROXY_INDEX ? "Proxy exited" : "Worker exited", {
    pool: pool.config.name, worker_id: worker.id, rc: exit.code, signal: exit.signal, restarts: worker.restarts, ran_for_ms: Math.round(ranForMs),
    ...(groupEmpty ? {} : { leftovers: true }),
  });
  if (!groupEmpty && worker.sigtermAtMs === null) {
    // Whatever the leader left in its group is stopped like the worker itself would have been.
    log(out, "warn", "Processes of the worker's group outlived it; sending them SIGTERM", { pool: pool.config.name, worker_id: worker.id, pgid: worker.pid });
    worker.sigtermAtMs = nowMs;
    out.push({ type: "signal", ref, pid: worker.pid as number, signal: "SIGTERM" });
    setTimer(out, nowMs + signalTimeoutMs(pool, worker), { kind: "kill", ref });
  }
  if (!outputClosed) setTimer(out, nowMs + TIMING.outputDrainMs, { kind: "outputDrain", ref });
  cancelTimer(out, { kind: "check", ref });
  if (state.phase === "running") {
    if (worker.replacing !== null) {
      failSurge(pool, worker, `it exited before it was ready (${exit.signal === null ? `code ${exit.code}` : exit.signal})`, nowMs, out);
      worker.restartAtMs = null;
    } else if (worker.replacedBy !== null) {
      replacementTakesOver(pool, worker, out);
      worker.restartAtMs = null;
    } else if (worker.retiring) {
      if (wasStopReason !== null && wasStopReason !== "scale" && wasStopReason !== "surgeFailed") worker.plannedRestarts++;
      worker.restartAtMs = null;
    } else if (worker.index !== PROXY_INDEX && wasStopReason !== null && wasStopReason !== "shutdown") {
      worker.plannedRestarts++;
      worker.quickExits = 0;
      worker.restartAtMs = nowMs;
    } else {
      endPlannedRestart(pool, worker, out);
      decideRestart(state, pool, worker, ranForMs, { spawnFailed: false, resourceError: false }, nowMs, out);
    }
  }
  releaseIfDone(state, pool, worker, nowMs, out);
}

/**
 * Sets restartAtMs when the worker may start again (null: it may not). A run shorter than
 * min_uptime is a quick exit: the first is restarted at once, each further consecutive one waits
 * backoff_initial, doubling up to backoff_max. The proxy has a fixed policy of its own.
 */
function decideRestart(state: SupervisorState, pool: PoolState, worker: WorkerState, ranForMs: number, cause: { spawnFailed: boolean; resourceError: boolean }, nowMs: number, out: Out): void {
  worker.restartAtMs = null;
  // A pool removed by a reload starts nothing again (its proxy either), and charges no budget.
  if (pool.removal !== null) return;
  if (worker.index === PROXY_INDEX) {
    if (ranForMs >= TIMING.proxyStableAfterMs) worker.quickExits = 0;
    worker.quickExits++;
    worker.restarts++;
    const delayMs = doublingMs(TIMING.proxyRestartBaseMs, TIMING.proxyRestartMaxMs, worker.quickExits - 1);
    worker.restartAtMs = nowMs + delayMs;
    log(out, "warn", "Proxy exited; restarting it", { pool: pool.config.name, delay_ms: delayMs });
    return;
  }
  const policy = pool.config.restartPolicy;
  worker.quickExits = cause.spawnFailed || ranForMs < policy.minUptimeMs ? worker.quickExits + 1 : 0;
  // A machine short of file descriptors or memory is not the worker's fault: no budget is charged.
  if (!cause.resourceError && !takeRestart(state, pool, worker, nowMs, out)) return;
  const delayMs = backoffDelayMs(policy, worker.quickExits);
  worker.restartAtMs = nowMs + delayMs;
  if (delayMs > 0 && !cause.spawnFailed) {
    log(out, "warn", "Worker keeps exiting soon after start; restarting it after a backoff", {
      pool: pool.config.name, worker_id: worker.id, quick_exits: worker.quickExits, delay_ms: delayMs, min_uptime_ms: policy.minUptimeMs,
    });
  }
}

/** 0 for the first quick exit (and any long run), then backoff_initial × 2^(n−2), at most backoff_max. */
export function backoffDelayMs(policy: { backoffInitialMs: number; backoffMaxMs: number }, quickExits: number): number {
  if (quickExits < 2 || policy.backoffInitialMs === 0) return 0;
  return doublingMs(policy.backoffInitialMs, policy.backoffMaxMs, quickExits - 2);
}

/**
 * Charges an unplanned restart to the worker. When its budget is spent, the worker stays
 * stopped and Monoceros shuts down with a failure; returns whether the restart may happen.
 * With restart_policy.window only the restarts within the window count.
 */
function takeRestart(state: SupervisorState, pool: PoolState, worker: WorkerState, nowMs: number, out: Out): boolean {
  const { maxRestarts } = pool.config;
  const windowMs = pool.config.restartPolicy.windowMs;
  if (windowMs !== null) {
    while (worker.restartTimesMs.length > 0 && (worker.restartTimesMs[0] as number) <= nowMs - windowMs) worker.restartTimesMs.shift();
  }
  const counted = windowMs === null ? worker.restarts : worker.restartTimesMs.length;
  if (counted + 1 > maxRestarts) {
    worker.restartAtMs = null;
    // With max_restarts 0 (the original's default) a single exit is the whole budget: say so.
    log(out, "error", maxRestarts === 0 ? "Worker exited and max_restarts is 0 (no restart allowed): shutting down" : "Too many restarts: shutting down", {
      pool: pool.config.name, worker_id: worker.id, restarts: counted, max_restarts: maxRestarts, ...(windowMs === null ? {} : { window_ms: windowMs }),
    });
    beginShutdown(state, EXIT.restartBudgetExhausted, nowMs, out);
    return false;
  }
  worker.restarts++;
  if (windowMs !== null && Number.isFinite(maxRestarts)) worker.restartTimesMs.push(nowMs);
  return true;
}

/** An exiting worker whose group is empty and whose output is closed frees its slot: restarted or stopped. */
function releaseIfDone(state: SupervisorState, pool: PoolState, worker: WorkerState, nowMs: number, out: Out): void {
  if (worker.status !== "exiting" || !worker.groupEmpty || !worker.outputClosed) return;
  const ref = refOf(pool, worker);
  for (const kind of ["kill", "abandon", "outputDrain"] as const) cancelTimer(out, { kind, ref });
  worker.pid = null;
  if (state.phase === "running" && worker.retiring) {
    vacate(pool, worker, out);
    return;
  }
  if (state.phase !== "running" || worker.restartAtMs === null) {
    worker.status = "stopped";
    worker.restartAtMs = null;
    worker.plannedRestart = null;
    return;
  }
  if (worker.restartAtMs <= nowMs) {
    spawn(pool, worker, out);
    return;
  }
  waitForRestart(pool, worker, nowMs, out);
}

function waitForRestart(pool: PoolState, worker: WorkerState, nowMs: number, out: Out): void {
  worker.status = "pending";
  setTimer(out, Math.max(nowMs, worker.restartAtMs as number), { kind: "restart", pool: pool.index, worker: worker.index });
}

function onTimer(state: SupervisorState, timer: TimerPayload, nowMs: number, out: Out): void {
  switch (timer.kind) {
    case "stagger": {
      const pool = state.pools[timer.pool];
      if (pool !== undefined && state.phase === "running") startNextWorkers(state, pool, nowMs, out);
      return;
    }
    case "restart": {
      const pool = state.pools[timer.pool];
      const worker = timer.worker === PROXY_INDEX ? pool?.proxy : pool?.workers[timer.worker];
      if (pool === undefined || worker == null || worker.status !== "pending" || worker.restartAtMs === null || state.phase !== "running") return;
      spawn(pool, worker, out);
      return;
    }
    case "lifespan": {
      const found = lookup(state, timer.ref);
      if (found === null) return;
      planRestart(state, found.pool, found.worker, "lifespan", {}, nowMs, out);
      return;
    }
    case "check":
      onCheckTimer(state, timer.ref, nowMs, out);
      return;
    case "memorySample":
      onMemorySampleTimer(state, nowMs, out);
      return;
    case "settled": {
      const found = lookup(state, timer.ref);
      if (found === null || found.worker.status !== "running") return;
      finishPlannedRestart(found.pool, found.worker, nowMs, out);
      completeSurgeIfReady(found.pool, found.worker, nowMs, out);
      return;
    }
    case "surgeTimeout": {
      const found = lookup(state, timer.ref);
      if (found === null || found.worker.replacing === null || state.phase !== "running") return;
      failSurge(found.pool, found.worker, `it was not ready within ready_timeout (${found.pool.config.readyTimeoutMs} ms)`, nowMs, out);
      retire(found.pool, found.worker, "surgeFailed", nowMs, out);
      return;
    }
    case "sigterm": {
      const found = lookup(state, timer.ref);
      if (found === null || found.worker.status !== "stopping" || found.worker.sigtermAtMs !== null) return;
      requestStop(found.pool, found.worker, found.worker.stopReason ?? "lifespan", nowMs, out);
      return;
    }
    case "kill": {
      const found = lookup(state, timer.ref);
      if (found === null || (found.worker.status !== "stopping" && found.worker.status !== "exiting") || found.worker.sigkillAtMs !== null) return;
      // Its group was reported empty (only its output is still open): nothing is left to kill, and its pid may be another process's by now.
      if (!mayHaveProcesses(found.worker)) return;
      log(out, "warn", found.worker.status === "exiting"
        ? "Processes left in the worker's group did not exit within signal_timeout after SIGTERM; sending SIGKILL"
        : "Worker did not exit within signal_timeout after SIGTERM; sending SIGKILL", {
        pool: found.pool.config.name, worker_id: found.worker.id, signal_timeout_ms: signalTimeoutMs(found.pool, found.worker),
      });
      kill(found.pool, found.worker, nowMs, out);
      return;
    }
    case "abandon": {
      const found = lookup(state, timer.ref);
      if (found === null || !isLive(found.worker)) return;
      const { pool, worker } = found;
      log(out, "error", "Worker's processes were not reported gone after SIGKILL; no longer waiting for them", {
        pool: pool.config.name, worker_id: worker.id, pid: worker.pid, waited_ms: TIMING.killWaitMs, leader_exited: worker.status === "exiting",
      });
      if (worker.status !== "exiting") onExited(state, timer.ref, { code: null, signal: "unknown", atMs: nowMs }, true, true, nowMs, out);
      worker.groupEmpty = true;
      worker.outputClosed = true;
      releaseIfDone(state, pool, worker, nowMs, out);
      return;
    }
    case "outputDrain": {
      const found = lookup(state, timer.ref);
      if (found === null || found.worker.status !== "exiting" || found.worker.outputClosed) return;
      log(out, "warn", "Worker's output is still open after it exited (held by a process outside its group); not waiting for it", {
        pool: found.pool.config.name, worker_id: found.worker.id, waited_ms: TIMING.outputDrainMs,
      });
      found.worker.outputClosed = true;
      releaseIfDone(state, found.pool, found.worker, nowMs, out);
      return;
    }
  }
}

/**
 * The one path of every planned restart (lifespan, memory, health, manual, reload). At most
 * max_unavailable workers of a pool are in one at once; a worker over that waits, running, until
 * one is done (held back). A failing health check is not held back: that worker is not serving anyway.
 *
 * With max_surge > 0 the replacement starts first, in the lowest vacant slot, and the worker is
 * stopped only once the replacement is ready (completeSurgeIfReady); without a vacant slot the
 * restart is held back too (ungated: done in place). In place (max_surge 0, or a memory or health
 * restart after a failed surge): in proxy mode a worker in the rotation leaves it first and gets
 * SIGTERM rotationGraceMs later; the slot is restarted once it has exited.
 */
function planRestart(state: SupervisorState, pool: PoolState, worker: WorkerState, cause: PlannedCause, fields: Record<string, unknown>, nowMs: number, out: Out, gated = cause !== "health"): void {
  if (state.phase !== "running" || worker.status !== "running" || worker.index === PROXY_INDEX) return;
  // Already on its way out, or a replacement that has not taken over yet (its surge timeout decides).
  if (worker.retiring || worker.replacing !== null) return;
  if (worker.replacedBy !== null) {
    // Its replacement is starting already. An ungated restart (a failing check, memory at twice the
    // limit) cannot wait for it: the worker stops now and the replacement takes its place. Another
    // cause is remembered (held back), so it is not lost if that replacement fails.
    if (!gated) {
      replacementTakesOver(pool, worker, out, `${PLANNED_RESTART_MESSAGES[cause]}: it cannot wait for its replacement, which takes its place`, { pid: worker.pid, cause, ...fields });
      stopOutOfRotation(pool, worker, cause, nowMs, out);
    } else {
      worker.heldBack ??= { cause, sinceMs: nowMs };
    }
    return;
  }
  const surge = surgeFor(pool, worker, cause);
  const vacant = surge ? freeSurgeSlot(pool) : null;
  const inFlight = othersInFlight(pool, worker);
  const blockedBy = !gated ? null : inFlight >= pool.config.maxUnavailable ? "max_unavailable" : surge && vacant === null ? "max_surge" : null;
  if (blockedBy !== null) {
    // A lifespan restart due while a memory one waits takes its place: a memory restart may be
    // called off (its memory fell back), a lifespan restart never is.
    if (worker.heldBack?.cause === "memory" && cause !== "memory") worker.heldBack.cause = cause;
    if (worker.heldBack === null) {
      worker.heldBack = { cause, sinceMs: nowMs };
      const msg = blockedBy === "max_unavailable"
        ? "Planned restart held back: max_unavailable workers of the pool are restarting already"
        : "Planned restart held back: no free worker slot for its replacement (max_surge replacements are starting already)";
      log(out, "info", msg, { pool: pool.config.name, worker_id: worker.id, cause, in_flight: inFlight, max_unavailable: pool.config.maxUnavailable, max_surge: pool.config.maxSurge, ...fields });
    }
    return;
  }
  const heldBackMs = worker.heldBack === null ? 0 : nowMs - worker.heldBack.sinceMs;
  worker.heldBack = null;
  worker.plannedRestart = { cause, sinceMs: nowMs };
  log(out, cause === "lifespan" || cause === "manual" || cause === "reload" ? "info" : "warn", PLANNED_RESTART_MESSAGES[cause], {
    pool: pool.config.name, worker_id: worker.id, pid: worker.pid, cause, ...fields, ...(heldBackMs > 0 ? { held_back_ms: heldBackMs } : {}),
    ...(vacant !== null ? { replacement: vacant.id } : {}),
  });
  if (vacant !== null) {
    startReplacement(pool, worker, vacant, nowMs, out);
    return;
  }
  stopOutOfRotation(pool, worker, cause, nowMs, out);
}

const PLANNED_RESTART_MESSAGES: Record<PlannedCause, string> = {
  lifespan: "Stopping worker because it reached its lifespan",
  memory: "Restarting worker: its memory stayed over limits.memory",
  health: "Restarting worker: it failed its health check failure_threshold times in a row",
  manual: "Restarting worker: asked to (ctl restart)",
  reload: "Restarting worker: its pool's config changed (reload)",
};

/** Whether this restart starts a replacement first: max_surge > 0, unless a surge of this worker failed and its memory or health cannot wait. */
function surgeFor(pool: PoolState, worker: WorkerState, cause: PlannedCause): boolean {
  return pool.config.maxSurge > 0 && !(worker.surgeFailed && (cause === "memory" || cause === "health"));
}

/** A slot for one more replacement: at most max_surge start at once, even when scaling down left more slots free. */
function freeSurgeSlot(pool: PoolState): WorkerState | null {
  let replacements = 0;
  for (const worker of pool.workers) if (worker.replacing !== null) replacements++;
  return replacements >= pool.config.maxSurge ? null : lowestVacantSlot(pool);
}

function lowestVacantSlot(pool: PoolState): WorkerState | null {
  for (const worker of pool.workers) if (worker.status === "vacant") return worker;
  return null;
}

/** The replacement takes the old worker's lane (its listen sockets) and has ready_timeout to become ready. */
function startReplacement(pool: PoolState, worker: WorkerState, replacement: WorkerState, nowMs: number, out: Out): void {
  worker.replacedBy = replacement.index;
  replacement.replacing = worker.index;
  replacement.lane = worker.lane;
  replacement.retiring = false;
  spawn(pool, replacement, out, true);
  setTimer(out, nowMs + pool.config.readyTimeoutMs, { kind: "surgeTimeout", ref: refOf(pool, replacement) });
}

/**
 * A replacement that is ready takes over: the worker it replaces leaves (out of the rotation first).
 * Ready means: its check passed (proxy mode without one: its port accepts connections), or without
 * any check (supervisor mode) it has run min_uptime.
 */
function completeSurgeIfReady(pool: PoolState, replacement: WorkerState, nowMs: number, out: Out): void {
  if (replacement.replacing === null || replacement.status !== "running" || !replacement.ready) return;
  if (checkConfigOf(pool.config) === null && (replacement.startedAtMs === null || nowMs - replacement.startedAtMs < pool.config.restartPolicy.minUptimeMs)) return;
  const old = pool.workers[replacement.replacing];
  replacement.replacing = null;
  cancelSurgeTimers(pool, replacement, out);
  if (old === undefined || old.replacedBy !== replacement.index) return;
  old.replacedBy = null;
  log(out, "info", "Replacement is ready; stopping the worker it replaces", {
    pool: pool.config.name, worker_id: old.id, replacement: replacement.id, cause: old.plannedRestart?.cause, took_ms: old.plannedRestart === null ? undefined : nowMs - old.plannedRestart.sinceMs,
  });
  retire(pool, old, old.plannedRestart?.cause ?? "manual", nowMs, out);
}

/**
 * The replacement exited, failed to start or was not ready within ready_timeout: the old worker
 * keeps serving, and the failure is logged and counted. A lifespan restart is tried again after
 * ready_timeout; a memory or health restart of that worker is done in place next time (the limit
 * must hold); a rolling restart (manual, reload) stops: its other held-back restarts are called off.
 */
function failSurge(pool: PoolState, replacement: WorkerState, why: string, nowMs: number, out: Out): void {
  const old = replacement.replacing === null ? undefined : pool.workers[replacement.replacing];
  replacement.replacing = null;
  replacement.retiring = true;
  cancelSurgeTimers(pool, replacement, out);
  if (old === undefined || old.replacedBy !== replacement.index) return;
  old.replacedBy = null;
  const cause = old.plannedRestart?.cause ?? "manual";
  old.plannedRestart = null;
  out.push({ type: "metric", metric: "plannedRestartFailed", pool: pool.config.name, cause });
  log(out, "error", "Replacement did not become ready; the worker it was to replace keeps serving", {
    pool: pool.config.name, worker_id: old.id, replacement: replacement.id, cause, reason: why, ready_timeout_ms: pool.config.readyTimeoutMs,
  });
  if (cause === "lifespan") {
    setTimer(out, nowMs + pool.config.readyTimeoutMs, { kind: "lifespan", ref: refOf(pool, old) });
  } else if (cause === "memory" || cause === "health") {
    old.surgeFailed = true;
  } else {
    const calledOff = pool.workers.filter((worker) => worker.heldBack?.cause === cause);
    for (const worker of calledOff) worker.heldBack = null;
    if (calledOff.length > 0) log(out, "warn", "Rolling restart stopped: its other workers keep running", { pool: pool.config.name, cause, called_off: calledOff.map((worker) => worker.id) });
  }
}

/** The old worker exited while its replacement was starting: the replacement is a member from now on. */
function replacementTakesOver(pool: PoolState, old: WorkerState, out: Out, msg = "Worker exited while its replacement was starting; the replacement takes its place", fields: Record<string, unknown> = {}): void {
  const replacement = old.replacedBy === null ? undefined : pool.workers[old.replacedBy];
  old.replacedBy = null;
  old.plannedRestart = null;
  old.retiring = true;
  if (replacement === undefined || replacement.replacing !== old.index) return;
  replacement.replacing = null;
  cancelSurgeTimers(pool, replacement, out);
  log(out, "warn", msg, { pool: pool.config.name, worker_id: old.id, replacement: replacement.id, ...fields });
}

/** A replacement's wait for readiness is over (it took over, failed, or was called off). */
function cancelSurgeTimers(pool: PoolState, replacement: WorkerState, out: Out): void {
  const ref = refOf(pool, replacement);
  cancelTimer(out, { kind: "surgeTimeout", ref });
  cancelTimer(out, { kind: "settled", ref });
}

/** The worker leaves the pool: stopped (drained first), and its slot becomes vacant once it has exited. */
function retire(pool: PoolState, worker: WorkerState, reason: StopReason, nowMs: number, out: Out): void {
  worker.retiring = true;
  worker.heldBack = null;
  if (worker.status === "pending") {
    cancelTimer(out, { kind: "restart", pool: pool.index, worker: worker.index });
    vacate(pool, worker, out);
  } else if (worker.status === "running") {
    stopOutOfRotation(pool, worker, reason, nowMs, out);
  } else if (worker.status === "spawning") {
    requestStop(pool, worker, reason, nowMs, out);
  }
  // stopping or exiting: on its way out already; its exit frees the slot.
}

/**
 * Stops a running worker; in proxy mode one the proxy was last told is in the rotation leaves it
 * first (status stopping) and gets SIGTERM rotationGraceMs later, so the proxy has stopped sending
 * it requests when it stops listening (even if it stopped being ready in this very step).
 */
function stopOutOfRotation(pool: PoolState, worker: WorkerState, reason: StopReason, nowMs: number, out: Out): void {
  const ref = refOf(pool, worker);
  cancelTimer(out, { kind: "check", ref });
  if (pool.proxy === null || pool.rotationKey[worker.index] !== "1") {
    requestStop(pool, worker, reason, nowMs, out);
    return;
  }
  cancelTimer(out, { kind: "lifespan", ref });
  worker.status = "stopping";
  worker.stopReason = reason;
  setTimer(out, nowMs + TIMING.rotationGraceMs, { kind: "sigterm", ref });
}

/** The slot is free: no process, no lane; a planned restart whose old worker this was is done. */
function vacate(pool: PoolState, worker: WorkerState, out: Out): void {
  worker.status = "vacant";
  worker.retiring = false;
  worker.replacing = null;
  worker.replacedBy = null;
  worker.restartAtMs = null;
  worker.heldBack = null;
  worker.pid = null;
  worker.ready = false;
  if (worker.plannedRestart !== null) {
    log(out, "info", "Planned restart done", { pool: pool.config.name, worker_id: worker.id, cause: worker.plannedRestart.cause });
    worker.plannedRestart = null;
  }
  const lane = worker.lane;
  worker.lane = null;
  if (lane !== null && !pool.workers.some((other) => other.lane === lane)) out.push({ type: "releaseLane", pool: pool.index, lane });
}

export function plannedRestartsInFlight(pool: PoolState): number {
  let count = 0;
  for (const worker of pool.workers) if (worker.plannedRestart !== null) count++;
  return count;
}

/** Planned restarts in flight besides this worker's own (a replacement due again is not held back by itself). */
function othersInFlight(pool: PoolState, worker: WorkerState): number {
  return plannedRestartsInFlight(pool) - (worker.plannedRestart === null ? 0 : 1);
}

/**
 * The replacement of an in-place planned restart exited (or failed to spawn) before it was ready: from now on
 * it is an ordinary crash restart, never held back, and it no longer holds back the others.
 */
function endPlannedRestart(pool: PoolState, worker: WorkerState, out: Out): void {
  if (worker.plannedRestart === null) return;
  log(out, "warn", "Planned restart ended: the replacement exited or failed to start before it was ready", { pool: pool.config.name, worker_id: worker.id, cause: worker.plannedRestart.cause });
  worker.plannedRestart = null;
}

/** Held-back restarts start, oldest first, as others finish (and, with surge, as slots free up). */
function startHeldBackRestarts(state: SupervisorState, nowMs: number, out: Out): void {
  if (state.phase !== "running") return;
  for (const pool of state.pools) {
    if (pool.removal !== null) continue;
    for (;;) {
      let oldest: WorkerState | null = null;
      for (const worker of pool.workers) {
        // A worker whose replacement is starting waits for it (its held-back cause stays for a failure).
        if (worker.heldBack !== null && worker.status === "running" && worker.replacedBy === null && (oldest === null || worker.heldBack.sinceMs < (oldest.heldBack?.sinceMs ?? 0))) oldest = worker;
      }
      if (oldest === null || oldest.heldBack === null || othersInFlight(pool, oldest) >= pool.config.maxUnavailable) break;
      if (surgeFor(pool, oldest, oldest.heldBack.cause) && freeSurgeSlot(pool) === null) break;
      planRestart(state, pool, oldest, oldest.heldBack.cause, {}, nowMs, out);
    }
  }
}

/** After scaling up (or a retired worker's slot freed): members missing from replicas start in vacant slots, each on the lowest free lane. */
function startMissingMembers(state: SupervisorState, out: Out): void {
  if (state.phase !== "running") return;
  for (const pool of state.pools) {
    if (pool.removal !== null) continue;
    let members = 0;
    for (const worker of pool.workers) if (isMember(worker)) members++;
    while (members < pool.replicas) {
      const slot = lowestVacantSlot(pool);
      if (slot === null) break;
      slot.lane = lowestFreeLane(pool);
      spawn(pool, slot, out, false);
      members++;
    }
  }
}

function lowestFreeLane(pool: PoolState): number {
  const used = new Set<number>();
  for (const worker of pool.workers) if (worker.lane !== null) used.add(worker.lane);
  let lane = 0;
  while (used.has(lane)) lane++;
  return lane;
}

/**
 * Scaling at run time (ctl scale, SIGTTIN/SIGTTOU): up starts workers in vacant slots (more slots
 * are made if needed: replicas + max_surge in all); down retires the members with the highest ids,
 * drained first, and calls off their replacements.
 */
function onScale(state: SupervisorState, event: Extract<SupervisorEvent, { type: "scale" }>, nowMs: number, out: Out): void {
  const pool = activePoolAt(state, event.pool);
  if (pool === undefined || state.phase !== "running") {
    reply(out, event.requestId, false, pool === undefined ? `no pool #${event.pool}` : notRunningMessage(state), []);
    return;
  }
  const replicas = event.replicas;
  if (!Number.isInteger(replicas) || replicas < 0 || replicas > LIMITS.replicasMax) {
    reply(out, event.requestId, false, `replicas must be an integer from 0 to ${LIMITS.replicasMax}, got ${replicas}`, []);
    return;
  }
  const before = pool.replicas;
  const plan = setReplicas(pool, replicas, nowMs, out);
  log(out, "info", "Scaling pool", { pool: pool.config.name, replicas_before: before, replicas, plan });
  reply(out, event.requestId, true, `pool ${pool.config.name}: replicas ${before} -> ${replicas}`, plan);
}

/** Sets the members wanted: more slots if needed (members start in startMissingMembers), the highest ids retired; returns the plan. */
function setReplicas(pool: PoolState, replicas: number, nowMs: number, out: Out): string[] {
  pool.replicas = replicas;
  while (pool.workers.length < replicas + pool.config.maxSurge) pool.workers.push(newWorkerSlot(pool.config, pool.workers.length));
  const members = pool.workers.filter(isMember);
  const plan: string[] = [];
  for (const worker of members.slice(replicas).reverse()) {
    const replacement = worker.replacedBy === null ? undefined : pool.workers[worker.replacedBy];
    worker.replacedBy = null;
    worker.plannedRestart = null;
    if (replacement !== undefined && replacement.replacing === worker.index) {
      replacement.replacing = null;
      retire(pool, replacement, "scale", nowMs, out);
      plan.push(`stop ${replacement.id} (a replacement of ${worker.id} that was starting)`);
    }
    retire(pool, worker, "scale", nowMs, out);
    plan.push(`stop ${worker.id}${pool.proxy === null ? "" : " (out of the rotation first)"}`);
  }
  const missing = replicas - Math.min(members.length, replicas);
  if (missing > 0) plan.push(`start ${missing} worker${missing === 1 ? "" : "s"} in free slots`);
  return plan;
}

/**
 * A reload: nothing changes unless all of it can be applied (planReload). Then each changed pool
 * takes its new config (workers started from now on get it), its replicas are set, and when exec,
 * args, limits or the check changed its running workers are replaced, rolling, like ctl restart.
 */
function onReload(state: SupervisorState, event: Extract<SupervisorEvent, { type: "reload" }>, nowMs: number, out: Out): void {
  if (state.phase !== "running") {
    reply(out, event.requestId, false, notRunningMessage(state), []);
    return;
  }
  const plan = planReload({ admin: state.admin, pools: state.pools.map(runningPool) }, event.config);
  const missingLaunch = plan.ok ? plan.added.find((pool) => pool.server !== null && event.proxyLaunches?.[pool.name] === undefined) : undefined;
  if (missingLaunch !== undefined) {
    reply(out, event.requestId, false, `config not reloaded, nothing changed: no proxy prepared for the added pool ${missingLaunch.name}`, []);
    return;
  }
  if (!plan.ok) {
    out.push({ type: "metric", metric: "configReload", result: "failed" });
    for (const problem of plan.problems) log(out, "error", "Config reload refused", { problem });
    reply(out, event.requestId, false, `config not reloaded, nothing changed: ${plan.problems.join("; ")}`, plan.problems);
    return;
  }
  for (const index of plan.removed) removePool(state.pools[index] as PoolState, nowMs, out);
  const sampledMemory = state.pools.some((pool) => pool.removal === null && pool.config.limits.memoryBytes > 0);
  for (const config of plan.added) {
    const pool = createPoolState(config, state.pools.length, config.server === null ? null : (event.proxyLaunches?.[config.name] as ProxyLaunch));
    state.pools.push(pool);
    log(out, "info", "Pool added", { pool: config.name, replicas: config.replicas });
    startPool(state, pool, nowMs, out);
  }
  if (!sampledMemory && plan.added.some((pool) => pool.limits.memoryBytes > 0)) setTimer(out, nowMs + CHECK_TIMING.memorySampleIntervalMs, { kind: "memorySample" });
  for (const change of plan.pools) {
    const pool = state.pools[change.pool] as PoolState;
    pool.config = change.config;
    if (change.replicas !== null) setReplicas(pool, change.replicas, nowMs, out);
    else while (pool.workers.length < pool.replicas + pool.config.maxSurge) pool.workers.push(newWorkerSlot(pool.config, pool.workers.length));
    if (change.replace.length === 0) continue;
    for (const worker of pool.workers) {
      if (isMember(worker) && worker.status === "running" && worker.plannedRestart === null && worker.replacedBy === null) worker.heldBack ??= { cause: "reload", sinceMs: nowMs };
    }
  }
  out.push({ type: "metric", metric: "configReload", result: "success" });
  log(out, "info", "Config reloaded", { plan: plan.lines });
  reply(out, event.requestId, true, "config reloaded", plan.lines);
}

/** What the reload planner needs of a pool: its config, its slots, whether it was removed. */
export function runningPool(pool: PoolState): RunningPool {
  return { config: pool.config, slots: pool.workers.length, removal: pool.removal };
}

/**
 * A pool a reload removed: no more starts or restarts; its workers leave like those of a scale to
 * 0 (out of the rotation first, replacements called off), its proxy stops taking new connections and
 * is stopped once they are gone (stopProxiesOfDrainedPools), then finishPoolRemovals reports it gone.
 */
function removePool(pool: PoolState, nowMs: number, out: Out): void {
  pool.removal = "draining";
  cancelTimer(out, { kind: "stagger", pool: pool.index });
  pool.nextToStart = pool.workers.length;
  for (const worker of pool.workers) worker.heldBack = null;
  setReplicas(pool, 0, nowMs, out);
  // Workers outside the members (a replacement whose old worker is gone, one in backoff between runs) leave too.
  for (const worker of pool.workers) if (worker.status !== "vacant" && worker.status !== "stopped" && !worker.retiring) retire(pool, worker, "scale", nowMs, out);
  if (pool.proxy?.status === "running") out.push({ type: "drainProxy", pool: pool.index });
  log(out, "info", "Pool removed by a reload: stopping its workers, then its proxy", { pool: pool.config.name });
}

/** ctl restart: the pool's running members (or one) get a planned restart each, oldest request first, bounded by max_unavailable and max_surge. */
function onRestartRequested(state: SupervisorState, event: Extract<SupervisorEvent, { type: "restartRequested" }>, nowMs: number, out: Out): void {
  const pool = activePoolAt(state, event.pool);
  if (pool === undefined || state.phase !== "running") {
    reply(out, event.requestId, false, pool === undefined ? `no pool #${event.pool}` : notRunningMessage(state), []);
    return;
  }
  const targets = event.worker === null ? pool.workers.filter((worker) => isMember(worker) && worker.status === "running") : [pool.workers[event.worker]].filter((worker) => worker !== undefined);
  const one = targets[0];
  if (event.worker !== null && (one === undefined || !isMember(one) || one.status !== "running")) {
    reply(out, event.requestId, false, one === undefined ? `pool ${pool.config.name} has no worker ${event.worker}` : `${one.id} is not running (${one.retiring ? "leaving the pool" : one.replacing !== null ? "a replacement still starting" : one.status})`, []);
    return;
  }
  const plan: string[] = [];
  for (const worker of targets) {
    if (worker.plannedRestart !== null || worker.replacedBy !== null) {
      plan.push(`${worker.id}: a planned restart is under way already`);
      continue;
    }
    worker.heldBack ??= { cause: "manual", sinceMs: nowMs };
    plan.push(`replace ${worker.id}`);
  }
  const how = pool.config.maxSurge > 0 ? `each replacement started and ready first (max_surge ${pool.config.maxSurge})` : "each stopped, then started again (max_surge 0)";
  log(out, "info", "Restart requested", { pool: pool.config.name, workers: targets.map((worker) => worker.id) });
  reply(out, event.requestId, true, `pool ${pool.config.name}: restarting ${targets.length} worker${targets.length === 1 ? "" : "s"}, ${pool.config.maxUnavailable} at a time, ${how}`, plan);
}

/** The pool at this index unless a reload removed it. */
function activePoolAt(state: SupervisorState, index: number): PoolState | undefined {
  const pool = state.pools[index];
  return pool?.removal === null ? pool : undefined;
}

function notRunningMessage(state: SupervisorState): string {
  return `Monoceros is ${state.phase === "idle" ? "starting" : "shutting down"}`;
}

function reply(out: Out, requestId: number, ok: boolean, message: string, plan: readonly string[]): void {
  out.push({ type: "reply", requestId, ok, message, plan });
}

/** The worker may get requests: with a check once it passed (notify: and sent READY=1), else once it runs. */
function markReady(pool: PoolState, worker: WorkerState, nowMs: number, out: Out): void {
  if (worker.ready || worker.status !== "running") return;
  const config = pool.config.healthCheck;
  if (config !== null && ((config.probe.kind === "notify" && !worker.check.readySent) || worker.check.stoppingSent)) return;
  worker.ready = true;
  if (config !== null) log(out, "info", worker.check.wasReady ? "Worker passes its health check again" : "Worker is ready", { pool: pool.config.name, worker_id: worker.id });
  worker.check.wasReady = true;
  finishPlannedRestart(pool, worker, nowMs, out);
  completeSurgeIfReady(pool, worker, nowMs, out);
}

/**
 * An in-place planned restart is done once the next incarnation is ready: with a check, its first
 * pass; without any (supervisor mode), once it has run min_uptime (the "settled" timer), so that
 * max_unavailable paces a rolling restart instead of letting every worker stop at once.
 */
function finishPlannedRestart(pool: PoolState, worker: WorkerState, nowMs: number, out: Out): void {
  if (worker.plannedRestart === null || worker.status !== "running" || !worker.ready) return;
  if (checkConfigOf(pool.config) === null && (worker.startedAtMs === null || nowMs - worker.startedAtMs < pool.config.restartPolicy.minUptimeMs)) return;
  log(out, "info", "Planned restart done", { pool: pool.config.name, worker_id: worker.id, cause: worker.plannedRestart.cause, took_ms: nowMs - worker.plannedRestart.sinceMs });
  worker.plannedRestart = null;
}

/** A check is due, or the one in flight had no result by its deadline. */
function onCheckTimer(state: SupervisorState, ref: WorkerRef, nowMs: number, out: Out): void {
  const found = lookup(state, ref);
  if (found === null || state.phase !== "running" || !leaderRunning(found.worker) || found.worker.status !== "running") return;
  const { pool, worker } = found;
  const config = checkConfigOf(pool.config);
  if (config === null) return;
  const check = worker.check;
  if (config.probe.kind === "notify") {
    // A counted check: the worker said READY=1, not STOPPING=1, and a keepalive (READY=1 or
    // WATCHDOG=1) came since the last one. A worker that only pings, never ready, is not well.
    startCheck(config, check, nowMs);
    const detail = check.stoppingSent ? "sent STOPPING=1 and is still running"
      : !check.keepalive ? `no READY=1 or WATCHDOG=1 within ${config.intervalMs} ms`
        : !check.readySent ? "keepalive received, but no READY=1 yet" : "keepalive received";
    const passed = check.keepalive && check.readySent && !check.stoppingSent;
    check.keepalive = false;
    finishCheck(state, pool, worker, passed ? "ok" : "timeout", detail, nowMs, out);
    return;
  }
  if (check.inFlight !== null) {
    finishCheck(state, pool, worker, "timeout", `no result within ${Math.round(nowMs - check.inFlight.startedAtMs)} ms`, nowMs, out);
    return;
  }
  const probe = probeFor(pool.config, worker);
  if (probe === null) return;
  startCheck(config, check, nowMs);
  out.push({ type: "probe", ref, seq: check.started, pid: worker.pid, probe, timeoutMs: config.timeoutMs });
  setTimer(out, probeDeadlineMs(config, check.nextCountedAtMs, nowMs), { kind: "check", ref });
}

/** result null: the probe could not be made (Monoceros is short of a resource); the check did not happen. */
function onCheckResult(state: SupervisorState, ref: WorkerRef, seq: number, result: CheckResult | null, detail: string, nowMs: number, out: Out): void {
  const found = lookup(state, ref);
  // A result for an earlier probe (it came after its deadline) says nothing about this one.
  if (found === null || state.phase !== "running" || found.worker.status !== "running" || found.worker.check.inFlight?.seq !== seq) return;
  finishCheck(state, found.pool, found.worker, result, detail, nowMs, out);
}

/** Records the check in flight (unless it could not be made) and schedules the next one. */
function finishCheck(state: SupervisorState, pool: PoolState, worker: WorkerState, result: CheckResult | null, detail: string, nowMs: number, out: Out): void {
  const config = checkConfigOf(pool.config);
  const inFlight = worker.check.inFlight;
  if (config === null || inFlight === null) return;
  worker.check.inFlight = null;
  if (result !== null) {
    worker.check.localErrors = 0;
    recordCheck(state, pool, worker, result, detail, inFlight.counted, nowMs, out);
  } else if (worker.check.localErrors++ === 0) {
    // Once per run of them per worker: a machine out of file descriptors must not flood the log.
    log(out, "warn", "Health check could not be made (Monoceros is short of a resource); not counted", { pool: pool.config.name, worker_id: worker.id, detail });
  }
  const ref = refOf(pool, worker);
  // The implicit readiness check of a proxy pool ends with its first pass (its next is never due).
  const nextAtMs = nextCheckAtMs(config, worker.check, inFlight.startedAtMs, nowMs);
  if (worker.status === "running" && Number.isFinite(nextAtMs)) setTimer(out, nextAtMs, { kind: "check", ref });
  else cancelTimer(out, { kind: "check", ref });
}

/**
 * A pass makes the worker ready; a counted failure takes it out of the rotation, and the
 * failure_threshold-th in a row restarts it. Failures of readiness checks (before the first pass,
 * or in start_period) do not count.
 */
function recordCheck(state: SupervisorState, pool: PoolState, worker: WorkerState, result: CheckResult, detail: string, counted: boolean, nowMs: number, out: Out): void {
  const config = checkConfigOf(pool.config);
  if (config === null) return;
  const check = worker.check;
  check.last = { result, atMs: nowMs, detail };
  // health_checks_total counts the configured checks only, not the implicit readiness of a proxy pool.
  if (pool.config.healthCheck !== null && (counted || result === "ok")) out.push({ type: "metric", metric: "healthCheck", pool: pool.config.name, result });
  if (result === "ok") {
    const wasFailing = check.consecutiveFailures > 0;
    check.passedOnce = true;
    check.consecutiveFailures = 0;
    if (wasFailing || !worker.ready) markReady(pool, worker, nowMs, out);
    return;
  }
  if (!counted) return;
  check.consecutiveFailures++;
  const fields = { pool: pool.config.name, worker_id: worker.id, result, detail, consecutive_failures: check.consecutiveFailures, failure_threshold: config.failureThreshold };
  if (worker.ready) {
    worker.ready = false;
    log(out, "warn", "Worker failed its health check; out of the rotation until it passes again", fields);
  } else {
    log(out, "warn", "Worker failed its health check", fields);
  }
  if (check.consecutiveFailures >= config.failureThreshold) {
    planRestart(state, pool, worker, "health", { result, detail, consecutive_failures: check.consecutiveFailures }, nowMs, out);
  }
}

/** sd_notify: READY=1 makes the worker ready, any keepalive is a pass, STOPPING=1 takes it out of the rotation. */
function onNotify(state: SupervisorState, event: Extract<SupervisorEvent, { type: "notify" }>, nowMs: number, out: Out): void {
  const found = lookup(state, event.ref);
  if (found === null || state.phase !== "running" || found.worker.status !== "running" || found.pool.config.healthCheck?.probe.kind !== "notify") return;
  const { pool, worker } = found;
  const check = worker.check;
  if (event.status !== null) check.status = event.status;
  if (event.stopping && !check.stoppingSent) {
    check.stoppingSent = true;
    worker.ready = false;
    log(out, "info", "Worker sent STOPPING=1; out of the rotation", { pool: pool.config.name, worker_id: worker.id });
  }
  if (event.ready) check.readySent = true;
  if (event.ready || event.watchdog) {
    check.keepalive = true;
    // A keepalive of a worker that is ready (said READY=1, not STOPPING=1) is a pass: back in the rotation at once.
    if (!check.readySent || check.stoppingSent) return;
    check.passedOnce = true;
    check.consecutiveFailures = 0;
    markReady(pool, worker, nowMs, out);
  }
}

function onMemorySampleTimer(state: SupervisorState, nowMs: number, out: Out): void {
  if (state.phase !== "running") return;
  const groups: { ref: WorkerRef; pid: number }[] = [];
  for (const pool of state.pools) {
    if (pool.config.limits.memoryBytes <= 0) continue;
    for (const worker of pool.workers) if (worker.status === "running" && leaderRunning(worker)) groups.push({ ref: refOf(pool, worker), pid: worker.pid });
  }
  if (groups.length > 0) out.push({ type: "sampleMemory", groups });
  setTimer(out, nowMs + CHECK_TIMING.memorySampleIntervalMs, { kind: "memorySample" });
}

/**
 * memorySamplesOverLimit samples over limits.memory in a row make a planned restart; a sample
 * under it resets the count and calls off a memory restart still held back.
 */
function onMemorySampled(state: SupervisorState, samples: readonly { ref: WorkerRef; rssBytes: number }[], nowMs: number, out: Out): void {
  if (state.phase !== "running") return;
  for (const sample of samples) {
    const found = lookup(state, sample.ref);
    if (found === null || found.worker.status !== "running") continue;
    const { pool, worker } = found;
    const limitBytes = pool.config.limits.memoryBytes;
    worker.rssBytes = sample.rssBytes;
    worker.rssSampledAtMs = nowMs;
    if (limitBytes <= 0) continue;
    if (sample.rssBytes <= limitBytes) {
      worker.samplesOverLimit = 0;
      if (worker.heldBack?.cause === "memory") {
        worker.heldBack = null;
        log(out, "info", "Worker's memory is under limits.memory again; its held-back restart is called off", { pool: pool.config.name, worker_id: worker.id, rss_bytes: sample.rssBytes, limit_bytes: limitBytes });
      }
      continue;
    }
    worker.samplesOverLimit++;
    if (worker.samplesOverLimit < CHECK_TIMING.memorySamplesOverLimit) continue;
    // At memoryUrgentFactor × the limit the pod's memory is at stake: not held back by max_unavailable.
    const urgent = sample.rssBytes > limitBytes * CHECK_TIMING.memoryUrgentFactor;
    if (worker.heldBack === null || urgent) {
      planRestart(state, pool, worker, "memory", { rss_bytes: sample.rssBytes, limit_bytes: limitBytes, samples_over_limit: worker.samplesOverLimit, ...(urgent ? { urgent: true } : {}) }, nowMs, out, !urgent);
    }
  }
}

/** SIGTERM now, SIGKILL after the pool's signal_timeout if it is still there. */
function requestStop(pool: PoolState, worker: WorkerState, reason: StopReason, nowMs: number, out: Out): void {
  worker.stopReason = reason;
  if (worker.sigtermAtMs !== null) return; // already SIGTERMed; its SIGKILL timer stands
  const ref = refOf(pool, worker);
  cancelTimer(out, { kind: "lifespan", ref });
  cancelTimer(out, { kind: "sigterm", ref });
  if (worker.status === "spawning") return; // SIGTERMed as soon as it has a pid (onSpawned)
  worker.status = "stopping";
  worker.sigtermAtMs = nowMs;
  // The limit counts as enforced when its SIGTERM goes out (a worker that exits by itself first was not stopped by it).
  const limitEvent = reason === "lifespan" ? "time" : reason === "memory" || reason === "health" ? reason : null;
  if (limitEvent !== null) out.push({ type: "metric", metric: "limitEvent", pool: pool.config.name, limitEvent });
  const signal = worker.index === PROXY_INDEX ? (pool.proxyLaunch?.stopSignal ?? "SIGTERM") : "SIGTERM";
  out.push({ type: "signal", ref, pid: worker.pid as number, signal });
  setTimer(out, nowMs + signalTimeoutMs(pool, worker), { kind: "kill", ref });
}

/** Whether the worker's process group may still have members: a signal to it cannot reach a stranger. */
function mayHaveProcesses(worker: WorkerState): boolean {
  return isLive(worker) && !(worker.status === "exiting" && worker.groupEmpty);
}

/** Workers get the pool's signal_timeout; the proxy gets server.signal_timeout. */
export function signalTimeoutMs(pool: PoolState, worker: WorkerState): number {
  return worker.index === PROXY_INDEX && pool.config.server !== null ? pool.config.server.signalTimeoutMs : pool.config.signalTimeoutMs;
}

function kill(pool: PoolState, worker: WorkerState, nowMs: number, out: Out): void {
  const ref = refOf(pool, worker);
  if (worker.status !== "exiting") worker.status = "stopping";
  worker.sigkillAtMs = nowMs;
  if (worker.pid !== null) {
    out.push({ type: "signal", ref, pid: worker.pid, signal: "SIGKILL" });
    out.push({ type: "metric", metric: "sigkill", pool: pool.config.name });
  }
  setTimer(out, nowMs + TIMING.killWaitMs, { kind: "abandon", ref });
}

function onShutdownRequested(state: SupervisorState, signal: string, nowMs: number, out: Out): void {
  state.shutdownRequests++;
  out.push({ type: "metric", metric: "sigtermReceived" });
  if (state.shutdownRequests === 1 || state.phase === "idle" || state.phase === "running") {
    log(out, "info", "Interrupt caught, cleaning up workers. This might take some time...", { signal });
    beginShutdown(state, EXIT.requested, nowMs, out);
    return;
  }
  if (state.shutdownRequests < FORCE_AFTER_REQUESTS) {
    log(out, "warn", "Shutdown already in progress; send the signal once more to SIGKILL every worker now", { signal });
    return;
  }
  log(out, "warn", "Signal received again during shutdown: sending SIGKILL to every worker", { signal });
  for (const pool of state.pools) {
    for (const worker of processesOf(pool)) {
      if (worker.pid !== null && mayHaveProcesses(worker) && worker.sigkillAtMs === null) kill(pool, worker, nowMs, out);
    }
  }
}

/** The pool's workers, then its proxy. */
function processesOf(pool: PoolState): WorkerState[] {
  return pool.proxy === null ? pool.workers : [...pool.workers, pool.proxy];
}

/** Stops starting workers and asks every worker to stop; idempotent. */
function beginShutdown(state: SupervisorState, exitCode: number, nowMs: number, out: Out): void {
  if (state.phase === "stopping" || state.phase === "exited") return;
  state.phase = "stopping";
  state.exitCode = exitCode;
  state.shutdownStartedAtMs = nowMs;
  for (const pool of state.pools) {
    cancelTimer(out, { kind: "stagger", pool: pool.index });
    const proxy = pool.proxy;
    if (proxy !== null) {
      // The proxy stops taking new connections now; it is stopped itself once its workers are gone.
      if (proxy.status === "running") out.push({ type: "drainProxy", pool: pool.index });
    }
    for (const worker of processesOf(pool)) {
      worker.heldBack = null;
      worker.plannedRestart = null;
      if (worker.status === "pending") {
        worker.status = "stopped";
        worker.restartAtMs = null;
        cancelTimer(out, { kind: "restart", pool: pool.index, worker: worker.index });
      } else if (isLive(worker) && worker.status !== "exiting" && worker.index !== PROXY_INDEX) {
        requestStop(pool, worker, "shutdown", nowMs, out);
      }
    }
  }
}

/** During shutdown, and in a pool removed by a reload, a proxy is stopped last: once every worker of its pool has exited. */
function stopProxiesOfDrainedPools(state: SupervisorState, nowMs: number, out: Out): void {
  if (state.phase !== "stopping" && state.phase !== "running") return;
  for (const pool of state.pools) {
    if (state.phase === "running" && pool.removal !== "draining") continue;
    const proxy = pool.proxy;
    if (proxy === null || !isLive(proxy) || proxy.status === "exiting" || proxy.stopReason !== null || proxy.sigkillAtMs !== null) continue;
    if (pool.workers.every((worker) => worker.status === "stopped" || worker.status === "vacant")) {
      log(out, "info", "All workers of the pool stopped; stopping its proxy", { pool: pool.config.name });
      requestStop(pool, proxy, "shutdown", nowMs, out);
    }
  }
}

/** Tells a pool's proxy which workers may get requests, whenever that changes. */
function sendRotationChanges(state: SupervisorState, out: Out): void {
  for (const pool of state.pools) {
    const server = pool.config.server;
    if (pool.proxy === null || server === null) continue;
    let key = "";
    for (const worker of pool.workers) key += inRotation(worker) ? "1" : "0";
    if (key === pool.rotationKey) continue;
    pool.rotationKey = key;
    out.push({
      type: "proxyRotation",
      pool: pool.index,
      endpoints: proxyEndpoints(pool.config, pool.workers.length, (index) => inRotation(pool.workers[index])),
    });
  }
}

/** Running, not asked to stop, and ready (without a health check: as soon as it runs). */
export function inRotation(worker: WorkerState | undefined): boolean {
  return worker !== undefined && worker.status === "running" && worker.ready;
}

/** A removed pool is gone once none of its processes is left: the runtime may close its sockets and forget its proxy. */
function finishPoolRemovals(state: SupervisorState, out: Out): void {
  if (state.phase !== "running") return;
  for (const pool of state.pools) {
    if (pool.removal !== "draining") continue;
    if (!processesOf(pool).every((worker) => worker.status === "stopped" || worker.status === "vacant")) continue;
    pool.removal = "done";
    log(out, "info", "Pool removed: all its processes have stopped", { pool: pool.config.name });
    out.push({ type: "poolRemoved", pool: pool.index });
  }
}

function finishShutdownIfDone(state: SupervisorState, out: Out): void {
  if (state.phase !== "stopping") return;
  for (const pool of state.pools) {
    for (const worker of processesOf(pool)) if (worker.status !== "stopped" && worker.status !== "vacant") return;
  }
  state.phase = "exited";
  const code = state.exitCode ?? EXIT.requested;
  log(out, code === 0 ? "info" : "error", "All workers stopped; exiting", { exit_code: code });
  out.push({ type: "exit", code });
}

function lookup(state: SupervisorState, ref: WorkerRef): { pool: PoolState; worker: WorkerState } | null {
  const pool = state.pools[ref.pool];
  const worker = ref.worker === PROXY_INDEX ? pool?.proxy : pool?.workers[ref.worker];
  if (pool === undefined || worker === undefined || worker === null || worker.generation !== ref.generation) return null;
  return { pool, worker };
}

function refOf(pool: PoolState, worker: WorkerState): WorkerRef {
  return { pool: pool.index, worker: worker.index, generation: worker.generation };
}

function refFields(state: SupervisorState, ref: WorkerRef): Record<string, unknown> {
  const pool = state.pools[ref.pool];
  return { pool: pool?.config.name, worker_id: pool?.workers[ref.worker]?.id, generation: ref.generation };
}

/** Health checks may fire up to CHECK_TIMING.timerSlackMs late, so that many workers' checks share a wake-up. */
function setTimer(out: Out, atMs: number, timer: TimerPayload): void {
  out.push({ type: "setTimer", key: timerKey(timer), atMs, timer, ...(timer.kind === "check" ? { slackMs: CHECK_TIMING.timerSlackMs } : {}) });
}

function cancelTimer(out: Out, timer: TimerPayload): void {
  out.push({ type: "cancelTimer", key: timerKey(timer) });
}

function log(out: Out, level: "debug" | "info" | "warn" | "error", msg: string, fields: Record<string, unknown>): void {
  out.push({ type: "log", level, msg, fields });
}
