// Only the `/metrics` scrape scenarios of `make bench` (the same functions), printed, not written
// to BENCHMARKS.md: `npx tsx bench/scrape.ts` after `node scripts/build.mjs`. About 30 s.
import { benchMetrics, buildWorkers } from "./supervisor.js";

const bins = buildWorkers();
if (bins === null) process.exit(1);
for (const [workers, processesPerWorker] of [[64, 1], [256, 1], [64, 4]] as const) {
  const run = await benchMetrics(bins, workers, { processesPerWorker });
  const ms = (value: number) => `${value.toFixed(2)} ms`;
  console.log(`/metrics, ${workers} workers × ${processesPerWorker} process(es): median ${ms(run.scrape.median)}, p99 ${ms(run.scrape.p99)}, ${Math.round(run.bytes / 1024)} KiB`);
}
