// readProcessStats against real processes, without Monoceros: a worker that changes its own
// open-files limit, and a worker whose CPU is spent by the children of a shell. Every process
// started here runs in its own process group and is killed by group in afterEach.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { readProcessStats } from "../../src/metrics/process-stats.js";
import { killGroupsAfterEach, pollFor, ROOT } from "../support/monoceros.js";

const trackGroup = killGroupsAfterEach(afterEach);

/** Starts a command as the leader of a new process group (as Monoceros starts workers). */
function startGroup(command: string, args: string[]): ChildProcess & { pid: number } {
  const child = spawn(command, args, { detached: true, stdio: ["pipe", "pipe", "inherit"] });
  if (child.pid === undefined) throw new Error(`could not start ${command}`);
  trackGroup(child.pid);
  return child as ChildProcess & { pid: number };
}

function lineFrom(child: ChildProcess, expected: string): Promise<void> {
  return linesFrom(child, expected, 1);
}

/** Resolves once `expected` has appeared `times` times on the child's stdout. */
function linesFrom(child: ChildProcess, expected: string, times: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = "";
    child.stdout?.setEncoding("utf8");
    child.stdout?.on("data", (chunk: string) => {
      seen += chunk;
      if (seen.split(expected).length - 1 >= times) resolve();
    });
    child.once("exit", (code, signal) => reject(new Error(`exited (${code ?? signal}) before printing ${expected}`)));
  });
}

/** Pids whose process group is `pgid`, from pgrep (not the code under test). */
function membersOf(pgid: number): number[] {
  try {
    return execFileSync("pgrep", ["-g", String(pgid)], { encoding: "utf8" }).trim().split("\n").map(Number);
  } catch {
    return []; // pgrep exits 1 when nothing matches
  }
}

/** Whether a python3 process is still in the group. */
function isBurning(pgid: number): boolean {
  return membersOf(pgid).some((pid) => {
    try {
      return readFileSync(`/proc/${pid}/comm`, "utf8").startsWith("python");
    } catch {
      return false;
    }
  });
}

/** utime + stime of one process alone, in seconds. */
function ownCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** VmRSS from /proc/<pid>/status (not the file the code under test reads), in bytes. */
function rssBytes(pid: number): number {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0) * 1024;
  } catch {
    return 0;
  }
}

const BUSY = "while :; do :; done";
/** Memory each child of the memory test holds: large against the kernel's approximation in stat (tens of pages). */
const HELD_MIB = 32;

