// `make bench`: runs every benchmark scenario and writes BENCHMARKS.md and bench/results.json.
// Not part of `make test`: figures are measured and reported, not asserted.
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { anchorIdle, anchorRestartGap, anchorStartAndStop, ensureSupervisord, pm2Anchor, supervisordAnchor, type Anchor } from "./anchors.js";
import { benchLoadBalancing, benchProxyOverhead, haproxyAvailable } from "./proxy.js";
import { benchSimulator } from "./sim.js";
import { benchIdle, benchLogs, benchMetrics, benchNodeSpawnFloor, benchRestartGap, benchStartAndStop, buildWorkers, stats, type Stats } from "./supervisor.js";

function machine(): string {
  const cpu = cpus()[0]?.model ?? "unknown CPU";
  let os = "unknown OS";
  try {
    os = execFileSync("sh", ["-c", ". /etc/os-release && echo $PRETTY_NAME"], { encoding: "utf8" }).trim();
  } catch {
    // keep "unknown OS"
  }
  return `${cpus().length} × ${cpu}, ${Math.round(totalmem() / 2 ** 30)} GiB, ${os}, Node ${process.version}`;
}

const REPEATS = 3;
const startedAt = new Date();
console.log("bench: simulator…");
const sim = benchSimulator();

const bins = buildWorkers();
ensureSupervisord();
const anchors = [pm2Anchor(), supervisordAnchor()].filter((anchor): anchor is Anchor => anchor !== null);
const anchorRuns = new Map<string, { gaps: Stats[]; startStop: { startMs: number; shutdownMs: number }[]; idle?: { cpuPercentOfCore: number; rssBytes: number } }>();
for (const anchor of anchors) anchorRuns.set(anchor.name, { gaps: [], startStop: [] });
const supervisor = bins === null ? null : await (async () => {
  const gapRuns: { floor: Stats; monoceros: Stats }[] = [];
  const json: { linesPerSecond: number; lost: number }[] = [];
  const plain: { linesPerSecond: number; lost: number }[] = [];
  const startStop: { startMs: number; shutdownMs: number }[] = [];
  const nodeFloor: Stats[] = [];
  for (let run = 1; run <= REPEATS; run++) {
    console.log(`bench: supervisor run ${run}/${REPEATS}: restart gap, log forwarding, start-up and shutdown…`);
    gapRuns.push(await benchRestartGap(bins));
    nodeFloor.push(benchNodeSpawnFloor(bins));
    json.push(await benchLogs(bins, "json"));
    plain.push(await benchLogs(bins, "plain"));
    startStop.push(await benchStartAndStop(bins));
    // The anchors in the same round, so machine drift hits all alike (A B C A B C …).
    for (const anchor of anchors) {
      const runs = anchorRuns.get(anchor.name);
      // supervisord restarts on its 1 s poll: 20 restarts are enough to show it and keep make bench short.
      runs?.gaps.push(await anchorRestartGap(anchor, bins.worker, anchor.name === "supervisord" ? 20 : 200));
      runs?.startStop.push(await anchorStartAndStop(anchor, bins.worker));
    }
  }
  for (const anchor of anchors) {
    console.log(`bench: idle cost of ${anchor.name} (20 s)…`);
    const runs = anchorRuns.get(anchor.name);
    if (runs) runs.idle = await anchorIdle(anchor, bins.worker);
  }
  console.log("bench: idle cost (20 s)…");
  const idle = await benchIdle(bins);
  console.log("bench: /metrics with 64 and 256 workers…");
  const metrics64 = await benchMetrics(bins, 64, { cpuSeconds: 20 });
  const metrics256 = await benchMetrics(bins, 256);
  return { gapRuns, nodeFloor, json, plain, startStop, idle, metrics64, metrics256 };
})();

let proxy: { overhead: Awaited<ReturnType<typeof benchProxyOverhead>>; balancing: Awaited<ReturnType<typeof benchLoadBalancing>> } | null = null;
if (haproxyAvailable()) {
  console.log("bench: proxy overhead and load-balancing quality (HAProxy)…");
  proxy = { overhead: await benchProxyOverhead(), balancing: await benchLoadBalancing() };
} else {
  console.log("bench: skipping the proxy benchmarks: haproxy is not installed (apt-get install haproxy)");
}

const results = {
  date: startedAt.toISOString(), machine: machine(), simulator: sim, supervisor, proxy,
  anchors: Object.fromEntries([...anchorRuns].map(([name, runs]) => [name, { version: anchors.find((a) => a.name === name)?.version, ...runs }])),
};
writeFileSync("bench/results.json", `${JSON.stringify(results, null, 2)}\n`);

