// `make bench`: runs every benchmark scenario and writes BENCHMARKS.md and bench/results.json.
// Not part of `make test`: figures are measured and reported, not asserted.
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { anchorIdle, anchorRestartGap, anchorStartAndStop, ensureSupervisord, floorSubject, logsToFiles, monocerosSubject, orphansAfterSigkill, pm2Anchor, supervisordAnchor, type Anchor, type LogRun } from "./anchors.js";
import { comparisonRows, comparisonTable, GO_ORIGINAL, type ComparisonInput } from "./comparison.js";
import { buildHealthWorker, healthSection, runHealthBench, type HealthReport } from "./health.js";
import { describeRun, orphanSection, runOrphanProbe } from "./orphans.js";
import { benchLoadBalancing, benchProxyOverhead, haproxyAvailable } from "./proxy.js";
import { benchSimulator } from "./sim.js";
import { runZeroDowntimeBench, zeroDowntimeSection } from "./zero-downtime.js";
import { benchLogs, benchMetrics, benchNodeSpawnFloor, benchRestartGap, buildWorkers, RESTART_GAP_POLICY, stats, type Stats } from "./supervisor.js";

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
const phase = (what: string) => console.log(`bench [${((Date.now() - startedAt.getTime()) / 1000).toFixed(0)} s]: ${what}`);
phase("simulator…");
const sim = benchSimulator();

const bins = buildWorkers();
ensureSupervisord();
const anchors = [pm2Anchor(), supervisordAnchor()].filter((anchor): anchor is Anchor => anchor !== null);
type StartStop = Awaited<ReturnType<typeof anchorStartAndStop>>;
type Idle = Awaited<ReturnType<typeof anchorIdle>>;
interface AnchorRuns {
  gaps: Stats[];
  startStop: StartStop[];
  idle?: Idle;
}
const anchorRuns = new Map<string, AnchorRuns>();
for (const anchor of anchors) anchorRuns.set(anchor.name, { gaps: [], startStop: [] });
// Monoceros and the anchors alike: worker output into files, and a SIGKILL of the supervisor.
const subjects = [monocerosSubject(), ...anchors];
const fileRuns = new Map<string, { json: LogRun[]; plain: LogRun[]; orphans?: { workers: number; leftRunning: number } }>();
for (const subject of subjects) fileRuns.set(subject.name, { json: [], plain: [] });
const supervisor = bins === null ? null : await (async () => {
  const gapRuns: { floor: Stats; monoceros: Stats }[] = [];
  const json: { linesPerSecond: number; lost: number }[] = [];
  const plain: { linesPerSecond: number; lost: number }[] = [];
  const startStop: StartStop[] = [];
  const floorStartStop: StartStop[] = [];
  const nodeFloor: Stats[] = [];
  for (let run = 1; run <= REPEATS; run++) {
    phase(`supervisor run ${run}/${REPEATS}: restart gap, log forwarding, start-up and shutdown, for Monoceros, then each anchor…`);
    gapRuns.push(await benchRestartGap(bins));
    nodeFloor.push(benchNodeSpawnFloor(bins));
    json.push(await benchLogs(bins, "json"));
    plain.push(await benchLogs(bins, "plain"));
    // Start-up and shutdown the same way for Monoceros (as users run it: dist/monoceros), the floor and the anchors.
    startStop.push(await anchorStartAndStop(monocerosSubject(), bins.worker));
    floorStartStop.push(await anchorStartAndStop(floorSubject(bins.floor), bins.worker));
    // The anchors in the same round, so machine drift hits all alike (A B C A B C …).
    for (const anchor of anchors) {
      const runs = anchorRuns.get(anchor.name);
      // supervisord restarts on its 1 s poll: 20 restarts are enough to show it and keep make bench short.
      runs?.gaps.push(await anchorRestartGap(anchor, bins.worker, anchor.name === "supervisord" ? 20 : 200));
      runs?.startStop.push(await anchorStartAndStop(anchor, bins.worker));
    }
    for (const subject of subjects) {
      const runs = fileRuns.get(subject.name);
      runs?.json.push(await logsToFiles(subject, bins.worker, "json"));
      runs?.plain.push(await logsToFiles(subject, bins.worker, "plain"));
    }
  }
  for (const subject of subjects) {
    phase(`SIGKILL of ${subject.name} with 8 workers…`);
    const runs = fileRuns.get(subject.name);
    if (runs) runs.orphans = await orphansAfterSigkill(subject, bins.worker);
  }
  for (const anchor of anchors) {
    phase(`idle cost of ${anchor.name} (32 s)…`);
    const runs = anchorRuns.get(anchor.name);
    if (runs) runs.idle = await anchorIdle(anchor, bins.worker);
  }
  phase("idle cost of Monoceros and of the floor (2 × 32 s)…");
  const idle = await anchorIdle(monocerosSubject(), bins.worker);
  const floorIdle = await anchorIdle(floorSubject(bins.floor), bins.worker);
  phase("/metrics with 64 and 256 workers, and 64 workers of 4 processes…");
  const metrics64 = await benchMetrics(bins, 64, { cpuSeconds: 20 });
  const metrics256 = await benchMetrics(bins, 256);
  const metrics64x4 = await benchMetrics(bins, 64, { processesPerWorker: 4 });
  return { gapRuns, nodeFloor, json, plain, startStop, floorStartStop, idle, floorIdle, metrics64, metrics256, metrics64x4 };
})();

