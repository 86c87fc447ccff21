// Health checks and memory limits: what an HTTP check of 256 workers every second, and a memory
// sample of 256 groups of 4 processes every second, cost Monoceros's own CPU; and how soon the
// worker gets its SIGTERM once a failed check (or a memory sample) has decided its restart.
// Workers are bench/c/health.c (an HTTP server that answers in microseconds) and bench/c/worker.c's
// family mode, so the figures are Monoceros's. Supervisor mode only: in proxy mode a worker in the
// rotation gets its SIGTERM rotationGraceMs (100 ms) after the decision, on purpose.
//
//   npx tsx bench/health.ts     (after node scripts/build.mjs; about 4 minutes)
//
// Every process a run starts carries a marker variable in its environment; whatever is left once
// Monoceros is gone is SIGKILLed by process group (or by pid, for a process outside a marked group).
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { stopMarkedRun } from "./marked-runs.js";
import { buildWorkers, stats, type Stats } from "./supervisor.js";

const ROOT = resolve(fileURLToPath(new URL("..", import.meta.url)));
const MONOCEROS = join(ROOT, "dist/monoceros");
const MARKER_NAME = "HEALTH_BENCH";
/** USER_HZ, the unit of utime and stime in /proc/<pid>/stat. */
const TICKS_PER_SECOND = 100;
const WORKERS = 256;
/**
 * A window starts this long after Monoceros did (and at least a second after all workers are
 * ready): V8's memory reducer runs a few full GCs 8–10 s after start-up, once (the idle benchmark
 * measures from 12 s after start for the same reason).
 */
const WINDOW_AFTER_START_MS = 12_000;
const PROCESSES_PER_GROUP = 4;
const POOL = "web";

export interface CpuRun {
  scenario: "baseline" | "http" | "memory";
  windowSeconds: number;
  /** utime + stime of the Monoceros process (all its threads) over the window, % of one core. */
  cpuPercentOfCore: number;
  /** All cores' busy time over the window (Monoceros, its workers and anything else on the machine), % of all cores. */
  machineBusyPercent: number;
  /** Health checks counted by /metrics during the window, by result (http only). */
  checks?: { ok: number; fail: number; timeout: number };
  /** Median resident memory of a worker's group as Monoceros last sampled it (memory only). */
  sampledGroupRssBytes?: number;
}

export interface LatencyRun {
  cause: "health" | "memory";
  restarts: number;
  /** From the worker sending the deciding 503 to its SIGTERM handler (health only). */
  fromFailedCheck?: Stats & { p90: number };
  /** From the "Restarting worker" record's time to the worker's SIGTERM handler. */
  fromRecord: Stats & { p90: number };
}

