// Every signal has a meaning for a running dist/monoceros, and none ends it by surprise: the
// shutdown signals stop every worker gracefully (exit 0), the others that mean nothing leave a record
// and change nothing (same workers, same pids), and SIGUSR1 never opens Node's inspector.
import { readFileSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { SIGNAL_MEANINGS, type HandledSignal } from "../../src/cli/signals.js";
import { cleanUpAfterEach, isAlive, PROCESSBIN, startMonoceros, workerPids, writeConfig, type Running, type StartOptions } from "../support/monoceros.js";

const track = cleanUpAfterEach(afterEach);
const REPLICAS = 2;
const YAML = `supervisor:\n  workers:\n    - name: w\n      replicas: ${REPLICAS}\n      max_restarts: 0\n      exec: ${PROCESSBIN}\n      args: [--log-interval, 10s]\n`;

async function startReady(options: StartOptions = {}): Promise<{ m: Running; pids: number[] }> {
  const m = track(startMonoceros(YAML, [], options));
  // Ready means processbin has installed its SIGTERM handler, which it reports with this line.
  await m.waitFor("workers ready", () => m.stderrLines.filter((l) => l.includes("processbin started")).length === REPLICAS);
  return { m, pids: workerPids(m) };
}

const signalRecords = (m: Running, signal: string) => m.records().filter((r) => r.signal === signal && r.msg !== "Worker exited");

/** Stopped ("T") is as bad as gone for a supervisor. */
function processState(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
  } catch {
    return "gone";
  }
}

/** Whether something accepts TCP connections on 127.0.0.1:port. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/** Monoceros and its workers exactly as before: same pids, nothing restarted, every stderr line JSON. */
function expectUnchanged(m: Running, pids: number[], signal: string): void {
  expect(m.child.exitCode, `${signal}: Monoceros still running`).toBeNull();
  expect(["R", "S", "D"], `${signal}: Monoceros not stopped`).toContain(processState(m.pid));
  expect(workerPids(m), `${signal}: no worker restarted`).toEqual(pids);
  for (const pid of pids) expect(isAlive(pid), `${signal}: worker ${pid} alive`).toBe(true);
  expect(m.stderrLines.filter((line) => !line.startsWith("{")), `${signal}: only JSON on stderr`).toEqual([]);
}

// SIGHUP reloads the config, SIGTTIN and SIGTTOU scale the pools (test/integration/zero-downtime.test.ts).
const reported = (Object.keys(SIGNAL_MEANINGS) as HandledSignal[]).filter((signal) => SIGNAL_MEANINGS[signal] === "ignore");

describe("signals", () => {
  it("every signal that means nothing: one record naming it, and nothing else", async () => {
    const { m, pids } = await startReady();
    const inspectorBefore = await listening(9229);
    // SIGPIPE first: ignored, not even a record (were it fatal, the first record below would never come).
    m.child.kill("SIGPIPE");
    for (const signal of reported) {
      m.child.kill(signal);
      const [record] = await m.waitFor(`a record for ${signal}`, () => {
        const found = signalRecords(m, signal);
        return found.length > 0 ? found : undefined;
      });
      expect(record, signal).toMatchObject({
        level: "warn",
        signal,
        count: 1,
        msg: "Signal received and ignored: it means nothing to Monoceros",
      });
      expectUnchanged(m, pids, signal);
    }
    // SIGUSR1 opened no debugger (unless something else already listened there).
    if (!inspectorBefore) expect(await listening(9229)).toBe(false);
    expect(m.stderrLines.filter((line) => line.includes("Debugger"))).toEqual([]);

    expect(signalRecords(m, "SIGPIPE")).toEqual([]);

    m.child.kill("SIGTERM");
    expect((await m.exited).code).toBe(0);
  });

  for (const signal of ["SIGTERM", "SIGINT", "SIGQUIT"] as const) {
    it(`${signal}: graceful shutdown, every worker gets SIGTERM, exit 0`, async () => {
      const { m, pids } = await startReady();
      m.child.kill(signal);
      const { code, signal: killedBy } = await m.exited;
      expect({ code, killedBy }).toEqual({ code: 0, killedBy: null });
      expect(m.records().filter((r) => r.msg === "Interrupt caught, cleaning up workers. This might take some time...")).toMatchObject([{ signal }]);
      // processbin exits 143 on SIGTERM.
      expect(m.records().filter((r) => r.msg === "Worker exited").map((r) => r.rc)).toEqual(pids.map(() => 143));
      for (const pid of pids) expect(isAlive(pid)).toBe(false);
      expect(m.stderrLines.filter((line) => !line.startsWith("{"))).toEqual([]);
    });
  }

  it("a storm of one signal writes at most one record per second, counting the rest", async () => {
    const { m, pids } = await startReady();
    // For 2.5 s, a SIGUSR2 every 2 ms (the kernel merges one sent while the last is still pending,
    // so fewer than sent may arrive: the counts add up to what arrived).
    let sent = 0;
    for (const endMs = performance.now() + 2_500; performance.now() < endMs; sent++) {
      m.child.kill("SIGUSR2");
      await new Promise((r) => setTimeout(r, 2));
    }
    // Nothing is held back once the last record is more than a second old.
    const records = await m.waitFor("the count held back at the end of the storm", () => {
      const found = signalRecords(m, "SIGUSR2");
      const last = found.at(-1);
      return last !== undefined && Date.now() / 1000 - (last.ts as number) > 1.2 ? found : undefined;
    });
    expect(records[0]).toMatchObject({ count: 1 });
    expect(records.length).toBeLessThanOrEqual(5); // 2.5 s of storm, one per second, and the remainder
    expect(records.slice(1).every((r) => (r.count as number) > 1)).toBe(true);
    const total = records.reduce((sum, r) => sum + (r.count as number), 0);
    expect(total).toBeGreaterThan(records.length);
    expect(total).toBeLessThanOrEqual(sent);
    const times = records.map((r) => r.ts as number);
    for (let i = 1; i < times.length; i++) expect((times[i] as number) - (times[i - 1] as number)).toBeGreaterThanOrEqual(0.95);
    expectUnchanged(m, pids, "SIGUSR2 storm");
  });

  it("a SIGUSR1 while Node itself is still starting: the inspector it opened is closed at once", async () => {
    // Sent from a preload, before dist/monoceros's first line runs: Node starts its inspector then
    // (on a random port here, so no other test or process is in the way); the loader closes it.
    const preload = join(writeConfig(""), "..", "sigusr1-first.cjs");
    writeFileSync(preload, "process.kill(process.pid, 'SIGUSR1');\n");
    const { m, pids } = await startReady({ nodeArgs: ["--inspect-port=127.0.0.1:0", "--require", preload] });
    const opened = m.stderrLines.map((line) => /Debugger listening on ws:\/\/127\.0\.0\.1:(\d+)\//.exec(line)?.[1]).find((port) => port !== undefined);
    expect(opened, "Node opened its inspector (the case under test)").toBeDefined();
    expect(await listening(Number(opened))).toBe(false);
    expect(m.child.exitCode).toBeNull();
    expect(workerPids(m)).toEqual(pids);
  });
});
