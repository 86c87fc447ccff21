// GET /status: every pool and worker, for people and scripts (documented in the README).
import { isUp, supervisorHealth } from "../domain/health.js";
import { workerPort } from "../domain/identity.js";
import { leaderRunning, type SupervisorState, type WorkerState } from "../domain/state.js";
import { inRotation, plannedRestartsInFlight } from "../domain/supervisor.js";
import type { ProcessStats } from "../runtime/ports.js";
import { cpuSpread, BALANCED_RATIO_MAX, type CpuSpreadReport, type CpuSpreadSettings } from "../metrics/cpu-spread.js";

export interface StatusSources {
  state: SupervisorState;
  stats: (pid: number) => ProcessStats | null;
  /** Converts the runtime clock's milliseconds to epoch milliseconds. */
  toEpochMs: (clockMs: number) => number;
  nowMs: () => number;
  /** The CPU-spread advisor (metrics/cpu-spread-sampler.ts); without it /status has no cpu_spread. */
  cpuSpread?: { report: (pool: SupervisorState["pools"][number]) => CpuSpreadReport | null; settings: CpuSpreadSettings };
}

const iso = (epochMs: number) => new Date(epochMs).toISOString();

export function buildStatus({ state, stats, toEpochMs, nowMs, cpuSpread: spread }: StatusSources): unknown {
  const now = nowMs();
  const health = supervisorHealth(state, now);
  const exitOf = (worker: WorkerState) =>
    worker.lastExit === null ? null : { code: worker.lastExit.code, signal: worker.lastExit.signal, at: iso(toEpochMs(worker.lastExit.atMs)) };
  return {
    phase: state.phase,
    healthy: health.healthy,
    shutdown_requests: state.shutdownRequests,
    shutdown_started_at: state.shutdownStartedAtMs === null ? null : iso(toEpochMs(state.shutdownStartedAtMs)),
    // A pool removed by a reload is shown while its processes stop (removing: true), then no more.
    pools: state.pools.flatMap((pool, index) => {
      if (pool.removal === "done") return [];
      const poolHealth = health.pools[index];
      return [{
        name: pool.config.name,
        removing: pool.removal === "draining",
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
        cpu_spread: spread === undefined ? null : cpuSpreadJson(spread.report(pool) ?? cpuSpread([], spread.settings, null), spread.settings, toEpochMs),
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
      }];
    }),
  };
}

const round4 = (value: number | null) => (value === null ? null : Math.round(value * 10_000) / 10_000);

/** A pool's cpu_spread in /status (README, "Status page"): the verdict, how it was reached, and each running worker's rates for the chart. */
function cpuSpreadJson(report: CpuSpreadReport, settings: CpuSpreadSettings, toEpochMs: (clockMs: number) => number): unknown {
  return {
    ratio: round4(report.ratio),
    verdict: report.verdict,
    text: report.text,
    balanced_below: BALANCED_RATIO_MAX,
    window_seconds: settings.windowMs / 1000,
    min_window_seconds: settings.minWindowMs / 1000,
    sample_interval_seconds: settings.sampleIntervalMs / 1000,
    samples: report.samples,
    covered_seconds: report.coveredMs / 1000,
    workers_with_data: report.workersWithData,
    mean_cpu_seconds_per_second: round4(report.meanCpuSecondsPerSecond),
    sampled_at: report.atMs === null ? null : iso(toEpochMs(report.atMs)),
    workers: report.workers.map((worker) => ({
      id: worker.id,
      pid: worker.pid,
      cpu_seconds_per_second: round4(worker.cpuSecondsPerSecond),
      last_cpu_seconds_per_second: round4(worker.lastCpuSecondsPerSecond),
      observed_seconds: worker.observedMs / 1000,
      points: worker.points.map(([atSeconds, rate]) => [Math.round(atSeconds * 10) / 10, round4(rate)]),
    })),
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
    .filter((pool, index) => !pool.healthy && state.pools[index]?.removal === null)
    .map((pool) =>
      pool.proxyRunning === false
        ? `pool ${pool.pool}: its proxy is not running`
        : `pool ${pool.pool}: ${pool.up} of ${pool.replicas} workers up (${pool.runningPercentage}% < ${pool.desiredPercentage}%)${
            pool.running > pool.up ? `; ${pool.running - pool.up} more running but not ready or not yet for restart_policy.min_uptime` : ""
          }`,
    );
  return { healthy: false, text: `${short.join("\n")}\n` };
}
