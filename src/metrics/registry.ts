// Every metric Monoceros exposes, defined in one place. Names, types and labels are those of the
// Go original (dashboards depend on them); per-worker process figures are those of the worker's
// whole process group, read from /proc at scrape time, once per scrape.
// One module at a time, not the package's index: see prom-client-parts.d.ts.
import Counter from "prom-client/lib/counter.js";
import collectDefaultMetrics from "prom-client/lib/defaultMetrics.js";
import Gauge from "prom-client/lib/gauge.js";
import Registry from "prom-client/lib/registry.js";
import type { Config } from "../config/types.js";
import type { SupervisorState, WorkerStatus } from "../domain/state.js";
import type { MetricEvent } from "../domain/types.js";
import type { ProcessStats } from "../runtime/ports.js";

export interface BuildInfo {
  version: string;
  revision: string;
  branch: string;
}

/** The original's worker states: prepared (not started yet), running, terminated. */
const STATE_OF: Readonly<Record<WorkerStatus, "prepared" | "running" | "terminated">> = {
  pending: "prepared",
  spawning: "prepared",
  running: "running",
  stopping: "running",
  stopped: "terminated",
};

/** Node's event-loop delay histogram samples on a timer; a coarse one keeps an idle Monoceros idle. */
const EVENT_LOOP_MONITORING_PRECISION_MS = 1_000;

interface WorkerSample {
  pool: string;
  worker: string;
  stats: ProcessStats;
}

export class Metrics {
  readonly registry = new Registry();
  private readonly restarts: Counter<"pool" | "worker_type">;
  private readonly sigkills: Counter<"pool">;
  private readonly limitEvents: Counter<"pool" | "limit_event">;
  private readonly failedToParseLogJson: Counter;
  private readonly sigtermReceived: Gauge;
  private readonly proxyMode: Gauge;
  private samples: WorkerSample[] = [];

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
          for (const worker of pool.workers) counts[STATE_OF[worker.status]]++;
          for (const [state, count] of Object.entries(counts)) this.set({ pool: pool.config.name, state }, count);
        }
      },
    });

    for (const pool of config.pools) {
      // Initialised at 0, like the original, so rate() works from the first scrape.
      this.restarts.inc({ pool: pool.name, worker_type: "worker" }, 0);
      this.restarts.inc({ pool: pool.name, worker_type: "proxy" }, 0);
      this.sigkills.inc({ pool: pool.name }, 0);
      if (pool.limits.lifespanMs > 0) this.limitEvents.inc({ pool: pool.name, limit_event: "time" }, 0);
    }

    this.defineProcessMetrics(registers);
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

  /** The exposition text; reads /proc once for every live worker (in one synchronous run: see process-stats.ts). */
  async text(): Promise<string> {
    this.samples = this.sampleWorkers();
    try {
      return await this.registry.metrics();
    } finally {
      this.samples = [];
    }
  }

  private sampleWorkers(): WorkerSample[] {
    const samples: WorkerSample[] = [];
    for (const pool of this.state.pools) {
      for (const worker of pool.workers) {
        if (worker.pid === null) continue;
        const stats = this.readStats(worker.pid);
        // Exited between listing and reading: skipped, not an error.
        if (stats !== null) samples.push({ pool: pool.config.name, worker: worker.id, stats });
      }
    }
    return samples;
  }

  /**
   * The Go process collector's metrics, under the monoceros_workerpool namespace, per worker: CPU,
   * resident memory and open fds of the worker's whole process group; the rest the leader's.
   */
  private defineProcessMetrics(registers: Registry[]): void {
    const labelNames = ["pool", "worker"] as const;
    const samples = () => this.samples;
    new Counter({
      name: "monoceros_workerpool_process_cpu_seconds_total",
      help: "Total user and system CPU time spent in seconds by the worker's process group (and the children it reaped).",
      labelNames,
      registers,
      collect() {
        this.reset();
        for (const { pool, worker, stats } of samples()) this.inc({ pool, worker }, stats.cpuSeconds);
      },
    });
    const gauges: [string, string, (stats: ProcessStats) => number | null][] = [
      ["monoceros_workerpool_process_open_fds", "Number of open file descriptors of the worker's process group.", (s) => s.openFds],
      ["monoceros_workerpool_process_max_fds", "Maximum number of open file descriptors.", (s) => s.maxFds],
      ["monoceros_workerpool_process_virtual_memory_bytes", "Virtual memory size in bytes.", (s) => s.virtualMemoryBytes],
      ["monoceros_workerpool_process_virtual_memory_max_bytes", "Maximum amount of virtual memory available in bytes.", (s) => s.virtualMemoryMaxBytes],
      ["monoceros_workerpool_process_resident_memory_bytes", "Resident memory size in bytes of the worker's process group.", (s) => s.rssBytes],
      ["monoceros_workerpool_process_start_time_seconds", "Start time of the process since unix epoch in seconds.", (s) => s.startTimeSeconds],
    ];
    for (const [name, help, read] of gauges) {
      new Gauge({
        name,
        help,
        labelNames,
        registers,
        collect() {
          this.reset();
          for (const { pool, worker, stats } of samples()) {
            const value = read(stats);
            if (value !== null && Number.isFinite(value)) this.set({ pool, worker }, value);
          }
        },
      });
    }
  }
}
