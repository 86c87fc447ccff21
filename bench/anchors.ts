// The same benchmark scenarios for what users would otherwise run: PM2 (npm dev dependency) and
// supervisord (Debian's `supervisor`, installed by the bench when missing and root). Each anchor is
// configured for its fastest honest behaviour: no restart delay or backoff, a large restart budget.
// Monoceros goes through the same interface for the scenarios where all three write worker output
// to files and are SIGKILLed. Every process started is stopped by pid (PM2's daemon, supervisord,
// Monoceros; workers left behind by a SIGKILLed supervisor by their recorded pid).
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { findExecutable } from "../src/backends/os/executable.js";
import { childrenOf } from "./marked-runs.js";
import { cpuSeconds, gapsFrom, procBytes, stats, stopChild, timesFrom, type Stats } from "./supervisor.js";

const ROOT = resolve(new URL("..", import.meta.url).pathname);
const PM2 = join(ROOT, "node_modules/.bin/pm2");
const MONOCEROS = join(ROOT, "dist/monoceros");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export type AnchorName = "monoceros" | "pm2" | "supervisord" | "floor";

export interface Anchor {
  name: AnchorName;
  version: string;
  /** Starts `replicas` copies of `worker args…`; resolves once the supervisor itself runs. */
  start(worker: string, args: string[], replicas: number): Promise<Running>;
}

export interface Running {
  /**
   * Pids of the supervisor's own processes, for CPU and memory: the supervisor itself first (the one
   * a SIGKILL is sent to), then its helpers (Monoceros's orphan watchdog).
   */
  supervisorPids(): number[];
  /** The files the workers' stdout and stderr end up in (with the supervisor's own records, for Monoceros). */
  outputFiles(): string[];
  /** Stops everything; resolves when the supervisor is gone. Returns ms from the request to gone. */
  stop(): Promise<number>;
}

function folder(): string {
  return mkdtempSync(join(tmpdir(), "monoceros-anchor-"));
}

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return !["Z", "X"].includes(stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3));
  } catch {
    return false;
  }
}

async function untilGone(pids: number[], timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (pids.some(alive) && performance.now() < deadline) await sleep(1);
}

export function pm2Anchor(): Anchor | null {
  if (!existsSync(PM2)) return null;
  // Read from its package: `pm2 --version` would start a daemon.
  const version = (JSON.parse(readFileSync(join(ROOT, "node_modules/pm2/package.json"), "utf8")) as { version: string }).version;
  return {
    name: "pm2",
    version,
    async start(worker, args, replicas) {
      const home = folder();
      const env = { ...process.env, PM2_HOME: home, PM2_DISABLE_VERSION_CHECK: "true" };
      const ecosystem = join(home, "ecosystem.json");
      writeFileSync(ecosystem, JSON.stringify({
        apps: [{
          name: "bench", script: worker, args, interpreter: "none", instances: replicas, exec_mode: "fork",
          autorestart: true, restart_delay: 0, min_uptime: 0, max_restarts: 1_000_000, kill_timeout: 5_000,
          out_file: join(home, "out.log"), error_file: join(home, "err.log"), merge_logs: true,
        }],
      }));
      execFileSync(process.execPath, [PM2, "start", ecosystem], { env, stdio: "ignore" });
      const daemonPid = Number(readFileSync(join(home, "pm2.pid"), "utf8"));
      return {
        supervisorPids: () => [daemonPid],
        outputFiles: () => filesIn(home, /^(out|err).*\.log$/),
        async stop() {
          const startedAt = performance.now();
          if (!alive(daemonPid)) return 0;
          execFileSync(process.execPath, [PM2, "kill"], { env, stdio: "ignore" });
          await untilGone([daemonPid], 20_000);
          return performance.now() - startedAt;
        },
      };
    },
  };
}

export function supervisordAnchor(): Anchor | null {
  const found = findExecutable("supervisord");
  if (!found.ok) return null;
  const version = execFileSync(found.path, ["--version"], { encoding: "utf8" }).trim();
  return {
    name: "supervisord",
    version,
    async start(worker, args, replicas) {
      const home = folder();
      const conf = join(home, "supervisord.conf");
      writeFileSync(conf, [
        "[supervisord]", `logfile=${join(home, "supervisord.log")}`, `pidfile=${join(home, "supervisord.pid")}`, "nodaemon=true", "",
        "[program:bench]", `command=${[worker, ...args].join(" ")}`, `numprocs=${replicas}`, "process_name=%(program_name)s_%(process_num)02d",
        "autostart=true", "autorestart=true", "startsecs=0", "startretries=1000000", "stopsignal=TERM", "stopwaitsecs=5",
        // One file per process, never rotated (rotation would drop lines from the count).
        `stdout_logfile=${join(home, "out_%(process_num)02d.log")}`, `stderr_logfile=${join(home, "err_%(process_num)02d.log")}`,
        "stdout_logfile_maxbytes=0", "stderr_logfile_maxbytes=0", "",
      ].join("\n"));
      const child: ChildProcess = spawn(found.path, ["-c", conf], { stdio: "ignore" });
      const pid = child.pid as number;
      return {
        supervisorPids: () => [pid],
        outputFiles: () => filesIn(home, /^(out|err)_\d+\.log$/),
        stop: () => stopChild(child),
      };
    },
  };
}

