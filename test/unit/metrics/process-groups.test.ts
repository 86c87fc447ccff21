import { describe, expect, it } from "vitest";
import { parseLimits, parseProcStat, parseStatGroup, UNLIMITED } from "../../../src/metrics/proc-parse.js";
import { combineGroup, groupOf, indexProcesses } from "../../../src/metrics/process-groups.js";

// Captured from /proc (Linux 6.18) for `sh -c '(busy loop) & "/tmp/w) S 1 (x" 30 & sleep 30 & wait'`
// started with setsid: the leader sh (17572), its busy subshell, a program whose name holds ") S 1 ("
// (a parser that splits at the first ")" reads its pgrp as 1), and a sleep.
const SH_GROUP = [
  "17572 (sh) S 17569 17572 17572 0 -1 4194304 179 0 1 0 0 0 0 0 20 0 1 0 39588 2654208 384 18446744073709551615 94229185490944 94229185567673 140731096809296 0 0 0 0 0 65538 1 0 0 17 1 0 0 0 0 0 94229185596976 94229185602112 94229665820672 140731096816300 140731096816368 140731096816368 140731096817644 0",
  "17573 (sh) R 17572 17572 17572 0 -1 4194368 21 0 0 0 117 1 0 0 20 0 1 0 39588 2654208 105 18446744073709551615 94229185490944 94229185567673 140731096809296 0 0 0 0 6 65536 0 0 0 17 1 0 0 0 0 0 94229185596976 94229185602112 94229665820672 140731096816300 140731096816368 140731096816368 140731096817644 0",
  "17574 (w) S 1 (x) S 17572 17572 17572 0 -1 4194304 99 0 0 0 0 0 0 0 20 0 1 0 39588 2990080 420 18446744073709551615 94910688518144 94910688536073 140720702709536 0 0 0 0 6 0 1 0 0 17 1 0 0 0 0 0 94910688550160 94910688551424 94911556435968 140720702716635 140720702716653 140720702716653 140720702717929 0",
  "17575 (sleep) S 17572 17572 17572 0 -1 4194304 98 0 0 0 0 0 0 0 20 0 1 0 39588 2990080 420 18446744073709551615 94469447028736 94469447046665 140722435482160 0 0 0 0 6 0 1 0 0 17 1 0 0 0 0 0 94469447060752 94469447062016 94470196178944 140722435488484 140722435488493 140722435488493 140722435489769 0",
];
// A member that has exited and waits for the leader to reap it (its times are still in its stat).
const ZOMBIE = "17576 (python3) Z 17572 17572 17572 0 -1 4227084 0 0 0 0 26 3 0 0 20 0 1 0 39600 0 0 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0";
// Another worker's process, and one in no worker's group.
const OTHER_WORKER = "18000 (sh) S 17569 18000 18000 0 -1 4194304 179 0 1 0 500 20 0 0 20 0 1 0 39700 2654208 384 18446744073709551615 0 0 0 0 0 0 0 0 65538 1 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0";
const UNRELATED = "900 (bash) S 1 900 900 34816 900 4194560 900 0 0 0 40 12 7 3 20 0 1 0 2000 9000000 800 18446744073709551615 0 0 0 0 0 0 0 0 65538 1 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0";

const LIMITS = `Limit                     Soft Limit           Hard Limit           Units
Max address space         8589934592           unlimited            bytes
Max open files            32768                32768                files
`;
const MACHINE = { pageSizeBytes: 4096, bootTimeSeconds: 1_795_600_000, ticksPerSecond: 100 };

/** The fixture lines as read from /proc: pid and text. */
function parsed(lines: string[]): { pid: number; text: string }[] {
  return lines.map((text) => ({ pid: Number(text.slice(0, text.indexOf(" "))), text }));
}

