// A benchmark run's processes, found by a marker in their environment (every process a run starts
// inherits it), so whatever outlived the run is swept without pkill: by process group where the
// run leads the group, else by pid.
import type { ChildProcess } from "node:child_process";
import { readdirSync, readFileSync, rmSync } from "node:fs";
import { stopChild } from "./supervisor.js";

export interface MarkedRun {
  child: ChildProcess;
  /** A temporary folder of the run's, removed with it. */
  dir: string;
  /** The marker's variable name and value: `${name}=${value}` is in every process of the run. */
  markerName: string;
  marker: string;
}

/** /proc/<pid>/stat's command name, state, parent and process group, or null when the process is gone. */
export function procStat(pid: number | string): { comm: string; ppid: number; pgrp: number; state: string } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return { comm: stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")")), state: fields[0] ?? "?", ppid: Number(fields[1]), pgrp: Number(fields[2]) };
  } catch {
    return null;
  }
}

/** The live children (not zombies) of `parent`; only those whose command name is `comm` when given. */
export function childrenOf(parent: number, comm?: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = procStat(entry);
    if (stat !== null && stat.ppid === parent && stat.state !== "Z" && (comm === undefined || stat.comm === comm)) found.push(Number(entry));
  }
  return found;
}

export function markedProcesses(markerName: string, marker: string): { pid: number; pgrp: number }[] {
  const needle = Buffer.from(`${markerName}=${marker}\0`);
  const found: { pid: number; pgrp: number }[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (!readFileSync(`/proc/${entry}/environ`).includes(needle)) continue;
      const stat = procStat(entry);
      if (stat !== null) found.push({ pid: Number(entry), pgrp: stat.pgrp });
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** SIGTERM (SIGKILL after 20 s), then SIGKILLs whatever of the run outlived it, and removes its folder. */
export async function stopMarkedRun(run: MarkedRun): Promise<void> {
  await stopChild(run.child);
  for (let attempt = 0; attempt < 50; attempt++) {
    const left = markedProcesses(run.markerName, run.marker);
    if (left.length === 0) break;
    const pids = new Set(left.map((p) => p.pid));
    for (const { pid, pgrp } of left) {
      try {
        process.kill(pids.has(pgrp) ? -pgrp : pid, "SIGKILL"); // a group only when its leader is the run's
      } catch {
        // gone meanwhile
      }
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  rmSync(run.dir, { recursive: true, force: true });
}