// Health checks and memory limits: 256 workers checked or sampled every second, and decision → SIGTERM.
const healthBin = bins === null ? null : buildHealthWorker();
const health: HealthReport | null = bins === null || healthBin === null ? null : await runHealthBench({ worker: bins.worker, health: healthBin }, { onPhase: phase });

let proxy: { overhead: Awaited<ReturnType<typeof benchProxyOverhead>>; balancing: Awaited<ReturnType<typeof benchLoadBalancing>> } | null = null;
if (haproxyAvailable()) {
  phase("proxy overhead and load-balancing quality (HAProxy)…");
  proxy = { overhead: await benchProxyOverhead(), balancing: await benchLoadBalancing() };
} else {
  console.log("bench: skipping the proxy benchmarks: haproxy is not installed (apt-get install haproxy)");
}

// Failed requests under load while workers are restarted, reloaded, scaled and killed; gunicorn beside.
phase("zero downtime under load (about 4 minutes)…");
const zeroDowntime = await runZeroDowntimeBench({ onPhase: (what) => phase(what) });

// Last: every run SIGKILLs a Monoceros in the middle of constant restarts.
const ORPHAN_RUNS = 20;
phase(`orphans: ${ORPHAN_RUNS} SIGKILLs of Monoceros during constant restarts…`);
const orphanSeed = Math.floor(Math.random() * 2 ** 31);
const orphans = await runOrphanProbe({ runs: ORPHAN_RUNS, seed: orphanSeed, onRun: (run) => console.log(`bench: ${describeRun(run, ORPHAN_RUNS)}`) });