export interface HealthReport {
  rounds: number;
  cpu: CpuRun[];
  latency: LatencyRun[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Compiles the health worker beside the others; null (with the reason printed) when there is no C compiler. */
export function buildHealthWorker(): string | null {
  const bin = join(ROOT, "bench/bin/health");
  mkdirSync(join(ROOT, "bench/bin"), { recursive: true });
  try {
    execFileSync("cc", ["-O2", "-o", bin, join(ROOT, "bench/c/health.c")]);
  } catch (error) {
    console.log(`bench: skipping the health benchmarks: cannot compile the health worker (${(error as Error).message.split("\n")[0]})`);
    return null;
  }
  return bin;
}

interface Run {
  child: ChildProcess;
  dir: string;
  markerName: string;
  marker: string;
  adminPort: number;
}

/** Below the ephemeral range (32768+), apart from the other benches' 14,000–16,000. */
const randomPort = (from: number, span: number) => from + Math.floor(Math.random() * span);

function startMonoceros(pool: string, adminPort: number): Run {
  const dir = mkdtempSync(join(tmpdir(), "monoceros-health-"));
  const marker = randomBytes(8).toString("hex");
  writeFileSync(join(dir, "config.yaml"), `admin:\n  port: ${adminPort}\n  host: 127.0.0.1\nsupervisor:\n  workers:\n    - name: ${POOL}\n${pool}`);
  // Records into a file: read afterwards, never by the bench while it measures.
  const records = openSync(join(dir, "records.log"), "a");
  const child = spawn(MONOCEROS, ["-c", join(dir, "config.yaml")], {
    env: { ...process.env, [MARKER_NAME]: marker },
    stdio: ["ignore", "ignore", records],
  });
  closeSync(records);
  return { child, dir, markerName: MARKER_NAME, marker, adminPort };
}



/** Busy and total time of all cores so far (the "cpu" line of /proc/stat), in ticks. */
function machineTicks(): { busy: number; total: number } {
  const ticks = (readFileSync("/proc/stat", "latin1").split("\n")[0] ?? "").trim().split(/\s+/).slice(1).map(Number);
  const total = ticks.reduce((a, b) => a + b, 0);
  return { busy: total - (ticks[3] ?? 0) - (ticks[4] ?? 0), total }; // idle and iowait are not busy
}

/** utime + stime of the process (every thread of it), seconds. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

interface StatusWorker { pid: number | null; state: string; ready: boolean; memory: { rss_bytes: number | null } | null }

/** The pool's workers; not its vacant slots (a pool has max_surge of them, listed by /status since issue 14). */
async function workersOf(run: Run): Promise<StatusWorker[]> {
  const status = (await (await fetch(`http://127.0.0.1:${run.adminPort}/status`)).json()) as { pools: { workers: StatusWorker[] }[] };
  return (status.pools[0]?.workers ?? []).filter((worker) => worker.state !== "vacant");
}

/** Until every worker is ready (passed a check, or runs when there is none) and its group has `size` processes; bounded. */
async function waitForReady(run: Run, workers: number, size: number): Promise<StatusWorker[]> {
  const deadline = performance.now() + 60_000;
  while (performance.now() < deadline) {
    if (run.child.exitCode !== null) throw new Error(`monoceros exited (code ${run.child.exitCode}): ${lastRecords(run)}`);
    try {
      const list = await workersOf(run);
      if (list.length === workers && list.every((w) => w.ready) && groupsComplete(list, size)) return list;
    } catch {
      // not listening yet
    }
    await sleep(250);
  }
  throw new Error(`not every one of ${workers} workers became ready (with ${size} processes each) within 60 s`);
}

function groupsComplete(workers: StatusWorker[], size: number): boolean {
  if (size === 1) return true;
  const sizes = new Map<number, number>(workers.map((w) => [w.pid ?? -1, 0]));
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "latin1");
      const pgrp = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[2]);
      const count = sizes.get(pgrp);
      if (count !== undefined) sizes.set(pgrp, count + 1);
    } catch {
      // gone meanwhile
    }
  }
  return [...sizes.values()].every((count) => count === size);
}

function lastRecords(run: Run): string {
  const file = join(run.dir, "records.log");
  return existsSync(file) ? readFileSync(file, "utf8").trim().split("\n").slice(-3).join("\n") : "(no records)";
}

async function checkCounts(run: Run): Promise<{ ok: number; fail: number; timeout: number }> {
  const text = await (await fetch(`http://127.0.0.1:${run.adminPort}/metrics`)).text();
  const count = (result: string) => Number(new RegExp(`^monoceros_workerpool_health_checks_total\\{[^}]*result="${result}"[^}]*\\} (\\d+)`, "m").exec(text)?.[1] ?? NaN);
  return { ok: count("ok"), fail: count("fail"), timeout: count("timeout") };
}

/**
 * Monoceros's CPU over windowSeconds, from WINDOW_AFTER_START_MS: with nothing
 * checked or sampled (baseline, 256 groups of 4 processes), with an HTTP check of each every
 * second, or with memory sampled every second (limit 1 GiB, never reached; 256 groups of 4).
 */
