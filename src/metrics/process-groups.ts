// A worker's figures are those of its whole process group (workers are started with setsid, so
// the group id is the worker's pid): a worker started through `sh -c`, or a master with children,
// spends its CPU and memory in processes other than the one Monoceros started. Pure functions
// over parsed /proc text; process-stats.ts does the reading.
import type { ProcessStats } from "../runtime/ports.js";
import { parseProcStat, parseStatGroup, type ProcLimits, type ProcStat } from "./proc-parse.js";

/**
 * Every process on the machine at one moment: its stat text by pid, and pids by process group.
 * Only the group is parsed for all of them; the rest of a stat only for the workers' members.
 */
export interface ProcessTable {
  statByPid: ReadonlyMap<number, string>;
  pidsByGroup: ReadonlyMap<number, readonly number[]>;
}

export function indexProcesses(stats: Iterable<{ pid: number; text: string }>): ProcessTable {
  const statByPid = new Map<number, string>();
  const pidsByGroup = new Map<number, number[]>();
  for (const { pid, text } of stats) {
    const pgrp = parseStatGroup(text);
    if (pgrp === null) continue; // garbled: as if it had vanished
    statByPid.set(pid, text);
    const members = pidsByGroup.get(pgrp);
    if (members === undefined) pidsByGroup.set(pgrp, [pid]);
    else members.push(pid);
  }
  return { statByPid, pidsByGroup };
}

function statOf(table: ProcessTable, pid: number): ProcStat | null {
  const text = table.statByPid.get(pid);
  return text === undefined ? null : parseProcStat(text);
}

/** A zombie has exited and only waits to be reaped; "X" is a task being torn down. */
export function isLive(stat: ProcStat): boolean {
  return stat.state !== "Z" && stat.state !== "X";
}

/**
 * The group led by `leaderPid`, leader first, or null when the leader is gone or a zombie (the
 * worker has exited). A leader that moved itself to another group still counts as its own member.
 */
export function groupOf(table: ProcessTable, leaderPid: number): { leader: ProcStat; members: readonly ProcStat[] } | null {
  const leader = statOf(table, leaderPid);
  if (leader === null || !isLive(leader)) return null;
  const members = [leader];
  for (const pid of table.pidsByGroup.get(leaderPid) ?? []) {
    const member = pid === leaderPid ? null : statOf(table, pid);
    if (member !== null) members.push(member);
  }
  return { leader, members };
}

export interface MachineFacts {
  pageSizeBytes: number;
  /** Epoch seconds, or null when /proc/stat could not be read. */
  bootTimeSeconds: number | null;
  /** USER_HZ. */
  ticksPerSecond: number;
}

export interface GroupReadings {
  leader: ProcStat;
  /** The leader and every other process of its group, zombies included. */
  members: readonly ProcStat[];
  /** Open descriptors of each live member that could be read (null: gone meanwhile, or unreadable). */
  openFds: readonly (number | null)[];
  /** The leader's limits: the worker's own, not those of what it started. */
  limits: ProcLimits;
}

/**
 * CPU: every member's user + system time plus what each has reaped from its children, zombies
 * included, so the counter does not fall when a member exits and its parent in the group reaps it
 * (a recycled gunicorn worker, a finished child of `sh -c`). Resident memory and open fds: summed
 * over the live members. Virtual memory, limits and start time: the leader's (a per-process limit
 * is compared with that process's own use).
 */
export function combineGroup(readings: GroupReadings, machine: MachineFacts): ProcessStats {
  const { leader, members, openFds, limits } = readings;
  let cpuTicks = 0;
  let rssPages = 0;
  for (const member of members) {
    cpuTicks += member.utimeTicks + member.stimeTicks + member.cutimeTicks + member.cstimeTicks;
    if (isLive(member)) rssPages += member.rssPages;
  }
  const readable = openFds.filter((count): count is number => count !== null);
  return {
    cpuSeconds: cpuTicks / machine.ticksPerSecond,
    rssBytes: rssPages * machine.pageSizeBytes,
    virtualMemoryBytes: leader.virtualMemoryBytes,
    openFds: readable.length === 0 ? null : readable.reduce((sum, count) => sum + count, 0),
    maxFds: limits.maxOpenFiles,
    virtualMemoryMaxBytes: limits.maxAddressSpaceBytes,
    startTimeSeconds: machine.bootTimeSeconds === null ? NaN : machine.bootTimeSeconds + leader.startTimeTicks / machine.ticksPerSecond,
  };
}
