// Every decision about starting, restarting and stopping workers. `step` takes the state, one
// event and the current time, updates the state in place and returns the commands the runtime
// must carry out. No I/O, no clock, no randomness other than the seeded generator in the state.
import { proxyEndpoints } from "./identity.js";
import { doublingMs } from "./backoff.js";
import { CHECK_TIMING, firstCountedAtMs, nextCheckAtMs, probeDeadlineMs, probeFor, startCheck } from "./checks.js";
import { nextRandom } from "./random.js";
import { isLive, leaderRunning, newCheckState, PROXY_INDEX, type PoolState, type SupervisorState, type WorkerExit, type WorkerState } from "./state.js";
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
  }
  startHeldBackRestarts(state, nowMs, out);
  stopProxiesOfDrainedPools(state, nowMs, out);
  sendRotationChanges(state, out);
  finishShutdownIfDone(state, out);
  return out;
}

function start(state: SupervisorState, nowMs: number, out: Out): void {
  if (state.phase !== "idle") return;
  state.phase = "running";
  log(out, "info", "Monoceros started", { pools: state.pools.length, workers: state.pools.reduce((n, p) => n + p.config.replicas, 0) });
  for (const pool of state.pools) {
    // The proxy first, so its listener is up when the first worker joins the rotation.
    if (pool.proxy !== null) {
      sendRotationChanges(state, out);
      spawn(pool, pool.proxy, out);
    }
    startNextWorkers(state, pool, nowMs, out);
  }
  if (state.pools.some((pool) => pool.config.limits.memoryBytes > 0)) setTimer(out, nowMs + CHECK_TIMING.memorySampleIntervalMs, { kind: "memorySample" });
}

/** Staggered start: one worker, then the next after startup_wait_time; all at once when it is 0. */
function startNextWorkers(state: SupervisorState, pool: PoolState, nowMs: number, out: Out): void {
  while (pool.nextToStart < pool.workers.length) {
    const worker = pool.workers[pool.nextToStart] as WorkerState;
    pool.nextToStart++;
    if (worker.status === "pending" && worker.restartAtMs === null) spawn(pool, worker, out);
    if (pool.config.startupWaitMs > 0 && pool.nextToStart < pool.workers.length) {
      setTimer(out, nowMs + pool.config.startupWaitMs, { kind: "stagger", pool: pool.index });
      return;
    }
  }
}