describe("per-worker process figures from /proc", () => {
  it("counts the CPU of every process in the worker's group, not only the leader's", async () => {
    const worker = startGroup("sh", ["-c", `(${BUSY}) & (${BUSY}) & wait`]);
    await pollFor("the shell and its two busy children", () => membersOf(worker.pid).length === 3, 10_000);
    const group = await pollFor("a second of CPU spent by the group", () => {
      const stats = readProcessStats(worker.pid);
      return stats !== null && stats.cpuSeconds >= 1 ? stats : undefined;
    }, 30_000);
    // The leader only waits: nearly all of the group's CPU is its children's.
    expect(ownCpuSeconds(worker.pid)).toBeLessThan(0.2);
    expect(group.cpuSeconds).toBeGreaterThan(5 * ownCpuSeconds(worker.pid));
  });

  it("sums the resident memory and open descriptors of the group's live processes", async () => {
    const hold = `python3 -c 'import sys, time\nheld = b"x" * (${HELD_MIB} << 20)\nprint("ready", flush=True)\ntime.sleep(60)'`;
    const worker = startGroup("sh", ["-c", `${hold} & ${hold} & wait`]);
    await linesFrom(worker, "ready", 2);
    const members = membersOf(worker.pid);
    expect(members).toHaveLength(3);
    const group = readProcessStats(worker.pid);
    const expectedRss = members.reduce((sum, pid) => sum + rssBytes(pid), 0);
    expect(group?.rssBytes).toBeGreaterThan(2 * HELD_MIB * 2 ** 20);
    expect(rssBytes(worker.pid)).toBeLessThan(HELD_MIB * 2 ** 20);
    // stat's resident pages are the kernel's cheap per-CPU approximation; status's VmRSS is exact.
    expect(Math.abs((group?.rssBytes ?? 0) - expectedRss)).toBeLessThan(expectedRss * 0.05);
    const expectedFds = members.reduce((sum, pid) => sum + readdirSync(`/proc/${pid}/fd`).length, 0);
    expect(group?.openFds).toBe(expectedFds);
    expect(group?.openFds).toBeGreaterThan(readdirSync(`/proc/${worker.pid}/fd`).length);
  });

  it("keeps the CPU of a child that exited and was reaped by the worker, so the counter does not fall", async () => {
    // Half a second of CPU time (not wall time: the machine is shared), then the child exits.
    const burn = `python3 -c 'import time\nwhile time.process_time() < 0.5: pass'`;
    const worker = startGroup("sh", ["-c", `${burn}; echo burnt; sleep 60`]);
    const whileAlive = await pollFor("the child's first CPU time", () => {
      const stats = readProcessStats(worker.pid);
      return stats !== null && stats.cpuSeconds >= 0.2 && membersOf(worker.pid).length === 2 ? stats.cpuSeconds : undefined;
    }, 20_000);
    await lineFrom(worker, "burnt");
    await pollFor("the shell and its sleep only", () => membersOf(worker.pid).length === 2 && !isBurning(worker.pid), 10_000);
    const afterReap = readProcessStats(worker.pid)?.cpuSeconds ?? 0;
    expect(afterReap).toBeGreaterThanOrEqual(whileAlive);
    expect(afterReap).toBeGreaterThanOrEqual(0.5);
    expect(ownCpuSeconds(worker.pid)).toBeLessThan(0.2);
  });

  it("never throws when this process is out of descriptors: nothing with none free, every figure with one free", () => {
    // A Node process of its own with 256 descriptors at most, which it uses up (its worker group is killed by the fixture).
    const output = execFileSync("prlimit", ["--nofile=256:256", process.execPath, "--import", "tsx", join(ROOT, "test/fixtures/stats-under-emfile.ts")], { cwd: ROOT, encoding: "utf8", timeout: 30_000 });
    const result = JSON.parse(output.trim().split("\n").at(-1) ?? "{}") as Record<string, unknown>;
    expect(result.exhaustedWith).toBe("EMFILE");
    expect(result.noneFreeThrew).toBeUndefined();
    expect(result.oneFreeThrew).toBeUndefined();
    expect(result.noneFree).toBeNull();
    expect(result.oneFree).toMatchObject({ maxFds: 256, openFds: (result.before as { openFds: number }).openFds });
  });

  it("reports nothing for a worker that has exited", async () => {
    const worker = startGroup("sh", ["-c", "exit 0"]);
    await new Promise((resolve) => worker.once("exit", resolve));
    expect(readProcessStats(worker.pid)).toBeNull();
  });

  it("reports the open-files limit a worker set for itself after the first scrape", async () => {
    const script = [
      "import resource, sys",
      "sys.stdin.readline()",
      "resource.setrlimit(resource.RLIMIT_NOFILE, (500, 500))",
      "print('lowered', flush=True)",
      "sys.stdin.readline()",
    ].join("\n");
    const worker = startGroup("python3", ["-c", script]);
    const before = await pollFor("the first stats of the python worker", () => readProcessStats(worker.pid) ?? undefined, 10_000);
    expect(before.maxFds).not.toBe(500);
    const lowered = lineFrom(worker, "lowered");
    worker.stdin?.write("\n");
    await lowered;
    await pollFor("max_fds to follow the new limit", () => readProcessStats(worker.pid)?.maxFds === 500, 5_000);
  });
});
