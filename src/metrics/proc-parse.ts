// Parsers for the /proc files the Go process collector reads (prometheus/procfs), as pure
// functions over their text, so they are tested on captured samples.

/** What /proc/<pid>/stat tells us. Times are in clock ticks, sizes as the kernel gives them. */
export interface ProcStat {
  pid: number;
  comm: string;
  state: string;
  /** The process group: a worker's members share the worker's pid as their pgrp. */
  pgrp: number;
  utimeTicks: number;
  stimeTicks: number;
  /** CPU of the children this process has reaped (waited for), theirs included. */
  cutimeTicks: number;
  cstimeTicks: number;
  startTimeTicks: number;
  virtualMemoryBytes: number;
  rssPages: number;
}

/**
 * The command name sits in parentheses and may itself contain spaces and parentheses
 * ("(my (odd) name)"), so the fields are split after the *last* ")".
 */
export function parseProcStat(text: string): ProcStat | null {
  const open = text.indexOf("(");
  const close = text.lastIndexOf(")");
  if (open < 0 || close < open) return null;
  const fields = text.slice(close + 2).trim().split(/\s+/);
  // fields[0] is field 3 (state) of proc(5); field n is fields[n - 3].
  const field = (n: number) => Number(fields[n - 3]);
  const stat: ProcStat = {
    pid: Number(text.slice(0, open).trim()),
    comm: text.slice(open + 1, close),
    state: fields[0] ?? "",
    pgrp: field(5),
    utimeTicks: field(14),
    stimeTicks: field(15),
    cutimeTicks: field(16),
    cstimeTicks: field(17),
    startTimeTicks: field(22),
    virtualMemoryBytes: field(23),
    rssPages: field(24),
  };
  const numbers = [stat.pid, stat.pgrp, stat.utimeTicks, stat.stimeTicks, stat.cutimeTicks, stat.cstimeTicks, stat.startTimeTicks, stat.virtualMemoryBytes, stat.rssPages];
  return numbers.every(Number.isFinite) ? stat : null;
}

/**
 * Only the process group of a /proc/<pid>/stat text (field 5, the third after the command name's
 * last ")"), or null: a twentieth of the cost of parseProcStat, for every process on the machine.
 */
export function parseStatGroup(text: string): number | null {
  const close = text.lastIndexOf(")");
  if (close < 0) return null;
  let start = close + 2; // the state
  for (let field = 3; field < 5; field++) {
    const space = text.indexOf(" ", start);
    if (space < 0) return null;
    start = space + 1;
  }
  const end = text.indexOf(" ", start);
  if (end < 0) return null;
  const pgrp = Number(text.slice(start, end));
  return Number.isInteger(pgrp) && pgrp >= 0 && end > start ? pgrp : null;
}

/** What the Go collector reports for an "unlimited" limit: the kernel's RLIM_INFINITY as a float. */
export const UNLIMITED = 2 ** 64;

export interface ProcLimits {
  maxOpenFiles: number | null;
  maxAddressSpaceBytes: number | null;
}

/** Soft limits from /proc/<pid>/limits ("unlimited" becomes UNLIMITED, as in the Go collector). */
export function parseLimits(text: string): ProcLimits {
  const soft = (name: string): number | null => {
    const line = text.split("\n").find((l) => l.startsWith(name));
    const value = line?.slice(name.length).trim().split(/\s+/)[0];
    if (value === undefined) return null;
    if (value === "unlimited") return UNLIMITED;
    const number = Number(value);
    return Number.isFinite(number) ? number : null;
  };
  return { maxOpenFiles: soft("Max open files"), maxAddressSpaceBytes: soft("Max address space") };
}

/** Boot time (epoch seconds) from the "btime" line of /proc/stat. */
export function parseBootTimeSeconds(text: string): number | null {
  const line = text.split("\n").find((l) => l.startsWith("btime "));
  const value = Number(line?.slice(6).trim());
  return Number.isFinite(value) ? value : null;
}