/**
 * The floor for start-up, shutdown and idle: bench/c/floor.c's `supervise` mode forks and execs the
 * workers, sleeps, and on SIGTERM signals every group and reaps them; it forwards no output.
 */
export function floorSubject(floor: string): Anchor {
  return {
    name: "floor",
    version: "C",
    async start(worker, args, replicas) {
      const child = spawn(floor, ["supervise", String(replicas), worker, ...args], { stdio: "ignore" });
      return { supervisorPids: () => [child.pid as number], outputFiles: () => [], stop: () => stopChild(child) };
    },
  };
}

/** Monoceros itself, its stdout and stderr going to files like the anchors' worker output. */
export function monocerosSubject(): Anchor {
  const version = execFileSync(MONOCEROS, ["--version"], { encoding: "utf8" }).trim().split(" ")[1] ?? "unknown";
  return {
    name: "monoceros",
    version,
    async start(worker, args, replicas) {
      const home = folder();
      const config = join(home, "config.yaml");
      writeFileSync(config, `supervisor:\n  workers:\n    - name: bench\n      replicas: ${replicas}\n      max_restarts: -1\n      exec: ${worker}\n      args: [${args.map((a) => JSON.stringify(a)).join(", ")}]\n`);
      const out = openSync(join(home, "out.log"), "a");
      const err = openSync(join(home, "err.log"), "a");
      const child = spawn(MONOCEROS, ["-c", config], { stdio: ["ignore", out, err] });
      closeSync(out);
      closeSync(err);
      return {
        // Its watchdog (a sh of its own, see src/backends/os/watchdog.ts) is one of its processes too.
        supervisorPids: () => [child.pid as number, ...childrenOf(child.pid as number, "sh")],
        outputFiles: () => [join(home, "out.log"), join(home, "err.log")],
        stop: () => stopChild(child),
      };
    },
  };
}

function filesIn(home: string, name: RegExp): string[] {
  return readdirSync(home).filter((file) => name.test(file)).map((file) => join(home, file));
}

/** Installs supervisord from Debian's packages when missing and root; never fails. */
export function ensureSupervisord(): void {
  if (findExecutable("supervisord").ok || process.getuid?.() !== 0) return;
  try {
    execFileSync("apt-get", ["install", "-y", "-q", "supervisor"], { stdio: "ignore", env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } });
  } catch {
    // reported as a skipped anchor
  }
}

/** Restart gap (ms) under an anchor: a worker that exits 20 ms after start, `restarts` times. */
export async function anchorRestartGap(anchor: Anchor, worker: string, restarts = 200): Promise<Stats> {
  const file = join(folder(), "times");
  const running = await anchor.start(worker, ["restart", file], 1);
  const deadline = performance.now() + 120_000;
  const gaps = () => gapsFrom(file);
  while (gaps().length < restarts && performance.now() < deadline) await sleep(100); // as for Monoceros: rarely, not to compete for the cores
  await running.stop();
  return stats(gaps().slice(0, restarts));
}

/** Launch → first and all `workers` started, and SIGTERM (or the anchor's stop) → supervisor gone. */
export async function anchorStartAndStop(anchor: Anchor, worker: string, workers = 32): Promise<{ firstMs: number; startMs: number; shutdownMs: number }> {
  const file = join(folder(), "times");
  const launchedNs = BigInt(Date.now()) * 1_000_000n;
  const running = await anchor.start(worker, ["sleep", file], workers);
  const deadline = performance.now() + 60_000;
  while (timesFrom(file).starts.length < workers && performance.now() < deadline) await sleep(5);
  const starts = timesFrom(file).starts;
  const firstStartNs = starts.reduce((a, b) => (a < b ? a : b), starts[0] ?? 0n);
  const lastStartNs = starts.reduce((a, b) => (a > b ? a : b), 0n);
  await sleep(500);
  const shutdownMs = await running.stop();
  return { firstMs: Number(firstStartNs - launchedNs) / 1e6, startMs: Number(lastStartNs - launchedNs) / 1e6, shutdownMs };
}

