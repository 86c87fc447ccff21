import { describe, expect, it } from "vitest";
import { MemoryBackend } from "../../../src/backends/memory/memory-backend.js";
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
    const ignorer = [...backend.alive()][0]!;
    backend.signal(ignorer.pid, "SIGTERM");
    clock.advanceTo(3_001);
    expect(backend.stats(ignorer.pid)?.rssBytes).toBe(1_000 + 1_500);
    expect(backend.healthy(ignorer.pid)).toBe(false);
    backend.signal(ignorer.pid, "SIGKILL");
    while (clock.runNext());
    expect(events.at(-1)).toMatchObject({ type: "exited", code: null, signal: "SIGKILL" });
    expect([...backend.alive()]).toEqual([]);
  });
});
