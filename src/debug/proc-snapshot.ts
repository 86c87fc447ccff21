// `ctl debug <worker> proc`: what /proc says about a worker's process group at one moment, for any
// runtime and without any tool installed: each process's state and what it waits in (wchan,
// kernel stack where readable), its threads, open descriptors with sockets resolved to addresses,
// children, memory by kind and limits. Read synchronously (a few files per process, bounded), so
// the snapshot is one moment; a process that exits meanwhile is simply missing, a file that is
// not ours to read (the kernel stack needs root) says so instead of failing the snapshot.
import { closeSync, openSync, readdirSync, readlinkSync, readSync } from "node:fs";
import { endianness } from "node:os";
import { parseStatGroup } from "../metrics/proc-parse.js";
import { parseCmdline, parseKernelStack, parseLimitsTable, parseSmapsRollup, parseStatPpid, parseStatState, parseStatus, parseWchan, type LimitRow } from "./proc-files.js";
import { parseInetTable, parseUnixTable, socketInode, type InetProtocol, type SocketInfo } from "./proc-net.js";

export const SNAPSHOT_LIMITS = {
  /** Processes of one group shown (a pre-fork server has a few dozen at most). */
  processesMax: 64,
  /** Threads listed by name per process (all are counted). */
  threadsListedMax: 64,
  /** Descriptors listed per process (all are counted). */
  fdsListedMax: 256,
  kernelStackLinesMax: 64,
  cmdlineCharsMax: 1024,
  /** Children listed per process. */
  childrenMax: 64,
  /** One small /proc file (status, limits, smaps_rollup, stack, cmdline). */
  fileBytesMax: 64 * 1024,
  /** One socket table (/proc/<pid>/net/tcp…): a busy machine's can be large; the rest is not read. */
  socketTableBytesMax: 8 * 1024 * 1024,
  /** Processes on the machine looked at to find the group and children. */
  machineProcessesMax: 100_000,
} as const;

export interface ThreadInfo {
  tid: number;
  name: string;
  state: string | null;
}

export interface FdInfo {
  fd: number;
  /** What it points to: a path, pipe:[…], socket:[…], anon_inode:[eventpoll], … */
  target: string;
  socket?: SocketInfo;
}

export interface ProcessSnapshot {
  pid: number;
  ppid: number | null;
  comm: string | null;
  cmdline: string;
  /** "S (sleeping)". */
  state: string | null;
  wchan: string | null;
  /** Kernel functions, innermost first; null when not readable (kernelStackError says why). */
  kernelStack: string[] | null;
  kernelStackError: string | null;
  threadCount: number | null;
  threads: ThreadInfo[];
  fdCount: number | null;
  fds: FdInfo[];
  fdError: string | null;
  children: { pid: number; comm: string | null; inGroup: boolean }[];
  /** smaps_rollup in bytes by the kernel's names; null when not readable (memoryError says why). */
  memory: Record<string, number> | null;
  memoryError: string | null;
  limits: LimitRow[];
}

export interface ProcSnapshot {
  pool: string;
  workerId: string;
  /** The worker's pid: its process group id. */
  pid: number;
  takenAt: string;
  processes: ProcessSnapshot[];
  /** Members of the group past processesMax, not shown. */
  processesOmitted: number;
  notes: string[];
}

type Read = { ok: true; text: string } | { ok: false; error: string };

/** At most maxBytes of a file: /proc files report size 0, so read until the end or the bound. */
function readBounded(path: string, maxBytes: number): Read {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (error) {
    return { ok: false, error: errorText(error) };
  }
  try {
    const chunks: Buffer[] = [];
    let total = 0;
    while (total < maxBytes) {
      const chunk = Buffer.allocUnsafe(Math.min(64 * 1024, maxBytes - total));
      const length = readSync(fd, chunk, 0, chunk.length, null);
      if (length === 0) break;
      chunks.push(chunk.subarray(0, length));
      total += length;
    }
    return { ok: true, text: Buffer.concat(chunks, total).toString("utf8") };
  } catch (error) {
    return { ok: false, error: errorText(error) };
  } finally {
    try {
      closeSync(fd);
    } catch {
      // nothing left to do with it
    }
  }
}

function errorText(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === "EACCES" || code === "EPERM") return "permission denied";
  if (code === "ENOENT" || code === "ESRCH") return "gone";
  return code ?? (error instanceof Error ? error.message : String(error));
}