export async function benchCpu(bins: { worker: string; health: string }, scenario: CpuRun["scenario"], windowSeconds = 30): Promise<CpuRun> {
  const startPort = randomPort(20_000, 10_000);
  const pool = {
    baseline: `      exec: ${bins.worker}\n      args: [family, "${PROCESSES_PER_GROUP}"]\n`,
    http: `      exec: ${bins.health}\n      args: [serve]\n      health_check: {http: {path: /health, start_port: ${startPort}}, interval: 1s, timeout: 500ms}\n`,
    memory: `      exec: ${bins.worker}\n      args: [family, "${PROCESSES_PER_GROUP}"]\n      limits: {memory: 1GiB}\n`,
  }[scenario];
  const startedAtMs = performance.now();
  const run = startMonoceros(`      replicas: ${WORKERS}\n      max_restarts: -1\n${pool}`, randomPort(16_000, 2_000));
  try {
    await waitForReady(run, WORKERS, scenario === "http" ? 1 : PROCESSES_PER_GROUP);
    await sleep(Math.max(1_000, startedAtMs + WINDOW_AFTER_START_MS - performance.now()));
    const checksBefore = scenario === "http" ? await checkCounts(run) : null;
    const pid = run.child.pid as number;
    const before = { cpu: cpuSeconds(pid), atMs: performance.now(), machine: machineTicks() };
    await sleep(windowSeconds * 1000);
    const after = { cpu: cpuSeconds(pid), atMs: performance.now(), machine: machineTicks() };
    const seconds = (after.atMs - before.atMs) / 1000;
    const machineBusyPercent = ((after.machine.busy - before.machine.busy) / (after.machine.total - before.machine.total)) * 100;
    const result: CpuRun = { scenario, windowSeconds: seconds, cpuPercentOfCore: ((after.cpu - before.cpu) / seconds) * 100, machineBusyPercent };
    if (checksBefore !== null) {
      const checksAfter = await checkCounts(run);
      result.checks = { ok: checksAfter.ok - checksBefore.ok, fail: checksAfter.fail - checksBefore.fail, timeout: checksAfter.timeout - checksBefore.timeout };
    }
    if (scenario === "memory") result.sampledGroupRssBytes = stats((await workersOf(run)).map((w) => w.memory?.rss_bytes ?? NaN)).median;
    if (run.child.exitCode !== null) throw new Error(`monoceros exited during the window: ${lastRecords(run)}`);
    return result;
  } finally {
    await stopMarkedRun(run);
  }
}

/**
 * Restarts decided by a failed HTTP check (each worker answers 503 from 700 ms after start;
 * interval 200 ms, failure_threshold 1) or by memory (each worker holds 24 MiB, the limit is
 * 16 MiB; 3 samples a second apart decide, and the default max_unavailable of 1 restarts them one
 * at a time): times from the decision to the worker's SIGTERM handler, as the worker and
 * Monoceros's records tell them.
 */