const comparison = comparisonRows(comparisonInput());
const durationSeconds = Math.round((Date.now() - startedAt.getTime()) / 1000);
const results = {
  date: startedAt.toISOString(), durationSeconds, machine: machine(), simulator: sim, supervisor, health, proxy, zeroDowntime, orphans,
  anchors: Object.fromEntries([...anchorRuns].map(([name, runs]) => [name, { version: anchors.find((a) => a.name === name)?.version, ...runs }])),
  filesAndSigkill: Object.fromEntries(fileRuns),
  // Per scenario: each system's median, and Monoceros's figure divided by the floor's and each anchor's.
  comparison,
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
  const first = stats(supervisor.startStop.map((r) => r.firstMs)).median;
  const start = stats(supervisor.startStop.map((r) => r.startMs)).median;
  const shutdown = stats(supervisor.startStop.map((r) => r.shutdownMs)).median;
  const idleRssMiB = supervisor.idle.rssBytes / 2 ** 20;
  supervisorSection = `Same C worker (\`bench/c/worker.c\`) everywhere; each figure is the median of ${REPEATS} interleaved runs, with the range over runs.

| Scenario | Measure | Monoceros | Floor | Target | |
|---|---|---|---|---|---|
| Restart gap (worker exits 20 ms after start, 200 restarts; \`${RESTART_GAP_POLICY}\`, so this measures the raw restart path) | median gap exit → next start | ${range(supervisor.gapRuns.map((r) => r.monoceros.median), ms)} | ${range(supervisor.gapRuns.map((r) => r.floor.median), ms)} (bare fork+exec loop) | ≤ floor + 0.5 ms | ${verdict(gapMedian <= floorMedian + 0.5)} |
| | median gap of a bare Node.js spawn loop (same worker, pipes) | ${range(supervisor.nodeFloor.map((r) => r.median), ms)} | | | |
| | p99 gap | ${range(supervisor.gapRuns.map((r) => r.monoceros.p99), ms)} | ${range(supervisor.gapRuns.map((r) => r.floor.p99), ms)} | ≤ 3 ms | ${verdict(gapP99 <= 3)} |
| Log forwarding, JSON (4 workers × 200,000 lines of ~150 B) | lines/s until all arrived | ${range(supervisor.json.map((r) => r.linesPerSecond), (v) => Math.round(v).toLocaleString("en"))} | | ≥ 1,000,000/s | ${verdict(jsonRate >= 1_000_000)} |
| Log forwarding, plain text (same) | lines/s | ${range(supervisor.plain.map((r) => r.linesPerSecond), (v) => Math.round(v).toLocaleString("en"))} | | ≥ 1,000,000/s | ${verdict(plainRate >= 1_000_000)} |
| | lines lost (all runs) | ${lost} | | 0 | ${verdict(lost === 0)} |
| Idle, 32 sleeping workers, ${supervisor.idle.seconds} s (from 12 s after start) | CPU of Monoceros and its watchdog (all threads, schedstat) | ${supervisor.idle.cpuSeconds.toFixed(3)} s | ${supervisor.floorIdle.cpuSeconds.toFixed(3)} s (bench/c/floor.c supervising) | ≤ 0.01 s | ${verdict(supervisor.idle.cpuSeconds <= 0.01)} |
| | RSS of Monoceros and its watchdog | ${idleRssMiB.toFixed(1)} MiB | ${(supervisor.floorIdle.rssBytes / 2 ** 20).toFixed(1)} MiB | ≤ 35 MiB | ${verdict(idleRssMiB <= 35)} |
| | of which anonymous (the rest are pages of the node binary and libraries, shared by every Node process on the host) | ${(supervisor.idle.anonBytes / 2 ** 20).toFixed(1)} MiB | ${(supervisor.floorIdle.anonBytes / 2 ** 20).toFixed(1)} MiB | | |
| Start-up, 32 workers, no stagger (\`dist/monoceros\` run as users run it) | launch → first worker started | ${range(supervisor.startStop.map((r) => r.firstMs), ms)} | ${range(supervisor.floorStartStop.map((r) => r.firstMs), ms)} | ≤ 40 ms | ${verdict(first <= 40)} |
| | launch → last worker started | ${range(supervisor.startStop.map((r) => r.startMs), ms)} | ${range(supervisor.floorStartStop.map((r) => r.startMs), ms)} | ≤ 70 ms | ${verdict(start <= 70)} |
| Shutdown, 32 workers that exit on SIGTERM | SIGTERM → Monoceros gone | ${range(supervisor.startStop.map((r) => r.shutdownMs), ms)} | ${range(supervisor.floorStartStop.map((r) => r.shutdownMs), ms)} | ≤ 8 ms | ${verdict(shutdown <= 8)} |
| \`/metrics\` with 64 workers (100 sequential scrapes, ${Math.round(supervisor.metrics64.bytes / 1024)} KiB each) | median scrape time (p99) | ${ms(supervisor.metrics64.scrape.median)} (${ms(supervisor.metrics64.scrape.p99)}) | | ≤ 4.5 ms | ${verdict(supervisor.metrics64.scrape.median <= 4.5)} |
| \`/metrics\` with 256 workers (${Math.round(supervisor.metrics256.bytes / 1024)} KiB) | median scrape time (p99) | ${ms(supervisor.metrics256.scrape.median)} (${ms(supervisor.metrics256.scrape.p99)}) | | ≤ 15 ms | ${verdict(supervisor.metrics256.scrape.median <= 15)} |
| \`/metrics\` with 64 workers of ${supervisor.metrics64x4.processesPerWorker} processes each (a master and children; CPU, memory and fds summed over each group) | median scrape time (p99) | ${ms(supervisor.metrics64x4.scrape.median)} (${ms(supervisor.metrics64x4.scrape.p99)}) | | | |
| 64 workers scraped every second for 20 s | Monoceros CPU | ${(supervisor.metrics64.cpuPercentOfCore ?? NaN).toFixed(2)}% of a core | | < 1% | ${verdict((supervisor.metrics64.cpuPercentOfCore ?? Infinity) < 1)} |
`;
}

