// Supervisor-mode benchmarks for Monoceros against the physical floor, with the same tiny C
// worker (bench/c/worker.c). Every process started here is killed by pid or process group.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const ROOT = resolve(new URL("..", import.meta.url).pathname);
const BIN = join(ROOT, "bench/bin");
const MONOCEROS = join(ROOT, "dist/monoceros");

export interface Stats {
  median: number;
  p99: number;
  min: number;
  max: number;
  n: number;
}

export function stats(values: number[]): Stats {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
  return { median: at(0.5), p99: at(0.99), min: sorted[0] ?? NaN, max: sorted.at(-1) ?? NaN, n: sorted.length };
}

/** Compiles the C worker and floor loop; null (with the reason printed) when there is no C compiler. */
export function buildWorkers(): { worker: string; floor: string } | null {
  mkdirSync(BIN, { recursive: true });
  const worker = join(BIN, "worker");
  const floor = join(BIN, "floor");
  try {
    execFileSync("cc", ["-O2", "-o", worker, join(ROOT, "bench/c/worker.c")]);
    execFileSync("cc", ["-O2", "-o", floor, join(ROOT, "bench/c/floor.c")]);
  } catch (error) {
    console.log(`bench: skipping supervisor benchmarks: cannot compile the C worker (${(error as Error).message.split("\n")[0]})`);
    return null;
  }
  return { worker, floor };
}

function folder(): string {
  return mkdtempSync(join(tmpdir(), "monoceros-bench-"));
}

function startMonoceros(yaml: string, stdio: "ignore" | "pipe" = "ignore"): ChildProcess {
  const dir = folder();
  writeFileSync(join(dir, "config.yaml"), yaml);
  return spawn(MONOCEROS, ["-c", join(dir, "config.yaml")], { stdio: ["ignore", stdio, stdio] });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const exited = (child: ChildProcess) => new Promise<void>((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once("exit", () => r())));

/** SIGTERM, SIGKILL after `killAfterMs`; resolves with the ms from the SIGTERM until the child is gone. */
export async function stopChild(child: ChildProcess, killAfterMs = 20_000): Promise<number> {
  const startedAt = performance.now();
  if (child.exitCode !== null || child.signalCode !== null) return 0;
  const done = exited(child);
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), killAfterMs);
  await done;
  clearTimeout(timer);
  return performance.now() - startedAt;
}

async function pollFor(probe: () => boolean, timeoutMs: number, intervalMs = 5): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (probe()) return true;
    await sleep(intervalMs);
  }
  return false;
}

/** The "start" and "exit" records of a worker's time file: times (ns) and the pids that started. */
export function timesFrom(file: string): { starts: bigint[]; exits: bigint[]; pids: number[] } {
  const lines = existsSync(file) ? readFileSync(file, "utf8").trim().split("\n").filter(Boolean) : [];
  const records = (what: string) => lines.filter((line) => line.startsWith(`${what} `)).map((line) => line.split(" "));
  return {
    starts: records("start").map((parts) => BigInt(parts[1] ?? "0")),
    exits: records("exit").map((parts) => BigInt(parts[1] ?? "0")),
    pids: records("start").map((parts) => Number(parts[2])),
  };
}

/** Gaps (ms) between each recorded exit and the next start, from a worker's time file. */
export function gapsFrom(file: string): number[] {
  const lines = existsSync(file) ? readFileSync(file, "utf8").trim().split("\n") : [];
  const gaps: number[] = [];
  let lastExitNs: bigint | null = null;
  for (const line of lines) {
    const [what, ns] = line.split(" ");
    if (what === "exit") lastExitNs = BigInt(ns ?? "0");
    if (what === "start" && lastExitNs !== null) {
      gaps.push(Number(BigInt(ns ?? "0") - lastExitNs) / 1e6);
      lastExitNs = null;
    }
  }
  return gaps;
}