const textOr = (read: Read): string | null => (read.ok ? read.text : null);

function numericEntries(folder: string, max: number): { ok: true; entries: number[]; total: number } | { ok: false; error: string } {
  try {
    const all = readdirSync(folder).filter((name) => /^\d+$/.test(name)).map(Number).sort((a, b) => a - b);
    return { ok: true, entries: all.slice(0, max), total: all.length };
  } catch (error) {
    return { ok: false, error: errorText(error) };
  }
}

interface MachineTable {
  pgrpByPid: Map<number, number>;
  ppidByPid: Map<number, number>;
  commByPid: Map<number, string>;
  stateByPid: Map<number, string>;
}

/** One pass over every process: its group, parent and name (to find the group's members and children). */
function readMachine(root: string): MachineTable {
  const table: MachineTable = { pgrpByPid: new Map(), ppidByPid: new Map(), commByPid: new Map(), stateByPid: new Map() };
  const pids = numericEntries(root, SNAPSHOT_LIMITS.machineProcessesMax);
  if (!pids.ok) return table;
  for (const pid of pids.entries) {
    const stat = textOr(readBounded(`${root}/${pid}/stat`, 4096));
    if (stat === null) continue;
    const pgrp = parseStatGroup(stat);
    const ppid = parseStatPpid(stat);
    const state = parseStatState(stat);
    if (state !== null) table.stateByPid.set(pid, state);
    if (pgrp !== null) table.pgrpByPid.set(pid, pgrp);
    if (ppid !== null) table.ppidByPid.set(pid, ppid);
    table.commByPid.set(pid, stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")")));
  }
  return table;
}

function threadsOf(root: string, pid: number): ThreadInfo[] {
  const tids = numericEntries(`${root}/${pid}/task`, SNAPSHOT_LIMITS.threadsListedMax);
  if (!tids.ok) return [];
  return tids.entries.map((tid) => {
    const stat = textOr(readBounded(`${root}/${pid}/task/${tid}/stat`, 4096));
    const comm = textOr(readBounded(`${root}/${pid}/task/${tid}/comm`, 256));
    return { tid, name: comm?.trim() ?? "?", state: stat === null ? null : parseStatState(stat) };
  });
}

function fdsOf(root: string, pid: number): { fds: FdInfo[]; count: number | null; error: string | null } {
  const listed = numericEntries(`${root}/${pid}/fd`, SNAPSHOT_LIMITS.fdsListedMax);
  if (!listed.ok) return { fds: [], count: null, error: listed.error };
  const fds: FdInfo[] = [];
  for (const fd of listed.entries) {
    try {
      fds.push({ fd, target: readlinkSync(`${root}/${pid}/fd/${fd}`) });
    } catch {
      // closed meanwhile
    }
  }
  return { fds, count: listed.total, error: null };
}

function processOf(root: string, pid: number, machine: MachineTable, groupId: number): ProcessSnapshot {
  const base = `${root}/${pid}`;
  const status = readBounded(`${base}/status`, SNAPSHOT_LIMITS.fileBytesMax);
  const parsed = status.ok ? parseStatus(status.text) : null;
  const stack = readBounded(`${base}/stack`, SNAPSHOT_LIMITS.fileBytesMax);
  const smaps = readBounded(`${base}/smaps_rollup`, SNAPSHOT_LIMITS.fileBytesMax);
  const limits = textOr(readBounded(`${base}/limits`, SNAPSHOT_LIMITS.fileBytesMax));
  const fds = fdsOf(root, pid);
  const children = [...machine.ppidByPid.entries()]
    .filter(([, ppid]) => ppid === pid)
    .slice(0, SNAPSHOT_LIMITS.childrenMax)
    .map(([child]) => ({ pid: child, comm: machine.commByPid.get(child) ?? null, inGroup: machine.pgrpByPid.get(child) === groupId }));
  const memory = smaps.ok ? parseSmapsRollup(smaps.text) : null;
  return {
    pid,
    ppid: parsed?.ppid ?? machine.ppidByPid.get(pid) ?? null,
    comm: parsed?.name ?? machine.commByPid.get(pid) ?? null,
    cmdline: parseCmdline(textOr(readBounded(`${base}/cmdline`, SNAPSHOT_LIMITS.fileBytesMax)) ?? "", SNAPSHOT_LIMITS.cmdlineCharsMax),
    state: parsed?.state ?? null,
    wchan: parseWchan(textOr(readBounded(`${base}/wchan`, 256)) ?? ""),
    kernelStack: stack.ok ? parseKernelStack(stack.text, SNAPSHOT_LIMITS.kernelStackLinesMax) : null,
    kernelStackError: stack.ok ? null : stack.error,
    threadCount: parsed?.threads ?? null,
    threads: threadsOf(root, pid),
    fdCount: fds.count,
    fds: fds.fds,
    fdError: fds.error,
    children,
    memory,
    memoryError: smaps.ok ? (memory === null ? "empty" : null) : smaps.error,
    limits: limits === null ? [] : parseLimitsTable(limits),
  };
}

