// Every decision about starting, restarting and stopping workers. `step` takes the state, one
// event and the current time, updates the state in place and returns the commands the runtime
// must carry out. No I/O, no clock, no randomness other than the seeded generator in the state.
import { proxyEndpoints } from "./identity.js";
import { nextRandom } from "./random.js";
import { isLive, PROXY_INDEX, type PoolState, type SupervisorState, type WorkerExit, type WorkerState } from "./state.js";
import { timerKey, type Command, type SupervisorEvent, type TimerPayload, type WorkerRef } from "./types.js";

/** Bounds of our own; the config has no say in them. */
export const TIMING = {
  /** First retry after a failed spawn; doubles with each consecutive failure. */
  spawnRetryBaseMs: 100,
  spawnRetryMaxMs: 5_000,
  /** How long after SIGKILL a process may take to be reported gone before we give up on it. */
  killWaitMs: 5_000,
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
      onExited(state, event.ref, { code: event.code, signal: event.signal, atMs: nowMs }, nowMs, out);
      break;
    case "timer":
      onTimer(state, event.timer, nowMs, out);
      break;
    case "shutdownRequested":
      onShutdownRequested(state, event.signal, nowMs, out);
      break;
  }
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
}

/** Staggered start: one worker, then the next after startup_wait_time; all at once when it is 0. */
function startNextWorkers(state: SupervisorState, pool: PoolState, nowMs: number, out: Out): void {
  while (pool.nextToStart < pool.workers.length) {
    const worker = pool.workers[pool.nextToStart] as WorkerState;
    pool.nextToStart++;
    if (worker.status === "pending") spawn(pool, worker, out);
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
  const exec = isProxy ? (pool.proxyLaunch?.exec ?? "") : pool.config.exec;
  out.push({ type: "spawn", ref: refOf(pool, worker), exec, args: worker.args, env: worker.env });
}

function onSpawned(state: SupervisorState, ref: WorkerRef, pid: number, nowMs: number, out: Out): void {
  const found = lookup(state, ref);
  if (found === null || found.worker.status !== "spawning") {
    // A process we are not waiting for must not be left running unsupervised.
    out.push({ type: "signal", ref, pid, signal: "SIGKILL" });
    log(out, "error", "Unexpected process reported as started; killing it", { pid, ...refFields(state, ref) });
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
    // Asked to stop while it was being spawned (its pool had drained): stop it now.
    if (worker.stopReason === "shutdown") requestStop(pool, worker, "shutdown", nowMs, out);
    // Shutdown began while it was being spawned: it drains like the proxy it replaces would have.
    else if (state.phase === "stopping") out.push({ type: "drainProxy", pool: pool.index });
    return;
  }
  worker.consecutiveSpawnFailures = 0;
  if (state.phase !== "running") {
    // Shutdown began while it was being spawned: it gets the same SIGTERM the others got.
    worker.status = "running";
    requestStop(pool, worker, "shutdown", nowMs, out);
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
}

function onSpawnFailed(state: SupervisorState, ref: WorkerRef, errorCode: string, message: string, nowMs: number, out: Out): void {
  const found = lookup(state, ref);
  if (found === null || found.worker.status !== "spawning") return;
  const { pool, worker } = found;
  worker.consecutiveSpawnFailures++;
  worker.lastExit = { code: null, signal: null, atMs: nowMs };
  log(out, "error", "Worker failed to start", { pool: pool.config.name, worker_id: worker.id, error_code: errorCode, error: message });
  if (state.phase !== "running") {
    worker.status = "stopped";
    return;
  }
  if (worker.index === PROXY_INDEX) {
    scheduleProxyRestart(pool, worker, 0, nowMs, out);
    return;
  }
  if (!takeRestart(state, pool, worker, nowMs, out)) return;
  worker.status = "pending";
  const delayMs = Math.min(TIMING.spawnRetryMaxMs, TIMING.spawnRetryBaseMs * 2 ** (worker.consecutiveSpawnFailures - 1));
  setTimer(out, nowMs + delayMs, { kind: "retrySpawn", pool: pool.index, worker: worker.index });
}

function onExited(state: SupervisorState, ref: WorkerRef, exit: WorkerExit, nowMs: number, out: Out): void {
  const found = lookup(state, ref);
  if (found === null || !isLive(found.worker)) return;
  const { pool, worker } = found;
  const ranForMs = worker.startedAtMs === null ? 0 : nowMs - worker.startedAtMs;
  worker.pid = null;
  worker.lastExit = exit;
  for (const kind of ["lifespan", "sigterm", "kill", "abandon"] as const) cancelTimer(out, { kind, ref });
  log(out, "info", worker.index === PROXY_INDEX ? "Proxy exited" : "Worker exited", {
    pool: pool.config.name, worker_id: worker.id, rc: exit.code, signal: exit.signal, restarts: worker.restarts, ran_for_ms: Math.round(ranForMs),
  });

  if (state.phase !== "running") {
    worker.status = "stopped";
    return;
  }
  if (worker.index === PROXY_INDEX) {
    scheduleProxyRestart(pool, worker, ranForMs, nowMs, out);
    return;
  }
  if (worker.stopReason === "lifespan") {
    worker.plannedRestarts++;
    spawn(pool, worker, out);
    return;
  }
  if (takeRestart(state, pool, worker, nowMs, out)) spawn(pool, worker, out);
}

/** A proxy is always restarted (it is Monoceros's, not the application's), after a bounded backoff. */
function scheduleProxyRestart(pool: PoolState, proxy: WorkerState, ranForMs: number, nowMs: number, out: Out): void {
  if (ranForMs >= TIMING.proxyStableAfterMs) proxy.consecutiveSpawnFailures = 0;
  proxy.consecutiveSpawnFailures++;
  proxy.status = "pending";
  proxy.restarts++;
  const delayMs = Math.min(TIMING.spawnRetryMaxMs, TIMING.spawnRetryBaseMs * 2 ** (proxy.consecutiveSpawnFailures - 1));
  log(out, "warn", "Proxy exited; restarting it", { pool: pool.config.name, delay_ms: delayMs });
  setTimer(out, nowMs + delayMs, { kind: "retryProxy", pool: pool.index });
}

/**
 * Charges an unplanned restart to the worker. When its budget is spent, the worker stays
 * stopped and Monoceros shuts down with a failure; returns whether the restart may happen.
 */
function takeRestart(state: SupervisorState, pool: PoolState, worker: WorkerState, nowMs: number, out: Out): boolean {
  if (worker.restarts + 1 > pool.config.maxRestarts) {
    worker.status = "stopped";
    log(out, "error", "Too many restarts: shutting down", {
      pool: pool.config.name, worker_id: worker.id, restarts: worker.restarts, max_restarts: pool.config.maxRestarts,
    });
    beginShutdown(state, EXIT.restartBudgetExhausted, nowMs, out);
    return false;
  }
  worker.restarts++;
  return true;
}

function onTimer(state: SupervisorState, timer: TimerPayload, nowMs: number, out: Out): void {
  switch (timer.kind) {
    case "stagger": {
      const pool = state.pools[timer.pool];
      if (pool !== undefined && state.phase === "running") startNextWorkers(state, pool, nowMs, out);
      return;
    }
    case "retrySpawn": {
      const pool = state.pools[timer.pool];
      const worker = pool?.workers[timer.worker];
      if (pool !== undefined && worker !== undefined && worker.status === "pending" && state.phase === "running") spawn(pool, worker, out);
      return;
    }
    case "retryProxy": {
      const pool = state.pools[timer.pool];
      if (pool?.proxy != null && pool.proxy.status === "pending" && state.phase === "running") spawn(pool, pool.proxy, out);
      return;
    }
    case "lifespan": {
      const found = lookup(state, timer.ref);
      if (found === null || found.worker.status !== "running" || state.phase !== "running") return;
      log(out, "info", "Stopping worker because it reached its lifespan", { pool: found.pool.config.name, worker_id: found.worker.id });
      if (found.pool.proxy === null) {
        requestStop(found.pool, found.worker, "lifespan", nowMs, out);
        return;
      }
      // Out of the rotation now (status "stopping"), SIGTERM once the proxy has had time to notice.
      found.worker.status = "stopping";
      found.worker.stopReason = "lifespan";
      setTimer(out, nowMs + TIMING.rotationGraceMs, { kind: "sigterm", ref: timer.ref });
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
      if (found === null || found.worker.status !== "stopping" || found.worker.sigkillAtMs !== null) return;
      log(out, "warn", "Worker did not exit within signal_timeout after SIGTERM; sending SIGKILL", {
        pool: found.pool.config.name, worker_id: found.worker.id, signal_timeout_ms: signalTimeoutMs(found.pool, found.worker),
      });
      kill(found.pool, found.worker, nowMs, out);
      return;
    }
    case "abandon": {
      const found = lookup(state, timer.ref);
      if (found === null || !isLive(found.worker)) return;
      log(out, "error", "Worker was not reported gone after SIGKILL; no longer waiting for it", {
        pool: found.pool.config.name, worker_id: found.worker.id, pid: found.worker.pid, waited_ms: TIMING.killWaitMs,
      });
      onExited(state, timer.ref, { code: null, signal: "unknown", atMs: nowMs }, nowMs, out);
      return;
    }
  }
}

/** SIGTERM now, SIGKILL after the pool's signal_timeout if it is still there. */
function requestStop(pool: PoolState, worker: WorkerState, reason: "lifespan" | "shutdown", nowMs: number, out: Out): void {
  worker.stopReason = reason;
  if (worker.sigtermAtMs !== null) return; // already SIGTERMed; its SIGKILL timer stands
  const ref = refOf(pool, worker);
  cancelTimer(out, { kind: "lifespan", ref });
  cancelTimer(out, { kind: "sigterm", ref });
  if (worker.status === "spawning") return; // SIGTERMed as soon as it has a pid (onSpawned)
  worker.status = "stopping";
  worker.sigtermAtMs = nowMs;
  // The limit counts as enforced when its SIGTERM goes out (a worker that exits by itself first was not stopped by it).
  if (reason === "lifespan") out.push({ type: "metric", metric: "limitEvent", pool: pool.config.name, limitEvent: "time" });
  const signal = worker.index === PROXY_INDEX ? (pool.proxyLaunch?.stopSignal ?? "SIGTERM") : "SIGTERM";
  out.push({ type: "signal", ref, pid: worker.pid as number, signal });
  setTimer(out, nowMs + signalTimeoutMs(pool, worker), { kind: "kill", ref });
}

/** Workers get the pool's signal_timeout; the proxy gets server.signal_timeout. */
export function signalTimeoutMs(pool: PoolState, worker: WorkerState): number {
  return worker.index === PROXY_INDEX && pool.config.server !== null ? pool.config.server.signalTimeoutMs : pool.config.signalTimeoutMs;
}

function kill(pool: PoolState, worker: WorkerState, nowMs: number, out: Out): void {
  const ref = refOf(pool, worker);
  worker.status = "stopping";
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
      if (worker.pid !== null && isLive(worker) && worker.sigkillAtMs === null) kill(pool, worker, nowMs, out);
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
      if (proxy.status === "pending") {
        proxy.status = "stopped";
        cancelTimer(out, { kind: "retryProxy", pool: pool.index });
      }
    }
    for (const worker of pool.workers) {
      if (worker.status === "pending") {
        worker.status = "stopped";
        cancelTimer(out, { kind: "retrySpawn", pool: pool.index, worker: worker.index });
      } else if (isLive(worker)) {
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
    if (proxy === null || !isLive(proxy) || proxy.stopReason !== null) continue;
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
    for (const worker of pool.workers) key += worker.status === "running" ? "1" : "0";
    if (key === pool.rotationKey) continue;
    pool.rotationKey = key;
    out.push({
      type: "proxyRotation",
      pool: pool.index,
      endpoints: proxyEndpoints(pool.config, (index) => pool.workers[index]?.status === "running"),
    });
  }
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

function setTimer(out: Out, atMs: number, timer: TimerPayload): void {
  out.push({ type: "setTimer", key: timerKey(timer), atMs, timer });
}

function cancelTimer(out: Out, timer: TimerPayload): void {
  out.push({ type: "cancelTimer", key: timerKey(timer) });
}

function log(out: Out, level: "debug" | "info" | "warn" | "error", msg: string, fields: Record<string, unknown>): void {
  out.push({ type: "log", level, msg, fields });
}