const verdict = (ok: boolean) => (ok ? "met" : "**missed**");
const ms = (value: number) => `${value.toFixed(2)} ms`;
const range = (values: number[], format: (v: number) => string) => {
  const s = stats(values);
  return `${format(s.median)} (${format(s.min)}–${format(s.max)})`;
};

let supervisorSection = "Skipped: no C compiler to build the benchmark worker.\n";
if (supervisor !== null) {
  const floorMedian = stats(supervisor.gapRuns.map((r) => r.floor.median)).median;
  const gapMedian = stats(supervisor.gapRuns.map((r) => r.monoceros.median)).median;
  const gapP99 = stats(supervisor.gapRuns.map((r) => r.monoceros.p99)).median;
  const jsonRate = stats(supervisor.json.map((r) => r.linesPerSecond)).median;
  const plainRate = stats(supervisor.plain.map((r) => r.linesPerSecond)).median;
  const lost = [...supervisor.json, ...supervisor.plain].reduce((sum, r) => sum + r.lost, 0);
  const start = stats(supervisor.startStop.map((r) => r.startMs)).median;
  const shutdown = stats(supervisor.startStop.map((r) => r.shutdownMs)).median;
  supervisorSection = `Same C worker (\`bench/c/worker.c\`) everywhere; each figure is the median of ${REPEATS} interleaved runs, with the range over runs.

| Scenario | Measure | Monoceros | Floor | Target | |
|---|---|---|---|---|---|
| Restart gap (worker exits 20 ms after start, 200 restarts) | median gap exit → next start | ${range(supervisor.gapRuns.map((r) => r.monoceros.median), ms)} | ${range(supervisor.gapRuns.map((r) => r.floor.median), ms)} (bare fork+exec loop) | ≤ floor + 1 ms | ${verdict(gapMedian <= floorMedian + 1)} |
| | median gap of a bare Node.js spawn loop (same worker, pipes) | ${range(supervisor.nodeFloor.map((r) => r.median), ms)} | | | |
| | p99 gap | ${range(supervisor.gapRuns.map((r) => r.monoceros.p99), ms)} | ${range(supervisor.gapRuns.map((r) => r.floor.p99), ms)} | ≤ 5 ms | ${verdict(gapP99 <= 5)} |
| Log forwarding, JSON (4 workers × 200,000 lines of ~150 B) | lines/s until all arrived | ${range(supervisor.json.map((r) => r.linesPerSecond), (v) => Math.round(v).toLocaleString("en"))} | | ≥ 1,000,000/s | ${verdict(jsonRate >= 1_000_000)} |
| Log forwarding, plain text (same) | lines/s | ${range(supervisor.plain.map((r) => r.linesPerSecond), (v) => Math.round(v).toLocaleString("en"))} | | ≥ 1,000,000/s | ${verdict(plainRate >= 1_000_000)} |
| | lines lost (all runs) | ${lost} | | 0 | ${verdict(lost === 0)} |
| Idle, 32 sleeping workers, 20 s (from 12 s after start) | Monoceros CPU (all threads, schedstat) | ${supervisor.idle.cpuPercentOfCore.toFixed(3)}% of a core | | < 0.1% | ${verdict(supervisor.idle.cpuPercentOfCore < 0.1)} |
| | Monoceros RSS | ${(supervisor.idle.rssBytes / 2 ** 20).toFixed(1)} MiB | | ≤ 55 MB | ${verdict(supervisor.idle.rssBytes <= 55e6)} |
| Start-up, 32 workers, no stagger | launch → last worker started | ${range(supervisor.startStop.map((r) => r.startMs), ms)} | | ≤ 100 ms | ${verdict(start <= 100)} |
| Shutdown, 32 workers that exit on SIGTERM | SIGTERM → Monoceros gone | ${range(supervisor.startStop.map((r) => r.shutdownMs), ms)} | | ≤ 20 ms | ${verdict(shutdown <= 20)} |
| \`/metrics\` with 64 workers (100 sequential scrapes, ${Math.round(supervisor.metrics64.bytes / 1024)} KiB each) | median scrape time (p99) | ${ms(supervisor.metrics64.scrape.median)} (${ms(supervisor.metrics64.scrape.p99)}) | | ≤ 4.5 ms | ${verdict(supervisor.metrics64.scrape.median <= 4.5)} |
| \`/metrics\` with 256 workers (${Math.round(supervisor.metrics256.bytes / 1024)} KiB) | median scrape time (p99) | ${ms(supervisor.metrics256.scrape.median)} (${ms(supervisor.metrics256.scrape.p99)}) | | ≤ 15 ms | ${verdict(supervisor.metrics256.scrape.median <= 15)} |
| 64 workers scraped every second for 20 s | Monoceros CPU | ${(supervisor.metrics64.cpuPercentOfCore ?? NaN).toFixed(2)}% of a core | | < 1% | ${verdict((supervisor.metrics64.cpuPercentOfCore ?? Infinity) < 1)} |
`;
}

