// Every metric Monoceros exposes, defined in one place. Names, types and labels are those of the
// Go original (dashboards depend on them); per-worker process figures are those of the worker's
// whole process group, read from /proc at scrape time, once per scrape.
// One module at a time, not the package's index: see prom-client-parts.d.ts.
import Counter from "prom-client/lib/counter.js";
import collectDefaultMetrics from "prom-client/lib/defaultMetrics.js";
import Gauge from "prom-client/lib/gauge.js";
import Registry from "prom-client/lib/registry.js";
import type { Config, PoolConfig } from "../config/types.js";
import { leaderRunning, type SupervisorState, type WorkerStatus } from "../domain/state.js";
import { inRotation } from "../domain/supervisor.js";
import type { MetricEvent, PlannedCause } from "../domain/types.js";
import type { ProcessStats } from "../runtime/ports.js";
import { renderWorkerMetrics, renderWorkerReady, type WorkerSample } from "./worker-metrics.js";

export interface BuildInfo {
  version: string;
  revision: string;
  branch: string;
}

/** The original's worker states: prepared (not started yet), running, terminated. */
const STATE_OF: Readonly<Record<WorkerStatus, "prepared" | "running" | "terminated" | null>> = {
  pending: "prepared",
  spawning: "prepared",
  running: "running",
  stopping: "running",
  exiting: "terminated",
  stopped: "terminated",
  // A free slot (room for a surge replacement or scaling up) is no worker at all.
  vacant: null,
};

/** The planned-restart causes, in the order their failure series are listed. */
const PLANNED_CAUSES = ["manual", "reload", "lifespan", "memory", "health"] as const satisfies readonly PlannedCause[];

/** Node's event-loop delay histogram samples on a timer; a coarse one keeps an idle Monoceros idle. */
const EVENT_LOOP_MONITORING_PRECISION_MS = 1_000;

/**
 * prom-client defaults that are gauges named like counters, so `promtool check metrics` fails on
 * them; each is the sum of the per-type gauge that stays (nodejs_active_handles{type} …).
 */
const COUNTER_NAMED_GAUGES = ["nodejs_active_handles_total", "nodejs_active_requests_total", "nodejs_active_resources_total"] as const;

export class Metrics {
  readonly registry = new Registry();
  private readonly restarts: Counter<"pool" | "worker_type">;
  private readonly sigkills: Counter<"pool">;
  private readonly limitEvents: Counter<"pool" | "limit_event">;
  private readonly healthChecks: Counter<"pool" | "result">;
  private readonly plannedRestartFailures: Counter<"pool" | "cause">;
  private readonly configReloads: Counter<"result">;
  private readonly failedToParseLogJson: Counter;
  private readonly sigtermReceived: Gauge;
  private readonly proxyMode: Gauge;
  /** The CPU-spread advisor's ratio for a pool (cpu-spread.ts); null: no value yet. */
  private cpuSpreadRatioOf: (pool: SupervisorState["pools"][number]) => number | null = () => null;