describe("a worker's process group", () => {
  it("finds every member by its pgrp, also one whose name holds ') S 1 ('", () => {
    const table = indexProcesses(parsed([UNRELATED, ...SH_GROUP, OTHER_WORKER]));
    expect(parseProcStat(table.statByPid.get(17574) ?? "")).toMatchObject({ comm: "w) S 1 (x", pgrp: 17572 });
    expect(parseStatGroup(table.statByPid.get(17574) ?? "")).toBe(17572);
    expect(groupOf(table, 17572)?.members.map((m) => m.pid)).toEqual([17572, 17573, 17574, 17575]);
    expect(groupOf(table, 18000)?.members.map((m) => m.pid)).toEqual([18000]);
  });

  it("sums CPU over the members, zombies and reaped children included, and memory over the live ones", () => {
    const table = indexProcesses(parsed([...SH_GROUP, ZOMBIE, OTHER_WORKER]));
    const group = groupOf(table, 17572);
    if (group === null) throw new Error("no group");
    const stats = combineGroup({ ...group, openFds: [4, 4, 3, 3], limits: parseLimits(LIMITS) }, MACHINE);
    // utime + stime + cutime + cstime: sh 0+0+0+0, busy subshell 117+1, the zombie 26+3, the rest 0.
    expect(stats.cpuSeconds).toBeCloseTo(1.47, 10);
    expect(stats.rssBytes).toBe((384 + 105 + 420 + 420) * 4096);
    expect(stats.openFds).toBe(14);
    // The leader's own: a per-process limit is compared with that process's use.
    expect(stats.virtualMemoryBytes).toBe(2654208);
    expect(stats.maxFds).toBe(32768);
    expect(stats.virtualMemoryMaxBytes).toBe(8589934592);
    expect(stats.startTimeSeconds).toBeCloseTo(1_795_600_000 + 395.88, 6);
  });

  it("adds what a member has reaped from its children, so a child's exit does not lower the counter", () => {
    const beforeReap = groupOf(indexProcesses(parsed([...SH_GROUP, ZOMBIE])), 17572);
    // The leader has reaped the zombie: its 29 ticks moved to the leader's cutime and cstime.
    const leaderAfterReap = SH_GROUP[0]!.replace("0 0 0 0 20 0 1 0 39588", "0 0 26 3 20 0 1 0 39588");
    const afterReap = groupOf(indexProcesses(parsed([leaderAfterReap, ...SH_GROUP.slice(1)])), 17572);
    const cpu = (group: typeof beforeReap) => (group === null ? NaN : combineGroup({ ...group, openFds: [], limits: parseLimits("") }, MACHINE).cpuSeconds);
    expect(cpu(afterReap)).toBeCloseTo(cpu(beforeReap), 10);
  });

  it("is nothing once the leader is gone or a zombie, even with members left", () => {
    const members = SH_GROUP.slice(1);
    expect(groupOf(indexProcesses(parsed(members)), 17572)).toBeNull();
    const zombieLeader = SH_GROUP[0]!.replace("(sh) S", "(sh) Z");
    expect(groupOf(indexProcesses(parsed([zombieLeader, ...members])), 17572)).toBeNull();
  });

  it("leaves out a process whose stat is garbled, as if it had vanished", () => {
    const table = indexProcesses(parsed([...SH_GROUP.slice(0, 3), "17575 (sleep) S 17572"]));
    expect(groupOf(table, 17572)?.members.map((m) => m.pid)).toEqual([17572, 17573, 17574]);
  });

  it("is the process alone when it leads no group (it moved itself to another one)", () => {
    const table = indexProcesses(parsed([...SH_GROUP, UNRELATED]));
    expect(groupOf(table, 17573)?.members.map((m) => m.pid)).toEqual([17573]);
  });

  it("leaves open fds unknown when no member's could be read, and counts the ones that could", () => {
    const group = groupOf(indexProcesses(parsed(SH_GROUP)), 17572);
    if (group === null) throw new Error("no group");
    const limits = parseLimits("");
    expect(combineGroup({ ...group, openFds: [null, null, null, null], limits }, MACHINE).openFds).toBeNull();
    expect(combineGroup({ ...group, openFds: [5, null, 2, null], limits }, MACHINE)).toMatchObject({ openFds: 7, maxFds: null, virtualMemoryMaxBytes: null });
    expect(combineGroup({ ...group, openFds: [], limits: parseLimits("Max address space unlimited unlimited bytes\n") }, MACHINE).virtualMemoryMaxBytes).toBe(UNLIMITED);
  });
});
