// Supervisor mode with real processes: dist/monoceros supervising dist/processbin.
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { isAlive, killAll, pollFor, PROCESSBIN, startMonoceros, workerPids, type Running } from "../support/monoceros.js";

const started: Running[] = [];
const extraPids = new Set<number>();
afterEach(async () => {
  for (const running of started.splice(0)) {
    // Monoceros first: killing its workers first would only make it start new ones.
    await running.stop();
    killAll(workerPids(running));
  }
  killAll(extraPids);
  extraPids.clear();
});

function run(yaml: string, extraArgs: string[] = []): Running {
  const running = startMonoceros(yaml, extraArgs);
  started.push(running);
  return running;
}

const pool = (fields: string) => `supervisor:\n  workers:\n    - name: w\n      exec: ${PROCESSBIN}\n${fields}`;
const recordsWith = (running: Running, msg: string) => running.records().filter((r) => r.msg === msg);

describe("supervisor mode with real processes", () => {
  it("restarts exited workers until the budget is spent, then stops the rest and exits 1 with no worker left", async () => {
    const m = run(pool(`      replicas: 2\n      max_restarts: 2\n      args: [--exit-after, 300ms]\n`));
    const { code } = await m.exited;
    expect(code).toBe(1);
    const starts = recordsWith(m, "Worker started");
    expect(starts.length).toBeGreaterThanOrEqual(5); // 2 first starts + 2 restarts of one worker + at least one of the other
    expect(recordsWith(m, "Too many restarts: shutting down")).toHaveLength(1);
    for (const pid of workerPids(m)) expect(isAlive(pid)).toBe(false);
  });

  it("levels mean something: a crash is a warn, a spent budget an error that says max_restarts 0 allows no restart", async () => {
    const m = run(pool(`      replicas: 1\n      args: [--exit-after, 200ms, --exit-code, "3"]\n`));
    expect((await m.exited).code).toBe(1);
    expect(recordsWith(m, "Worker exited").map((r) => [r.level, r.rc])).toEqual([["warn", 3]]);
    expect(recordsWith(m, "Worker exited and max_restarts is 0 (no restart allowed): shutting down").map((r) => r.level)).toEqual(["error"]);
  });

  it("with --debug writes readable records (not JSON) and otherwise behaves the same", async () => {
    const m = run(pool(`      replicas: 1\n      max_restarts: 1\n      args: [--exit-after, 200ms]\n`), ["-d"]);
    const { code } = await m.exited;
    expect(code).toBe(1);
    // Monoceros's pid after the level, and the core's events and decisions as debug records.
    expect(m.stderrLines.some((line) => new RegExp(`^\\[\\d\\d:\\d\\d:\\d\\d\\.\\d{3}\\] INFO \\(${m.pid}\\): Worker started$`).test(line))).toBe(true);
    expect(m.stderrLines.some((line) => line.includes(`DEBUG (${m.pid}): Core decision`))).toBe(true);
    expect(m.stderrLines.some((line) => line.includes(`command: "spawn w-0#1 exec=${PROCESSBIN} args=[\\"--exit-after\\",\\"200ms\\"]"`))).toBe(true);
    // Followed by " output-open" when the exit came before the end of the worker's pipes (a race).
    expect(m.stderrLines.some((line) => line.includes('event: "exited w-0#1 code=0 signal=null'))).toBe(true);
    expect(m.stderrLines.some((line) => line.includes("Too many restarts: shutting down"))).toBe(true);
    // The workers' plain lines too: the line as the message, worker_id below it.
    expect(m.stderrLines.some((line) => /\] INFO: processbin started pid=\d+/.test(line))).toBe(true);
    expect(m.stderrLines.filter((line) => line.startsWith("{"))).toEqual([]);
    expect(m.stderrLines.filter((line) => line.includes("internal error"))).toEqual([]);
  });

  it("fails at start-up with exit 2 when exec cannot be run", async () => {
    const m = run(`supervisor:\n  workers:\n    - {name: w, replicas: 1, exec: ./no/such/binary, max_restarts: 1}\n`);
    const { code } = await m.exited;
    expect(code).toBe(2);
    expect(m.stderrLines).toEqual(['supervisor.workers[0].exec: cannot run "./no/such/binary": no such file']);
  });

  it("respects startup_wait_time between starts", async () => {
    // Each worker writes the time it started: a "Worker started" record is written a little after the
    // start, later when the event loop is busy, so the gaps between records are not the gaps between starts.
    const startTimes = join(mkdtempSync(join(tmpdir(), "monoceros-starts-")), "starts");
    const m = run(`supervisor:\n  workers:\n    - name: w\n      replicas: 3\n      max_restarts: 0\n      startup_wait_time: 400ms\n      exec: sh\n      args: ["-c", 'date +%s.%N >> ${startTimes}; exec ${PROCESSBIN} --log-interval 10s']\n`);
    const starts = await m.waitFor("three starts", () => (recordsWith(m, "Worker started").length === 3 ? recordsWith(m, "Worker started") : undefined));
    const times = await m.waitFor("three start times", () => {
      const lines = existsSync(startTimes) ? readFileSync(startTimes, "utf8").trim().split("\n") : [];
      return lines.length === 3 ? lines.map(Number) : undefined;
    });
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(0.39);
    expect(times[2]! - times[1]!).toBeGreaterThanOrEqual(0.39);
    expect(starts.map((r) => r.worker_id)).toEqual(["w-0", "w-1", "w-2"]);
  });

  it("recycles workers after lifespan plus jitter, gracefully, without ending on max_restarts", async () => {
    // In place (max_surge 0) and max_unavailable 2: each lifespan stop is due by the lifespan alone (with 1, a restart
    // waits for the other's replacement to run min_uptime); surge is tested in zero-downtime.test.ts.
    const m = run(pool(`      replicas: 2\n      max_restarts: 0\n      max_surge: 0\n      max_unavailable: 2\n      limits: {lifespan: 1s, jitter_ratio: 0.5}\n      args: [--log-interval, 10s]\n`));
    await m.waitFor("four lifespan stops", () => recordsWith(m, "Stopping worker because it reached its lifespan").length >= 4, 30_000);
    const starts = new Map<string, number>();
    for (const record of m.records()) {
      const id = record.worker_id as string;
      if (record.msg === "Worker started") starts.set(id, record.ts as number);
      if (record.msg === "Stopping worker because it reached its lifespan") {
        const lived = (record.ts as number) - (starts.get(id) ?? 0);
        expect(lived).toBeGreaterThanOrEqual(0.99);
        expect(lived).toBeLessThanOrEqual(1.5 + 0.25); // jitter bound plus scheduling slack
      }
    }
    expect(m.child.exitCode).toBeNull();
  });

  it("on SIGTERM stops every worker gracefully and exits 0", async () => {
    const m = run(pool(`      replicas: 3\n      max_restarts: -1\n      args: [--log-interval, 10s]\n`));
    // Ready means processbin has installed its SIGTERM handler, which it reports with this line.
    await m.waitFor("three workers ready", () => m.stderrLines.filter((l) => l.includes("processbin started")).length === 3);
    m.child.kill("SIGTERM");
    const { code } = await m.exited;
    expect(code).toBe(0);
    expect(recordsWith(m, "Worker exited").map((r) => r.rc)).toEqual([143, 143, 143]);
    for (const pid of workerPids(m)) expect(isAlive(pid)).toBe(false);
  });

  it("sends SIGKILL to a worker that ignores SIGTERM only after signal_timeout", async () => {
    const m = run(pool(`      replicas: 1\n      max_restarts: -1\n      signal_timeout: 1500ms\n      args: [--ignore-signals, --log-interval, 10s]\n`));
    await m.waitFor("the worker ready", () => m.stderrLines.some((l) => l.includes("processbin started")));
    const sentAt = Date.now() / 1000;
    m.child.kill("SIGTERM");
    const { code } = await m.exited;
    expect(code).toBe(0);
    const kill = recordsWith(m, "Worker did not exit within signal_timeout after SIGTERM; sending SIGKILL");
    expect(kill).toHaveLength(1);
    expect((kill[0]!.ts as number) - sentAt).toBeGreaterThanOrEqual(1.45);
    expect(recordsWith(m, "Worker exited")[0]).toMatchObject({ signal: "SIGKILL" });
  });

  it("kills a worker's children with its process group", async () => {
    const m = run(pool(`      replicas: 1\n      max_restarts: -1\n      args: [--children, "2", --log-interval, 10s]\n`));
    const line = await m.waitFor("children pids", () => m.stderrLines.find((l) => l.includes("processbin children pids=")));
    const pids = (/pids=([\d,]+)/.exec(line)?.[1] ?? "").split(",").map(Number);
    pids.forEach((pid) => extraPids.add(pid));
    expect(pids.every(isAlive)).toBe(true);
    m.child.kill("SIGTERM");
    await m.exited;
    await pollFor("children gone", () => pids.every((pid) => !isAlive(pid)), 5_000);
  });

  it("leaves no worker or grandchild alive when Monoceros itself is SIGKILLed", async () => {
    const m = run(pool(`      replicas: 3\n      max_restarts: -1\n      args: [--children, "1", --log-interval, 10s]\n`));
    await m.waitFor("three children lines", () => m.stderrLines.filter((l) => l.includes("processbin children pids=")).length === 3);
    const children = m.stderrLines.filter((l) => l.includes("pids=")).map((l) => Number(/pids=(\d+)/.exec(l)?.[1]));
    const pids = [...workerPids(m), ...children];
    pids.forEach((pid) => extraPids.add(pid));
    expect(pids.every(isAlive)).toBe(true);
    m.child.kill("SIGKILL");
    await m.exited;
    const killedAt = performance.now();
    await pollFor("every worker and child gone", () => pids.every((pid) => !isAlive(pid)), 2_000);
    expect(performance.now() - killedAt).toBeLessThan(2_000);
  });

  it("forwards 100,000 JSON lines from 4 workers with worker_id, none lost, none duplicated", async () => {
    const m = run(pool(`      replicas: 4\n      max_restarts: -1\n      args: [--log-structured, --log-interval, "0", --log-count, "25000", --log-size, "32"]\n`));
    const perWorker = new Map<string, number>();
    await m.waitFor("100,000 lines", () => m.stdoutLines.length >= 100_004, 60_000);
    m.child.kill("SIGTERM");
    await m.exited;
    const seqs = new Map<string, Set<number>>();
    for (const line of m.stdoutLines) {
      const record = JSON.parse(line) as { worker_id: string; multiprocess_worker_id?: string; seq?: number; key?: string };
      expect(record.multiprocess_worker_id).toBe(`w_${record.worker_id}`);
      if (record.seq === undefined) continue;
      perWorker.set(record.worker_id, (perWorker.get(record.worker_id) ?? 0) + 1);
      const set = seqs.get(record.worker_id) ?? new Set<number>();
      set.add(record.seq);
      seqs.set(record.worker_id, set);
    }
    expect([...perWorker.entries()].sort()).toEqual([["w-0", 25_000], ["w-1", 25_000], ["w-2", 25_000], ["w-3", 25_000]]);
    for (const set of seqs.values()) expect(set.size).toBe(25_000);
  });

  it("forwards every line a worker wrote before acting on its exit", async () => {
    const m = run(pool(`      replicas: 1\n      max_restarts: 0\n      args: [--log-structured, --log-interval, "0", --log-count, "30000", --exit-after-logs]\n`));
    const { code } = await m.exited;
    expect(code).toBe(1);
    expect(m.stdoutLines.filter((line) => line.includes('"seq"'))).toHaveLength(30_000);
  });

  it("wraps plain text, odd JSON and stderr lines in records with the original's keys", async () => {
    const script = `echo plain text; echo '{"a": 1}'; echo '{}'; echo '{"worker_id": "mine"}'; echo null; echo '[1,2]'; echo oops >&2; sleep 30`;
    const m = run(`supervisor:\n  workers:\n    - name: sh\n      replicas: 1\n      max_restarts: -1\n      exec: sh\n      args: ["-c", ${JSON.stringify(script)}]\n`);
    await m.waitFor("the stderr line", () => m.records().some((r) => r.worker_error_msg === "oops"));
    await m.waitFor("the passthrough lines", () => m.stdoutLines.length >= 2);
    expect(m.stdoutLines.map((l) => JSON.parse(l))).toEqual([{ a: 1, worker_id: "sh-0" }, { worker_id: "sh-0" }]);
    const wrapped = m.records().filter((r) => "worker_info_msg" in r || "worker_error_msg" in r);
    expect(wrapped.map((r) => [r.level, r.msg, r.worker_id, r.worker_info_msg ?? r.worker_error_msg])).toEqual([
      ["info", "", "sh-0", "plain text"],
      ["info", "", "sh-0", '{"worker_id": "mine"}'],
      ["info", "", "sh-0", "null"],
      ["info", "", "sh-0", "[1,2]"],
      ["error", "", "sh-0", "oops"],
    ]);
    expect(typeof wrapped[0]!.ts).toBe("number");
  });

  it("stderr_level sets the level of the records carrying a pool's stderr lines (Python's logging writes everything there)", async () => {
    const script = `echo "INFO:app:listening" >&2; sleep 30`;
    const m = run(`supervisor:\n  workers:\n    - name: py\n      replicas: 1\n      max_restarts: -1\n      stderr_level: info\n      exec: sh\n      args: ["-c", ${JSON.stringify(script)}]\n`);
    const line = await m.waitFor("the stderr line", () => m.records().find((r) => r.worker_error_msg === "INFO:app:listening"));
    expect(line.level).toBe("info");
  });

  it("splits an over-long line without growing Monoceros's memory", async () => {
    const script = "head -c 50000000 /dev/zero | tr '\\\\0' a; echo; sleep 30";
    const m = run(`supervisor:\n  workers:\n    - name: long\n      replicas: 1\n      max_restarts: -1\n      exec: sh\n      args: ["-c", ${JSON.stringify(script)}]\n`);
    // 50,000,000 bytes in 65,536-byte pieces: 763 records (a cheap probe: parsing 50 MB each poll is slow).
    await m.waitFor("the 763 pieces", () => m.stderrLines.filter((l) => l.length > 60_000 || l.includes('"worker_info_msg":"a')).length >= 763, 60_000);
    const pieces = m.records().filter((r) => typeof r.worker_info_msg === "string").map((r) => r.worker_info_msg as string);
    expect(pieces.slice(0, -1).every((piece) => piece.endsWith("[line split: longer than the limit]"))).toBe(true);
    expect(pieces.reduce((sum, piece) => sum + piece.replace(/ …\[line split: longer than the limit\]$/, "").length, 0)).toBe(50_000_000);
    const peakRssKiB = Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${m.pid}/status`, "utf8"))?.[1]);
    expect(peakRssKiB).toBeLessThan(250 * 1024);
  });

  it("lets workers share one port with SO_REUSEPORT, each answering with its own id", async () => {
    const port = 20_000 + Math.floor(Math.random() * 10_000); // below the ephemeral range (32768+)
    const m = run(pool(`      replicas: 3\n      max_restarts: -1\n      args: [--port, "${port}", --reuse-port, --log-interval, 10s]\n`));
    await m.waitFor("three listeners", () => m.stderrLines.filter((l) => l.includes("processbin listening")).length === 3);
    const seen = new Set<string>();
    for (let i = 0; i < 300 && seen.size < 3; i++) {
      const id = await new Promise<string>((resolveId, reject) => {
        const req = request({ host: "127.0.0.1", port, path: "/", agent: false }, (res) => {
          res.resume();
          resolveId(String(res.headers["x-worker-id"]));
        });
        req.on("error", reject);
        req.end();
      });
      seen.add(id);
    }
    expect([...seen].sort()).toEqual(["w_w-0", "w_w-1", "w_w-2"]);
  });
});

describe("backpressure", () => {
  it("pauses worker pipes while Monoceros's stdout is not read, then delivers every line", async () => {
    const m = run(pool(`      replicas: 2\n      max_restarts: -1\n      args: [--log-structured, --log-interval, "0", --log-count, "100000", --log-size, "64"]\n`));
    m.child.stdout?.pause(); // the reader stops reading: the pipe fills up, then Monoceros's buffer
    await m.waitFor("both workers started", () => recordsWith(m, "Worker started").length === 2);
    await new Promise((r) => setTimeout(r, 3_000)); // setup: give the workers time to fill every buffer
    const rssKiB = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${m.pid}/status`, "utf8"))?.[1]);
    // 200,000 lines of ~190 bytes are 38 MB; Monoceros holds at most ~1 MiB per stream of them.
    expect(rssKiB).toBeLessThan(80 * 1024);
    m.child.stdout?.resume();
    await m.waitFor("all 200,000 lines", () => m.stdoutLines.filter((l) => l.includes('"seq"')).length >= 200_000, 60_000);
    expect(m.stdoutLines.filter((l) => l.includes('"seq"'))).toHaveLength(200_000);
  });
});