/**
 * CPU (seconds over `seconds`), RSS and anonymous memory of the supervisor's own processes, with
 * `workers` sleeping workers, from 12 s after start. RSS includes the pages of the program's files
 * (the node or python binary and libraries), which every process of the same binary on the host
 * shares; anonymous memory is what this one process alone holds.
 */
export async function anchorIdle(anchor: Anchor, worker: string, workers = 32, seconds = 20): Promise<{ cpuSeconds: number; seconds: number; rssBytes: number; anonBytes: number }> {
  const running = await anchor.start(worker, ["sleep"], workers);
  try {
    await sleep(12_000);
    const before = running.supervisorPids().map(cpuSeconds).reduce((a, b) => a + b, 0);
    await sleep(seconds * 1000);
    const after = running.supervisorPids().map(cpuSeconds).reduce((a, b) => a + b, 0);
    const rssBytes = running.supervisorPids().map((pid) => procBytes(pid, "status", "VmRSS")).reduce((a, b) => a + b, 0);
    const anonBytes = running.supervisorPids().map((pid) => procBytes(pid, "smaps_rollup", "Anonymous")).reduce((a, b) => a + b, 0);
    return { cpuSeconds: after - before, seconds, rssBytes, anonBytes };
  } finally {
    await running.stop();
  }
}

const MARKER = Buffer.from("@L@");

function markersIn(files: string[]): number {
  let count = 0;
  for (const file of files) {
    const text = readFileSync(file);
    for (let i = text.indexOf(MARKER); i !== -1; i = text.indexOf(MARKER, i + MARKER.length)) count++;
  }
  return count;
}

export interface LogRun {
  linesPerSecond: number;
  lost: number;
  seconds: number;
}

/**
 * Log forwarding into files: `workers` workers each write `lines` lines as fast as they can and exit
 * at once (their last lines still in the pipe). Lines per second from the first worker's start until
 * the output files stopped changing (their mtime), and lines missing once nothing more arrives.
 */
export async function logsToFiles(subject: Anchor, worker: string, format: "json" | "plain", lines = 200_000, workers = 4): Promise<LogRun> {
  const times = join(folder(), "times");
  const running = await subject.start(worker, ["burst", String(lines), format, times, String(workers)], workers);
  const expected = lines * workers;
  const size = () => running.outputFiles().reduce((sum, file) => sum + statSync(file).size, 0);
  try {
    const deadline = performance.now() + 90_000;
    while (timesFrom(times).exits.length < workers && performance.now() < deadline) await sleep(20);
    // Then until the output has not grown for a second: what has not arrived by then is lost.
    let last = -1;
    while (performance.now() < deadline) {
      const now = size();
      if (now === last) break;
      last = now;
      await sleep(1_000);
    }
    const firstStartNs = timesFrom(times).starts.reduce((a, b) => (a < b ? a : b));
    const lastWriteNs = running.outputFiles().map((file) => statSync(file, { bigint: true }).mtimeNs).reduce((a, b) => (a > b ? a : b), 0n);
    const seconds = Number(lastWriteNs - firstStartNs) / 1e9;
    const arrived = markersIn(running.outputFiles());
    return { linesPerSecond: Math.round(arrived / seconds), lost: expected - arrived, seconds };
  } finally {
    await running.stop();
  }
}

/**
 * SIGKILLs the supervisor with `workers` sleeping workers: how many workers are still running 3 s
 * later. Those are then killed by their recorded pid.
 */
export async function orphansAfterSigkill(subject: Anchor, worker: string, workers = 8): Promise<{ workers: number; leftRunning: number }> {
  const times = join(folder(), "times");
  const running = await subject.start(worker, ["sleep", times], workers);
  const deadline = performance.now() + 30_000;
  while (timesFrom(times).starts.length < workers && performance.now() < deadline) await sleep(10);
  await sleep(300);
  // The supervisor itself: a helper that outlives it (Monoceros's watchdog) is there to clean up after it.
  const [supervisorPid] = running.supervisorPids();
  if (supervisorPid !== undefined) process.kill(supervisorPid, "SIGKILL");
  const pids = timesFrom(times).pids;
  const isOurWorker = (pid: number) => {
    try {
      return alive(pid) && readFileSync(`/proc/${pid}/cmdline`, "utf8").startsWith(worker);
    } catch {
      return false; // gone meanwhile
    }
  };
  await sleep(3_000);
  const left = pids.filter(isOurWorker);
  for (const pid of left) process.kill(pid, "SIGKILL");
  await untilGone(left, 5_000);
  await running.stop(); // reaps a child supervisor; nothing to do for PM2's daemon
  return { workers, leftRunning: left.length };
}
