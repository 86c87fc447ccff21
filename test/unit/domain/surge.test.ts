// Surge replacement, moving ids, scaling and rolling restarts in the core (memory backend).
import { describe, expect, it } from "vitest";
import type { Command } from "../../../src/domain/types.js";
import { TIMING } from "../../../src/domain/supervisor.js";
import { harness, pool, runsForever, server } from "../../support/harness.js";

const lifespan = (lifespanMs: number) => ({ lifespanMs, jitterRatio: 0, memoryBytes: 0 });
const policy = { minUptimeMs: 500, backoffInitialMs: 0, backoffMaxMs: 0, windowMs: null };
const replies = (commands: { command: Command }[]) => commands.flatMap(({ command }) => (command.type === "reply" ? [command] : []));

/** Which ids have a live leader at each moment a spawn or exit happened: no id twice. */
function liveIdsNeverShared(h: ReturnType<typeof harness>): void {
  const live = new Map<string, number>();
  for (const { event } of h.events) {
    if (event.type !== "spawned" && event.type !== "exited") continue;
    const worker = h.runtime.state.pools[event.ref.pool]?.workers[event.ref.worker];
    if (worker === undefined) continue;
    const count = (live.get(worker.id) ?? 0) + (event.type === "spawned" ? 1 : -1);
    expect(count, `${worker.id} has ${count} live processes`).toBeLessThanOrEqual(1);
    live.set(worker.id, count);
  }
}

