// A debug command as Monoceros runs it (backends/os/debug-command.ts), with real processes: output
// handed on line by line and marked by stream, bounded in output and time, its whole process group
// stopped at the timeout or when the operator's ctl goes away.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { OUTPUT_CUT_NOTE, runDebugCommand, type DebugCommandOptions, type DebugStream } from "../../src/backends/os/debug-command.js";

/** Alive and not a zombie. */
function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return !/^[ZX]$/.test(stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3));
  } catch {
    return false;
  }
}

async function run(argv: string[], options: Partial<DebugCommandOptions> = {}) {
  const lines: [DebugStream, string][] = [];
  const outcome = await runDebugCommand({ argv, env: process.env, timeoutMs: 10_000, signal: new AbortController().signal, onLine: (stream, text) => lines.push([stream, text]), ...options });
  return { outcome, lines };
}

describe("debug commands", () => {
  it("hands on stdout and stderr line by line, marked, and says how the command exited", async () => {
    const { outcome, lines } = await run(["sh", "-c", "echo one; echo two >&2; printf 'no newline'; exit 4"]);
    expect(lines).toEqual([
      ["stdout", "one"],
      ["stderr", "two"],
      ["stdout", "no newline"],
    ]);
    expect(outcome).toMatchObject({ started: true, exitCode: 4, signal: null, exited: true, stopped: null, outputBytes: 18, truncated: false });
  });

  it("says a command that is not installed is not found, without running anything", async () => {
    const { outcome } = await run(["eu-stack-not-installed", "-p", "1"]);
    expect(outcome).toMatchObject({ started: false, error: 'cannot run "eu-stack-not-installed": not found in PATH' });
  });

  it("cuts the output at its limit with a note, and stops the command", async () => {
    const { outcome, lines } = await run(["sh", "-c", "yes 0123456789"], { limits: { outputBytesMax: 1_000 } });
    expect(outcome).toMatchObject({ started: true, stopped: "output", truncated: true, outputBytes: 1_000 });
    expect(lines.filter(([stream]) => stream === "stdout").map(([, text]) => text).join("\n").length).toBeLessThanOrEqual(1_000);
    expect(lines[lines.length - 1]).toEqual(["stderr", OUTPUT_CUT_NOTE.replace("the limit", "1000 bytes")]);
  });

  it("splits an endless line into bounded pieces", async () => {
    const { lines } = await run(["sh", "-c", "yes x | head -c 10000 | tr -d '\\n'"], { limits: { lineBytesMax: 1_024 } });
    expect(lines.length).toBe(5);
    expect(lines.map(([, text]) => text.replace(/ …\[line split: longer than the limit\]$/, ""))).toEqual([..."xxxx"].map(() => "x".repeat(1_024)).concat(["x".repeat(904)]));
  });

  it("stops the whole process group at the timeout, a child that ignores SIGTERM too", async () => {
    const startedMs = performance.now();
    const { outcome, lines } = await run(["sh", "-c", "sh -c 'trap \"\" TERM; echo $$; sleep 100' & wait"], { timeoutMs: 300, limits: { killGraceMs: 300 } });
    const elapsedMs = performance.now() - startedMs;
    expect(outcome).toMatchObject({ started: true, stopped: "timeout", exited: true });
    expect(elapsedMs).toBeGreaterThanOrEqual(290);
    expect(elapsedMs).toBeLessThan(5_000);
    const child = Number(lines[0]?.[1]);
    expect(child).toBeGreaterThan(0);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(isAlive(child)).toBe(false);
  });

  it("stops the command when the operator's ctl goes away", async () => {
    const abort = new AbortController();
    const running = run(["sleep", "100"], { signal: abort.signal });
    setTimeout(() => abort.abort(), 200);
    const { outcome } = await running;
    expect(outcome).toMatchObject({ started: true, stopped: "client", signal: "SIGTERM" });
    if (outcome.started) expect(isAlive(outcome.pid)).toBe(false);
  });

  it("kills what the command left running in its group when it exits", async () => {
    const { outcome, lines } = await run(["sh", "-c", "sleep 100 & echo $!"]);
    expect(outcome).toMatchObject({ started: true, exitCode: 0 });
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(isAlive(Number(lines[0]?.[1]))).toBe(false);
  });
});
