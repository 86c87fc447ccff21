import { describe, expect, it } from "vitest";
import { parseCmdline, parseKernelStack, parseLimitsTable, parseSmapsRollup, parseStatPpid, parseStatState, parseStatus, parseWchan } from "../../../src/debug/proc-files.js";
import { formatProcSnapshot, humanSize } from "../../../src/debug/proc-format.js";
import type { ProcessSnapshot, ProcSnapshot } from "../../../src/debug/proc-snapshot.js";

// Captured from Linux 6.x (limits padded as the kernel prints them).
const LIMITS = `Limit                     Soft Limit           Hard Limit           Units     
Max cpu time              unlimited            unlimited            seconds   
Max stack size            8388608              unlimited            bytes     
Max open files            1024                 1048576              files     
Max nice priority         0                    0                    
Max realtime timeout      unlimited            unlimited            us        
`;
const SMAPS = `55c9d071a000-7ffc73916000 ---p 00000000 00:00 0                          [rollup]
Rss:                1744 kB
Pss:                 338 kB
Pss_Anon:            112 kB
Pss_File:            226 kB
Pss_Shmem:             0 kB
Private_Clean:        40 kB
Private_Dirty:       112 kB
Swap:                  0 kB
`;
const STATUS = "Name:\tgunicorn: worker\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t4242\nPid:\t4242\nPPid:\t4200\nUid:\t1000\t1000\t1000\t1000\nThreads:\t3\n";

describe("proc files of one process", () => {
  it("reads status: name, state in words, parent, threads, uid", () => {
    expect(parseStatus(STATUS)).toEqual({ name: "gunicorn: worker", state: "S (sleeping)", ppid: 4200, threads: 3, uid: 1000 });
    expect(parseStatus("")).toEqual({ name: null, state: null, ppid: null, threads: null, uid: null });
  });

  it("reads the parent and state from a stat whose name has spaces and parentheses", () => {
    const stat = "4242 (my (odd) name) S 4200 4242 4242 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 100 0 0";
    expect(parseStatPpid(stat)).toBe(4200);
    expect(parseStatState(stat)).toBe("S");
    expect(parseStatState("4242 (x) t 1 2")).toBe("t");
    expect(parseStatPpid("garbage")).toBeNull();
  });

  it("reads smaps_rollup in bytes and limits by column, names with spaces kept", () => {
    expect(parseSmapsRollup(SMAPS)).toEqual({
      Rss: 1744 * 1024, Pss: 338 * 1024, Pss_Anon: 112 * 1024, Pss_File: 226 * 1024, Pss_Shmem: 0, Private_Clean: 40 * 1024, Private_Dirty: 112 * 1024, Swap: 0,
    });
    expect(parseSmapsRollup("")).toBeNull();
    expect(parseLimitsTable(LIMITS)).toEqual([
      { name: "Max cpu time", soft: "unlimited", hard: "unlimited", unit: "seconds" },
      { name: "Max stack size", soft: "8388608", hard: "unlimited", unit: "bytes" },
      { name: "Max open files", soft: "1024", hard: "1048576", unit: "files" },
      { name: "Max nice priority", soft: "0", hard: "0", unit: "" },
      { name: "Max realtime timeout", soft: "unlimited", hard: "unlimited", unit: "us" },
    ]);
    expect(parseLimitsTable("not a limits file")).toEqual([]);
  });

  it("reads the kernel stack without addresses, bounded; the command line with odd arguments quoted; wchan 0 as none", () => {
    expect(parseKernelStack("[<0>] do_epoll_wait+0x548/0x5a0\n[<0>] __x64_sys_epoll_wait+0x6f/0x110\n[<0>] do_syscall_64+0x71/0x280\n", 2)).toEqual([
      "do_epoll_wait+0x548/0x5a0",
      "__x64_sys_epoll_wait+0x6f/0x110",
    ]);
    expect(parseCmdline("python3\0-c\0import time; time.sleep(1)\0\0", 1024)).toBe('python3 -c "import time; time.sleep(1)" ""');
    expect(parseCmdline("a".repeat(20), 10)).toBe(`${"a".repeat(10)}…`);
    expect(parseCmdline("", 10)).toBe("");
    expect(parseWchan("0")).toBeNull();
    expect(parseWchan("do_epoll_wait")).toBe("do_epoll_wait");
  });
});

