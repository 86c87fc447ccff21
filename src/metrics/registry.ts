// Every metric Monoceros exposes, defined in one place. Names, types and labels are those of the
// Go original (dashboards depend on them); per-worker process figures are those of the worker's
// whole process group, read from /proc at scrape time, once per scrape.
// One module at a time, not the package's index: see prom-client-parts.d.ts.
import Counter from "prom-client/lib/counter.js";
import collectDefaultMetrics from "prom-client/lib/defaultMetrics.js";
import Gauge from "prom-client/lib/gauge.js";
import Registry from "prom-client/lib/registry.js";
import type { Config } from "../config/types.js";
import { leaderRunning, type SupervisorState, type WorkerStatus } from "../domain/state.js";
import { inRotation } from "../domain/supervisor.js";
import type { MetricEvent } from "../domain/types.js";
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

/** Node's event-loop delay histogram samples on a timer; a coarse one keeps an idle Monoceros idle. */
const EVENT_LOOP_MONITORING_PRECISION_MS = 1_000;

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
        for (const pool of pools) {
          const counts = { prepared: 0, running: 0, terminated: 0 };
          for (const worker of pool.workers) {
            const state = STATE_OF[worker.status];
            if (state !== null) counts[state]++;
          }
          for (const [state, count] of Object.entries(counts)) this.set({ pool: pool.config.name, state }, count);
        }
      },
    });

    for (const pool of config.pools) {
      // Initialised at 0, like the original, so rate() works from the first scrape.
      this.restarts.inc({ pool: pool.name, worker_type: "worker" }, 0);
      this.restarts.inc({ pool: pool.name, worker_type: "proxy" }, 0);
      this.sigkills.inc({ pool: pool.name }, 0);
      if (pool.maxSurge > 0) {
        const causes = ["manual", "reload", ...(pool.limits.lifespanMs > 0 ? ["lifespan"] : []), ...(pool.limits.memoryBytes > 0 ? ["memory"] : []), ...(pool.healthCheck !== null ? ["health"] : [])];
        for (const cause of causes) this.plannedRestartFailures.inc({ pool: pool.name, cause }, 0);
      }
      if (pool.limits.lifespanMs > 0) this.limitEvents.inc({ pool: pool.name, limit_event: "time" }, 0);
      if (pool.limits.memoryBytes > 0) this.limitEvents.inc({ pool: pool.name, limit_event: "memory" }, 0);
      if (pool.healthCheck !== null) {
        this.limitEvents.inc({ pool: pool.name, limit_event: "health" }, 0);
        for (const result of ["ok", "fail", "timeout"]) this.healthChecks.inc({ pool: pool.name, result }, 0);
      }
    }

    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: EVENT_LOOP_MONITORING_PRECISION_MS });
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
    const ready = renderWorkerReady(this.state.pools.flatMap((pool) => pool.workers.map((worker) => ({ pool: pool.config.name, worker: worker.id, ready: inRotation(worker) }))));
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
