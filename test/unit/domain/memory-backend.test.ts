import { describe, expect, it } from "vitest";
import { CHILD_RSS_BYTES_DEFAULT, MemoryBackend, type FakeProcessScript } from "../../../src/backends/memory/memory-backend.js";
import { VirtualClock } from "../../../src/backends/memory/virtual-clock.js";
import type { BackendEvent, SpawnRequest } from "../../../src/runtime/ports.js";
import { runsForever } from "../../support/harness.js";

const request: SpawnRequest = { ref: { pool: 0, worker: 0, generation: 1 }, poolName: "web", workerId: "web-0", exec: "x", args: [], env: {}, notify: false, lane: 0, stderrLevel: "error", cwd: null, user: null, group: null };

describe("memory backend", () => {
  it("runs a simulated hour of timers in a moment, in time order", () => {
    const clock = new VirtualClock();
    const fired: number[] = [];
    for (const atMs of [3_600_000, 5, 1_000, 5]) clock.setTimer(atMs, () => fired.push(clock.nowMs()));
    const cancelled = clock.setTimer(10, () => fired.push(-1));
    clock.cancelTimer(cancelled);
    while (clock.runNext());
    expect(fired).toEqual([5, 5, 1_000, 3_600_000]);
  });

  it("scripts processes: exit codes and signals, ignored SIGTERM, SIGKILL, spawn failures, output, memory, health", () => {
    const clock = new VirtualClock();
    const events: BackendEvent[] = [];
    const scripts = [
      { ...runsForever, exitAfterMs: 100, exitCode: 3, lines: ["hello"] },
      { ...runsForever, onSigterm: { kind: "ignore" } as const, rssBytes: 1_000, rssGrowthBytesPerSecond: 500, unhealthyAfterMs: 2_000 },
      { ...runsForever, spawnError: "ENOENT" },
    ];
    const backend = new MemoryBackend(clock, (_request, index) => scripts[index] ?? runsForever, 1);
    backend.attach((event) => events.push(event));
    for (let i = 0; i < 3; i++) backend.spawn({ ...request, ref: { ...request.ref, worker: i } });
    while (clock.runNext(1));
    expect(events.map((e) => e.type)).toEqual(["spawned", "spawned", "spawnFailed"]);
    expect(backend.output).toEqual([{ workerId: "web-0", line: "hello" }]);
    while (clock.runNext(200));
    expect(events[3]).toMatchObject({ type: "exited", code: 3, signal: null });
    const ignorer = [...backend.alive()].find((p) => p.role === "leader")!;
    backend.signal(ignorer.pid, "SIGTERM");
    clock.advanceTo(3_001);
    expect(backend.stats(ignorer.pid)?.rssBytes).toBe(1_000 + 1_500);
    expect(backend.healthy(ignorer.pid)).toBe(false);
    backend.signal(ignorer.pid, "SIGKILL");
    while (clock.runNext());
    expect(events.at(-1)).toMatchObject({ type: "exited", code: null, signal: "SIGKILL" });
    expect([...backend.alive()]).toEqual([]);
  });

  function run(scripts: FakeProcessScript[]) {
    const clock = new VirtualClock();
    const events: { atMs: number; event: BackendEvent }[] = [];
    const backend = new MemoryBackend(clock, (_request, index) => scripts[index] ?? runsForever, 1);
    backend.attach((event) => events.push({ atMs: clock.nowMs(), event }));
    const spawn = (generation: number) => backend.spawn({ ...request, ref: { ...request.ref, generation } });
    const until = (atMs: number) => {
      while (clock.runNext(atMs));
      clock.advanceTo(atMs);
    };
    return { clock, events, backend, spawn, until, types: () => events.map(({ atMs, event }) => `${atMs} ${event.type}`) };
  }

  it("reports children that outlive their leader: groupEmpty false at the exit, groupEmpty when the last is gone; signals reach the whole group", () => {
    const t = run([{
      ...runsForever, exitAfterMs: 100,
      children: [
        { exitAfterLeaderMs: 50, onSigterm: { kind: "ignore" }, holdsOutput: false },
        { exitAfterLeaderMs: null, onSigterm: { kind: "ignore" }, sigkillDelayMs: 30, holdsOutput: true },
      ],
    }]);
    t.spawn(1);
    t.until(101);
    expect(t.events[1]?.event).toMatchObject({ type: "exited", groupEmpty: false, outputClosed: false });
    const pid = (t.events[0]?.event as { pid: number }).pid;
    expect([...t.backend.alive()].map((p) => p.role)).toEqual(["child", "child"]);
    t.backend.signal(pid, "SIGTERM"); // ignored by both
    t.until(200);
    expect([...t.backend.alive()]).toHaveLength(1); // the first exited 50 ms after its leader
    t.backend.signal(pid, "SIGKILL"); // the second takes 30 ms to die (D state)
    t.until(1_000);
    expect(t.types()).toEqual(["1 spawned", "101 exited", "230 outputClosed", "230 groupEmpty"]);
    expect(t.backend.faults).toMatchObject({ leftoverAtExit: 1, childSurvivedSigkill: 1, groupEmptyLater: 1, outputClosedLater: 1 });
  });

  it("keeps a leader that survives SIGKILL, for a while or for ever, and a group member stuck for ever", () => {
    const t = run([{ ...runsForever, sigkillDelayMs: 7_000 }, { ...runsForever, sigkillDelayMs: null }]);
    t.spawn(1);
    t.spawn(2);
    t.until(1);
    for (const event of t.events) t.backend.signal((event.event as { pid: number }).pid, "SIGKILL");
    t.until(100_000);
    expect(t.types()).toEqual(["1 spawned", "1 spawned", "7001 exited"]);
    expect([...t.backend.alive()].map((p) => [p.role, p.sigkillAtMs])).toEqual([["leader", 1]]);
  });

  it("reports an exit late: until then the leader is a zombie that signals do not change", () => {
    const t = run([{ ...runsForever, exitAfterMs: 10, exitReportDelayMs: 500, outputHeldAfterExitMs: 2_000 }]);
    t.spawn(1);
    t.until(20);
    const [zombie] = [...t.backend.alive()];
    expect(zombie?.state).toBe("zombie");
    t.backend.signal(zombie!.pid, "SIGKILL");
    expect(zombie?.sigkillAtMs).toBe(20);
    t.until(10_000);
    expect(t.types()).toEqual(["1 spawned", "511 exited", "2011 outputClosed"]);
    expect(zombie?.goneAtMs).toBe(511);
  });

  it("holds output open for ever when the script says so: no outputClosed ever", () => {
    const t = run([{ ...runsForever, exitAfterMs: 10, outputHeldAfterExitMs: null }]);
    t.spawn(1);
    t.until(3_600_000);
    expect(t.types()).toEqual(["1 spawned", "11 exited"]);
    expect(t.events[1]?.event).toMatchObject({ groupEmpty: true, outputClosed: false });
  });

  it("sends an incarnation's events again once its slot's next incarnation was reported, exactly as they were", () => {
    const t = run([
      { ...runsForever, exitAfterMs: 10, staleReplays: [{ event: "exited", afterMs: 0 }, { event: "spawned", afterMs: 5 }, { event: "groupEmpty", afterMs: 0 }] },
      { ...runsForever, spawnLatencyMs: 100 },
    ]);
    t.spawn(1);
    t.until(20);
    t.spawn(2);
    t.until(1_000);
    expect(t.types()).toEqual(["1 spawned", "11 exited", "120 spawned", "120 exited", "125 spawned"]);
    expect(t.events[3]?.event).toEqual(t.events[1]?.event); // never sent groupEmpty, so none is made up
    expect(t.events[4]?.event).toEqual(t.events[0]?.event);
    expect(t.backend.faults).toMatchObject({ staleExited: 1, staleSpawned: 1, staleGroupEmpty: 0, slowSpawn: 1 });
  });

  /** A probe of the first process spawned, as the core would send it. */
  let seq = 0;
  const probeOf = (t: ReturnType<typeof run>, timeoutMs: number) => {
    const spawned = t.events.find(({ event }) => event.type === "spawned")?.event as { ref: SpawnRequest["ref"]; pid: number };
    t.backend.probe({ ref: spawned.ref, seq: ++seq, pid: spawned.pid, probe: { kind: "exec", argv: ["check"] }, timeoutMs });
  };
  const results = (t: ReturnType<typeof run>) =>
    t.events.flatMap(({ atMs, event }) => (event.type === "checkResult" ? [`${atMs} ${event.localError === true ? "local error" : event.result}`] : []));

  it("answers checks as scripted: refused before it listens, then ok; a hung probe never answers; healthy again once recovered", () => {
    const t = run([{ ...runsForever, readyAfterMs: 100, unhealthyAfterMs: 1_000, healthyAgainAfterMs: 2_000, unhealthyAs: "hung", probeLatencyMs: 5 }]);
    t.spawn(1);
    for (const atMs of [51, 501, 1_501, 2_501]) {
      t.until(atMs);
      probeOf(t, 300);
    }
    t.until(5_000);
    expect(results(t)).toEqual(["51 fail", "506 ok", "2506 ok"]);
    expect(t.backend.faults).toMatchObject({ probeRefused: 1, probeHung: 1, probeRecovered: 1 });
  });

  it("answers an unhealthy timeout, or an answer slower than the timeout, with a timeout after the timeout; a failure after its latency", () => {
    const t = run([{ ...runsForever, unhealthyAfterMs: 1_000, unhealthyAs: "timeout", probeLatencyMs: 50 }]);
    t.spawn(1);
    t.until(11);
    probeOf(t, 40); // healthy, but slower than the timeout
    t.until(1_001);
    probeOf(t, 300);
    t.until(5_000);
    expect(results(t)).toEqual(["51 timeout", "1301 timeout"]);
    const failing = run([{ ...runsForever, unhealthyAfterMs: 0, probeLatencyMs: 7 }]);
    failing.spawn(1);
    failing.until(1);
    probeOf(failing, 300);
    failing.until(100);
    expect(results(failing)).toEqual(["8 fail"]);
    expect(t.backend.faults.probeTimedOut + failing.backend.faults.probeFailed).toBe(3);
  });

  it("cannot make every probeLocalErrorEvery-th check: a local error at once, whatever the worker", () => {
    const t = run([{ ...runsForever, probeLocalErrorEvery: 2, probeLatencyMs: 5 }]);
    t.spawn(1);
    for (const atMs of [1, 101, 201]) {
      t.until(atMs);
      probeOf(t, 300);
    }
    t.until(1_000);
    expect(results(t)).toEqual(["6 ok", "101 local error", "206 ok"]);
    expect(t.backend.faults.probeLocalError).toBe(1);
  });

  it("notifies as scripted: READY=1, WATCHDOG=1 every watchdogEveryMs, silence while unhealthy, keepalives again once recovered, STOPPING=1", () => {
    const clock = new VirtualClock();
    const events: { atMs: number; event: BackendEvent }[] = [];
    const script: FakeProcessScript = { ...runsForever, readyAfterMs: 100, watchdogEveryMs: 300, unhealthyAfterMs: 800, healthyAgainAfterMs: 1_500, stoppingAfterMs: 2_000 };
    const backend = new MemoryBackend(clock, () => script, 0);
    backend.attach((event) => events.push({ atMs: clock.nowMs(), event }));
    backend.spawn({ ...request, notify: true, env: { WATCHDOG_USEC: "1000000" } });
    while (clock.runNext(2_500));
    const notes = events.flatMap(({ atMs, event }) => (event.type === "notify" ? [`${atMs}${event.ready ? " READY" : ""}${event.watchdog ? " WATCHDOG" : ""}${event.stopping ? " STOPPING" : ""}`] : []));
    // Beats at 100, 400, 700; the one due at 1000 finds it silent until 1500; then every 300 ms again.
    expect(notes).toEqual(["100 READY", "400 WATCHDOG", "700 WATCHDOG", "1500 WATCHDOG", "1800 WATCHDOG", "2000 STOPPING", "2100 WATCHDOG", "2400 WATCHDOG"]);
    expect(backend.faults).toMatchObject({ keepalivesStopped: 1, keepalivesResumed: 1, notifyStopping: 1 });
  });

  it("samples a group's memory as the sum of its live members: the leader's, growing and falling back, and each child's own", () => {
    const t = run([{
      ...runsForever, rssBytes: 1_000, rssGrowthBytesPerSecond: 100, rssDropEveryMs: 5_000,
      children: [{ exitAfterLeaderMs: null, onSigterm: { kind: "exit", afterMs: 0, code: null, signal: null }, holdsOutput: false, rssBytes: 50, rssGrowthBytesPerSecond: 10 }, { exitAfterLeaderMs: null, onSigterm: { kind: "ignore" }, holdsOutput: false }],
    }]);
    t.spawn(1);
    t.until(1);
    const pid = (t.events[0]?.event as { pid: number }).pid;
    const group = { ref: request.ref, pid };
    const sampleAt = (atMs: number) => {
      t.until(atMs);
      t.backend.sampleMemory([group]);
      t.until(atMs);
      const event = t.events.at(-1)?.event;
      return event?.type === "memorySampled" ? event.samples[0]?.rssBytes : undefined;
    };
    expect(sampleAt(4_001)).toBe(1_000 + 400 + (50 + 40) + CHILD_RSS_BYTES_DEFAULT);
    expect(sampleAt(6_001)).toBe(1_000 + 100 + (50 + 60) + CHILD_RSS_BYTES_DEFAULT); // the leader's fell back at 5 s
    expect(t.backend.faults.rssDropped).toBe(1);
    t.backend.signal(pid, "SIGTERM"); // the first child exits, the leader and the other ignore it
    expect(sampleAt(6_002)).toBe(1_000 + 100 + CHILD_RSS_BYTES_DEFAULT);
  });

  it.each(["ENOENT", "EACCES", "EMFILE", "ENFILE", "EAGAIN", "ENOMEM"])("fails a spawn with %s", (errorCode) => {
    const t = run([{ ...runsForever, spawnError: errorCode }]);
    t.spawn(1);
    t.until(10);
    expect(t.events.map((e) => e.event)).toEqual([{ type: "spawnFailed", ref: { pool: 0, worker: 0, generation: 1 }, errorCode, message: `spawn x ${errorCode}` }]);
    expect([...t.backend.alive()]).toEqual([]);
  });
});
