// Pool health as the original computes it, with two truths added: a worker counts only once it
// has run restart_policy.min_uptime (a crash-looping worker is never "up"), and a pool whose
// proxy is not running is unhealthy whatever its workers do; with a health check, only workers
// that pass it (ready) count. The share is truncated to a whole
// percentage, as the original does. The proxy is not counted as a worker (the original did).
import type { PoolState, SupervisorState, WorkerState } from "./state.js";

export interface PoolHealth {
  pool: string;
  /** Workers running (not asked to stop, leader alive). */
  running: number;
  /** Of those, the ones that are ready and have run min_uptime: what health counts. */
  up: number;
  replicas: number;
  runningPercentage: number;
  desiredPercentage: number;
  /** null without a proxy. */
  proxyRunning: boolean | null;
  healthy: boolean;
}

/** Whether a worker counts toward desired_healthy_percentage at nowMs: running for min_uptime, and ready (with a health check: passing it). */
export function isUp(worker: WorkerState, minUptimeMs: number, nowMs: number): boolean {
  return worker.status === "running" && worker.ready && worker.startedAtMs !== null && nowMs - worker.startedAtMs >= minUptimeMs;
}

export function poolHealth(pool: PoolState, shuttingDown: boolean, nowMs: number): PoolHealth {
  const running = pool.workers.filter((worker) => worker.status === "running").length;
  const up = pool.workers.filter((worker) => isUp(worker, pool.config.restartPolicy.minUptimeMs, nowMs)).length;
  // Scaled at run time: the replicas wanted now. A surge replacement that is ready counts too, so up may pass replicas for a moment.
  const replicas = pool.replicas;
  const runningPercentage = replicas === 0 ? 100 : Math.min(100, Math.floor((up * 100) / replicas));
  const desiredPercentage = pool.config.desiredHealthyPercentage;
  const proxyRunning = pool.proxy === null ? null : pool.proxy.status === "running";
  return {
    pool: pool.config.name,
    running,
    up,
    replicas,
    runningPercentage,
    desiredPercentage,
    proxyRunning,
    // From the moment shutdown begins the answer is "unhealthy", so traffic moves away.
    healthy: !shuttingDown && proxyRunning !== false && runningPercentage >= desiredPercentage,
  };
}

export function supervisorHealth(state: SupervisorState, nowMs: number): { healthy: boolean; pools: PoolHealth[] } {
  const shuttingDown = state.phase === "stopping" || state.phase === "exited";
  // A pool removed by a reload no longer counts (it is leaving on purpose).
  const pools = state.pools.map((pool) => poolHealth(pool, shuttingDown, nowMs));
  return { healthy: pools.every((pool, index) => pool.healthy || state.pools[index]?.removal !== null), pools };
}