const markdown = `# Benchmarks

Latest run: ${startedAt.toISOString().slice(0, 10)} on ${results.machine}.
Produced by \`make bench\` (raw figures in \`bench/results.json\`). A shared 2-core machine: expect ±10%.

## Simulator

| Measure | Result | Target | |
|---|---|---|---|
| Simulated events per wall second (${sim.seeds} random seeds, ${sim.events} events) | ${sim.eventsPerSecond.toLocaleString("en")} /s | ≥ 100,000 /s | ${verdict(sim.eventsPerSecond >= 100_000)} |
| One simulated day, 64 workers, 1 h lifespans (10% jitter), random crashes (${sim.day.events} events) | ${sim.day.wallMs.toFixed(0)} ms | < 2,000 ms | ${verdict(sim.day.wallMs < 2_000)} |

Each event is handled by the real core and runtime, and the invariant monitor checks every rule after each one; that check, not the core, is most of the cost.

## Supervisor mode

${supervisorSection}
## Side by side: PM2 and supervisord

${anchorSection()}
## Proxy mode (HAProxy)

${proxySection()}
## What limits the figures

- **Restart gap.** The floor is a C loop of fork, exec and waitpid. Node's own \`child_process.spawn\`
  (a loop that does nothing but respawn the same worker with pipes, measured above) already costs
  two to three times the floor: Node forks the whole (40+ MB) process, builds the ChildProcess and its two
  pipe streams, and reports the exit through the event loop. Monoceros adds about 0.4–0.7 ms on top
  (the core's step, two log records, the watchdog's bookkeeping, waiting for both pipes to close so
  no line is lost). Reaching floor + 1 ms needs spawning outside Node's event loop, e.g. a small
  native spawner process that forks and execs on request: not built yet.
- **Log forwarding.** Single-threaded: every line is split, every line that looks like a JSON object
  is parsed with \`JSON.parse\` to know it is one and whether it has \`worker_id\` (as the original does),
  and written in one batch per chunk. It sits at about the target; a faster path would validate JSON
  without building objects, or forward on a worker thread.
- **Start-up.** Node itself takes 50–70 ms to start here. Compiling and evaluating the bundle
  (zod, yaml, commander, pino, prom-client: about 840 KB minified) takes 40–60 ms more, since Node 20
  has no compile cache, and each of the 32 spawns about 1 ms. The admin endpoint is bound before the
  first worker starts (so a taken port fails cleanly); that costs well under a millisecond. Lazily
  loading what a run does not need (pino-pretty, commander's help, the schema after validation) and
  a smaller schema library would cut part of it; reaching 100 ms would need a compile cache (Node 22).
- **Idle cost and memory.** Measured from 12 s after start-up: Monoceros runs no poll of its own when
  nothing happens. What remains is prom-client's event-loop-delay monitor, set to sample once a
  second (its default is 100 times a second), and V8's memory reducer, which runs a few full
  collections 8–10 s after start (about 40 ms of CPU, outside the window). A bare Node 20 process holds
  about 40 MB here; the bundle, prom-client's registry with Node's default metrics, and 32 workers'
  pipes and streams bring Monoceros to about 60 MiB, over the 55 MB target. Dropping Node's default
  metrics would save a few MB but they are asked for; a smaller bundle would save more.
`;
writeFileSync("BENCHMARKS.md", markdown);

