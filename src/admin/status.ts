// GET /status: every pool and worker, for people and scripts (documented in the README).
import { supervisorHealth } from "../domain/health.js";
import { workerPort } from "../domain/identity.js";
import type { SupervisorState } from "../domain/state.js";
import type { ProcessStats } from "../runtime/ports.js";

export interface StatusSources {
  state: SupervisorState;
  stats: (pid: number) => ProcessStats | null;
  /** Converts the runtime clock's milliseconds to epoch milliseconds. */
  toEpochMs: (clockMs: number) => number;
  nowMs: () => number;
}

const iso = (epochMs: number) => new Date(epochMs).toISOString();

export function buildStatus({ state, stats, toEpochMs, nowMs }: StatusSources): unknown {
  const health = supervisorHealth(state);
  const now = nowMs();
  return {
    phase: state.phase,
    healthy: health.healthy,
    shutdown_requests: state.shutdownRequests,
    shutdown_started_at: state.shutdownStartedAtMs === null ? null : iso(toEpochMs(state.shutdownStartedAtMs)),
    pools: state.pools.map((pool, index) => {
      const poolHealth = health.pools[index];
      return {
        name: pool.config.name,
        replicas: pool.config.replicas,
        running: poolHealth?.running ?? 0,
        healthy: poolHealth?.healthy ?? false,
        desired_healthy_percentage: pool.config.desiredHealthyPercentage,
        max_restarts: Number.isFinite(pool.config.maxRestarts) ? pool.config.maxRestarts : -1,
        workers: pool.workers.map((worker) => {
          const processStats = worker.pid === null ? null : stats(worker.pid);
          return {
            id: worker.id,
            multiprocess_worker_id: worker.env.MULTIPROCESS_WORKER_ID,
            pid: worker.pid,
            state: worker.status,
            restarts: worker.restarts,
            planned_restarts: worker.plannedRestarts,
            started_at: worker.startedAtMs === null ? null : iso(toEpochMs(worker.startedAtMs)),
            uptime_seconds: worker.startedAtMs === null || worker.pid === null ? null : Math.round(now - worker.startedAtMs) / 1000,
            port: workerPort(pool.config, worker.index),
            last_exit: worker.lastExit === null ? null : { code: worker.lastExit.code, signal: worker.lastExit.signal, at: iso(toEpochMs(worker.lastExit.atMs)) },
            cpu_seconds: processStats?.cpuSeconds ?? null,
            rss_bytes: processStats?.rssBytes ?? null,
            open_fds: processStats?.openFds ?? null,
          };
        }),
      };
    }),
  };
}

/** The /health body: "ok", or which pools are short, or that shutdown is under way. */
export function healthText(state: SupervisorState): { healthy: boolean; text: string } {
  const health = supervisorHealth(state);
  if (state.phase === "stopping" || state.phase === "exited") return { healthy: false, text: "shutting down\n" };
  if (health.healthy) return { healthy: true, text: "ok\n" };
  const short = health.pools
    .filter((pool) => !pool.healthy)
    .map((pool) => `pool ${pool.pool}: ${pool.running} of ${pool.replicas} workers running (${pool.runningPercentage}% < ${pool.desiredPercentage}%)`);
  return { healthy: false, text: `${short.join("\n")}\n` };
}
