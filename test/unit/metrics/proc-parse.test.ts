import { describe, expect, it } from "vitest";
import { parseBootTimeSeconds, parseLimits, parseProcStat, parseStatGroup, UNLIMITED } from "../../../src/metrics/proc-parse.js";

// Captured from a real /proc (Linux 6.x), with the command name changed to one with spaces and parentheses.
const STAT_ODD_NAME =
  "4242 (my (odd) worker) S 4200 4242 4200 0 -1 4194560 2375 0 12 0 731 164 0 0 20 0 7 0 430449 915861504 11653 18446744073709551615 94550073126912 94550073146793 140730784030960 0 0 0 0 16781312 134234626 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n";
const STAT_PLAIN = "592 (cat) R 574 574 1019 0 -1 4194304 124 0 0 0 3 1 0 0 20 0 1 0 430449 3133440 361 18446744073709551615 94550073126912 94550073146793 140730784030960 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 0\n";

const LIMITS = `Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max file size             unlimited            unlimited            bytes
Max address space         unlimited            unlimited            bytes
Max open files            20000                20000                files
Max processes             unlimited            unlimited            processes
`;

describe("/proc parsers", () => {
  it("reads /proc/<pid>/stat even when the process name has spaces and parentheses", () => {
    expect(parseProcStat(STAT_ODD_NAME)).toEqual({
      pid: 4242, comm: "my (odd) worker", state: "S", pgrp: 4242, utimeTicks: 731, stimeTicks: 164, cutimeTicks: 0, cstimeTicks: 0, startTimeTicks: 430449, virtualMemoryBytes: 915861504, rssPages: 11653,
    });
    expect(parseProcStat(STAT_PLAIN)).toMatchObject({ pid: 592, comm: "cat", state: "R", pgrp: 574, utimeTicks: 3, stimeTicks: 1, rssPages: 361 });
  });

  it("reads only the process group quickly, from the last ')' too", () => {
    expect(parseStatGroup(STAT_ODD_NAME)).toBe(4242);
    expect(parseStatGroup(STAT_PLAIN)).toBe(574);
    for (const garbled of ["", "12 (x) S 1", "12 (x) S 1 ", "12 x S 1 2 3", "12 (x) S 1 -3 4"]) expect(parseStatGroup(garbled), garbled).toBeNull();
  });

  it("rejects truncated or garbled stat text instead of returning nonsense", () => {
    expect(parseProcStat("")).toBeNull();
    expect(parseProcStat("12 (x) S 1 2")).toBeNull();
    expect(parseProcStat("12 x S")).toBeNull();
  });

  it("reads soft limits, with unlimited as the Go collector reports it", () => {
    expect(parseLimits(LIMITS)).toEqual({ maxOpenFiles: 20000, maxAddressSpaceBytes: UNLIMITED });
    expect(parseLimits("")).toEqual({ maxOpenFiles: null, maxAddressSpaceBytes: null });
  });

  it("reads the boot time from /proc/stat", () => {
    expect(parseBootTimeSeconds("cpu  1 2 3\nbtime 1795400000\nprocesses 5\n")).toBe(1795400000);
    expect(parseBootTimeSeconds("cpu 1\n")).toBeNull();
  });
});