describe("surge replacement", () => {
  it("starts the replacement in a free slot first, stops the old worker once the replacement ran min_uptime, and the id moves", () => {
    const h = harness([pool({ replicas: 2, maxSurge: 1, restartPolicy: policy, limits: lifespan(2_000) })]);
    h.runUntil(2_000);
    // web-0's lifespan: web-2 (the free slot) starts while web-0 keeps running.
    expect(h.spawns.map((s) => s.workerId)).toEqual(["web-0", "web-1", "web-2"]);
    expect(h.spawns[2]?.env.MULTIPROCESS_WORKER_ID).toBe("web_web-2");
    expect(h.signals()).toEqual([]);
    h.runUntil(2_499);
    expect(h.signals()).toEqual([]);
    h.runUntil(2_505);
    // ready (min_uptime 500 ms without a check): only now web-0 gets SIGTERM.
    expect(h.signals()).toEqual([{ atMs: 2_500, workerId: "web-0", signal: "SIGTERM" }]);
    expect(h.runtime.state.pools[0]?.workers.map((w) => w.status)).toEqual(["stopping", "running", "running"]);
    // web-1's lifespan came at 2 s too, held back by max_unavailable 1; it moves to the slot web-0 freed.
    h.runUntil(3_200);
    expect(h.spawns.map((s) => s.workerId)).toEqual(["web-0", "web-1", "web-2", "web-0"]);
    expect(h.metrics.filter((m) => m.metric === "restart")).toHaveLength(2);
    expect(h.metrics.filter((m) => m.metric === "limitEvent")).toHaveLength(2);
    liveIdsNeverShared(h);
  });

  it("in proxy mode the replacement joins the rotation when its port accepts, then the old one leaves it and gets SIGTERM a grace later", () => {
    const h = harness([pool({ replicas: 2, maxSurge: 1, restartPolicy: policy, server: server(), limits: lifespan(2_000) })]);
    h.runUntil(3_000);
    const rotations = h.commands.flatMap(({ atMs, command }) => (command.type === "proxyRotation" ? [[atMs, command.endpoints.map((e) => (e.inRotation ? "1" : "0")).join("")]] : []));
    // Three slots (ports 9090-9092): web-2 joins and web-0 leaves in one update, SIGTERM rotation grace later.
    expect(rotations).toContainEqual([2_100, "011"]);
    expect(h.signals("SIGTERM")[0]).toEqual({ atMs: 2_100 + TIMING.rotationGraceMs, workerId: "web-0", signal: "SIGTERM" });
    expect(h.spawns.find((s) => s.workerId === "web-2")?.args).toEqual(["--port", "9092"]);
    liveIdsNeverShared(h);
  });

  it("a replacement that exits before it is ready fails the restart: the old worker keeps serving, counted, and the lifespan restart is tried again after ready_timeout", () => {
    let replacements = 0;
    const h = harness([pool({ replicas: 1, maxSurge: 1, restartPolicy: policy, readyTimeoutMs: 5_000, limits: lifespan(1_000) })], (request) =>
      request.workerId === "web-1" && replacements++ === 0 ? { ...runsForever, exitAfterMs: 100, exitCode: 1 } : runsForever);
    h.runUntil(1_200);
    expect(h.signals()).toEqual([]);
    expect(h.metrics).toContainEqual(expect.objectContaining({ metric: "plannedRestartFailed", pool: "web", cause: "lifespan" }));
    expect(h.runtime.state.pools[0]?.workers.map((w) => w.status)).toEqual(["running", "vacant"]);
    // Tried again ready_timeout later; this time the replacement starts and web-0 is stopped.
    h.runUntil(7_000);
    expect(h.signals()).toEqual([{ atMs: 1_100 + 5_000 + 500, workerId: "web-0", signal: "SIGTERM" }]);
    expect(h.runtime.state.pools[0]?.workers[0]?.restarts).toBe(0);
  });

  it("a replacement not ready within ready_timeout is stopped and the old worker keeps serving", () => {
    const check = { probe: { kind: "http" as const, path: "/", host: "127.0.0.1", startPort: 9100 }, intervalMs: 1_000, timeoutMs: 500, failureThreshold: 3, startPeriodMs: 0 };
    const h = harness([pool({ replicas: 1, maxSurge: 1, readyTimeoutMs: 3_000, healthCheck: check, limits: lifespan(1_000) })], (request) =>
      request.workerId === "web-1" ? { ...runsForever, readyAfterMs: Infinity } : runsForever);
    h.runUntil(5_000);
    expect(h.signals()).toEqual([{ atMs: 4_000, workerId: "web-1", signal: "SIGTERM" }]);
    expect(h.metrics).toContainEqual(expect.objectContaining({ metric: "plannedRestartFailed", pool: "web", cause: "lifespan" }));
    expect(h.runtime.state.pools[0]?.workers[0]?.status).toBe("running");
  });

  it("a memory restart after a failed surge is done in place", () => {
    const h = harness([pool({ replicas: 1, maxSurge: 1, readyTimeoutMs: 2_000, restartPolicy: policy, limits: { lifespanMs: 0, jitterRatio: 0, memoryBytes: 50 * 1024 * 1024 } })], (request, index) =>
      index === 0 ? { ...runsForever, rssBytes: 60 * 1024 * 1024 } : { ...runsForever, exitAfterMs: 50, exitCode: 1 });
    h.runUntil(10_000);
    // web-0 over its limit: a surge (web-1 crashes), then in place: web-0 itself gets SIGTERM.
    expect(h.metrics).toContainEqual(expect.objectContaining({ metric: "plannedRestartFailed", pool: "web", cause: "memory" }));
    expect(h.signals("SIGTERM").map((s) => s.workerId)).toContain("web-0");
  });

  it("a crash of the old worker while its replacement starts hands the place to the replacement", () => {
    const h = harness([pool({ replicas: 1, maxSurge: 1, restartPolicy: policy, limits: lifespan(1_000) })], (request, index) =>
      index === 0 ? { ...runsForever, exitAfterMs: 1_200, exitCode: 1 } : runsForever);
    h.runUntil(1_300);
    const workers = h.runtime.state.pools[0]?.workers ?? [];
    expect(workers.map((w) => w.status)).toEqual(["vacant", "running"]);
    expect(h.spawns.map((s) => s.workerId)).toEqual(["web-0", "web-1"]);
  });
});