const markdown = `# Benchmarks

Latest run: ${startedAt.toISOString().slice(0, 10)} on ${results.machine}; the whole \`make bench\` took ${Math.round(durationSeconds / 60)} min.
Versions: ${versions()}.
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
## Health checks and memory limits

${health === null ? "Skipped: no C compiler to build the benchmark workers.\n" : healthSection(health, results.machine)}
## Proxy mode (HAProxy)

${proxySection()}
## Zero downtime under load

${zeroDowntimeSection(zeroDowntime, results.machine)}
## Orphans after a SIGKILL during constant restarts

${orphanSection(orphans)}
## What limits the figures

- **Restart gap** (issue 17: median ≤ floor + 0.5 ms, p99 ≤ 3 ms; the Go original: 1.30 ms). The
  floor is a C loop of fork, exec and waitpid. Node's own \`child_process.spawn\` (a loop that does
  nothing but respawn the same worker with pipes, measured above) already costs two to three times
  the floor: Node forks the whole (50 MiB) process, about 2.1 ms of the event loop per spawn in a CPU
  profile, builds the ChildProcess and its two pipe streams, and reports the exit through the event
  loop. Monoceros adds about 0.3–0.7 ms on top (the core's step, two log records, the watchdog's
  bookkeeping, waiting for both pipes to close so no line is lost). Reaching floor + 0.5 ms needs
  spawning outside Node's event loop: **not built** (see "A spawner outside the event loop" below).
  The p99 (the second-worst of 200 gaps) lands on either side of 5 ms from run to run on this shared
  2-core machine, where the worker, Monoceros and the bench share the cores (the bench polls the
  worker's time file only every 100 ms for that reason); the bare Node spawn loop's p99 is about 3.3
  ms; the rest of the tail is scheduling and an occasional 1 ms young-generation GC.
- **Cost of issue 12's exit path and orphan marker on the restart gap** (measured once, 2026-11-26,
  not re-run by \`make bench\`): the same C worker, 300 restarts a run, 4 interleaved rounds of three
  builds: before issue 12 (exit reported once both pipes closed, no marker), the new exit path
  (leader exit, then group and output facts, a \`kill(-pgid, 0)\` per exit) without the
  \`MONOCEROS_INSTANCE_ID\` marker, and the same with it. Medians per run: 2.48, 2.94, 3.25, 2.63 ms
  before; 2.64, 2.95, 2.78, 2.95 ms without the marker; 2.85, 3.42, 2.74, 2.71 ms with it (floor 0.90
  ms); p99 4.6–7.0 ms for all three. The differences are inside the run-to-run noise of this shared
  2-core machine: no cost could be measured, and the marker (one more environment entry) cannot cost
  more than the copy of the environment Node already makes per spawn. The 100-run orphan probe
  (\`npx tsx bench/orphans.ts --runs 100\`) left 0 processes in 0 of 100 runs; before the marker,
  22 of 50 runs each left one worker that was being spawned at the moment of the SIGKILL.
  Start-up and shutdown, same method (5 runs each, two rounds): launch → 32 workers started 136–147
  ms before, 147–161 ms after (about +12 ms: the 32 spawns take about 0.2 ms more each, as the larger
  bundle makes the forked process bigger, and the loader's SIGUSR1 guard loads \`node:inspector\`);
  shutdown of 32 workers 20–23 ms before, 22–28 ms after (each exit is now two core events: the
  leader's exit, then its output closed). Idle CPU and log throughput of the two builds were equal
  within noise (0.85–1.07 M JSON lines/s for both today; the table's figures vary as much between
  runs).
- **Start-up** (issue 17: first worker ≤ 40 ms, 32 workers ≤ 70 ms; the Go original: 12 and 29.6
  ms). Node 20 alone (\`node -e 0\`) takes about 38 ms to start here, so the first target is below
  Node's own floor. On this machine the environment also sets \`NODE_EXTRA_CA_CERTS\`, which makes
  every Node read and parse a file of TLS certificates before any JavaScript runs: about 80 ms (bare
  Node then takes 125 ms) and 2.5 MiB. \`dist/monoceros\` run as an executable is a shell line first
  that keeps that variable from Monoceros's own Node (which makes no TLS connection) and hands it
  back to the workers unchanged: launch → first worker went from 229 to 150 ms (medians of 7, with the
  variable set; \`node dist/monoceros\` still pays it), \`--version\` from 180 to 115 ms. The loader is
  CommonJS (Node's ES module loader cost about 7 ms). What is left, from a CPU profile of a start
  without the variable (2026-11-26): Node's bootstrap ~35 ms; the bundle's code cache deserialized
  ~14 ms; Node's built-in modules loaded by the bundle ~20 ms (\`http\`, \`child_process\`, \`net\`,
  \`cluster\` and \`worker_threads\` for prom-client, \`inspector\`…); every module's top level ~25 ms, of
  which zod's schema construction ~20 ms; loading the config ~10 ms; then the 32 spawns back to back,
  ~2.3 ms each (Node forking itself, as for the restart gap). Tried and not adopted: a V8 start-up
  snapshot of the evaluated bundle (\`node --snapshot-blob\`; it builds once \`node:http\` is loaded
  lazily): \`--version\` fell from 110 to 70 ms but the first worker only from 146 to 140 ms (what a
  start runs is compiled after deserialization, where the code cache already has it compiled), and
  the 7.6 MB blob fits only the exact Node binary that built it, so it would have to be built at
  install time and checked at every start.
- **Shutdown** (issue 17: ≤ 8 ms; the Go original: 5 ms; the C floor, which signals and reaps 32
  workers and forwards no output, 2–3 ms). Broken down with timestamps, 7 shutdowns of a build
  with tracing (2026-11-26): the SIGTERM reaches the JavaScript handler after 0.6–1.4 ms; the core's
  decision and the 32 group kills are done 2.5–3.9 ms after it. The workers die at once, but Node
  reads the end of their 64 output pipes and runs it through its stream machinery (end, finish,
  destroy) before it reports the first exit, 3.3–6.0 ms after the last kill; the 32 exits, with
  their records and core steps, take 3.1–5.6 ms; the pipes' "close" events, which Monoceros waits for
  so that no line is lost, 3.4–6.6 ms more; closing the admin server and control socket 1.3–3.4 ms
  and the last flush ~0.6 ms; then Node's exit, the kernel's teardown of the process and the bench
  noticing 5.2–7.6 ms (a bare Node that calls \`process.exit()\` is seen gone 4.1 ms later, 2.7 ms
  when it SIGKILLs itself, medians of 9). The traced build is slower (unminified, 21–31 ms in all,
  where the table's shipped build takes about 20), but the shares hold: some 10–18 ms go to Node's
  JavaScript per pipe and per exit, 5–8 ms to its exit. Tried and not adopted (2026-11-26): destroying each output
  pipe at its end instead of letting Node shut down its unused writable side first, and writing the
  orphan watchdog's removals of one loop turn in one write instead of one per exit: 18 shutdowns of
  each build, interleaved, medians 31.5 ms (neither), 31.7 (pipes) and 32.9 (both), inside this
  VM's spread of 17–98 ms those minutes, so no gain to show for the extra code. Reading the pipes
  below the stream layer, or in the spawner below, is what would remove most of it.
- **Idle memory** (issue 17: ≤ 35 MiB; the Go original: 14.3 MiB). Bare Node 20 idling holds 37.8
  MiB here (40.3 MiB with \`NODE_EXTRA_CA_CERTS\`), most of it the Node binary's own file-backed
  pages, so 35 MiB is below Node's floor. Monoceros with 32 workers: about 50 MiB for Node and 1.6 MiB
  for its orphan watchdog, counted since this run, as the issue counts all of a supervisor's
  processes (the watchdog was a bash script of 3.2 MiB; it is POSIX \`sh\` now, dash here). What that
  RSS is made of (smaps of an idle Monoceros with 32 workers, 2026-11-26): of 50.8 MiB, 37.8 MiB are
  clean pages of files, 34.3 MiB of them the node binary's and the rest its libraries', shared with
  every process that maps the same files (on a host, every Node process started from the same binary
  or image layer; a cgroup is charged only for the ones it faulted in first), and 13.0 MiB are
  anonymous: Monoceros's own. The table's "anonymous" row shows that share for every system. Above
  Node's floor: a ~10 MiB V8 heap (3.2 MiB code, 1.7 MiB strings with the 1 MB bundle source kept for
  lazy compilation), malloc and thread stacks; running without the code cache does not lower it (51.0
  and 50.8 MiB without, 49.7 and 49.8 MiB with, 2026-11-26). V8 flags, each with a
  code cache built for it, measured by hand (idle RSS of Node, 2 runs each, 2026-11-26): none 49.8
  MiB, \`--single-threaded\` 50.0, \`--max-semi-space-size=1 --single-threaded\` 49.7,
  \`--optimize-for-size --single-threaded\` 50.0; nor does \`MALLOC_ARENA_MAX=1\` (49.4): none helps
  (the launcher could pass any of them). Where in the range a run lands depends on when V8's memory
  reducer last ran.
- **Log forwarding.** Single-threaded: each chunk's whole lines are decoded at once, every line that
  looks like a JSON object is parsed with \`JSON.parse\` to know that it is one and whether it has
  \`worker_id\` (as the original does), and written in one batch per chunk. PM2 and supervisord copy
  bytes and are faster at it; PM2 loses lines of workers that exit right after writing, Monoceros
  and supervisord lose none.
- **Idle cost** (issue 17: ≤ 0.01 s of CPU per 20 s, all of the supervisor's processes). Measured
  from 12 s after start-up: Monoceros runs no poll of its own when nothing happens, and features not
  configured start nothing (no health check, memory sampling or CPU-spread sampling without a config
  or a reader asking for it: the CPU-spread advisor samples only while its report is read, and stops
  10 minutes after the last read). What remains is prom-client's event-loop-delay monitor, set to
  sample once a second (its default is 100 times a second), and an occasional GC.
- **A spawner outside the event loop** (not built; what the restart-gap, start-up and shutdown
  targets need). A small native process, started once, that forks and execs workers on request
  (setsid, user and group, folder, environment, the \`listen\` sockets), reaps them, and reports exits
  over a pipe, so the fork no longer copies Node's 50 MiB and the event loop only decides. It would
  also replace the shell watchdog (1.6 MiB) and keep its promise: when Monoceros's end of the pipe
  closes, kill every group. The workers' output sockets would come back to Node over Node's own IPC
  channel (the same handle passing \`child_process\` uses, as libuv makes worker pipes as Unix
  socketpairs), so log forwarding and "no line lost" stay in Node. It has to install without a
  compiler: prebuilt static binaries per platform in optional npm packages (as \`node-unix-socket\`
  ships its addon), falling back to Node's \`spawn\` where none fits. Measured floors it would be held
  to: fork+exec of the C worker ~0.8–1.2 ms here, 32 workers started in ~15 ms and stopped in 2–3 ms
  (bench/c/floor.c). A throwaway prototype (2026-11-26, not shipped: a C fork server reporting exits
  over a pipe, Node starting the next worker at once, no output sockets passed, no core) gave a
  median gap of 1.55–1.82 ms against a floor of 1.23–1.28 ms in the same minutes (3 runs of 200), where
  Node's own \`spawn\` loop gave 2.9 ms and Monoceros 3.2–3.6 ms: the spawner would cut about 1.5 ms,
  and with Monoceros's core and records on top it would still land near floor + 0.7 ms, short of
  floor + 0.5 ms. The p99 of every one of them, the floor's included (5–8 ms), was above 3 ms on this
  shared machine those minutes. It would not help start-up much either (the first worker waits for
  Node's start and the bundle, ~110 ms), nor shutdown (the output pipes' ends still go through Node's
  streams), so it was not built this time.
`;
writeFileSync("BENCHMARKS.md", markdown);

