// Whether anything is left of a worker's process group. The fast path is one kill(-pgid, 0);
// only when that finds members is /proc read, because members that are zombies do not count:
// where Monoceros is PID 1 (a container without an init) nobody reaps its workers' orphans, and
// a zombie group would otherwise never be reported empty. A "zombie" with threads left is alive.
import { readdirSync, readFileSync } from "node:fs";
import { parseProcStat, parseStatGroup } from "../../metrics/proc-parse.js";
import { isLive } from "../../metrics/process-groups.js";

export function groupHasLiveMembers(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
  } catch (error) {
    // ESRCH: no process has this group id. EPERM: something is there that we may not signal.
    return (error as NodeJS.ErrnoException).code !== "ESRCH";
  }
  return liveMembersFromProc(pgid);
}

/** Reads /proc/PID/stat of every process; on any failure to list or read (e.g. EMFILE) it assumes members are alive. */
function liveMembersFromProc(pgid: number): boolean {
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch {
    return true;
  }
  for (const entry of entries) {
    const first = entry.charCodeAt(0);
    if (first < 48 || first > 57) continue;
    let text: string;
    try {
      text = readFileSync(`/proc/${entry}/stat`, "latin1");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT" || (error as NodeJS.ErrnoException).code === "ESRCH") continue;
      return true; // cannot tell (EMFILE, EACCES): do not claim the group is gone
    }
    if (parseStatGroup(text) !== pgid) continue;
    const member = parseProcStat(text);
    if (member === null || member.state === "X") continue;
    if (isLive(member) || hasLiveThreads(entry)) return true;
  }
  return false;
}

/**
 * A process whose main thread exited while its other threads run shows state Z too: it is alive
 * (it may hold the worker's port). Its status says how many threads it still has.
 */
function hasLiveThreads(pid: string): boolean {
  try {
    const threads = /^Threads:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "latin1"))?.[1];
    return threads !== undefined && Number(threads) > 1;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code !== "ENOENT" && code !== "ESRCH"; // cannot tell: do not claim it is gone
  }
}
