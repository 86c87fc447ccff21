// The per-worker process metrics: the Go process collector's, under monoceros_workerpool_, one
// series per worker. Rendered straight into the exposition text, exactly as prom-client would
// render them (a unit test compares the two): they are 7 lines per worker, and through
// prom-client's gauges (a label hash per value, label escaping per line) they cost about 2 ms of
// every scrape at 256 workers, more than reading /proc for them.
import type { ProcessStats } from "../runtime/ports.js";

export interface WorkerSample {
  pool: string;
  worker: string;
  stats: ProcessStats;
}

export interface WorkerMetric {
  name: string;
  help: string;
  type: "counter" | "gauge";
  /** null or a non-finite number: no line for that worker. */
  read: (stats: ProcessStats) => number | null;
}

// CPU, resident memory and open fds are the worker's whole process group's; the rest its leader's.
export const WORKER_METRICS: readonly WorkerMetric[] = [
  { name: "monoceros_workerpool_process_cpu_seconds_total", help: "Total user and system CPU time spent in seconds by the worker's process group (and the children it reaped).", type: "counter", read: (s) => s.cpuSeconds },
  { name: "monoceros_workerpool_process_open_fds", help: "Number of open file descriptors of the worker's process group.", type: "gauge", read: (s) => s.openFds },
  { name: "monoceros_workerpool_process_max_fds", help: "Maximum number of open file descriptors.", type: "gauge", read: (s) => s.maxFds },
  { name: "monoceros_workerpool_process_virtual_memory_bytes", help: "Virtual memory size in bytes.", type: "gauge", read: (s) => s.virtualMemoryBytes },
  { name: "monoceros_workerpool_process_virtual_memory_max_bytes", help: "Maximum amount of virtual memory available in bytes.", type: "gauge", read: (s) => s.virtualMemoryMaxBytes },
  { name: "monoceros_workerpool_process_resident_memory_bytes", help: "Resident memory size in bytes of the worker's process group.", type: "gauge", read: (s) => s.rssBytes },
  { name: "monoceros_workerpool_process_start_time_seconds", help: "Start time of the process since unix epoch in seconds.", type: "gauge", read: (s) => s.startTimeSeconds },
];

/** Text format 0.0.4: backslash and newline escaped in HELP and label values, double quotes in label values too. */
function escapeText(text: string): string {
  return text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

function escapeLabelValue(text: string): string {
  return escapeText(text).replace(/"/g, '\\"');
}

const READY_METRIC = "monoceros_workerpool_worker_ready";

/** 1 for a worker that may get requests and counts toward health (running and ready), else 0; every worker of every pool. */
export function renderWorkerReady(rows: readonly { pool: string; worker: string; ready: boolean }[]): string {
  const lines = [`# HELP ${READY_METRIC} Whether the worker is running and ready (passed its health check, or runs when the pool has none): 1 or 0.`, `# TYPE ${READY_METRIC} gauge`];
  for (const { pool, worker, ready } of rows) lines.push(`${READY_METRIC}{pool="${escapeLabelValue(pool)}",worker="${escapeLabelValue(worker)}"} ${ready ? 1 : 0}`);
  return lines.join("\n");
}

/** The metric families, separated by a blank line as prom-client separates its own; no trailing newline. */
export function renderWorkerMetrics(samples: readonly WorkerSample[]): string {
  const labels = samples.map(({ pool, worker }) => `{pool="${escapeLabelValue(pool)}",worker="${escapeLabelValue(worker)}"}`);
  const families: string[] = [];
  for (const metric of WORKER_METRICS) {
    const lines = [`# HELP ${metric.name} ${escapeText(metric.help)}`, `# TYPE ${metric.name} ${metric.type}`];
    samples.forEach(({ stats }, index) => {
      const value = metric.read(stats);
      if (value !== null && Number.isFinite(value)) lines.push(`${metric.name}${labels[index]} ${value}`);
    });
    families.push(lines.join("\n"));
  }
  return families.join("\n\n");
}