function versions(): string {
  const haproxy = (() => {
    try {
      return /version (\S+)/.exec(execFileSync("haproxy", ["-v"], { encoding: "utf8" }))?.[1] ?? "unknown";
    } catch {
      return "not installed";
    }
  })();
  return [`Monoceros ${monocerosSubject().version}`, ...anchors.map((a) => `${a.name} ${a.version}`), `HAProxy ${haproxy}`].join(", ");
}

function comparisonInput(): ComparisonInput {
  const med = (values: number[]) => (values.length === 0 ? undefined : stats(values).median);
  const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
  const fileValues = (name: string) => {
    const runs = fileRuns.get(name);
    return {
      logsJsonLinesPerSecond: med(runs?.json.map((r) => r.linesPerSecond) ?? []),
      logsPlainLinesPerSecond: med(runs?.plain.map((r) => r.linesPerSecond) ?? []),
      logLinesLost: runs ? sum([...runs.json, ...runs.plain].map((r) => r.lost)) : undefined,
      workersLeftAfterSigkill: runs?.orphans?.leftRunning,
    };
  };
  const startStopValues = (runs: StartStop[]) => ({
    firstWorkerMs: med(runs.map((r) => r.firstMs)),
    start32Ms: med(runs.map((r) => r.startMs)),
    stop32Ms: med(runs.map((r) => r.shutdownMs)),
  });
  const idleValues = (idle: Idle | undefined) => ({
    idleCpuSecondsPer20s: idle === undefined ? undefined : (idle.cpuSeconds / idle.seconds) * 20,
    idleRssMiB: idle === undefined ? undefined : idle.rssBytes / 2 ** 20,
    idleAnonMiB: idle === undefined ? undefined : idle.anonBytes / 2 ** 20,
  });
  if (supervisor === null) return { floor: {}, systems: [] };
  return {
    floor: {
      restartGapMedianMs: med(supervisor.gapRuns.map((r) => r.floor.median)),
      restartGapP99Ms: med(supervisor.gapRuns.map((r) => r.floor.p99)),
      ...startStopValues(supervisor.floorStartStop),
      ...idleValues(supervisor.floorIdle),
    },
    reference: GO_ORIGINAL,
    systems: [
      {
        name: "monoceros", label: "Monoceros",
        values: {
          restartGapMedianMs: med(supervisor.gapRuns.map((r) => r.monoceros.median)),
          restartGapP99Ms: med(supervisor.gapRuns.map((r) => r.monoceros.p99)),
          ...startStopValues(supervisor.startStop),
          ...idleValues(supervisor.idle),
          ...fileValues("monoceros"),
        },
      },
      ...anchors.map((anchor) => {
        const runs = anchorRuns.get(anchor.name);
        return {
          name: anchor.name, label: `${anchor.name === "pm2" ? "PM2" : anchor.name} ${anchor.version}`,
          values: {
            restartGapMedianMs: med(runs?.gaps.map((g) => g.median) ?? []),
            restartGapP99Ms: med(runs?.gaps.map((g) => g.p99) ?? []),
            ...startStopValues(runs?.startStop ?? []),
            ...idleValues(runs?.idle),
            ...fileValues(anchor.name),
          },
        };
      }),
    ],
  };
}

