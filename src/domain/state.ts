// The supervisor's whole state: plain data, owned by whoever calls step().
import type { Config, PoolConfig } from "../config/types.js";
import { multiprocessWorkerId, workerArgs, workerId } from "./identity.js";
import type { CheckResult, PlannedCause } from "./types.js";

/**
 * pending:  not started yet (waiting for its turn in a staggered start, or for a restart after
 *           a backoff or a failed spawn: then restartAtMs is set)
 * spawning: spawn asked for, no pid yet
 * running:  has a pid
 * stopping: SIGTERM sent (lifespan restart or shutdown), waiting for it to exit
 * exiting:  its leader exited; waiting until nothing is left of its process group and its
 *           output is closed (leftovers get SIGTERM, then SIGKILL after signal_timeout)
 * stopped:  gone and will not be started again (shutdown, or restart budget used up)
 *
 * vacant:   a worker slot nobody uses now: room for a surge replacement or for scaling up
 *
 * pending → spawning → running → stopping → exiting → (pending | spawning | stopped | vacant)
 * vacant → spawning (a replacement, or a new worker after scaling up)
 * Every status but pending, stopped and vacant may have processes.
 *
 * Slots and ids. A pool has replicas + max_surge slots (more after scaling up, never fewer); slot
 * i is worker id i (`web-i`, MULTIPROCESS_WORKER_ID `web_web-i`, proxy port start_port + i), so
 * two live processes never share an id and ids stay within a bounded set. A crashed worker is
 * restarted in its own slot. A planned restart with surge starts the replacement in the lowest
 * vacant slot (replacing), stops the old worker once the replacement is ready (retiring), and the
 * old slot becomes vacant: the id moves. Members are the slots that count toward replicas: not
 * vacant, not stopped, not retiring, not a replacement still starting. Invariants (checked by the
 * simulator): members ≤ replicas once scaling settles; live slots ≤ slots; each lane belongs to at
 * most one member (its replacement shares it until it takes over).
 */
export type WorkerStatus = "pending" | "spawning" | "running" | "stopping" | "exiting" | "stopped" | "vacant";

export interface WorkerExit {
  code: number | null;
  signal: string | null;
  atMs: number;
}

/** The health checks of one incarnation of a worker (reset when it is spawned). */
export interface CheckState {
  /** It passed a check in this incarnation: from then on only the counted checks run. */
  passedOnce: boolean;
  /** Counted checks failed in a row (reset by a pass). */
  consecutiveFailures: number;
  /** The next counted check is due at or after this: spawn + start_period + interval, then every interval. */
  nextCountedAtMs: number;
  /** Checks started in this incarnation (the readiness checks before the first pass back off by it). */
  started: number;
  /** The check in flight, if any: when it started, whether it counts, and its number (started) to match its result. */
  inFlight: { startedAtMs: number; counted: boolean; seq: number } | null;
  last: { result: CheckResult; atMs: number; detail: string } | null;
  /** notify: READY=1 came; a keepalive (READY=1 or WATCHDOG=1) came since the last counted check; STOPPING=1 came. */
  readySent: boolean;
  keepalive: boolean;
  stoppingSent: boolean;
  /** notify: the last STATUS=… */
  status: string | null;
  /** It was ready at some time in this incarnation (so a pass now is a return). */
  wasReady: boolean;
  /** Probes in a row that could not be made for lack of a resource on Monoceros's side. */
  localErrors: number;
}

/** Why a worker is asked to stop: a planned restart's cause, shutdown, scaling down, or a replacement that failed to become ready. */
export type StopReason = PlannedCause | "shutdown" | "scale" | "surgeFailed";

