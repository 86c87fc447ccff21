// Orphans after a SIGKILL of Monoceros in the middle of constant restarts. Each run starts
// dist/monoceros with 20 workers that live 50 ms (lifespan) and are replaced at once, SIGKILLs it
// after a random 100–1500 ms, waits up to 3 s for its watchdog to clean up, and counts the
// processes of that run still alive. A run's processes are found by a marker variable put in
// Monoceros's own environment, which everything it starts inherits (scanned in /proc/*/environ),
// so a worker that was being spawned at the moment of the kill is found too. Found ones are
// counted, then SIGKILLed by pid.
//
//   npx tsx bench/orphans.ts --runs 100 [--seed N]     (after node scripts/build.mjs)
//
// Exits 1 when any run left a process behind. `make bench` runs it through runOrphanProbe().
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Rng } from "../sim/rng.js";

const ROOT = resolve(fileURLToPath(new URL("..", import.meta.url)));
const MONOCEROS = join(ROOT, "dist/monoceros");
const MARKER_NAME = "ORPHAN_PROBE";
/** USER_HZ, the unit of start times in /proc/<pid>/stat. */
const TICKS_PER_SECOND = 100;

const uptimeSeconds = () => Number(readFileSync("/proc/uptime", "utf8").split(" ")[0]);

export interface OrphanProbeOptions {
  runs: number;
  /** Seeds the kill delays, so a series of runs can be repeated with the same delays. */
  seed: number;
  replicas?: number;
  killAfterMinMs?: number;
  killAfterMaxMs?: number;
  /** How long after the SIGKILL the run's processes may take to disappear. */
  settleMs?: number;
  /** Called after each run (the CLI prints it). */
  onRun?: (run: OrphanRun) => void;
}

export interface RunProcess {
  pid: number;
  comm: string;
  /** 1 (or a subreaper) once its parent is gone. */
  ppid: number;
  pgrp: number;
  /** Start time, seconds since boot (10 ms resolution). */
  startedAtUptimeSeconds: number;
}

export interface OrphanRun {
  run: number;
  killAfterMs: number;
  /** Processes of the run alive just before the SIGKILL (Monoceros, its watchdog, workers): shows the probe sees them. */
  seenBeforeKill: number;
  /** When the SIGKILL was sent, seconds since boot (to compare with the start times of those left). */
  killedAtUptimeSeconds: number;
  /** Processes of the run still alive `settleMs` after the SIGKILL. */
  left: RunProcess[];
}

export interface OrphanReport {
  runs: OrphanRun[];
  orphans: number;
  runsWithOrphans: number;
  seed: number;
  replicas: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Live processes (zombies are dead: they only wait to be reaped) whose environment holds `marker`. */
export function processesWithMarker(marker: string): RunProcess[] {
  const needle = Buffer.from(`\0${MARKER_NAME}=${marker}\0`);
  const first = Buffer.from(`${MARKER_NAME}=${marker}\0`);
  const found: RunProcess[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const environ = readFileSync(`/proc/${entry}/environ`);
      if (!(environ.includes(needle) || environ.subarray(0, first.length).equals(first))) continue;
      const stat = readFileSync(`/proc/${entry}/stat`, "latin1");
      const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
      if (state === "Z" || state === "X") continue;
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      found.push({
        pid: Number(entry),
        comm: stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")")),
        ppid: Number(fields[1]),
        pgrp: Number(fields[2]),
        startedAtUptimeSeconds: Number(fields[19]) / TICKS_PER_SECOND,
      });
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return found;
}

function configYaml(replicas: number): string {
  // Every worker is SIGTERMed at its 50 ms lifespan and replaced at once, about 20 times a second,
  // so a kill lands while workers are being spawned, signalled and reaped. The worker itself never
  // exits: one left behind is still there 3 s later to be counted (with `sleep 0.2`, an orphan
  // would end by itself before anyone looked, and every run would seem clean).
  return [
    "supervisor:",
    "  workers:",
    "    - name: churn",
    `      replicas: ${replicas}`,
    "      max_restarts: -1",
    "      exec: sleep",
    '      args: ["3600"]',
    "      signal_timeout: 1s",
    // Every worker at once, not one at a time (max_unavailable's default of 1).
    "      max_unavailable: 100%",
    "      limits:",
    "        lifespan: 50ms",
    "",
  ].join("\n");
}

async function oneRun(run: number, killAfterMs: number, replicas: number, settleMs: number, config: string): Promise<OrphanRun> {
  const marker = randomBytes(8).toString("hex");
  const child: ChildProcess = spawn(MONOCEROS, ["-c", config], {
    env: { ...process.env, [MARKER_NAME]: marker },
    stdio: "ignore",
  });
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  let left: RunProcess[] = [];
  let seenBeforeKill = 0;
  let killedAtUptimeSeconds = NaN;
  try {
    await sleep(killAfterMs);
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`run ${run}: monoceros exited by itself (code ${child.exitCode}) before the kill`);
    seenBeforeKill = processesWithMarker(marker).length;
    killedAtUptimeSeconds = uptimeSeconds();
    child.kill("SIGKILL");
    await exited;
    const deadline = performance.now() + settleMs;
    for (;;) {
      left = processesWithMarker(marker);
      if (left.length === 0 || performance.now() >= deadline) break;
      await sleep(100);
    }
  } finally {
    child.kill("SIGKILL");
    // Whatever is left is killed by pid, and again until the marker is gone (a process can be
    // half-way through a spawn of its own); bounded.
    for (let attempt = 0; attempt < 50; attempt++) {
      const alive = processesWithMarker(marker);
      if (alive.length === 0) break;
      for (const { pid } of alive) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // gone meanwhile
        }
      }
      await sleep(20);
    }
  }
  return { run, killAfterMs, seenBeforeKill, killedAtUptimeSeconds, left };
}