  constructor(
    config: Config,
    private readonly state: SupervisorState,
    private readonly readStats: (pid: number) => ProcessStats | null,
    build: BuildInfo,
  ) {
    const registers = [this.registry];
    this.restarts = new Counter({ name: "monoceros_workerpool_restarts_total", help: "Number of times a worker process has been restarted", labelNames: ["pool", "worker_type"], registers });
    this.sigkills = new Counter({ name: "monoceros_workerpool_sigkill_total", help: "Number of times a worker did not answer to SIGTERM on time and we send it a SIGKILL", labelNames: ["pool"], registers });
    this.limitEvents = new Counter({ name: "monoceros_workerpool_limits_events_total", help: "Number of times limits have been enforced on a worker", labelNames: ["pool", "limit_event"], registers });
    this.plannedRestartFailures = new Counter({
      name: "monoceros_workerpool_planned_restart_failures_total",
      help: "Planned restarts whose replacement (max_surge) exited, failed to start or was not ready within ready_timeout; the old worker kept serving",
      labelNames: ["pool", "cause"],
      registers,
    });
    this.configReloads = new Counter({ name: "monoceros_config_reloads_total", help: "Config reloads (SIGHUP, monoceros ctl reload) by result: success, or failed (invalid, or a change that needs a restart; nothing changed)", labelNames: ["result"], registers });
    this.configReloads.inc({ result: "success" }, 0);
    this.configReloads.inc({ result: "failed" }, 0);
    this.healthChecks = new Counter({ name: "monoceros_workerpool_health_checks_total", help: "Number of worker health checks by result (ok, fail, timeout); failures before a worker's first pass and in start_period are not counted", labelNames: ["pool", "result"], registers });
    this.failedToParseLogJson = new Counter({ name: "monoceros_workerpool_failed_to_parse_log_json_total", help: "Number of times we have failed to parse the log line as JSON, even tho it is valid JSON", registers });
    this.sigtermReceived = new Gauge({ name: "monoceros_supervisor_sigterm_received", help: "Supervisor current state, it becomes 1 when the supervisor receives a SIGTERM", registers });
    this.proxyMode = new Gauge({ name: "monoceros_supervisor_proxy_mode", help: "Supervisor proxy mode, it becomes 1 if monoceros is running on proxy mode", registers });
    new Gauge({
      name: "monoceros_build_info",
      help: "A metric with a constant '1' value labeled by version, revision, branch, and the Node.js version from which monoceros was built.",
      labelNames: ["version", "revision", "branch", "nodeversion"],
      registers,
    }).set({ ...build, nodeversion: process.version }, 1);

    const pools = this.state.pools;
    new Gauge({
      name: "monoceros_workerpool_worker_state",
      help: "Number of workers in a particular state",
      labelNames: ["pool", "state"],
      registers,
      collect() {
        // Pools removed by a reload leave no series behind.
        this.reset();
        for (const pool of pools) {
          if (pool.removal === "done") continue;
          const counts = { prepared: 0, running: 0, terminated: 0 };
          for (const worker of pool.workers) {
            const state = STATE_OF[worker.status];
            if (state !== null) counts[state]++;
          }
          for (const [state, count] of Object.entries(counts)) this.set({ pool: pool.config.name, state }, count);
        }
      },
    });

    for (const pool of config.pools) this.addPool(pool);

    const spreadOf = (pool: SupervisorState["pools"][number]) => this.cpuSpreadRatioOf(pool);
    new Gauge({
      name: "monoceros_workerpool_cpu_spread_ratio",
      help: "Spread of the CPU rates of the pool's workers over the last 5 minutes: their coefficient of variation (stddev / mean); absent until 2 workers were observed for 30 s",
      labelNames: ["pool"],
      registers,
      collect() {
        // Only pools with a value have a series: never NaN, and a pool that lost its value loses it.
        this.reset();
        for (const pool of pools) {
          const ratio = spreadOf(pool);
          if (ratio !== null && Number.isFinite(ratio)) this.set({ pool: pool.config.name }, ratio);
        }
      },
    });
    new Gauge({
      name: "monoceros_workerpool_memory_limit_bytes",
      help: "The pool's limits.memory: a worker whose process group's resident memory stays over it is restarted; absent for pools without one",
      labelNames: ["pool"],
      registers,
      collect() {
        // Read at scrape time: a reload may set, change or remove the limit, or the pool.
        this.reset();
        for (const pool of pools) {
          if (pool.removal !== "done" && pool.config.limits.memoryBytes > 0) this.set({ pool: pool.config.name }, pool.config.limits.memoryBytes);
        }
      },
    });

    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: EVENT_LOOP_MONITORING_PRECISION_MS });
    for (const name of COUNTER_NAMED_GAUGES) this.registry.removeSingleMetric(name);
  }

  /** Counts what the core reported (the runtime's metric hook). */
  record(event: MetricEvent): void {
    switch (event.metric) {
      case "restart":
        this.restarts.inc({ pool: event.pool, worker_type: event.workerType });
        return;
      case "sigkill":
        this.sigkills.inc({ pool: event.pool });
        return;
      case "limitEvent":
        this.limitEvents.inc({ pool: event.pool, limit_event: event.limitEvent });
        return;
      case "healthCheck":
        this.healthChecks.inc({ pool: event.pool, result: event.result });
        return;
      case "plannedRestartFailed":
        this.plannedRestartFailures.inc({ pool: event.pool, cause: event.cause });
        return;
      case "configReload":
        this.configReloads.inc({ result: event.result });
        return;
      case "sigtermReceived":
        this.sigtermReceived.set(1);
        return;
    }
  }

  /** A pool's counters, at 0 like the original, so rate() works from the first scrape (at start, or when a reload adds it). */
  addPool(pool: PoolConfig): void {
    for (const [counter, labels] of this.poolSeries(pool)) counter.inc(labels, 0);
  }

  /** A pool a reload removed is gone: its series go too (a pool added later under its name starts at 0). */
  removePool(pool: PoolConfig): void {
    // Every series it may have had: a reload may have changed which ones its config starts at 0.
    for (const [counter, labels] of this.poolSeries(pool, true)) counter.remove(labels);
  }

  /** The series of a pool's counters its config starts at 0 (all: every one it may have). */
  private poolSeries(pool: PoolConfig, all = false): [Counter<string>, Record<string, string>][] {
    const name = pool.name;
    const series: [Counter<string>, Record<string, string>][] = [
      [this.restarts, { pool: name, worker_type: "worker" }],
      [this.restarts, { pool: name, worker_type: "proxy" }],
      [this.sigkills, { pool: name }],
    ];
    const limits = { lifespan: all || pool.limits.lifespanMs > 0, memory: all || pool.limits.memoryBytes > 0, health: all || pool.healthCheck !== null };
    if (all || pool.maxSurge > 0) {
      for (const cause of PLANNED_CAUSES) if (cause === "manual" || cause === "reload" || limits[cause]) series.push([this.plannedRestartFailures, { pool: name, cause }]);
    }
    if (limits.lifespan) series.push([this.limitEvents, { pool: name, limit_event: "time" }]);
    if (limits.memory) series.push([this.limitEvents, { pool: name, limit_event: "memory" }]);
    if (limits.health) {
      series.push([this.limitEvents, { pool: name, limit_event: "health" }]);
      for (const result of ["ok", "fail", "timeout"]) series.push([this.healthChecks, { pool: name, result }]);
    }
    return series;
  }

  /** Where monoceros_workerpool_cpu_spread_ratio comes from (the CPU-spread sampler's reports). */
  setCpuSpreadSource(ratioOf: (pool: SupervisorState["pools"][number]) => number | null): void {
    this.cpuSpreadRatioOf = ratioOf;
  }

  setProxyMode(on: boolean): void {
    this.proxyMode.set(on ? 1 : 0);
  }

  logJsonCollision(): void {
    this.failedToParseLogJson.inc();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /**
   * The exposition text: prom-client's metrics, then the per-worker ones (worker-metrics.ts). Reads
   * /proc once for every live worker, in one synchronous run (see process-stats.ts).
   */
  async text(): Promise<string> {
    const workers = renderWorkerMetrics(this.sampleWorkers());
    const ready = renderWorkerReady(this.state.pools.flatMap((pool) => pool.removal === "done" ? [] : pool.workers.map((worker) => ({ pool: pool.config.name, worker: worker.id, ready: inRotation(worker) }))));
    return `${await this.registry.metrics()}\n${workers}\n\n${ready}\n`;
  }

  private sampleWorkers(): WorkerSample[] {
    const samples: WorkerSample[] = [];
    for (const pool of this.state.pools) {
      for (const worker of pool.workers) {
        if (!leaderRunning(worker)) continue;
        const stats = this.readStats(worker.pid);
        // Exited between listing and reading: skipped, not an error.
        if (stats !== null) samples.push({ pool: pool.config.name, worker: worker.id, stats });
      }
    }
    return samples;
  }
}