export interface WorkerState {
  readonly index: number;
  readonly id: string;
  /** Refreshed from the pool's config at each spawn (a reload may change them). */
  env: Readonly<Record<string, string>>;
  args: readonly string[];
  status: WorkerStatus;
  /**
   * Which of the pool's listen socket sets it gets (`listen` with reuse_port: one socket per lane,
   * kept open across restarts); a replacement shares the lane of the worker it replaces. null: vacant.
   */
  lane: number | null;
  /** A surge replacement not ready yet: the slot of the worker it will replace. */
  replacing: number | null;
  /** The slot of this worker's surge replacement while that one starts. */
  replacedBy: number | null;
  /** Leaves the pool: once it has exited its slot becomes vacant instead of being restarted. */
  retiring: boolean;
  /** Its last surge replacement failed: its next memory or health restart stops it first (in place). */
  surgeFailed: boolean;
  generation: number;
  pid: number | null;
  /** Unplanned restarts (exits, spawn failures): these count against max_restarts. */
  restarts: number;
  /** Planned restarts (lifespan): these do not. */
  plannedRestarts: number;
  /** Consecutive runs shorter than restart_policy.min_uptime (a failed spawn counts as one); 0 after a long run. */
  quickExits: number;
  /** When a worker in backoff (or after a failed spawn) is started again; null otherwise. */
  restartAtMs: number | null;
  /** When its unplanned restarts happened, oldest first; kept only with restart_policy.window, bounded by max_restarts + 1. */
  restartTimesMs: number[];
  /** While exiting: what is still awaited before the slot is free. */
  groupEmpty: boolean;
  outputClosed: boolean;
  startedAtMs: number | null;
  /** Why it was asked to stop; null while it is not stopping. */
  stopReason: StopReason | null;
  /**
   * May get requests and counts toward health: with a health check, after a pass and until a
   * counted failure (notify: after READY=1); without one, while it runs.
   */
  ready: boolean;
  check: CheckState;
  /** Resident memory of its process group at the last sample (pools with limits.memory), and samples over the limit in a row. */
  rssBytes: number | null;
  rssSampledAtMs: number | null;
  samplesOverLimit: number;
  /** A planned restart in flight: from its decision until the next incarnation is ready. Counted by max_unavailable. */
  plannedRestart: { cause: PlannedCause; sinceMs: number } | null;
  /** A planned restart that is due but waits for max_unavailable (the worker keeps running meanwhile). */
  heldBack: { cause: PlannedCause; sinceMs: number } | null;
  sigtermAtMs: number | null;
  sigkillAtMs: number | null;
  lastExit: WorkerExit | null;
}

/** How the runtime launches a pool's proxy (decided by its data plane, outside the core). */
export interface ProxyLaunch {
  exec: string;
  args: readonly string[];
  /** The signal that stops this proxy gracefully (Envoy: SIGTERM; HAProxy: SIGUSR1, a soft stop). */
  stopSignal: "SIGTERM" | "SIGUSR1";
}

/** The `worker` index of a pool's proxy in a WorkerRef. */
export const PROXY_INDEX = -1;

export interface PoolState {
  readonly index: number;
  /** Replaced by a reload (the workers started since get the new one). */
  config: PoolConfig;
  readonly workers: WorkerState[];
  /** Index of the next worker a staggered start will spawn; replicas when done. */
  nextToStart: number;
  /** The pool's proxy in proxy mode (a supervised process like a worker, with its own rules), else null. */
  readonly proxy: WorkerState | null;
  readonly proxyLaunch: ProxyLaunch | null;
  /** The rotation last sent to the proxy, as a key, so it is sent again only when it changes. */
  rotationKey: string;
  /** Members wanted now: the config's replicas, until scaled at run time. */
  replicas: number;
  /**
   * Removed by a reload: "draining" while its workers and then its proxy stop (never restarted),
   * "done" once nothing of it runs. A removed pool keeps its place in the list (its index is its
   * identity in refs); health, /status and metrics leave it out once done, and its name may be
   * used by a pool added later (with a new index).
   */
  removal: null | "draining" | "done";
}

export type Phase = "idle" | "running" | "stopping" | "exited";

export interface SupervisorState {
  phase: Phase;
  /** The admin section it was started with (a reload may not change it). */
  readonly admin: Config["admin"];
  pools: PoolState[];
  /** SIGTERM/SIGINT received so far; the third one forces SIGKILL of everything. */
  shutdownRequests: number;
  shutdownStartedAtMs: number | null;
  exitCode: number | null;
  /** State of the seeded generator used for lifespan jitter. */
  randomSeed: number;
}

export function createSupervisorState(config: Config, seed: number, proxyLaunch: (pool: PoolConfig) => ProxyLaunch | null = () => null): SupervisorState {
  return {
    phase: "idle",
    admin: config.admin,
    pools: config.pools.map((pool, index) => createPoolState(pool, index, pool.server === null ? null : proxyLaunch(pool))),
    shutdownRequests: 0,
    shutdownStartedAtMs: null,
    exitCode: null,
    randomSeed: seed | 0,
  };
}