/**
 * The restart path itself: `restart_policy: {backoff_initial: 0}`, so a worker that keeps crashing
 * is started again at once (the default policy backs off on a crash loop, which is what this worker is).
 */
export const RESTART_GAP_POLICY = "restart_policy: {backoff_initial: 0}";

export async function benchRestartGap(bins: { worker: string; floor: string }, restarts = 200): Promise<{ floor: Stats; monoceros: Stats }> {
  const floorFile = join(folder(), "times");
  execFileSync(bins.floor, [bins.worker, floorFile, String(restarts)]);
  const dir = folder();
  const monocerosFile = join(dir, "times");
  writeFileSync(
    join(dir, "config.yaml"),
    `supervisor:\n  workers:\n    - name: gap\n      replicas: 1\n      max_restarts: -1\n      ${RESTART_GAP_POLICY}\n      exec: ${bins.worker}\n      args: [restart, ${monocerosFile}]\n`,
  );
  // Monoceros's records into a file, not a pipe the bench would have to read while measuring.
  const records = openSync(join(dir, "records.log"), "a");
  const child = spawn(MONOCEROS, ["-c", join(dir, "config.yaml")], { stdio: ["ignore", "ignore", records] });
  closeSync(records);
  try {
    // Every 100 ms: re-reading the time file more often competes with what is measured for the 2 cores.
    await pollFor(() => gapsFrom(monocerosFile).length >= restarts || child.exitCode !== null, 60_000, 100);
    if (child.exitCode !== null) {
      const said = readFileSync(join(dir, "records.log"), "utf8").trim().split("\n").slice(-3).join("\n");
      throw new Error(`monoceros exited (code ${child.exitCode}) after ${gapsFrom(monocerosFile).length} of ${restarts} restarts:\n${said}`);
    }
  } finally {
    await stopChild(child);
  }
  return { floor: stats(gapsFrom(floorFile)), monoceros: stats(gapsFrom(monocerosFile).slice(0, restarts)) };
}

export async function benchLogs(bins: { worker: string }, format: "json" | "plain", linesPerWorker = 200_000, workers = 4): Promise<{ linesPerSecond: number; lost: number; seconds: number }> {
  const child = startMonoceros(
    `supervisor:\n  workers:\n    - name: log\n      replicas: ${workers}\n      max_restarts: -1\n      exec: ${bins.worker}\n      args: [log, "${linesPerWorker}", ${format}]\n`,
    "pipe",
  );
  const startedAt = performance.now();
  const expected = linesPerWorker * workers;
  let seen = 0;
  // JSON lines come out on stdout; plain ones as records on stderr (Monoceros's own records are few).
  const count = (chunk: Buffer) => {
    for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) seen++;
  };
  child.stdout?.on("data", format === "json" ? count : () => {});
  child.stderr?.on("data", format === "plain" ? count : () => {});
  const monocerosOwnLines = workers + 2; // "Admin endpoint listening", "Monoceros started", one "Worker started" per worker
  try {
    await pollFor(() => seen >= expected + (format === "plain" ? monocerosOwnLines : 0), 120_000);
  } finally {
    await stopChild(child);
  }
  const seconds = (performance.now() - startedAt) / 1000;
  const arrived = Math.min(seen - (format === "plain" ? monocerosOwnLines : 0), expected);
  return { linesPerSecond: Math.round(arrived / seconds), lost: expected - arrived, seconds };
}

/** CPU time of every thread of a process, in ns precision (schedstat); 0 for a process that is gone. */
export function cpuSeconds(pid: number): number {
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return 0;
  }
  let cpuNs = 0;
  for (const task of tasks) {
    try {
      cpuNs += Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, "utf8").split(" ")[0]);
    } catch {
      // a thread that ended meanwhile
    }
  }
  return cpuNs / 1e9;
}

