import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { procfs } from "../../../src/metrics/proc-source.js";
import { createProcessStatsReader } from "../../../src/metrics/process-stats.js";

// node:fs with a switch: every open and directory read fails with this code (EMFILE: this process
// has used up its descriptors; ENFILE: the whole system has) while it is set.
// And a kernel older than 6.2, where the size of /proc/<pid>/fd is 0, while `oldKernel` is set.
const failure = vi.hoisted(() => ({ code: null as string | null, only: null as RegExp | null, oldKernel: false }));
vi.mock("node:fs", async (importOriginal) => {
  const fs = await importOriginal<typeof import("node:fs")>();
  const failing = <A extends unknown[], R>(call: (...args: A) => R) => (...args: A): R => {
    if (failure.code !== null && (failure.only === null || failure.only.test(String(args[0])))) {
      throw Object.assign(new Error(`${failure.code}: simulated, ${String(args[0])}`), { code: failure.code });
    }
    return call(...args);
  };
  const statSync = ((path: string) => {
    const stats = fs.statSync(path);
    return failure.oldKernel ? Object.assign(stats, { size: 0 }) : stats;
  }) as typeof fs.statSync;
  return { ...fs, openSync: failing(fs.openSync), readdirSync: failing(fs.readdirSync), statSync: failing(statSync) };
});

const folders: string[] = [];
afterEach(() => {
  failure.code = null;
  failure.only = null;
  failure.oldKernel = false;
  for (const folder of folders.splice(0)) rmSync(folder, { recursive: true, force: true });
});

const MACHINE = () => ({ pageSizeBytes: 4096, bootTimeSeconds: 1_795_600_000, ticksPerSecond: 100 });

/** A /proc-shaped folder: one worker (pid 100) with a member (101), and a process that vanished (102). */
function fakeProc(): string {
  const root = mkdtempSync(join(tmpdir(), "monoceros-proc-"));
  folders.push(root);
  const processes: [number, number][] = [[100, 100], [101, 100], [102, 100]];
  for (const [pid, pgrp] of processes) {
    mkdirSync(join(root, String(pid), "fd"), { recursive: true });
    if (pid === 102) continue; // listed, but gone before its stat is read
    writeFileSync(join(root, String(pid), "stat"), `${pid} (a) b) S 1 ${pgrp} ${pgrp} 0 -1 0 0 0 0 0 7 3 0 0 20 0 1 0 500 1000 10 0\n`);
    writeFileSync(join(root, String(pid), "limits"), "Max open files            4096                 4096                 files\n");
    for (const fd of ["0", "1", "2"]) writeFileSync(join(root, String(pid), "fd", fd), "");
  }
  return root;
}

describe("reading /proc", () => {
  it("lists only processes, and reads what is there", () => {
    const root = fakeProc();
    const proc = procfs({ root, fdsFromFolderSize: false });
    expect(proc.pids().sort()).toEqual([100, 101, 102]);
    expect(proc.stat(102)).toBeNull();
    expect(proc.openFds(100)).toBe(3);
    expect(createProcessStatsReader(proc, MACHINE)(100)).toMatchObject({ cpuSeconds: 0.2, rssBytes: 20 * 4096, openFds: 6, maxFds: 4096 });
    expect(procfs({ root: join(root, "missing") }).pids()).toEqual([]);
  });

  it("counts a real process's descriptors from its fd folder's size, or by listing it on older kernels", async () => {
    const child = spawn("sleep", ["30"], { stdio: ["ignore", "ignore", "ignore"] });
    try {
      await new Promise((resolve) => child.once("spawn", resolve));
      const pid = child.pid as number;
      // Until sleep sleeps, the dynamic loader opens and closes files: its count is not steady yet.
      for (let polls = 0; polls < 500 && !/\) S /.test(readFileSync(`/proc/${pid}/stat`, "utf8")); polls++) await new Promise((r) => setTimeout(r, 10));
      const listed = readdirSync(`/proc/${pid}/fd`).length;
      expect(procfs().openFds(pid)).toBe(listed);
      failure.oldKernel = true;
      expect(procfs().openFds(pid)).toBe(listed);
    } finally {
      child.kill("SIGKILL");
    }
  });

  for (const code of ["EMFILE", "ENFILE", "EACCES"]) {
    it(`never throws when every read fails with ${code}: the scrape has nothing for the worker`, () => {
      const proc = procfs({ root: fakeProc(), fdsFromFolderSize: false });
      failure.code = code;
      expect(proc.pids()).toEqual([]);
      expect(proc.stat(100)).toBeNull();
      expect(proc.limits(100)).toBeNull();
      expect(proc.openFds(100)).toBeNull();
      expect(createProcessStatsReader(proc, MACHINE)(100)).toBeNull();
    });
  }

  it("returns what it can when only some reads fail with EMFILE", () => {
    const proc = procfs({ root: fakeProc(), fdsFromFolderSize: false });
    failure.code = "EMFILE";
    failure.only = /\/(limits|fd)$/;
    expect(createProcessStatsReader(proc, MACHINE)(100)).toMatchObject({ cpuSeconds: 0.2, rssBytes: 20 * 4096, openFds: null, maxFds: null });
  });
});