/** Fills in what each socket descriptor is, from the tables of the leader's network namespace. */
function resolveSockets(root: string, leaderPid: number, processes: ProcessSnapshot[], notes: string[]): void {
  const inodes = new Set<number>();
  for (const process of processes) {
    for (const fd of process.fds) {
      const inode = socketInode(fd.target);
      if (inode !== null) inodes.add(inode);
    }
  }
  if (inodes.size === 0) return;
  const sockets = new Map<number, SocketInfo>();
  const littleEndian = endianness() === "LE";
  for (const protocol of ["tcp", "tcp6", "udp", "udp6", "unix"] as const) {
    const read = readBounded(`${root}/${leaderPid}/net/${protocol}`, SNAPSHOT_LIMITS.socketTableBytesMax);
    if (!read.ok) continue;
    if (read.text.length >= SNAPSHOT_LIMITS.socketTableBytesMax) notes.push(`the ${protocol} table is larger than ${SNAPSHOT_LIMITS.socketTableBytesMax} bytes: sockets past that are not resolved`);
    const found = protocol === "unix" ? parseUnixTable(read.text, inodes) : parseInetTable(read.text, protocol as InetProtocol, inodes, littleEndian);
    for (const [inode, info] of found) sockets.set(inode, info);
  }
  for (const process of processes) {
    for (const fd of process.fds) {
      const inode = socketInode(fd.target);
      const socket = inode === null ? undefined : sockets.get(inode);
      if (socket !== undefined) fd.socket = socket;
    }
  }
}

/**
 * The snapshot of the group led by `pid` (the worker's pid is its group id): the leader first,
 * then the other members by pid. `root` is where proc is mounted.
 */
export function takeProcSnapshot(worker: { pool: string; workerId: string; pid: number }, root = "/proc"): ProcSnapshot {
  const machine = readMachine(root);
  const members = [...machine.pgrpByPid.entries()].filter(([, pgrp]) => pgrp === worker.pid).map(([pid]) => pid);
  // The leader first, also when it moved to another group or is gone (its leftovers are the group).
  const ordered = [...new Set([...(machine.pgrpByPid.has(worker.pid) ? [worker.pid] : []), ...members.sort((a, b) => a - b)])];
  const shown = ordered.slice(0, SNAPSHOT_LIMITS.processesMax);
  const notes: string[] = [];
  const processes = shown.map((pid) => processOf(root, pid, machine, worker.pid));
  if (processes.length > 0) resolveSockets(root, processes[0]?.pid ?? worker.pid, processes, notes);
  if (!machine.pgrpByPid.has(worker.pid)) notes.push(`the worker's leader (pid ${worker.pid}) is gone; ${processes.length === 0 ? "nothing is left in its group" : "these are what is left in its group"}`);
  if (processes.some((process) => process.kernelStackError === "permission denied")) notes.push("kernel stacks (/proc/PID/stack) are readable only by root (CAP_SYS_ADMIN)");
  return {
    pool: worker.pool,
    workerId: worker.workerId,
    pid: worker.pid,
    takenAt: new Date().toISOString(),
    processes,
    processesOmitted: ordered.length - shown.length,
    notes,
  };
}

/** Single-letter states of the group's processes, for the check after a debug command that was stopped. */
export function groupStates(pid: number, root = "/proc"): { pid: number; state: string }[] {
  const machine = readMachine(root);
  const states: { pid: number; state: string }[] = [];
  for (const [member, pgrp] of machine.pgrpByPid) {
    const state = machine.stateByPid.get(member);
    if (pgrp === pid && state !== undefined) states.push({ pid: member, state });
  }
  return states;
}
