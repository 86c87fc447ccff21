// readProcessStats against real processes, without Monoceros: a worker that changes its own
// open-files limit, and a worker whose CPU is spent by the children of a shell. Every process
// started here runs in its own process group and is killed by group in afterEach.
import { spawn, type ChildProcess } from "node:child_process";
import { afterEach, describe, expect, it } from "vitest";
import { readProcessStats } from "../../src/metrics/process-stats.js";
import { pollFor } from "../support/monoceros.js";

const groups: number[] = [];
afterEach(() => {
  for (const pgid of groups.splice(0)) {
    try {
      process.kill(-pgid, "SIGKILL");
    } catch {
      // already gone
    }
  }
});

/** Starts a command as the leader of a new process group (as Monoceros starts workers). */
function startGroup(command: string, args: string[]): ChildProcess & { pid: number } {
  const child = spawn(command, args, { detached: true, stdio: ["pipe", "pipe", "inherit"] });
  if (child.pid === undefined) throw new Error(`could not start ${command}`);
  groups.push(child.pid);
  return child as ChildProcess & { pid: number };
}

function lineFrom(child: ChildProcess, expected: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = "";
    child.stdout?.setEncoding("utf8");
    child.stdout?.on("data", (chunk: string) => {
      seen += chunk;
      if (seen.includes(expected)) resolve();
    });
    child.once("exit", (code, signal) => reject(new Error(`exited (${code ?? signal}) before printing ${expected}`)));
  });
}

describe("per-worker process figures from /proc", () => {
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
