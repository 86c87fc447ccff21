// The resident memory of real process groups. Checked two ways: exactly, against each live
// member's rss as the test reads it from /proc/<pid>/stat and `getconf PAGESIZE`; and roughly,
// against VmRSS in /proc/<pid>/status, which since Linux 6.16 is exact where stat's rss is the
// kernel's cheap per-CPU approximation (see src/backends/os/group-memory.ts).
import { execFileSync, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { availableParallelism, endianness } from "node:os";
import { afterEach, describe, expect, it } from "vitest";
import { groupRssBytes, parseAuxvPageSize } from "../../src/backends/os/group-memory.js";
import { killGroupsAfterEach, pollFor } from "../support/monoceros.js";

const PAGE_SIZE_BYTES = Number(execFileSync("getconf", ["PAGESIZE"]).toString().trim());
/** The interpreter itself: a python3 that is a shim (pyenv) runs helpers in the group first. */
const PYTHON = execFileSync("python3", ["-c", "import sys; print(sys.executable)"]).toString().trim();

const trackGroup = killGroupsAfterEach(afterEach);

/** Starts the command as the leader of a new process group; resolves with its pid (= the group id). */
async function startGroup(command: string, args: string[]): Promise<{ pgid: number; exited: Promise<unknown> }> {
  const child = spawn(command, args, { detached: true, stdio: "ignore" });
  const exited = new Promise((resolve) => child.once("exit", resolve));
  await new Promise((resolve, reject) => {
    child.once("spawn", resolve);
    child.once("error", reject);
  });
  const pgid = child.pid as number;
  trackGroup(pgid);
  return { pgid, exited };
}

/** Members by pgrep (which reads /proc itself), zombies included. */
function members(pgid: number): number[] {
  let out: string;
  try {
    out = execFileSync("pgrep", ["-g", String(pgid)]).toString();
  } catch {
    return []; // exit status 1: none
  }
  return out
    .split("\n")
    .filter((line) => line !== "")
    .map(Number);
}

/** A /proc file of a process, or null once it is gone. */
function procText(pid: number, file: string): string | null {
  try {
    return readFileSync(`/proc/${pid}/${file}`, "latin1");
  } catch {
    return null;
  }
}

const isZombie = (pid: number) => /^State:\s+Z/m.test(procText(pid, "status") ?? "State: Z");
const liveMembers = (pgid: number) => members(pgid).filter((pid) => !isZombie(pid));
const sum = (values: number[]) => values.reduce((total, value) => total + value, 0);

/** Field 24 of /proc/<pid>/stat, in bytes (the test's processes have no spaces in their names). */
function statRssBytes(pid: number): number {
  const text = procText(pid, "stat") ?? ") 0";
  return Number(text.slice(text.lastIndexOf(")") + 2).split(" ")[21] ?? 0) * PAGE_SIZE_BYTES;
}

function vmRssBytes(pid: number): number {
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(procText(pid, "status") ?? "")?.[1] ?? 0) * 1024;
}

/**
 * Polls until groupRssBytes agrees exactly with the live members' stat rss read here (a process
 * just forked, or still being exec'ed and linked, grows for a few milliseconds), then checks it
 * against VmRSS: stat's rss may differ by what the per-CPU counters have not folded in yet, under
 * 3 counters x CPUs x max(32, 2 x CPUs) pages per process.
 */
async function expectGroupRss(pgid: number, liveCount: number): Promise<number> {
  const { rssBytes, live } = await pollFor(
    `groupRssBytes(${pgid}) to match its ${liveCount} live members`,
    () => {
      const live = liveMembers(pgid);
      const expected = sum(live.map(statRssBytes));
      const actual = groupRssBytes(new Set([pgid])).get(pgid);
      return live.length === liveCount && actual === expected && { rssBytes: actual, live };
    },
    10_000,
  );
  const cpus = availableParallelism();
  const slackBytes = liveCount * 3 * cpus * Math.max(32, 2 * cpus) * PAGE_SIZE_BYTES;
  expect(Math.abs(rssBytes - sum(live.map(vmRssBytes)))).toBeLessThanOrEqual(slackBytes);
  return rssBytes;
}

