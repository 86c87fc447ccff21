import { describe, expect, it } from "vitest";
import { MemoryBackend, type FakeProcessScript } from "../../../src/backends/memory/memory-backend.js";
import { VirtualClock } from "../../../src/backends/memory/virtual-clock.js";
import type { BackendEvent, SpawnRequest } from "../../../src/runtime/ports.js";
import { runsForever } from "../../support/harness.js";

const request: SpawnRequest = { ref: { pool: 0, worker: 0, generation: 1 }, poolName: "web", workerId: "web-0", exec: "x", args: [], env: {} };

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

  it.each(["ENOENT", "EACCES", "EMFILE", "ENFILE", "EAGAIN", "ENOMEM"])("fails a spawn with %s", (errorCode) => {
    const t = run([{ ...runsForever, spawnError: errorCode }]);
    t.spawn(1);
    t.until(10);
    expect(t.events.map((e) => e.event)).toEqual([{ type: "spawnFailed", ref: { pool: 0, worker: 0, generation: 1 }, errorCode, message: `spawn x ${errorCode}` }]);
    expect([...t.backend.alive()]).toEqual([]);
  });
});