/** A pool as it starts (at start-up, or added by a reload): its first replicas slots pending, each on its own lane. */
export function createPoolState(config: PoolConfig, index: number, proxyLaunch: ProxyLaunch | null): PoolState {
  const workers: WorkerState[] = [];
  for (let slot = 0; slot < config.replicas + config.maxSurge; slot++) {
    const worker = newWorkerSlot(config, slot);
    if (slot < config.replicas) {
      worker.status = "pending";
      worker.lane = slot;
    }
    workers.push(worker);
  }
  const proxy = proxyLaunch === null ? null : newWorker(PROXY_INDEX, `${config.name}-proxy`, {}, proxyLaunch.args, "pending");
  return { index, config, workers, nextToStart: 0, proxy, proxyLaunch, rotationKey: "", replicas: config.replicas, removal: null };
}

/** Slot i of a pool, vacant: its id, and its environment and args as the pool's config makes them. */
export function newWorkerSlot(config: PoolConfig, slot: number): WorkerState {
  const { env, args } = slotLaunch(config, slot);
  return newWorker(slot, workerId(config.name, slot), env, args, "vacant");
}

/** What slot i is started with: the pool's env, then MULTIPROCESS_WORKER_ID and the check's variables; and its args (proxy mode: its port first). */
export function slotLaunch(config: PoolConfig, slot: number): { env: Record<string, string>; args: readonly string[] } {
  // The systemd watchdog's period, as systemd gives it (sd_watchdog_enabled); NOTIFY_SOCKET is the backend's.
  const watchdog: Record<string, string> = config.healthCheck?.probe.kind === "notify" ? { WATCHDOG_USEC: String(config.healthCheck.intervalMs * 1000) } : {};
  // An HTTP check on ports of its own: the worker is told which one is its.
  const healthPort: Record<string, string> = config.healthCheck?.probe.kind === "http" && config.healthCheck.probe.startPort !== null
    ? { MONOCEROS_HEALTH_PORT: String(config.healthCheck.probe.startPort + slot) }
    : {};
  return { env: { ...config.env, MULTIPROCESS_WORKER_ID: multiprocessWorkerId(config.name, slot), ...watchdog, ...healthPort }, args: workerArgs(config, slot) };
}

function newWorker(index: number, id: string, env: Record<string, string>, args: readonly string[], status: WorkerStatus): WorkerState {
  return {
      index,
      id,
      env,
      args,
      status,
      lane: null,
      replacing: null,
      replacedBy: null,
      retiring: false,
      surgeFailed: false,
      generation: 0,
      pid: null,
      restarts: 0,
      plannedRestarts: 0,
      quickExits: 0,
      restartAtMs: null,
      restartTimesMs: [],
      groupEmpty: true,
      outputClosed: true,
      startedAtMs: null,
      stopReason: null,
      sigtermAtMs: null,
      sigkillAtMs: null,
      lastExit: null,
      ready: false,
      check: newCheckState(0),
      rssBytes: null,
      rssSampledAtMs: null,
      samplesOverLimit: 0,
      plannedRestart: null,
      heldBack: null,
  };
}

export function newCheckState(nextCountedAtMs: number): CheckState {
  return {
    passedOnce: false,
    consecutiveFailures: 0,
    nextCountedAtMs,
    started: 0,
    inFlight: null,
    last: null,
    readySent: false,
    keepalive: false,
    stoppingSent: false,
    status: null,
    wasReady: false,
    localErrors: 0,
  };
}

/** The worker's leader process runs, so its pid is its own (once the leader exited, the pid may be reused). */
export function leaderRunning(worker: WorkerState): worker is WorkerState & { pid: number } {
  return worker.pid !== null && (worker.status === "running" || worker.status === "stopping");
}

/** A worker that has or may soon have a process: what "live" means for the replicas bound. */
export function isLive(worker: WorkerState): boolean {
  return worker.status === "spawning" || worker.status === "running" || worker.status === "stopping" || worker.status === "exiting";
}

/** The pools a config names now: not removed by a reload (removed ones keep their index while they drain, and after). */
export function activePools(state: SupervisorState): PoolState[] {
  return state.pools.filter((pool) => pool.removal === null);
}

/** The pool a config names now, by name. */
export function activePool(state: SupervisorState, name: string): PoolState | undefined {
  return state.pools.find((pool) => pool.removal === null && pool.config.name === name);
}

/** Counts toward the pool's replicas: has or will have a process that stays (see WorkerStatus). */
export function isMember(worker: WorkerState): boolean {
  return worker.status !== "vacant" && worker.status !== "stopped" && !worker.retiring && worker.replacing === null;
}