/** Spawns the worker's next incarnation; every one after the first counts in restarts_total, as in the original. */
function spawn(pool: PoolState, worker: WorkerState, out: Out): void {
  const isProxy = worker.index === PROXY_INDEX;
  if (worker.generation > 0) out.push({ type: "metric", metric: "restart", pool: pool.config.name, workerType: isProxy ? "proxy" : "worker" });
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
  const exec = isProxy ? (pool.proxyLaunch?.exec ?? "") : pool.config.exec;
  const notify = !isProxy && pool.config.healthCheck?.probe.kind === "notify";
  out.push({ type: "spawn", ref: refOf(pool, worker), exec, args: worker.args, env: worker.env, notify });
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
  worker.status = "running";
  log(out, "info", "Worker started", { pool: pool.config.name, worker_id: worker.id, pid, restarts: worker.restarts });
  const { lifespanMs, jitterRatio } = pool.config.limits;
  if (lifespanMs > 0) {
    const random = nextRandom(state.randomSeed);
    state.randomSeed = random.seed;
    const jitterMs = Math.floor(random.value * jitterRatio * lifespanMs);
    setTimer(out, nowMs + lifespanMs + jitterMs, { kind: "lifespan", ref });
  }
  const check = pool.config.healthCheck;
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
  log(out, "info", worker.index === PROXY_INDEX ? "Proxy exited" : "Worker exited", {
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
    if (worker.index !== PROXY_INDEX && wasStopReason !== null && wasStopReason !== "shutdown") {
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
    log(out, "error", "Too many restarts: shutting down", {
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

const PLANNED_RESTART_MESSAGES: Record<PlannedCause, string> = {
  lifespan: "Stopping worker because it reached its lifespan",
  memory: "Restarting worker: its memory stayed over limits.memory",
  health: "Restarting worker: it failed its health check failure_threshold times in a row",
};

/**
 * The one path of every planned restart (lifespan, memory, health). At most max_unavailable
 * workers of a pool are in one at once; a worker over that waits, running, until one is done
 * (held back). A failing health check is not held back: that worker is not serving anyway. In
 * proxy mode a worker in the rotation leaves it first and gets SIGTERM rotationGraceMs later.
 */
function planRestart(state: SupervisorState, pool: PoolState, worker: WorkerState, cause: PlannedCause, fields: Record<string, unknown>, nowMs: number, out: Out, gated = cause !== "health"): void {
  if (state.phase !== "running" || worker.status !== "running" || worker.index === PROXY_INDEX) return;
  const inFlight = othersInFlight(pool, worker);
  if (gated && inFlight >= pool.config.maxUnavailable) {
    // A lifespan restart due while a memory one waits takes its place: a memory restart may be
    // called off (its memory fell back), a lifespan restart never is.
    if (worker.heldBack?.cause === "memory" && cause === "lifespan") worker.heldBack.cause = "lifespan";
    if (worker.heldBack === null) {
      worker.heldBack = { cause, sinceMs: nowMs };
      log(out, "info", "Planned restart held back: max_unavailable workers of the pool are restarting already", {
        pool: pool.config.name, worker_id: worker.id, cause, in_flight: inFlight, max_unavailable: pool.config.maxUnavailable, ...fields,
      });
    }
    return;
  }
  const heldBackMs = worker.heldBack === null ? 0 : nowMs - worker.heldBack.sinceMs;
  worker.heldBack = null;
  worker.plannedRestart = { cause, sinceMs: nowMs };
  log(out, cause === "lifespan" ? "info" : "warn", PLANNED_RESTART_MESSAGES[cause], {
    pool: pool.config.name, worker_id: worker.id, pid: worker.pid, cause, ...fields, ...(heldBackMs > 0 ? { held_back_ms: heldBackMs } : {}),
  });
  const ref = refOf(pool, worker);
  cancelTimer(out, { kind: "check", ref });
  // The grace is for a worker the proxy still sends requests to: in the rotation it was last told,
  // even if it stopped being ready in this very step (a first failed check with failure_threshold 1).
  if (pool.proxy === null || pool.rotationKey[worker.index] !== "1") {
    requestStop(pool, worker, cause, nowMs, out);
    return;
  }
  // Out of the rotation now (status "stopping"), SIGTERM once the proxy has had time to notice.
  cancelTimer(out, { kind: "lifespan", ref });
  worker.status = "stopping";
  worker.stopReason = cause;
  setTimer(out, nowMs + TIMING.rotationGraceMs, { kind: "sigterm", ref });
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
 * The replacement of a planned restart exited (or failed to spawn) before it was ready: from now on
 * it is an ordinary crash restart, never held back, and it no longer holds back the others.
 */
function endPlannedRestart(pool: PoolState, worker: WorkerState, out: Out): void {
  if (worker.plannedRestart === null) return;
  log(out, "warn", "Planned restart ended: the replacement exited or failed to start before it was ready", { pool: pool.config.name, worker_id: worker.id, cause: worker.plannedRestart.cause });
  worker.plannedRestart = null;
}

/** Held-back restarts start, oldest first, as others finish. */
function startHeldBackRestarts(state: SupervisorState, nowMs: number, out: Out): void {
  if (state.phase !== "running") return;
  for (const pool of state.pools) {
    for (;;) {
      let oldest: WorkerState | null = null;
      for (const worker of pool.workers) {
        if (worker.heldBack !== null && worker.status === "running" && (oldest === null || worker.heldBack.sinceMs < (oldest.heldBack?.sinceMs ?? 0))) oldest = worker;
      }
      if (oldest === null || oldest.heldBack === null || othersInFlight(pool, oldest) >= pool.config.maxUnavailable) break;
      planRestart(state, pool, oldest, oldest.heldBack.cause, {}, nowMs, out);
    }
  }
}

/** The worker may get requests: with a check once it passed (notify: and sent READY=1), else once it runs. */
function markReady(pool: PoolState, worker: WorkerState, nowMs: number, out: Out): void {
  if (worker.ready || worker.status !== "running") return;
  const config = pool.config.healthCheck;
  if (config !== null && ((config.probe.kind === "notify" && !worker.check.readySent) || worker.check.stoppingSent)) return;
  worker.ready = true;
  if (config !== null) log(out, "info", worker.check.wasReady ? "Worker passes its health check again" : "Worker is ready", { pool: pool.config.name, worker_id: worker.id });
  worker.check.wasReady = true;
  if (worker.plannedRestart !== null) {
    log(out, "info", "Planned restart done", { pool: pool.config.name, worker_id: worker.id, cause: worker.plannedRestart.cause, took_ms: nowMs - worker.plannedRestart.sinceMs });
    worker.plannedRestart = null;
  }
}

/** A check is due, or the one in flight had no result by its deadline. */
function onCheckTimer(state: SupervisorState, ref: WorkerRef, nowMs: number, out: Out): void {
  const found = lookup(state, ref);
  if (found === null || state.phase !== "running" || !leaderRunning(found.worker) || found.worker.status !== "running") return;
  const { pool, worker } = found;
  const config = pool.config.healthCheck;
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
  const config = pool.config.healthCheck;
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
  if (worker.status === "running") setTimer(out, nextCheckAtMs(config, worker.check, inFlight.startedAtMs, nowMs), { kind: "check", ref });
  else cancelTimer(out, { kind: "check", ref });
}

/**
 * A pass makes the worker ready; a counted failure takes it out of the rotation, and the
 * failure_threshold-th in a row restarts it. Failures of readiness checks (before the first pass,
 * or in start_period) do not count.
 */
function recordCheck(state: SupervisorState, pool: PoolState, worker: WorkerState, result: CheckResult, detail: string, counted: boolean, nowMs: number, out: Out): void {
  const config = pool.config.healthCheck;
  if (config === null) return;
  const check = worker.check;
  check.last = { result, atMs: nowMs, detail };
  if (counted || result === "ok") out.push({ type: "metric", metric: "healthCheck", pool: pool.config.name, result });
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
function requestStop(pool: PoolState, worker: WorkerState, reason: PlannedCause | "shutdown", nowMs: number, out: Out): void {
  worker.stopReason = reason;
  if (worker.sigtermAtMs !== null) return; // already SIGTERMed; its SIGKILL timer stands
  const ref = refOf(pool, worker);
  cancelTimer(out, { kind: "lifespan", ref });
  cancelTimer(out, { kind: "sigterm", ref });
  if (worker.status === "spawning") return; // SIGTERMed as soon as it has a pid (onSpawned)
  worker.status = "stopping";
  worker.sigtermAtMs = nowMs;
  // The limit counts as enforced when its SIGTERM goes out (a worker that exits by itself first was not stopped by it).
  if (reason !== "shutdown") out.push({ type: "metric", metric: "limitEvent", pool: pool.config.name, limitEvent: reason === "lifespan" ? "time" : reason });
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

/** During shutdown a proxy is stopped last: once every worker of its pool has exited. */
function stopProxiesOfDrainedPools(state: SupervisorState, nowMs: number, out: Out): void {
  if (state.phase !== "stopping") return;
  for (const pool of state.pools) {
    const proxy = pool.proxy;
    if (proxy === null || !isLive(proxy) || proxy.status === "exiting" || proxy.stopReason !== null || proxy.sigkillAtMs !== null) continue;
    if (pool.workers.every((worker) => worker.status === "stopped")) {
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
      endpoints: proxyEndpoints(pool.config, (index) => inRotation(pool.workers[index])),
    });
  }
}

/** Running, not asked to stop, and ready (without a health check: as soon as it runs). */
export function inRotation(worker: WorkerState | undefined): boolean {
  return worker !== undefined && worker.status === "running" && worker.ready;
}

function finishShutdownIfDone(state: SupervisorState, out: Out): void {
  if (state.phase !== "stopping") return;
  for (const pool of state.pools) {
    for (const worker of processesOf(pool)) if (worker.status !== "stopped") return;
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