/** A "<field>: <n> kB" figure of /proc/<pid>/status or smaps_rollup, in bytes; 0 for a process that is gone. */
export function procBytes(pid: number, file: "status" | "smaps_rollup", field: string): number {
  try {
    return Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/${file}`, "utf8"))?.[1] ?? 0) * 1024;
  } catch {
    return 0;
  }
}

/** The same restart loop done by Node's child_process directly, in a process of its own. */
export function benchNodeSpawnFloor(bins: { worker: string }, restarts = 200): Stats {
  const file = join(folder(), "times");
  execFileSync(process.execPath, [join(ROOT, "bench/node-floor.mjs"), bins.worker, file, String(restarts)]);
  return stats(gapsFrom(file));
}

/**
 * `/metrics` with many workers: scrape time (sequential scrapes), and CPU while scraped every
 * second. `processesPerWorker` > 1 gives each worker that many processes in its group (the C
 * worker's `family` mode), as a master with children has.
 */
export async function benchMetrics(bins: { worker: string }, workers: number, options: { scrapes?: number; cpuSeconds?: number; processesPerWorker?: number } = {}): Promise<{ scrape: Stats; bytes: number; cpuPercentOfCore: number | null; processesPerWorker: number }> {
  const port = 14_000 + Math.floor(Math.random() * 2_000); // below the ephemeral range (32768+)
  const processesPerWorker = options.processesPerWorker ?? 1;
  const args = processesPerWorker === 1 ? "[sleep]" : `[family, "${processesPerWorker}"]`;
  const child = startMonoceros(
    `admin:\n  port: ${port}\n  host: 127.0.0.1\nsupervisor:\n  workers:\n    - name: web\n      replicas: ${workers}\n      max_restarts: -1\n      exec: ${bins.worker}\n      args: ${args}\n`,
  );
  try {
    const url = `http://127.0.0.1:${port}/metrics`;
    const running = `monoceros_workerpool_worker_state{pool="web",state="running"} ${workers}`;
    let ready = false;
    for (let i = 0; i < 600 && !ready; i++) {
      try {
        ready = (await (await fetch(url)).text()).includes(running);
      } catch {
        // not listening yet
      }
      if (!ready) await sleep(50);
    }
    if (!ready) throw new Error(`monoceros did not report ${workers} running workers`);
    // Every worker's children forked too (running = the leader has started).
    if (!(await pollFor(() => everyGroupHas(child.pid as number, workers, processesPerWorker), 30_000, 50))) {
      throw new Error(`not every worker has ${processesPerWorker} processes`);
    }
    const times: number[] = [];
    let bytes = 0;
    for (let i = 0; i < (options.scrapes ?? 100); i++) {
      const startedAt = performance.now();
      const text = await (await fetch(url)).text();
      times.push(performance.now() - startedAt);
      bytes = text.length;
    }
    let cpuPercentOfCore: number | null = null;
    if (options.cpuSeconds !== undefined) {
      const before = cpuSeconds(child.pid as number);
      for (let second = 0; second < options.cpuSeconds; second++) {
        await (await fetch(url)).text();
        await sleep(1_000);
      }
      const after = cpuSeconds(child.pid as number);
      cpuPercentOfCore = ((after - before) / options.cpuSeconds) * 100;
    }
    return { scrape: stats(times), bytes, cpuPercentOfCore, processesPerWorker };
  } finally {
    await stopChild(child);
  }
}

/**
 * Whether Monoceros has `workers` worker children (the group leaders: setsid; its watchdog, a sh,
 * is left out by name) each with `size` processes in its group.
 */
function everyGroupHas(monocerosPid: number, workers: number, size: number): boolean {
  const sizes = new Map<number, number>();
  const leaders = new Set<number>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, "utf8");
    } catch {
      continue; // gone meanwhile
    }
    const [, ppid, pgrp] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (Number(ppid) === monocerosPid && stat.includes("(worker)")) leaders.add(Number(entry));
    sizes.set(Number(pgrp), (sizes.get(Number(pgrp)) ?? 0) + 1);
  }
  return leaders.size === workers && [...leaders].every((leader) => sizes.get(leader) === size);
}
