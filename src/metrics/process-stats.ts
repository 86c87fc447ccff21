// Resource use of a worker's process group from /proc, read at scrape time. A worker that exits
// between being listed and being read is simply absent (null), never an error; so is everything
// when /proc cannot be read at all (e.g. Monoceros out of descriptors).
//
// Cost: a scrape asks for every worker in one synchronous loop. The first call of that loop lists
// /proc and reads each process's stat once (one table for all workers: a group's members are found
// by their pgrp, so this part grows with the processes on the machine, not only the workers' own:
// in a container, about the same), the later calls reuse the table; it is dropped as soon as the loop's synchronous
// run ends (a microtask), so no figure outlives the scrape that read it. Each worker then costs
// one stat of each live member's fd folder and one read of its leader's limits.
import { readFileSync } from "node:fs";
import type { ProcessStats } from "../runtime/ports.js";
import { parseBootTimeSeconds, parseLimits, type ProcLimits } from "./proc-parse.js";
import { combineGroup, groupOf, indexProcesses, isLive, type MachineFacts, type ProcessTable } from "./process-groups.js";
import { procfs, type ProcSource } from "./proc-source.js";

/** USER_HZ: 100 on every Linux the Go collector supports (procfs hard-codes it too). */
const TICKS_PER_SECOND = 100;

const NO_LIMITS: ProcLimits = { maxOpenFiles: null, maxAddressSpaceBytes: null };

/** Reads /proc once per synchronous run of calls; see the top of this file. */
export function createProcessStatsReader(source: ProcSource, machine: () => MachineFacts): (pid: number) => ProcessStats | null {
  const tableThisTurn = tablePerTurn(source);
  return (pid) => {
    const group = groupOf(tableThisTurn(), pid);
    if (group === null) return null;
    const limitsText = source.limits(pid);
    return combineGroup(
      {
        ...group,
        openFds: group.members.filter(isLive).map((member) => source.openFds(member.pid)),
        limits: limitsText === null ? NO_LIMITS : parseLimits(limitsText),
      },
      machine(),
    );
  };
}

/**
 * The CPU seconds of a process group and nothing else (the CPU-spread sampler, every few seconds):
 * the same one table of every process's stat per synchronous run, but no fd count or limits read.
 */
export function createGroupCpuReader(source: ProcSource): (pid: number) => number | null {
  const tableThisTurn = tablePerTurn(source);
  return (pid) => {
    const group = groupOf(tableThisTurn(), pid);
    if (group === null) return null;
    let cpuTicks = 0;
    for (const member of group.members) cpuTicks += member.utimeTicks + member.stimeTicks + member.cutimeTicks + member.cstimeTicks;
    return cpuTicks / TICKS_PER_SECOND;
  };
}

/** The table of every process, read at most once per synchronous run of calls. */
function tablePerTurn(source: ProcSource): () => ProcessTable {
  let table: ProcessTable | null = null;
  return () => {
    if (table === null) {
      table = readProcessTable(source);
      queueMicrotask(() => {
        table = null;
      });
    }
    return table;
  };
}

/** Every process's stat; one that vanished between listing and reading is left out. */
function readProcessTable(source: ProcSource): ProcessTable {
  const stats: { pid: number; text: string }[] = [];
  for (const pid of source.pids()) {
    const text = source.stat(pid);
    if (text !== null) stats.push({ pid, text });
  }
  return indexProcesses(stats);
}

// Facts about the machine, not about a process: kept once read (a failed read, e.g. under
// EMFILE, is tried again at the next call).
let pageSizeBytes: number | null = null;
let bootTimeSeconds: number | null = null;

function thisMachine(): MachineFacts {
  pageSizeBytes ??= pageSize();
  bootTimeSeconds ??= bootTime();
  return { pageSizeBytes: pageSizeBytes ?? 4096, bootTimeSeconds, ticksPerSecond: TICKS_PER_SECOND };
}

/** The page size, without a native call: our own resident pages (statm) against VmRSS (status). */
function pageSize(): number | null {
  try {
    const residentPages = Number(readFileSync("/proc/self/statm", "utf8").split(" ")[1]);
    const rssKiB = Number(/VmRSS:\s+(\d+)/.exec(readFileSync("/proc/self/status", "utf8"))?.[1]);
    const measured = (rssKiB * 1024) / residentPages;
    // Rounded to a power of two: the two reads are not atomic.
    return Number.isFinite(measured) && measured > 0 ? 2 ** Math.round(Math.log2(measured)) : null;
  } catch {
    return null; // not Linux, or no descriptor to read with
  }
}

function bootTime(): number | null {
  try {
    return parseBootTimeSeconds(readFileSync("/proc/stat", "utf8"));
  } catch {
    return null;
  }
}

/** The figures of the process group led by `pid` (a worker), or null when the worker is gone. */
export const readProcessStats: (pid: number) => ProcessStats | null = createProcessStatsReader(procfs(), thisMachine);
export const readGroupCpuSeconds: (pid: number) => number | null = createGroupCpuReader(procfs());