export async function benchLatency(bins: { health: string }, cause: LatencyRun["cause"], restarts = 24): Promise<LatencyRun> {
  const dir = mkdtempSync(join(tmpdir(), "monoceros-health-times-"));
  const times = join(dir, "times");
  const workers = cause === "health" ? 8 : 12;
  const pool = cause === "health"
    ? `      exec: ${bins.health}\n      args: [fail, "700", ${times}]\n      health_check: {http: {path: /health, start_port: ${randomPort(20_000, 10_000)}}, interval: 200ms, timeout: 100ms, failure_threshold: 1}\n`
    : `      exec: ${bins.health}\n      args: [memory, "24", ${times}]\n      limits: {memory: 16MiB}\n`;
  const run = startMonoceros(`      replicas: ${workers}\n      max_restarts: -1\n${pool}`, randomPort(16_000, 2_000));
  let records: string;
  try {
    const deadline = performance.now() + 60_000;
    while (timesOf(times, "sigterm").length < restarts && performance.now() < deadline && run.child.exitCode === null) await sleep(100);
  } finally {
    records = existsSync(join(run.dir, "records.log")) ? readFileSync(join(run.dir, "records.log"), "utf8") : "";
    await stopMarkedRun(run);
  }
  // The run's own SIGTERMs only: those of the shutdown came after the last decision.
  const decisions = recordsOf(records, cause === "health" ? "Restarting worker: it failed its health check" : "Restarting worker: its memory stayed over limits.memory");
  const sigterms = timesOf(times, "sigterm").filter((s) => decisions.has(s.pid));
  const fails = timesOf(times, "fail");
  rmSync(dir, { recursive: true, force: true });
  if (sigterms.length < restarts) throw new Error(`only ${sigterms.length} of ${restarts} ${cause} restarts within 60 s`);
  const fromRecord = sigterms.map((s) => (s.ns - (decisions.get(s.pid) as number)) / 1e6);
  const result: LatencyRun = { cause, restarts: sigterms.length, fromRecord: withP90(fromRecord) };
  if (cause === "health") {
    const fromFailedCheck = sigterms.map((s) => {
      const deciding = fails.filter((f) => f.pid === s.pid && f.ns <= s.ns).reduce((a, b) => (b.ns > a ? b.ns : a), 0);
      if (deciding === 0) throw new Error(`worker ${s.pid} got its SIGTERM for a failed check but recorded no 503`);
      return (s.ns - deciding) / 1e6;
    });
    result.fromFailedCheck = withP90(fromFailedCheck);
  }
  return result;
}

function withP90(values: number[]): Stats & { p90: number } {
  const sorted = [...values].sort((a, b) => a - b);
  return { ...stats(values), p90: sorted[Math.min(sorted.length - 1, Math.floor(0.9 * sorted.length))] ?? NaN };
}

/** "<what> <ns> <pid>" lines of the health worker's times file. */
function timesOf(file: string, what: string): { ns: number; pid: number }[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, "utf8").split("\n").filter((line) => line.startsWith(`${what} `)).map((line) => {
    const [, ns, pid] = line.split(" ");
    return { ns: Number(ns), pid: Number(pid) };
  });
}

/** The time (epoch ns) of each record with this message, by the worker's pid. */
function recordsOf(text: string, message: string): Map<number, number> {
  const byPid = new Map<number, number>();
  for (const line of text.split("\n")) {
    if (!line.includes(message)) continue;
    const record = JSON.parse(line) as { ts: number; pid: number };
    byPid.set(record.pid, Math.round(record.ts * 1e9));
  }
  return byPid;
}

/** Every scenario, `rounds` times, interleaved (baseline, http, memory, then both latencies). */
export async function runHealthBench(bins: { worker: string; health: string }, options: { rounds?: number; baselineSeconds?: number; onPhase?: (what: string) => void } = {}): Promise<HealthReport> {
  const rounds = options.rounds ?? 2;
  const report: HealthReport = { rounds, cpu: [], latency: [] };
  for (let round = 1; round <= rounds; round++) {
    for (const scenario of ["baseline", "http", "memory"] as const) {
      const windowSeconds = scenario === "baseline" ? options.baselineSeconds ?? 10 : 30;
      options.onPhase?.(`health round ${round}/${rounds}: Monoceros's CPU, ${WORKERS} workers, ${scenario} (${windowSeconds} s)…`);
      report.cpu.push(await benchCpu(bins, scenario, windowSeconds));
    }
    for (const cause of ["health", "memory"] as const) {
      options.onPhase?.(`health round ${round}/${rounds}: decision → SIGTERM, ${cause}…`);
      report.latency.push(await benchLatency(bins, cause));
    }
  }
  return report;
}

