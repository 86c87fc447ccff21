import fc from "fast-check";
import Counter from "prom-client/lib/counter.js";
import Gauge from "prom-client/lib/gauge.js";
import Registry from "prom-client/lib/registry.js";
import { describe, expect, it } from "vitest";
import type { ProcessStats } from "../../../src/runtime/ports.js";
import { renderWorkerMetrics, WORKER_METRICS, type WorkerSample } from "../../../src/metrics/worker-metrics.js";

/** The same metrics through prom-client, as Monoceros exposed them before: the reference. */
async function throughPromClient(samples: readonly WorkerSample[]): Promise<string> {
  const registry = new Registry();
  for (const metric of WORKER_METRICS) {
    const options = { name: metric.name, help: metric.help, labelNames: ["pool", "worker"] as const, registers: [registry] };
    const series = metric.type === "counter" ? new Counter(options) : new Gauge(options);
    for (const { pool, worker, stats } of samples) {
      const value = metric.read(stats);
      if (value === null || !Number.isFinite(value)) continue;
      if (series instanceof Counter) series.inc({ pool, worker }, value);
      else series.set({ pool, worker }, value);
    }
  }
  return registry.metrics();
}

const figure = fc.oneof(fc.double({ min: 0, noNaN: false }), fc.nat(), fc.constant(2 ** 64), fc.constant(1_795_657_420.92));
const stats: fc.Arbitrary<ProcessStats> = fc.record({
  cpuSeconds: fc.oneof(fc.double({ min: 0, max: 1e9, noNaN: true }), fc.nat()),
  rssBytes: figure,
  virtualMemoryBytes: figure,
  openFds: fc.option(fc.nat()),
  maxFds: fc.option(fc.oneof(fc.nat(), fc.constant(2 ** 64))),
  virtualMemoryMaxBytes: fc.option(figure),
  startTimeSeconds: figure,
});
// Pool names and worker ids with what the text format escapes: backslash, double quote, newline.
const name = fc.string({ unit: fc.oneof(fc.constantFrom("\\", '"', "\n", "-", "é"), fc.string({ minLength: 1, maxLength: 1 })), maxLength: 12 });
const samples = fc.uniqueArray(fc.record({ pool: name, worker: name, stats }), { maxLength: 8, selector: (s) => `${s.pool}\u0000${s.worker}` });

describe("per-worker metrics text", () => {
  it("is exactly what prom-client renders for the same figures, odd names and numbers included", async () => {
    await fc.assert(
      fc.asyncProperty(samples, async (generated) => {
        expect(`${renderWorkerMetrics(generated)}\n`).toBe(await throughPromClient(generated));
      }),
      { numRuns: 300 },
    );
  });

  it("has one line per worker and metric, and none for a figure that could not be read", () => {
    const full: ProcessStats = { cpuSeconds: 1.5, rssBytes: 1000, virtualMemoryBytes: 2000, openFds: 7, maxFds: 1024, virtualMemoryMaxBytes: 2 ** 64, startTimeSeconds: 1700000000 };
    const text = renderWorkerMetrics([
      { pool: "web", worker: "web-0", stats: full },
      { pool: "web", worker: "web-1", stats: { ...full, openFds: null, maxFds: null, startTimeSeconds: NaN } },
    ]);
    expect(text).toContain('monoceros_workerpool_process_virtual_memory_max_bytes{pool="web",worker="web-0"} 18446744073709552000');
    expect(text).toContain('monoceros_workerpool_process_open_fds{pool="web",worker="web-0"} 7');
    expect(text).not.toContain('monoceros_workerpool_process_open_fds{pool="web",worker="web-1"}');
    expect(text).not.toContain('monoceros_workerpool_process_start_time_seconds{pool="web",worker="web-1"}');
    expect(text.split("\n").filter((line) => !line.startsWith("#") && line !== "")).toHaveLength(7 + 4);
  });
});
