// Resident memory of whole process groups, for memory limits: a worker's pid is its process group
// id, and what it costs is what all of its group's processes hold (a master and its children, a
// program started through `sh -c`). Asked every second for every worker at once, so it is one pass
// over /proc for all the groups asked about: list /proc, read each process's stat into a reused
// buffer (proc-source.ts), parse only its group, and the rest of the stat only for members.
//
// Cost grows with the processes on the machine, not with the groups asked about. Measured on
// Node 20 (2 vCPU VM, Linux 6.18) with 256 detached `sh -c "sleep & sleep & sleep & wait"` groups,
// 1,100 processes in all, 20 calls between two process.cpuUsage() readings: 16 to 18 ms of CPU per
// call, 1.6 to 1.8% of one core at one call a second. Two thirds of it is the kernel's open, read
// and close of each stat file (the floor of reading /proc this way), the rest JavaScript.
// Remembering which pids are in no group of interest would save reads, but is wrong after a pid is
// reused unless keyed by start time, which is itself in the stat file.
//
// Precision: since Linux 6.2 the rss in /proc/<pid>/stat is the kernel's cheap reading of per-CPU
// counters, off by what they have not folded in yet: under 3 x CPUs x max(32, 2 x CPUs) pages per
// process (768 KiB on 2 CPUs, 6 MiB on 16), and typically far less (about 150 KiB per idle `sleep`
// above, 8% of such a tiny process). Recent kernels (6.18 here) give the exact sum in statm and
// status (VmRSS), but reading statm for every member as well cost 24.6 ms per call instead of 17.7
// in the bench, over the 2% budget; a limit sized in hundreds of MiB does not notice the difference.
// A process whose main thread exited while its other threads run shows rss 0 here (the leader's
// stat no longer has the memory); such programs are rare.
import { readFileSync } from "node:fs";
import { endianness } from "node:os";
import { parseProcStat, parseStatGroup } from "../../metrics/proc-parse.js";
import { procfs, type ProcSource } from "../../metrics/proc-source.js";
import { isLive } from "../../metrics/process-groups.js";

/** The kernel's page size, when /proc/self/auxv cannot tell (4 KiB on x86-64 and most arm64). */
const PAGE_SIZE_FALLBACK_BYTES = 4096;
/** AT_PAGESZ in the ELF auxiliary vector (<elf.h>); AT_NULL ends the vector. */
const AT_PAGESZ = 6;
const AT_NULL = 0;
/** A real auxv is a few hundred bytes; more than this is not one. */
const AUXV_MAX_BYTES = 64 * 1024;

const source: ProcSource = procfs();
let pageSizeBytes: number | null = null;

/**
 * For each pgid asked about: the sum of RSS bytes of the live processes in that process group
 * (zombies count 0), or 0 if none found. One pass over /proc. A process that exits meanwhile, or
 * that cannot be read (EMFILE, EACCES), counts 0: a failed read never puts a group over a limit.
 * Each process's figure is the kernel's approximate one (see the top of this file).
 */
export function groupRssBytes(pgids: ReadonlySet<number>): Map<number, number> {
  const rssPagesByGroup = new Map<number, number>();
  for (const pgid of pgids) rssPagesByGroup.set(pgid, 0);
  if (pgids.size > 0) {
    for (const pid of source.pids()) {
      const text = source.stat(pid);
      if (text === null) continue;
      const pgrp = parseStatGroup(text);
      if (pgrp === null || !pgids.has(pgrp)) continue;
      const stat = parseProcStat(text);
      // A zombie's rss is 0 already (its memory is gone); "X" is a task being torn down.
      if (stat !== null && isLive(stat)) rssPagesByGroup.set(pgrp, (rssPagesByGroup.get(pgrp) ?? 0) + stat.rssPages);
    }
  }
  pageSizeBytes ??= pageSizeFromAuxv();
  const bytesPerPage = pageSizeBytes ?? PAGE_SIZE_FALLBACK_BYTES;
  const rssBytesByGroup = new Map<number, number>();
  for (const [pgid, pages] of rssPagesByGroup) rssBytesByGroup.set(pgid, pages * bytesPerPage);
  return rssBytesByGroup;
}

/**
 * The page size the kernel gave this process at exec (AT_PAGESZ, what getpagesize() returns),
 * from one read of a few hundred bytes: exact, no child process (getconf), no native call.
 * Null when it cannot be read (then tried again at the next call) or says nothing sensible.
 */
function pageSizeFromAuxv(): number | null {
  let auxv: Buffer;
  try {
    auxv = readFileSync("/proc/self/auxv");
  } catch {
    return null;
  }
  const wordBytes = ["arm", "ia32", "mips", "mipsel", "ppc"].includes(process.arch) ? 4 : 8;
  return parseAuxvPageSize(auxv, wordBytes, endianness() === "LE");
}

/** AT_PAGESZ from an auxiliary vector of (type, value) word pairs; null if absent or not a power of two from 1 KiB to 1 GiB. Pure. */
export function parseAuxvPageSize(auxv: Buffer, wordBytes: 4 | 8, littleEndian: boolean): number | null {
  const word = (offset: number): number => {
    if (wordBytes === 4) return littleEndian ? auxv.readUInt32LE(offset) : auxv.readUInt32BE(offset);
    return Number(littleEndian ? auxv.readBigUInt64LE(offset) : auxv.readBigUInt64BE(offset));
  };
  const end = Math.min(auxv.length, AUXV_MAX_BYTES) - 2 * wordBytes;
  for (let offset = 0; offset <= end; offset += 2 * wordBytes) {
    const type = word(offset);
    if (type === AT_NULL) return null;
    if (type !== AT_PAGESZ) continue;
    const size = word(offset + wordBytes);
    const isPowerOfTwo = Number.isInteger(Math.log2(size));
    return isPowerOfTwo && size >= 1024 && size <= 2 ** 30 ? size : null;
  }
  return null;
}
