// Resource use of a live process from /proc, read at scrape time. A process that exits between
// being listed and being read is simply absent (null), never an error.
import { readdirSync, readFileSync } from "node:fs";
import type { ProcessStats } from "../runtime/ports.js";
import { parseBootTimeSeconds, parseLimits, parseProcStat, type ProcLimits } from "./proc-parse.js";

/** USER_HZ: 100 on every Linux the Go collector supports (procfs hard-codes it too). */
const TICKS_PER_SECOND = 100;

let pageSizeBytes: number | undefined;
let bootTimeSeconds: number | null | undefined;

/** The page size, without a native call: our own resident pages (statm) against VmRSS (status). */
function pageSize(): number {
  if (pageSizeBytes !== undefined) return pageSizeBytes;
  pageSizeBytes = 4096;
  try {
    const residentPages = Number(readFileSync("/proc/self/statm", "utf8").split(" ")[1]);
    const rssKiB = Number(/VmRSS:\s+(\d+)/.exec(readFileSync("/proc/self/status", "utf8"))?.[1]);
    const measured = (rssKiB * 1024) / residentPages;
    // Rounded to a power of two: the two reads are not atomic.
    if (Number.isFinite(measured) && measured > 0) pageSizeBytes = 2 ** Math.round(Math.log2(measured));
  } catch {
    // not Linux: keep 4096
  }
  return pageSizeBytes;
}

function bootTime(): number | null {
  if (bootTimeSeconds === undefined) {
    try {
      bootTimeSeconds = parseBootTimeSeconds(readFileSync("/proc/stat", "utf8"));
    } catch {
      bootTimeSeconds = null;
    }
  }
  return bootTimeSeconds;
}

export function readProcessStats(pid: number): ProcessStats | null {
  let statText: string;
  try {
    statText = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return null;
  }
  const stat = parseProcStat(statText);
  if (stat === null || stat.state === "Z") return null;
  let openFds: number | null = null;
  try {
    openFds = readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    openFds = null; // gone meanwhile, or not ours to look at
  }
  // Read at every scrape: a worker may raise its own limits (setrlimit) at any time.
  let limits: ProcLimits;
  try {
    limits = parseLimits(readFileSync(`/proc/${pid}/limits`, "utf8"));
  } catch {
    limits = { maxOpenFiles: null, maxAddressSpaceBytes: null };
  }
  const boot = bootTime();
  return {
    cpuSeconds: (stat.utimeTicks + stat.stimeTicks) / TICKS_PER_SECOND,
    rssBytes: stat.rssPages * pageSize(),
    virtualMemoryBytes: stat.virtualMemoryBytes,
    openFds,
    maxFds: limits.maxOpenFiles,
    virtualMemoryMaxBytes: limits.maxAddressSpaceBytes,
    startTimeSeconds: boot === null ? NaN : boot + stat.startTimeTicks / TICKS_PER_SECOND,
  };
}

/** Kept for callers: nothing is cached per process any more. */
export function forgetProcess(_pid: number): void {}