describe("proc snapshot as ctl prints it", () => {
  const process = (overrides: Partial<ProcessSnapshot>): ProcessSnapshot => ({
    pid: 4242, ppid: 4200, comm: "node", cmdline: "node server.js", state: "S (sleeping)", wchan: "do_epoll_wait", kernelStack: null, kernelStackError: "permission denied",
    threadCount: 7, threads: [{ tid: 4242, name: "node", state: "S" }, ...Array.from({ length: 4 }, (_, i) => ({ tid: 4300 + i, name: "libuv-worker", state: "S" }))],
    fdCount: 3, fds: [{ fd: 0, target: "/dev/null" }, { fd: 3, target: "socket:[1]", socket: { protocol: "tcp", local: "0.0.0.0:8080", peer: null, state: "LISTEN", rxQueue: 2, txQueue: 0 } }],
    fdError: null, children: [{ pid: 4300, comm: "sh", inGroup: false }], memory: { Rss: 50 * 1024 * 1024, Pss: 20 * 1024 * 1024, Pss_Anon: 15 * 1024 * 1024, Pss_File: 5 * 1024 * 1024, Pss_Shmem: 0 }, memoryError: null,
    limits: [{ name: "Max cpu time", soft: "unlimited", hard: "unlimited", unit: "seconds" }, { name: "Max open files", soft: "1024", hard: "4096", unit: "files" }],
    ...overrides,
  });
  const snapshot: ProcSnapshot = {
    pool: "web", workerId: "web-0", pid: 4242, takenAt: "2025-01-01T00:00:00.000Z",
    processes: [process({}), process({ pid: 4243, comm: "evil\u001b[2J", kernelStack: ["ep_poll+0x1"], kernelStackError: null, fds: [], fdCount: null, fdError: "permission denied", memory: null, memoryError: "permission denied" })],
    processesOmitted: 1, notes: ["kernel stacks (/proc/PID/stack) are readable only by root (CAP_SYS_ADMIN)"],
  };

  it("shows each process's state, threads, stack, memory split, sockets, children and limits, control characters made harmless", () => {
    const lines = formatProcSnapshot(snapshot);
    expect(lines[0]).toBe("worker web-0 (pid 4242), process group of 3 processes, at 2025-01-01T00:00:00.000Z");
    expect(lines).toContain("== pid 4242 (node), ppid 4200: S (sleeping), waiting in do_epoll_wait");
    expect(lines).toContain("   threads: 7 (node, libuv-worker ×4, … 2 more)");
    expect(lines).toContain("   kernel stack: not readable (permission denied)");
    expect(lines).toContain("   memory: Rss 50.0 MiB; Pss 20.0 MiB = anon 15.0 MiB + file 5.0 MiB + shmem 0 KiB");
    expect(lines).toContain("   children: 4300 (sh) in another group");
    expect(lines).toContain("       3  tcp 0.0.0.0:8080 LISTEN, 2 waiting to be accepted  (socket:[1])");
    expect(lines).toContain("     Max open files            1024 / 4096 files");
    expect(lines.some((line) => line.includes("Max cpu time"))).toBe(false);
    expect(lines).toContain("-- pid 4243 (evil?[2J), ppid 4200: S (sleeping), waiting in do_epoll_wait");
    expect(lines).toContain("     ep_poll+0x1");
    expect(lines).toContain("   open files: not readable (permission denied)");
    expect(lines).toContain("… 1 more processes in the group, not shown");
    expect(lines[lines.length - 1]).toBe("note: kernel stacks (/proc/PID/stack) are readable only by root (CAP_SYS_ADMIN)");
  });

  it("says sizes in KiB, MiB or GiB", () => {
    expect(humanSize(812 * 1024)).toBe("812 KiB");
    expect(humanSize(45.3 * 1024 * 1024)).toBe("45.3 MiB");
    expect(humanSize(1.25 * 1024 ** 3)).toBe("1.3 GiB");
  });
});