describe("surge under review (faults found by review)", () => {
  it("a worker scaled away while it is being spawned is stopped as soon as it has a pid", () => {
    const h = harness([pool({ replicas: 2, maxSurge: 1, restartPolicy: policy })]);
    h.runUntil(100);
    h.runtime.dispatch({ type: "scale", requestId: 1, pool: 0, replicas: 3 });
    h.runtime.dispatch({ type: "scale", requestId: 2, pool: 0, replicas: 2 });
    h.runUntil(200);
    expect(h.signals().map((s) => s.workerId)).toEqual(["web-2"]);
    expect(h.runtime.state.pools[0]?.workers.map((w) => w.status)).toEqual(["running", "running", "vacant", "vacant"]);
  });

  it("memory at twice the limit does not wait for the worker's own replacement: it stops now and the replacement takes its place", () => {
    const h = harness([pool({ replicas: 1, maxSurge: 1, readyTimeoutMs: 60_000, restartPolicy: policy, limits: { lifespanMs: 0, jitterRatio: 0, memoryBytes: 50 * 1024 * 1024 } })], (_request, index) =>
      index === 0 ? { ...runsForever, rssBytes: 60 * 1024 * 1024, rssGrowthBytesPerSecond: 20 * 1024 * 1024 } : { ...runsForever, readyAfterMs: Infinity });
    h.runUntil(10_000);
    // First restart at 3 s (3 samples over): a surge whose replacement never gets ready; at 2× the
    // limit the worker is stopped without waiting for ready_timeout.
    const sigterm = h.signals("SIGTERM")[0];
    expect(sigterm?.workerId).toBe("web-0");
    expect(sigterm?.atMs).toBeLessThan(10_000);
  });

  it("a lifespan due while another restart's replacement starts is not lost when that replacement fails", () => {
    const h = harness([pool({ replicas: 1, maxSurge: 1, restartPolicy: policy, readyTimeoutMs: 5_000, limits: lifespan(10_000) })], (request, index) =>
      index === 1 ? { ...runsForever, exitAfterMs: 2_000, exitCode: 1 } : runsForever);
    h.runUntil(9_000);
    h.runtime.dispatch({ type: "restartRequested", requestId: 1, pool: 0, worker: 0 });
    h.runUntil(30_000);
    // The manual replacement (web-1) crashes at 11 s; the lifespan (due at 10 s) is then carried out.
    expect(h.signals("SIGTERM").map((s) => s.workerId)).toContain("web-0");
  });

  it("at most max_surge replacements start at once, even when scaling down left more slots free", () => {
    const h = harness([pool({ replicas: 4, maxSurge: 1, maxUnavailable: 2, restartPolicy: policy })]);
    h.runUntil(100);
    h.runtime.dispatch({ type: "scale", requestId: 1, pool: 0, replicas: 2 });
    h.runUntil(200);
    h.runtime.dispatch({ type: "restartRequested", requestId: 2, pool: 0, worker: null });
    h.runUntil(201);
    expect(h.runtime.state.pools[0]?.workers.filter((w) => w.replacing !== null)).toHaveLength(1);
  });

  it("a new occupant of a slot starts with a fresh restart budget and history", () => {
    const h = harness([pool({ replicas: 1, maxSurge: 1, maxRestarts: 5, restartPolicy: policy, limits: lifespan(5_000) })], (_request, index) =>
      index === 0 ? { ...runsForever, exitAfterMs: 1_000, exitCode: 1 } : runsForever);
    h.runUntil(5_100);
    // web-0 crashed once (restarts 1), then its lifespan moved it to web-1: slot 0 is free.
    expect(h.runtime.state.pools[0]?.workers[0]?.restarts).toBe(1);
    h.runUntil(11_000);
    // web-1's lifespan moves it back to slot 0: a new occupant, with nothing of the old one's history.
    const slot0 = h.runtime.state.pools[0]?.workers[0];
    expect(slot0?.status).toBe("running");
    expect(slot0?.restarts).toBe(0);
    expect(slot0?.lastExit).toBeNull();
  });
});

