import { describe, expect, it } from "vitest";
import { formatCommandResult, formatStatusTable, runCtl } from "../../../src/cli/ctl.js";
import { humanBytes, humanCpu, humanDuration, humanLastExit } from "../../../src/cli/ctl-format.js";

async function ctl(...argv: string[]) {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const code = await runCtl(argv, { stdout: (line) => stdout.push(line), stderr: (line) => stderr.push(line) });
  return { code, stdout, stderr };
}

const NOW = Date.parse("2025-01-01T12:00:00.000Z");
const ago = (seconds: number) => new Date(NOW - seconds * 1000).toISOString();

const worker = (fields: Record<string, unknown>) => ({
  id: "web-0",
  pid: 100,
  state: "running",
  ready: true,
  uptime_seconds: 45.2,
  restarts: 0,
  planned_restarts: 0,
  cpu_seconds: 1.234,
  rss_bytes: 42 * 1024 * 1024,
  last_exit: null,
  ...fields,
});

const STATUS = {
  phase: "running",
  healthy: true,
  pools: [
    {
      name: "web",
      replicas: 3,
      proxy: { pid: 90, state: "running", restarts: 1, started_at: ago(3 * 3600 + 5), last_exit: { code: null, signal: "SIGKILL", at: ago(3 * 3600 + 10) } },
      workers: [
        worker({}),
        worker({ id: "web-1", pid: 101, uptime_seconds: 12 * 60 + 3, restarts: 2, planned_restarts: 1, cpu_seconds: 75, rss_bytes: 512 * 1024, last_exit: { code: 1, signal: null, at: ago(180) } }),
        worker({ id: "web-2", pid: null, state: "backoff", ready: false, uptime_seconds: null, restarts: 5, cpu_seconds: null, rss_bytes: null, last_exit: { code: null, signal: "SIGKILL", at: ago(10) } }),
      ],
    },
    { name: "idle", replicas: 0, proxy: null, workers: [] },
  ],
};

describe("ctl status table", () => {
  it("shows a row per worker and per proxy, with human units", () => {
    expect(formatStatusTable(STATUS, NOW)).toEqual([
      "Monoceros running, healthy",
      "POOL  WORKER  PID  STATE       READY  UPTIME  RESTARTS       CPU   RSS      LAST EXIT",
      "web   web-0   100  running     yes    45s     0              1.2s  42 MiB   -",
      "web   web-1   101  running     yes    12m     2 + 1 planned  1m    0.5 MiB  code 1, 3m ago",
      "web   web-2   -    backoff     no     -       5              -     -        SIGKILL, 10s ago",
      "web   proxy   90   running     -      3h      1              -     -        SIGKILL, 3h ago",
      "idle  -       -    no workers  -      -       -              -     -        -",
    ]);
  });

  it("shows '?' for fields it cannot read, and says when the status has no pools", () => {
    const lines = formatStatusTable({ phase: "running", pools: [{ name: "web", workers: [{ id: "web-0" }] }] }, NOW);
    expect(lines[0]).toBe("Monoceros running, health unknown");
    expect(lines[2]).toBe("web   web-0   ?    ?      ?      -       ?         ?    ?    ?");
    expect(formatStatusTable("nonsense", NOW)).toEqual(["cannot read this status (it has no pools); see it with --json"]);
  });

  it("uses the largest whole unit for durations, tenths for short CPU times, MiB or GiB for memory", () => {
    expect([0, 59.9, 60, 3599, 3600, 86_399, 86_400 * 3].map(humanDuration)).toEqual(["0s", "59s", "1m", "59m", "1h", "23h", "3d"]);
    expect([0.04, 1.25, 59.94, 61].map(humanCpu)).toEqual(["0.0s", "1.3s", "59.9s", "1m"]);
    expect([0, 3.5 * 1024 * 1024, 120 * 1024 * 1024, 12.5 * 1024 ** 3, null].map(humanBytes)).toEqual(["0.0 MiB", "3.5 MiB", "120 MiB", "12.5 GiB", "-"]);
    expect(humanLastExit({ code: 0, signal: null, at: "not a date" }, NOW)).toBe("code 0");
    expect(humanLastExit({ code: 1, signal: null, at: new Date(NOW + 5_000).toISOString() }, NOW)).toBe("code 1, 0s ago");
  });
});

describe("ctl command results", () => {
  it("prints the message, then the plan a step per line", () => {
    expect(formatCommandResult({ message: "restarting 2 workers of web, 1 at a time", plan: ["web-0: restart now", "web-1: after web-0 is ready"] })).toEqual([
      "restarting 2 workers of web, 1 at a time",
      "  web-0: restart now",
      "  web-1: after web-0 is ready",
    ]);
    expect(formatCommandResult({ other: 1 })).toEqual(["{", '  "other": 1', "}"]);
  });
});

describe("ctl arguments", () => {
  it("without a command, prints its help and exits 2", async () => {
    const result = await ctl();
    expect(result.code).toBe(2);
    expect(result.stderr.join("\n")).toContain("Usage: monoceros ctl");
  });

  it("refuses an unknown command", async () => {
    expect(await ctl("stop")).toEqual({ code: 2, stdout: [], stderr: ["monoceros ctl: unknown command 'stop' (see monoceros ctl --help)"] });
  });

  it("refuses a missing or extra argument", async () => {
    expect((await ctl("restart")).stderr).toEqual(["monoceros ctl: missing required argument 'target' (see monoceros ctl --help)"]);
    expect((await ctl("scale", "web")).code).toBe(2);
    expect((await ctl("status", "web")).code).toBe(2);
  });

  it("checks values as Monoceros would, before connecting", async () => {
    expect(await ctl("scale", "web", "four")).toEqual({ code: 2, stdout: [], stderr: ['monoceros ctl: replicas: must be an integer from 0 to 4096, got "four"'] });
    expect(await ctl("scale", "web", "5000")).toEqual({ code: 2, stdout: [], stderr: ["monoceros ctl: replicas: must be an integer from 0 to 4096, got 5000"] });
    expect(await ctl("restart", "web/two")).toEqual({
      code: 2,
      stdout: [],
      stderr: ["monoceros ctl: target: the worker index after '/' must be an integer from 0 to 4095, got \"web/two\""],
    });
    expect(await ctl("logs", "-n", "20000")).toEqual({ code: 2, stdout: [], stderr: ["monoceros ctl: lines: must be an integer from 0 to 10000, got 20000"] });
    expect(await ctl("logs", "-n", "-1")).toMatchObject({ code: 2 });
  });

  it("prints help for a command and exits 0", async () => {
    const result = await ctl("logs", "--help");
    expect(result.code).toBe(0);
    expect(result.stdout.join("\n")).toContain("-f, --follow");
  });
});