export async function runOrphanProbe(options: OrphanProbeOptions): Promise<OrphanReport> {
  if (!existsSync(MONOCEROS)) throw new Error(`${MONOCEROS} is missing: build it first (node scripts/build.mjs)`);
  const replicas = options.replicas ?? 20;
  const minMs = options.killAfterMinMs ?? 100;
  const maxMs = options.killAfterMaxMs ?? 1_500;
  // Seeded, so the delays of a series can be replayed.
  const rng = new Rng(options.seed);
  const random = () => rng.float();
  const folder = mkdtempSync(join(tmpdir(), "monoceros-orphans-"));
  const config = join(folder, "config.yaml");
  writeFileSync(config, configYaml(replicas));
  const runs: OrphanRun[] = [];
  try {
    for (let run = 1; run <= options.runs; run++) {
      const killAfterMs = Math.round(minMs + random() * (maxMs - minMs));
      const result = await oneRun(run, killAfterMs, replicas, options.settleMs ?? 3_000, config);
      runs.push(result);
      options.onRun?.(result);
    }
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
  // Monoceros, its watchdog and at least one worker: otherwise the marker is not inherited and 0 means nothing.
  if (runs.length > 0 && Math.max(...runs.map((r) => r.seenBeforeKill)) < 3) {
    throw new Error(`the probe never saw a worker of a run (its ${MARKER_NAME} marker is not inherited?): its counts would mean nothing`);
  }
  return {
    runs,
    orphans: runs.reduce((sum, r) => sum + r.left.length, 0),
    runsWithOrphans: runs.filter((r) => r.left.length > 0).length,
    seed: options.seed,
    replicas,
  };
}

export function describeRun(run: OrphanRun, runs: number): string {
  const what = run.left
    .map((p) => `${p.comm} pid ${p.pid} ppid ${p.ppid} pgrp ${p.pgrp}, started ${Math.round((run.killedAtUptimeSeconds - p.startedAtUptimeSeconds) * 1000)} ms before the kill`)
    .join("; ");
  return `run ${run.run}/${runs}: SIGKILL after ${run.killAfterMs} ms (${run.seenBeforeKill} processes of the run alive just before, Monoceros included), ${run.left.length} left after it${what === "" ? "" : ` (${what})`}`;
}

/** The BENCHMARKS.md section (make bench). */
export function orphanSection(report: OrphanReport): string {
  const verdict = report.orphans === 0 ? "met" : "**missed**";
  const left = report.runs.filter((run) => run.left.length > 0).map((run) => `- ${describeRun(run, report.runs.length)}`);
  return `\`bench/orphans.ts\` (alone: \`npx tsx bench/orphans.ts --runs 100\`): ${report.runs.length} runs of Monoceros with
${report.replicas} workers (\`sleep 3600\` with \`limits.lifespan: 50ms\`, \`max_unavailable: 100%\` and \`max_restarts: -1\`: each worker is stopped
and replaced about every 50 ms). Each run SIGKILLs Monoceros after a random 100–1500 ms (seed ${report.seed}), waits up to 3 s,
and counts the processes still alive that carry the run's marker variable (set in Monoceros's environment and inherited by
everything it starts), then kills them by pid.

| Measure | Result | Target | |
|---|---|---|---|
| processes left behind, all runs | ${report.orphans} (in ${report.runsWithOrphans} of ${report.runs.length} runs) | 0 | ${verdict} |
${left.length === 0 ? "" : `\nRuns that left processes behind:\n\n${left.join("\n")}\n`}`;
}

function option(name: string, fallback: number): number {
  const index = process.argv.indexOf(name);
  if (index < 0) return fallback;
  const value = Number(process.argv[index + 1]);
  if (!Number.isInteger(value) || value < 0) {
    console.error(`orphans: ${name} needs a whole number, got ${process.argv[index + 1] ?? "nothing"}`);
    process.exit(2);
  }
  return value;
}

/** A bound on --runs: 10,000 runs take about three hours. */
const RUNS_MAX = 10_000;

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const runs = Math.min(option("--runs", 20), RUNS_MAX);
  const seed = option("--seed", Math.floor(Math.random() * 2 ** 31));
  console.log(`orphans: ${runs} runs, seed ${seed} (repeat the same kill delays with --seed ${seed})`);
  const report = await runOrphanProbe({ runs, seed, onRun: (run) => console.log(describeRun(run, runs)) });
  console.log(`orphans: ${report.orphans} processes left behind in ${report.runsWithOrphans} of ${runs} runs`);
  process.exitCode = report.orphans === 0 ? 0 : 1;
}
