// Resource errors are events, not crashes: dist/monoceros under a low open-files limit, with more
// workers than the limit allows, stays up, reports the spawn failures, and recovers by itself
// once the limit is raised on the running process.
import { execFileSync } from "node:child_process";
import { afterEach, describe, expect, it } from "vitest";
import { adminPort, cleanUpAfterEach, fetchStatus, pollForAsync, startMonoceros, type StatusJson } from "../support/monoceros.js";

const track = cleanUpAfterEach(afterEach);
const REPLICAS = 30;
/** Enough for Node, the admin endpoint, the watchdog and a few workers (each keeps two pipes), not for 30. */
const NOFILE = 48;

function hasPrlimit(): boolean {
  try {
    execFileSync("prlimit", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

describe("resource errors", () => {
  it.skipIf(!hasPrlimit())(
    "too few file descriptors for every worker: spawn failures are logged, Monoceros stays up, and recovers when the limit is raised",
    async () => {
      // Workers start 100 ms apart, so most start after the limit is lowered below.
      const yaml = `admin:\n  port: 0\n  host: 127.0.0.1\nsupervisor:\n  workers:\n    - name: w\n      replicas: ${REPLICAS}\n      max_restarts: 1\n      startup_wait_time: 100ms\n      exec: sleep\n      args: ["1000"]\n`;
      const m = track(startMonoceros(yaml));
      // The soft limit of the running Monoceros: Node raises its soft limit to the hard one at start
      // (so a low one must be set afterwards), and raising a hard limit needs CAP_SYS_RESOURCE.
      const hardLimit = Number(execFileSync("prlimit", ["--pid", String(m.pid), "--nofile", "--raw", "--noheadings", "--output=HARD"], { encoding: "utf8" }).trim());
      const port = await m.waitFor("the admin port", () => adminPort(m));
      execFileSync("prlimit", ["--pid", String(m.pid), `--nofile=${NOFILE}:${hardLimit}`]);

      const emfileRecords = () => m.records().filter((r) => JSON.stringify(r).includes("EMFILE"));
      const stderrTail = () => m.stderrLines.slice(-5).join("\n");
      // Spawn failures as JSON records naming EMFILE, again and again: retried with backoff and not
      // counted against max_restarts (1 here: otherwise Monoceros would give up and exit 1).
      await m.waitFor("repeated spawn failures reported as EMFILE", () => emfileRecords().length >= REPLICAS || m.child.exitCode !== null, 30_000);
      if (m.child.exitCode !== null) await m.exited; // all of its output read, for the message below
      expect(m.child.exitCode, stderrTail()).toBeNull();
      expect(emfileRecords()[0]).toMatchObject({ level: expect.stringMatching(/^(warn|error)$/) });
      expect(m.stderrLines.filter((line) => line.includes("internal error"))).toEqual([]);
      expect(m.stderrLines.filter((line) => !line.startsWith("{"))).toEqual([]);

      execFileSync("prlimit", ["--pid", String(m.pid), `--nofile=${hardLimit}:${hardLimit}`]);
      let last: StatusJson | undefined;
      await pollForAsync(
        "every worker running",
        async () => {
          if (m.child.exitCode !== null) throw new Error(`Monoceros exited ${m.child.exitCode}: ${stderrTail()}`);
          last = await fetchStatus(port);
          return last?.pools[0]?.running === REPLICAS;
        },
        60_000,
      ).catch((error: Error) => {
        throw new Error(`${error.message}; last /status: ${JSON.stringify(last)}`);
      });
      expect(m.stderrLines.filter((line) => line.includes("internal error"))).toEqual([]);

      m.child.kill("SIGTERM");
      expect((await m.exited).code).toBe(0);
    },
    120_000,
  );
});