/** The BENCHMARKS.md section (make bench); `machine` as the page's header names it. */
export function healthSection(report: HealthReport, machine: string): string {
  const pct = (value: number) => `${value.toFixed(2)}%`;
  const ms = (value: number) => `${value.toFixed(2)} ms`;
  const list = (values: number[], format: (v: number) => string) => values.map(format).join(", ");
  /** "met" when every run met the target, else in how many it was missed. */
  const verdict = (values: number[], target: number) => {
    const missed = values.filter((v) => !(v <= target)).length;
    return missed === 0 ? "met" : `**missed** in ${missed} of ${values.length} runs`;
  };
  const runsOf = (scenario: CpuRun["scenario"]) => report.cpu.filter((r) => r.scenario === scenario);
  const cpuOf = (scenario: CpuRun["scenario"]) => runsOf(scenario).map((r) => r.cpuPercentOfCore);
  // Each round's baseline is subtracted from the same round's figure.
  const overBaseline = (scenario: CpuRun["scenario"]) => cpuOf(scenario).map((v, round) => v - (cpuOf("baseline")[round] ?? NaN));
  const checked = runsOf("http").map((r) => r.checks ?? { ok: 0, fail: 0, timeout: 0 });
  const checksPerSecond = runsOf("http").map((r, i) => ((checked[i]?.ok ?? 0) + (checked[i]?.fail ?? 0) + (checked[i]?.timeout ?? 0)) / r.windowSeconds);
  const failedChecks = checked.reduce((sum, c) => sum + c.fail + c.timeout, 0);
  const sampledMiB = runsOf("memory").map((r) => (r.sampledGroupRssBytes ?? NaN) / 2 ** 20);
  const busy = report.cpu.map((r) => r.machineBusyPercent);
  const latencyRow = (label: string, values: (Stats & { p90: number })[], withTarget: boolean) =>
    `| ${label} | ${list(values.map((v) => v.median), ms)} | ${list(values.map((v) => v.p90), ms)} | ${list(values.map((v) => v.max), ms)} | ${withTarget ? `≤ 10 ms median | ${verdict(values.map((v) => v.median), 10)}` : " | "} |`;
  const health = report.latency.filter((r) => r.cause === "health");
  const memoryRuns = report.latency.filter((r) => r.cause === "memory");
  return `\`bench/health.ts\` (alone: \`npx tsx bench/health.ts\`, about 4 minutes), on ${machine}; supervisor mode,
${report.rounds} interleaved rounds, every run's figure listed in order. The workers are \`bench/c/health.c\`, a C server that
answers every HTTP request on its \`MONOCEROS_HEALTH_PORT\` at once, and \`bench/c/worker.c family ${PROCESSES_PER_GROUP}\` (a leader and
${PROCESSES_PER_GROUP - 1} forked children, all asleep), so the CPU is Monoceros's: utime + stime of the Monoceros process (every
thread) from \`/proc/<pid>/stat\` (10 ms ticks), over a window from ${WINDOW_AFTER_START_MS / 1000} s after its start (all ${WORKERS} workers ready
by then; V8's memory reducer has run its few start-up GCs).

| Scenario, ${WORKERS} workers | Monoceros CPU per run, % of a core | minus the round's baseline | Target | |
|---|---|---|---|---|
| Baseline: ${WORKERS} groups of ${PROCESSES_PER_GROUP} processes, no check, no limit (${runsOf("baseline")[0]?.windowSeconds.toFixed(0)} s windows) | ${list(cpuOf("baseline"), pct)} | | | |
| HTTP check of each every second (\`interval: 1s, timeout: 500ms\`; ${list(checksPerSecond, (v) => v.toFixed(1))} checks/s counted by \`/metrics\`, ${failedChecks} failed) | ${list(cpuOf("http"), pct)} | ${list(overBaseline("http"), pct)} | ≤ 5% | ${verdict(cpuOf("http"), 5)} |
| Memory of each group sampled every second (\`limits: {memory: 1GiB}\`, never reached; ${WORKERS * PROCESSES_PER_GROUP} processes; ${list(sampledMiB, (v) => `${v.toFixed(1)} MiB`)} per group as sampled) | ${list(cpuOf("memory"), pct)} | ${list(overBaseline("memory"), pct)} | ≤ 2% | ${verdict(cpuOf("memory"), 2)} |

The whole machine was ${pct(Math.min(...busy))}–${pct(Math.max(...busy))} busy in these windows (all cores; Monoceros, its workers and
anything else running included).

Decision → SIGTERM, per run (${list(report.latency.map((r) => r.restarts), String)} restarts in the runs, in the order health, memory, health, memory…):

| From | median | p90 | max | Target | |
|---|---|---|---|---|---|
${latencyRow("the worker sending the deciding 503 to its SIGTERM handler (8 workers that answer 503 from 700 ms after start; `interval: 200ms, timeout: 100ms, failure_threshold: 1`)", health.flatMap((r) => (r.fromFailedCheck === undefined ? [] : [r.fromFailedCheck])), true)}
${latencyRow("its \"Restarting worker: it failed its health check…\" record to the SIGTERM handler", health.map((r) => r.fromRecord), false)}
${latencyRow("the \"Restarting worker: its memory stayed over limits.memory\" record to the SIGTERM handler (12 workers holding 24 MiB, limit 16 MiB, the default `max_unavailable: 1`)", memoryRuns.map((r) => r.fromRecord), true)}

The worker takes its times with CLOCK_REALTIME; a record's \`ts\` is Monoceros's \`Date.now()\` (1 ms steps), so the
record rows are good to about a millisecond. The first row's tail is the time from the 503 to Monoceros reading it:
workers started together fail together, and Monoceros handles the others' exits and starts their replacements first
(Node's \`spawn\` is synchronous, 2–5 ms each here); the second row is the part from the decision on. A memory restart
is decided by the third sample over the limit a second apart; that interval is not part of these figures. With
\`max_unavailable: 1\` the twelve workers over the limit are restarted one after another (each waits until the one
before has started again), so each SIGTERM is decided alone. When one sample decides twelve at once
(\`max_unavailable: 12\`; measured once, not re-run), their records are written over about 5 ms and their SIGTERMs come
a median 4 ms (workers of 12 MiB) to 10 ms (80 MiB) after their records, up to 11 and 28 ms: the two cores run
Monoceros, twelve exits freeing their memory and the signalled workers at once. In proxy mode a worker in the rotation
leaves it first and gets its SIGTERM \`rotationGraceMs\` (100 ms) after the decision, on purpose: measured here in
supervisor mode only.

Where the CPU goes (profiled once, 2026-11-26, not re-run by \`make bench\`, with \`node --cpu-prof dist/monoceros\`; Monoceros
leaves SIGPROF to V8's profiler when it was asked for):
- **HTTP checks**, about 190–200 µs of Monoceros's CPU per check. Self time: \`connect()\` 33%, the request's \`write()\` 25%,
  \`close()\` 10%: two thirds of it is the kernel doing loopback TCP (the handshake, the delivery to the worker and the
  teardown run in the caller's system calls); the rest is \`net.Socket\` and stream set-up, the core's step and timers,
  and GC (4%). For scale, the same connect, write, read and close in a tight loop cost 58–66 µs of CPU per probe from
  a C client and 100–140 µs from a bare Node \`net.connect\` loop: at 256 checks/s that is 1.5–1.7% and 2.6–3.5% of a core.
- **Memory samples**, 18–23 ms of CPU per sample with 1,100 to 1,300 processes on the machine, 97% of it in
  \`groupRssBytes\`: \`read()\` 31%, \`open()\` 26%, \`close()\` 10% and \`readdir()\` 4% of \`/proc\`, parsing the stat
  lines about 15%. Not tried: keeping each \`/proc/<pid>/stat\` open and reading it again at offset 0 (the kernel
  regenerates it; once the process is gone a read fails with ESRCH, so a reused pid never reaches an old descriptor) would save the open and close, about a third,
  for one descriptor per process on the machine.
`;
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const workers = buildWorkers();
  const health = buildHealthWorker();
  if (workers === null || health === null) process.exit(1);
  const startedAt = performance.now();
  const report = await runHealthBench({ worker: workers.worker, health }, { onPhase: (what) => console.log(`health [${((performance.now() - startedAt) / 1000).toFixed(0)} s]: ${what}`) });
  console.log(JSON.stringify(report, null, 2));
  console.log(healthSection(report, "this machine"));
}