function anchorSection(): string {
  if (supervisor === null || anchors.length === 0) return "Skipped: no anchor installed.\n";
  return `The same C worker and scenarios for PM2 and supervisord, each configured for its fastest honest behaviour
(no restart delay or backoff, a huge restart budget: PM2 \`restart_delay 0, min_uptime 0\`, fork mode;
supervisord \`startsecs=0\`; Monoceros \`${RESTART_GAP_POLICY}\` in the restart-gap rounds), in the same rounds as Monoceros's
(A B C A B C …); medians of ${REPEATS} rounds.
In brackets: Monoceros's figure divided by the floor's, or by that anchor's (below 1 is better for Monoceros
in every row but lines/s, where above 1 is). The same figures, with the ratios, are in \`bench/results.json\`
under \`comparison\`.

${comparisonTable(comparisonInput(), comparison)}

How each row is measured:
- Restart gap, start and stop: as in the table above. PM2 is stopped with \`pm2 kill\` (its documented way),
  supervisord and Monoceros with SIGTERM. supervisord's gap is 20 restarts a round, not 200: it restarts on
  its one-second poll, and 200 would take minutes.
- Idle: CPU of every thread of the supervisor's own processes (PM2's daemon, supervisord, Monoceros and
  its orphan watchdog, the C floor) from 12 s after start, for 20 s; RSS at the end.
- Log forwarding into files: every system writes the workers' output to files (PM2's \`out_file\` with
  \`merge_logs\`, supervisord's \`stdout_logfile\` without rotation, Monoceros's stdout and stderr redirected
  to files). Each worker writes 200,000 lines as fast as it can and exits at once, its last lines still in
  the pipe. Lines per second from the first worker's start to the output files' last change; lines lost
  are those missing once the files stopped growing for a second. PM2 and supervisord copy bytes; Monoceros
  also parses every JSON line to add \`worker_id\`, and wraps every plain line in a JSON record with a
  timestamp (the original's record shapes), which costs it throughput.
- SIGKILL: 8 sleeping workers, then SIGKILL to the supervisor's process (PM2's daemon, supervisord,
  Monoceros; not Monoceros's orphan watchdog, which is there to outlive it); workers still running 3 s
  later are counted, then killed by the pid they recorded.
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

PM2 (fork mode) and supervisord have no proxy of their own: workers under either share a port the
way the first row does, with SO_REUSEPORT (PM2's cluster mode balances round-robin, but only Node.js
programs), so that row is also what they give.

Notes: at light load the proxied median came out no higher than the direct one: the latency the
proxy adds is below what this measurement resolves (both paths open a new connection per request;
the cause of the small inversion was not investigated). Under the mixed workload leastconn spreads
CPU very unevenly across workers (one did about ten times the work of another in this run) while
cutting the tail; why it concentrates the fast requests was not investigated either.
`;
}
console.log(markdown);
// A process left behind is a bug, not a figure: make bench fails (after writing its results).
if (orphans.orphans > 0) {
  console.error(`bench: ${orphans.orphans} processes outlived a SIGKILLed Monoceros in ${orphans.runsWithOrphans} of ${orphans.runs.length} runs (see BENCHMARKS.md)`);
  process.exitCode = 1;
}
