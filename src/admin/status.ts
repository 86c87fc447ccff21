// GET /status: every pool and worker, for people and scripts (documented in the README).
import { isUp, supervisorHealth } from "../domain/health.js";
import { workerPort } from "../domain/identity.js";
import { leaderRunning, type SupervisorState, type WorkerState } from "../domain/state.js";
import { inRotation, plannedRestartsInFlight } from "../domain/supervisor.js";
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
  const now = nowMs();
  const health = supervisorHealth(state, now);
  const exitOf = (worker: WorkerState) =>
    worker.lastExit === null ? null : { code: worker.lastExit.code, signal: worker.lastExit.signal, at: iso(toEpochMs(worker.lastExit.atMs)) };
  return {
    phase: state.phase,
    healthy: health.healthy,
    shutdown_requests: state.shutdownRequests,
    shutdown_started_at: state.shutdownStartedAtMs === null ? null : iso(toEpochMs(state.shutdownStartedAtMs)),
    pools: state.pools.map((pool, index) => {
      const poolHealth = health.pools[index];
      return {
        name: pool.config.name,
        replicas: pool.replicas,
        configured_replicas: pool.config.replicas,
        max_surge: pool.config.maxSurge,
        running: poolHealth?.running ?? 0,
        up: poolHealth?.up ?? 0,
        healthy: poolHealth?.healthy ?? false,
        min_uptime_seconds: pool.config.restartPolicy.minUptimeMs / 1000,
        desired_healthy_percentage: pool.config.desiredHealthyPercentage,
        max_restarts: Number.isFinite(pool.config.maxRestarts) ? pool.config.maxRestarts : -1,
        health_check: pool.config.healthCheck?.probe.kind ?? null,
        memory_limit_bytes: pool.config.limits.memoryBytes > 0 ? pool.config.limits.memoryBytes : null,
        max_unavailable: pool.config.maxUnavailable,
        planned_restarts_in_flight: plannedRestartsInFlight(pool),
        proxy:
          pool.proxy === null
            ? null
            : {
                pid: pool.proxy.pid,
                state: stateOf(pool.proxy),
                restarts: pool.proxy.restarts,
                started_at: pool.proxy.startedAtMs === null ? null : iso(toEpochMs(pool.proxy.startedAtMs)),
                last_exit: exitOf(pool.proxy),
              },
        workers: pool.workers.map((worker) => {
          const processStats = leaderRunning(worker) ? stats(worker.pid) : null;
          return {
            id: worker.id,
            multiprocess_worker_id: worker.env.MULTIPROCESS_WORKER_ID,
            pid: worker.pid,
            state: stateOf(worker),
            up: isUp(worker, pool.config.restartPolicy.minUptimeMs, now),
            quick_exits: worker.quickExits,
            restart_at: worker.status === "pending" && worker.restartAtMs !== null ? iso(toEpochMs(worker.restartAtMs)) : null,
            restarts: worker.restarts,
            planned_restarts: worker.plannedRestarts,
            started_at: worker.startedAtMs === null ? null : iso(toEpochMs(worker.startedAtMs)),
            uptime_seconds: worker.startedAtMs === null || !leaderRunning(worker) ? null : Math.round(now - worker.startedAtMs) / 1000,
            port: workerPort(pool.config, worker.index),
            last_exit: exitOf(worker),
            cpu_seconds: processStats?.cpuSeconds ?? null,
            rss_bytes: processStats?.rssBytes ?? null,
            open_fds: processStats?.openFds ?? null,
            ready: inRotation(worker),
            health_check: pool.config.healthCheck === null || !leaderRunning(worker) ? null : {
              last_result: worker.check.last?.result ?? null,
              last_at: worker.check.last === null ? null : iso(toEpochMs(worker.check.last.atMs)),
              last_detail: worker.check.last?.detail ?? null,
              consecutive_failures: worker.check.consecutiveFailures,
              failure_threshold: pool.config.healthCheck.failureThreshold,
              ...(pool.config.healthCheck.probe.kind === "notify"
                ? { notify_ready_sent: worker.check.readySent, notify_status: worker.check.status, notify_stopping_sent: worker.check.stoppingSent }
                : {}),
            },
            memory: pool.config.limits.memoryBytes <= 0 || !leaderRunning(worker) ? null : {
              rss_bytes: worker.rssBytes,
              limit_bytes: pool.config.limits.memoryBytes,
              sampled_at: worker.rssSampledAtMs === null ? null : iso(toEpochMs(worker.rssSampledAtMs)),
              samples_over_limit: worker.samplesOverLimit,
            },
            planned_restart: worker.plannedRestart === null ? null : { cause: worker.plannedRestart.cause, since: iso(toEpochMs(worker.plannedRestart.sinceMs)) },
            held_back: worker.heldBack === null ? null : { cause: worker.heldBack.cause, since: iso(toEpochMs(worker.heldBack.sinceMs)) },
          };
        }),
      };
    }),
  };
}

/** "backoff" is a pending worker waiting for its restart; the other states are the core's own. */
function stateOf(worker: WorkerState): string {
  return worker.status === "pending" && worker.restartAtMs !== null ? "backoff" : worker.status;
}

/** The /health body: "ok", or which pools are short, or that shutdown is under way. */
export function healthText(state: SupervisorState, nowMs: number): { healthy: boolean; text: string } {
  const health = supervisorHealth(state, nowMs);
  if (state.phase === "stopping" || state.phase === "exited") return { healthy: false, text: "shutting down\n" };
  if (health.healthy) return { healthy: true, text: "ok\n" };
  const short = health.pools
    .filter((pool) => !pool.healthy)
    .map((pool) =>
      pool.proxyRunning === false
        ? `pool ${pool.pool}: its proxy is not running`
        : `pool ${pool.pool}: ${pool.up} of ${pool.replicas} workers up (${pool.runningPercentage}% < ${pool.desiredPercentage}%)${
            pool.running > pool.up ? `; ${pool.running - pool.up} more running but not ready or not yet for restart_policy.min_uptime` : ""
          }`,
    );
  return { healthy: false, text: `${short.join("\n")}\n` };
}
