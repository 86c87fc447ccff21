// The proc snapshot as `ctl debug <worker> proc` prints it: one block per process, the questions an
// operator asks of a stuck or fat worker answered in order (what is it doing, what does it wait in,
// what has it open, where does its memory go, what are its limits). Pure; --json shows it all raw.
import type { FdInfo, ProcessSnapshot, ProcSnapshot } from "./proc-snapshot.js";
import type { SocketInfo } from "./proc-net.js";

const KIB = 1024;
const MIB = 1024 * KIB;

/** 812 KiB, 45.3 MiB, 1.2 GiB. */
export function humanSize(bytes: number): string {
  if (bytes < MIB) return `${Math.round(bytes / KIB)} KiB`;
  if (bytes < 1024 * MIB) return `${(bytes / MIB).toFixed(1)} MiB`;
  return `${(bytes / (1024 * MIB)).toFixed(1)} GiB`;
}

// Control characters are shown as "?": a field must not move the cursor or restyle the terminal.
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const safe = (text: string): string => text.replace(/[\u0000-\u001f\u007f-\u009f]/g, "?");

function socketText(socket: SocketInfo): string {
  const queues = socket.state === "LISTEN" && socket.rxQueue !== undefined ? `, ${socket.rxQueue} waiting to be accepted` : "";
  if (socket.protocol === "unix") return `unix ${socket.type ?? ""} ${socket.local === "" ? "(unnamed)" : safe(socket.local)} ${socket.state}`.replace(/\s+/g, " ");
  return `${socket.protocol} ${socket.local}${socket.peer === null ? "" : ` -> ${socket.peer}`} ${socket.state}${queues}`;
}

function fdText(fd: FdInfo): string {
  return `${String(fd.fd).padStart(5)}  ${fd.socket === undefined ? safe(fd.target) : `${socketText(fd.socket)}  (${fd.target})`}`;
}

/** Thread names with repeats folded: "node, V8 DefaultWorke ×4, libuv-worker ×4". */
function threadNames(process: ProcessSnapshot): string {
  const counts = new Map<string, number>();
  for (const thread of process.threads) counts.set(thread.name, (counts.get(thread.name) ?? 0) + 1);
  const names = [...counts].map(([name, count]) => (count === 1 ? safe(name) : `${safe(name)} ×${count}`)).join(", ");
  const unlisted = (process.threadCount ?? process.threads.length) - process.threads.length;
  return unlisted > 0 ? `${names}, … ${unlisted} more` : names;
}

/** Rss and where it goes (smaps_rollup): anonymous, file-backed, shared memory; then Pss and Swap. */
function memoryText(memory: Record<string, number>): string {
  const size = (key: string) => (memory[key] === undefined ? null : humanSize(memory[key]));
  const parts = [`Rss ${size("Rss") ?? "?"}`];
  const split = [["anon", "Pss_Anon"], ["file", "Pss_File"], ["shmem", "Pss_Shmem"]].filter(([, key]) => memory[key as string] !== undefined);
  if (split.length > 0) parts.push(`Pss ${size("Pss") ?? "?"} = ${split.map(([what, key]) => `${what} ${size(key as string)}`).join(" + ")}`);
  else if (memory.Pss !== undefined) parts.push(`Pss ${size("Pss")}`);
  const privateBytes = (memory.Private_Clean ?? 0) + (memory.Private_Dirty ?? 0);
  if (memory.Private_Clean !== undefined || memory.Private_Dirty !== undefined) parts.push(`private ${humanSize(privateBytes)}`);
  if (memory.Swap !== undefined) parts.push(`swap ${size("Swap")}`);
  return parts.join("; ");
}

function processLines(process: ProcessSnapshot, leader: boolean): string[] {
  const lines = [`${leader ? "== " : "-- "}pid ${process.pid} (${safe(process.comm ?? "?")}), ppid ${process.ppid ?? "?"}: ${process.state ?? "?"}${process.wchan === null ? "" : `, waiting in ${safe(process.wchan)}`}`];
  if (process.cmdline !== "") lines.push(`   cmdline: ${safe(process.cmdline)}`);
  lines.push(`   threads: ${process.threadCount ?? "?"}${process.threads.length > 0 ? ` (${threadNames(process)})` : ""}`);
  if (process.kernelStack !== null) {
    lines.push(`   kernel stack:${process.kernelStack.length === 0 ? " (empty: running in user space)" : ""}`);
    for (const frame of process.kernelStack) lines.push(`     ${safe(frame)}`);
  } else {
    lines.push(`   kernel stack: not readable (${process.kernelStackError ?? "?"})`);
  }
  lines.push(`   memory: ${process.memory === null ? `not readable (${process.memoryError ?? "?"})` : memoryText(process.memory)}`);
  if (process.children.length > 0) {
    lines.push(`   children: ${process.children.map((child) => `${child.pid} (${safe(child.comm ?? "?")})${child.inGroup ? "" : " in another group"}`).join(", ")}`);
  }
  if (process.fdError !== null) {
    lines.push(`   open files: not readable (${process.fdError})`);
  } else {
    const unlisted = (process.fdCount ?? process.fds.length) - process.fds.length;
    lines.push(`   open files: ${process.fdCount ?? process.fds.length}${unlisted > 0 ? ` (the first ${process.fds.length} listed)` : ""}`);
    for (const fd of process.fds) lines.push(`   ${fdText(fd)}`);
  }
  const limited = process.limits.filter((row) => row.soft !== "unlimited" || row.hard !== "unlimited");
  if (process.limits.length > 0) {
    lines.push(`   limits (soft / hard; the others unlimited):`);
    for (const row of limited) lines.push(`     ${row.name.padEnd(26)}${row.soft} / ${row.hard}${row.unit === "" ? "" : ` ${row.unit}`}`);
  }
  return lines;
}

export function formatProcSnapshot(snapshot: ProcSnapshot): string[] {
  const count = snapshot.processes.length + snapshot.processesOmitted;
  const lines = [`worker ${safe(snapshot.workerId)} (pid ${snapshot.pid}), process group of ${count} process${count === 1 ? "" : "es"}, at ${snapshot.takenAt}`];
  snapshot.processes.forEach((process, index) => lines.push(...processLines(process, index === 0 && process.pid === snapshot.pid)));
  if (snapshot.processesOmitted > 0) lines.push(`… ${snapshot.processesOmitted} more processes in the group, not shown`);
  for (const note of snapshot.notes) lines.push(`note: ${safe(note)}`);
  return lines;
}