describe("groupRssBytes", () => {
  it("sums the resident memory of a group's leader and children", async () => {
    const { pgid } = await startGroup("sh", ["-c", "sleep 1000 & sleep 1000 & wait"]);
    const rssBytes = await expectGroupRss(pgid, 3);
    expect(rssBytes).toBeGreaterThan(statRssBytes(pgid));
  });

  it("answers for every group asked about in one call, 0 for a group that does not exist", async () => {
    const first = await startGroup("sh", ["-c", "sleep 1000 & wait"]);
    const second = await startGroup("sleep", ["1000"]);
    const firstBytes = await expectGroupRss(first.pgid, 2);
    const secondBytes = await expectGroupRss(second.pgid, 1);
    // Above pid_max: no process, so no group, can have this id.
    const absent = Number(readFileSync("/proc/sys/kernel/pid_max", "latin1")) + 1;
    expect(groupRssBytes(new Set([first.pgid, second.pgid, absent]))).toEqual(
      new Map([
        [first.pgid, firstBytes],
        [second.pgid, secondBytes],
        [absent, 0],
      ]),
    );
    expect(groupRssBytes(new Set())).toEqual(new Map());
  });

  it("counts a child that outlived its group's leader", async () => {
    const { pgid, exited } = await startGroup("sh", ["-c", "sleep 1000 & exit 0"]);
    await exited;
    expect(await expectGroupRss(pgid, 1)).toBeGreaterThan(0);
    expect(liveMembers(pgid)).not.toContain(pgid);
  });

  it("counts a zombie as 0", async () => {
    // The child exits at once and its parent never reaps it.
    const { pgid } = await startGroup(PYTHON, ["-c", "import os, time\nif os.fork() == 0: os._exit(0)\ntime.sleep(1000)"]);
    await pollFor("a zombie in the group", () => members(pgid).some(isZombie), 10_000);
    expect(liveMembers(pgid)).toEqual([pgid]);
    await expectGroupRss(pgid, 1);
  });
});

describe("parseAuxvPageSize", () => {
  const auxv = (wordBytes: 4 | 8, littleEndian: boolean, pairs: [number, number][]): Buffer => {
    const buffer = Buffer.alloc(pairs.length * 2 * wordBytes);
    pairs.flat().forEach((value, index) => {
      const offset = index * wordBytes;
      if (wordBytes === 4) {
        if (littleEndian) buffer.writeUInt32LE(value, offset);
        else buffer.writeUInt32BE(value, offset);
      } else if (littleEndian) buffer.writeBigUInt64LE(BigInt(value), offset);
      else buffer.writeBigUInt64BE(BigInt(value), offset);
    });
    return buffer;
  };

  it("finds AT_PAGESZ in 64- and 32-bit vectors of either byte order", () => {
    expect(parseAuxvPageSize(auxv(8, true, [[33, 7], [6, 4096], [0, 0]]), 8, true)).toBe(4096);
    expect(parseAuxvPageSize(auxv(8, false, [[16, 1], [6, 65536], [0, 0]]), 8, false)).toBe(65536);
    expect(parseAuxvPageSize(auxv(4, true, [[6, 16384], [0, 0]]), 4, true)).toBe(16384);
  });

  it("says null when the vector has no sensible page size", () => {
    expect(parseAuxvPageSize(auxv(8, true, [[33, 7], [0, 0], [6, 4096]]), 8, true)).toBeNull();
    expect(parseAuxvPageSize(auxv(8, true, [[6, 5000], [0, 0]]), 8, true)).toBeNull();
    expect(parseAuxvPageSize(Buffer.from([6, 0, 0]), 8, true)).toBeNull();
  });

  it("agrees with getconf on this machine", () => {
    const pageSize = parseAuxvPageSize(readFileSync("/proc/self/auxv"), process.arch === "ia32" || process.arch === "arm" ? 4 : 8, endianness() === "LE");
    expect(pageSize).toBe(PAGE_SIZE_BYTES);
  });
});