describe("scaling and rolling restarts", () => {
  it("scales up into new slots and down by retiring the highest ids, answering with the plan", () => {
    const h = harness([pool({ replicas: 2, maxSurge: 1, restartPolicy: policy })]);
    h.runUntil(100);
    h.runtime.dispatch({ type: "scale", requestId: 1, pool: 0, replicas: 4 });
    h.runUntil(200);
    expect(h.spawns.map((s) => s.workerId)).toEqual(["web-0", "web-1", "web-2", "web-3"]);
    expect(h.runtime.state.pools[0]?.workers).toHaveLength(5);
    h.runtime.dispatch({ type: "scale", requestId: 2, pool: 0, replicas: 1 });
    h.runUntil(300);
    expect(h.signals().map((s) => s.workerId)).toEqual(["web-3", "web-2", "web-1"]);
    expect(h.runtime.state.pools[0]?.workers.map((w) => w.status)).toEqual(["running", "vacant", "vacant", "vacant", "vacant"]);
    expect(replies(h.commands).map((r) => [r.ok, r.message])).toEqual([[true, "pool web: replicas 2 -> 4"], [true, "pool web: replicas 4 -> 1"]]);
    // Lanes: each member its own; released as workers leave.
    const released = h.commands.flatMap(({ command }) => (command.type === "releaseLane" ? [command.lane] : []));
    expect(released.sort()).toEqual([1, 2, 3]);
    h.runtime.dispatch({ type: "scale", requestId: 3, pool: 0, replicas: 5_000 });
    expect(replies(h.commands).at(-1)).toMatchObject({ ok: false, message: "replicas must be an integer from 0 to 4096, got 5000" });
  });

  it("scaling down in proxy mode takes the worker out of the rotation before its SIGTERM", () => {
    const h = harness([pool({ replicas: 2, maxSurge: 1, restartPolicy: policy, server: server() })]);
    h.runUntil(500);
    h.runtime.dispatch({ type: "scale", requestId: 1, pool: 0, replicas: 1 });
    h.runUntil(1_000);
    expect(h.signals()).toEqual([{ atMs: 500 + TIMING.rotationGraceMs, workerId: "web-1", signal: "SIGTERM" }]);
  });

  it("ctl restart replaces every worker of a pool one at a time, each replacement ready first", () => {
    const h = harness([pool({ replicas: 3, maxSurge: 1, restartPolicy: policy })]);
    h.runUntil(1_000);
    h.runtime.dispatch({ type: "restartRequested", requestId: 7, pool: 0, worker: null });
    h.runUntil(10_000);
    expect(replies(h.commands)[0]).toMatchObject({ ok: true, plan: ["replace web-0", "replace web-1", "replace web-2"] });
    expect(h.signals().map((s) => [s.atMs, s.workerId])).toEqual([[1_500, "web-0"], [2_010, "web-1"], [2_520, "web-2"]]);
    expect(h.runtime.state.pools[0]?.workers.filter((w) => w.status === "running")).toHaveLength(3);
    liveIdsNeverShared(h);
  });

  it("with max_surge 0 and no check a rolling restart is paced by min_uptime: the next worker stops once the last one's replacement has run it", () => {
    const h = harness([pool({ replicas: 3, maxSurge: 0, restartPolicy: policy })]);
    h.runUntil(1_000);
    h.runtime.dispatch({ type: "restartRequested", requestId: 1, pool: 0, worker: null });
    h.runUntil(10_000);
    // SIGTERM, exit 10 ms later, respawn, then min_uptime (500 ms) before the next one goes.
    expect(h.signals().map((s) => [s.atMs, s.workerId])).toEqual([[1_000, "web-0"], [1_510, "web-1"], [2_020, "web-2"]]);
  });

  it("refuses to restart a worker that is not a running member", () => {
    const h = harness([pool({ replicas: 1, maxSurge: 1, restartPolicy: policy })]);
    h.runUntil(100);
    h.runtime.dispatch({ type: "restartRequested", requestId: 1, pool: 0, worker: 1 });
    expect(replies(h.commands)[0]).toMatchObject({ ok: false, message: "web-1 is not running (vacant)" });
  });
});