function anchorSection(): string {
  if (supervisor === null || anchors.length === 0) return "Skipped: no anchor installed.\n";
  const floor = stats(supervisor.gapRuns.map((r) => r.floor.median)).median;
  const med = (values: number[]) => stats(values).median;
  const rows: string[] = [];
  const row = (name: string, gap: number, p99: number, start: number, shutdown: number, cpu: number | undefined, rssBytes: number | undefined) =>
    rows.push(`| ${name} | ${ms(gap)} (${(gap / floor).toFixed(1)}× floor) | ${ms(p99)} | ${ms(start)} | ${ms(shutdown)} | ${cpu === undefined ? "n/a" : `${cpu.toFixed(3)}%`} | ${rssBytes === undefined ? "n/a" : `${(rssBytes / 2 ** 20).toFixed(1)} MiB`} |`);
  row("Monoceros", med(supervisor.gapRuns.map((r) => r.monoceros.median)), med(supervisor.gapRuns.map((r) => r.monoceros.p99)), med(supervisor.startStop.map((r) => r.startMs)), med(supervisor.startStop.map((r) => r.shutdownMs)), supervisor.idle.cpuPercentOfCore, supervisor.idle.rssBytes);
  for (const anchor of anchors) {
    const runs = anchorRuns.get(anchor.name);
    if (!runs) continue;
    row(`${anchor.name} ${anchor.version}`, med(runs.gaps.map((g) => g.median)), med(runs.gaps.map((g) => g.p99)), med(runs.startStop.map((r) => r.startMs)), med(runs.startStop.map((r) => r.shutdownMs)), runs.idle?.cpuPercentOfCore, runs.idle?.rssBytes);
  }
  return `Same C worker and scenarios as above, each anchor configured for its fastest honest behaviour (no restart delay or backoff, a huge restart budget: PM2 \`restart_delay 0, min_uptime 0\`; supervisord \`startsecs=0\`); medians of ${REPEATS} rounds run interleaved with Monoceros's. Floor: ${ms(floor)}.

| Supervisor | restart gap, median | restart gap, p99 | start 32 workers | stop 32 workers | idle CPU (32 workers) | idle RSS |
|---|---|---|---|---|---|---|
${rows.join("\n")}

PM2 is stopped with \`pm2 kill\` (its documented way), supervisord with SIGTERM. Not yet measured side by side: log forwarding (PM2 and
supervisord write to files) and what each leaves behind when SIGKILLed (the issue reports that both leave every worker
running; not measured here yet; Monoceros's own test for it is in test/integration).
`;
}

function proxySection(): string {
  if (proxy === null) return "Skipped: haproxy is not installed.\n";
  const { overhead, balancing } = proxy;
  const added = overhead.proxied.median - overhead.direct.median;
  const spread = (cpu: number[]) => (cpu.length === 0 ? "n/a" : `${Math.min(...cpu).toFixed(2)}–${Math.max(...cpu).toFixed(2)} s`);
  const row = (name: string, r: (typeof balancing)["reuseport"]) =>
    `| ${name} | ${ms(r.latency.median)} | ${ms(r.latency.p99)} | ${r.failed} | ${spread(r.cpuSecondsPerWorker)} |`;
  const ratio = balancing.leastconn.latency.p99 / balancing.reuseport.latency.p99;
  return `Light load, one client, a new connection per request (${overhead.direct.n} requests each, interleaved):

| Path | median | p99 |
|---|---|---|
| direct to a worker | ${ms(overhead.direct.median)} | ${ms(overhead.direct.p99)} |
| through HAProxy | ${ms(overhead.proxied.median)} | ${ms(overhead.proxied.p99)} |
| added by the proxy (median) | ${ms(added)} | target < 1 ms: ${verdict(added < 1)} |

Load-balancing quality: 3 workers, an open loop of 120 requests/s for 15 s on new connections, 90% fast (\`/\`) and
10% slow (\`/work?ms=40\`, 40 ms of CPU); latency of the fast requests, which suffer when they land behind a slow one:

| Setup | p50 | p99 | failed | CPU per worker (min–max) |
|---|---|---|---|---|
${row("supervisor mode, SO_REUSEPORT (the kernel spreads connections)", balancing.reuseport)}
${row("HAProxy roundrobin", balancing.roundrobin)}
${row("HAProxy leastconn (LEAST_REQUEST)", balancing.leastconn)}

leastconn p99 is ${ratio.toFixed(2)}× SO_REUSEPORT's (target ≤ 0.5×: ${verdict(ratio <= 0.5)}).

Notes: at light load the proxied median came out no higher than the direct one: the latency the
proxy adds is below what this measurement resolves (both paths open a new connection per request;
the cause of the small inversion was not investigated). Under the mixed workload leastconn spreads
CPU very unevenly across workers (one did about ten times the work of another in this run) while
cutting the tail; why it concentrates the fast requests was not investigated either.
`;
}
console.log(markdown);
