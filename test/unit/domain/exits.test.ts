// The core, driven event by event: what happens after a worker's leader exits (leftovers in its
// group, output still open), the restart policy (quick exits, backoff, window) and health.
import { describe, expect, it } from "vitest";
import type { Config, PoolConfig } from "../../../src/config/types.js";
import { supervisorHealth } from "../../../src/domain/health.js";
import { createSupervisorState, PROXY_INDEX, type SupervisorState } from "../../../src/domain/state.js";
import { backoffDelayMs, step, TIMING } from "../../../src/domain/supervisor.js";
import type { Command, SupervisorEvent, WorkerRef } from "../../../src/domain/types.js";
import { pool, server } from "../../support/harness.js";

const POLICY = { minUptimeMs: 1_000, backoffInitialMs: 100, backoffMaxMs: 1_000, windowMs: null };

/** A core with no backend: every spawn is answered by hand, so each test says exactly what the OS reported. */
function core(pools: PoolConfig[]) {
  const config: Config = { admin: { port: 0, host: null }, pools };
  const state: SupervisorState = createSupervisorState(config, 1, () => ({ exec: "proxy", args: [], stopSignal: "SIGTERM" }));
  let nextPid = 100;
  const log: { atMs: number; command: Command }[] = [];
  const send = (event: SupervisorEvent, atMs: number) => {
    const commands = step(state, event, atMs);
    for (const command of commands) log.push({ atMs, command });
    return commands;
  };
  const spawnsOf = (commands: readonly Command[]) => commands.filter((c): c is Extract<Command, { type: "spawn" }> => c.type === "spawn");
  return {
    state,
    log,
    send,
    /** Answers every spawn in `commands` with a pid; returns the refs. */
    started(commands: readonly Command[], atMs: number): WorkerRef[] {
      return spawnsOf(commands).map((spawn) => {
        send({ type: "spawned", ref: spawn.ref, pid: nextPid++ }, atMs);
        return spawn.ref;
      });
    },
    spawnsOf,
    exit(ref: WorkerRef, atMs: number, facts: { groupEmpty?: boolean; outputClosed?: boolean } = {}) {
      return send({ type: "exited", ref, code: 1, signal: null, groupEmpty: facts.groupEmpty ?? true, outputClosed: facts.outputClosed ?? true }, atMs);
    },
    timers(commands: readonly Command[]) {
      return commands.filter((c): c is Extract<Command, { type: "setTimer" }> => c.type === "setTimer");
    },
    fire(commands: readonly Command[], kind: string) {
      const timer = commands.find((c): c is Extract<Command, { type: "setTimer" }> => c.type === "setTimer" && c.timer.kind === kind);
      if (timer === undefined) throw new Error(`no ${kind} timer was set`);
      return { atMs: timer.atMs, commands: send({ type: "timer", timer: timer.timer }, timer.atMs) };
    },
  };
}

describe("after a worker's leader exits", () => {
  it("sends what is left of its group SIGTERM, then SIGKILL after signal_timeout, and restarts only once the group is empty", () => {
    const c = core([pool({ replicas: 1, maxRestarts: 5, signalTimeoutMs: 3_000, restartPolicy: POLICY })]);
    const [ref] = c.started(c.send({ type: "start" }, 0), 0) as [WorkerRef];
    const onExit = c.exit(ref, 5_000, { groupEmpty: false });
    expect(onExit).toContainEqual({ type: "signal", ref, pid: 100, signal: "SIGTERM" });
    expect(c.spawnsOf(onExit)).toHaveLength(0);
    expect(c.state.pools[0]?.workers[0]?.status).toBe("exiting");
    const kill = c.fire(onExit, "kill");
    expect(kill.atMs).toBe(8_000);
    expect(kill.commands).toContainEqual({ type: "signal", ref, pid: 100, signal: "SIGKILL" });
    const released = c.send({ type: "groupEmpty", ref }, 8_010);
    expect(c.spawnsOf(released)).toHaveLength(1);
    expect(released).toContainEqual({ type: "cancelTimer", key: `abandon/0/0/${ref.generation}` });
  });

  it("does not send a second SIGTERM to a group it is already stopping", () => {
    const c = core([pool({ replicas: 1, restartPolicy: POLICY })]);
    const [ref] = c.started(c.send({ type: "start" }, 0), 0) as [WorkerRef];
    c.send({ type: "shutdownRequested", signal: "SIGTERM" }, 1_000);
    const onExit = c.exit(ref, 1_010, { groupEmpty: false });
    expect(onExit.filter((command) => command.type === "signal")).toEqual([]);
    expect(c.send({ type: "groupEmpty", ref }, 1_020)).toContainEqual({ type: "exit", code: 0 });
  });

  it("waits at most outputDrainMs for output a process outside the group holds open", () => {
    const c = core([pool({ replicas: 1, maxRestarts: 5, restartPolicy: POLICY })]);
    const [ref] = c.started(c.send({ type: "start" }, 0), 0) as [WorkerRef];
    const onExit = c.exit(ref, 5_000, { outputClosed: false });
    expect(c.spawnsOf(onExit)).toHaveLength(0);
    const drained = c.fire(onExit, "outputDrain");
    expect(drained.atMs).toBe(5_000 + TIMING.outputDrainMs);
    expect(c.spawnsOf(drained.commands)).toHaveLength(1);
  });

  it("restarts as soon as the output closes when nothing else is left", () => {
    const c = core([pool({ replicas: 1, maxRestarts: 5, restartPolicy: POLICY })]);
    const [ref] = c.started(c.send({ type: "start" }, 0), 0) as [WorkerRef];
    c.exit(ref, 5_000, { outputClosed: false });
    const closed = c.send({ type: "outputClosed", ref }, 5_001);
    expect(c.spawnsOf(closed)).toHaveLength(1);
    expect(closed).toContainEqual({ type: "cancelTimer", key: `outputDrain/0/0/${ref.generation}` });
  });

  it("gives up on leftovers that survive SIGKILL after killWaitMs and frees the slot", () => {
    const c = core([pool({ replicas: 1, maxRestarts: 5, signalTimeoutMs: 1_000, restartPolicy: POLICY })]);
    const [ref] = c.started(c.send({ type: "start" }, 0), 0) as [WorkerRef];
    const kill = c.fire(c.exit(ref, 5_000, { groupEmpty: false }), "kill");
    const abandon = c.fire(kill.commands, "abandon");
    expect(abandon.atMs).toBe(6_000 + TIMING.killWaitMs);
    expect(c.spawnsOf(abandon.commands)).toHaveLength(1);
    // Their groupEmpty, when it comes at last, is about an old incarnation and changes nothing.
    expect(c.send({ type: "groupEmpty", ref }, 60_000)).toEqual([]);
  });

  it("ignores late and repeated events about an old incarnation", () => {
    const c = core([pool({ replicas: 1, maxRestarts: 5, restartPolicy: POLICY })]);
    const [first] = c.started(c.send({ type: "start" }, 0), 0) as [WorkerRef];
    const [second] = c.started(c.exit(first, 5_000), 5_000) as [WorkerRef];
    expect(second.generation).toBe(first.generation + 1);
    expect(c.exit(first, 6_000)).toEqual([]);
    expect(c.send({ type: "outputClosed", ref: first }, 6_000)).toEqual([]);
    expect(c.state.pools[0]?.workers[0]?.status).toBe("running");
  });
});

describe("a third shutdown signal", () => {
  it("SIGKILLs a worker that was being spawned when it came, the moment it has a pid", () => {
    const c = core([pool({ replicas: 1, maxRestarts: 5, restartPolicy: POLICY })]);
    const [ref] = c.started(c.send({ type: "start" }, 0), 0) as [WorkerRef];
    const respawn = c.spawnsOf(c.exit(ref, 5_000))[0] as Extract<Command, { type: "spawn" }>;
    for (let signal = 0; signal < 3; signal++) c.send({ type: "shutdownRequested", signal: "SIGTERM" }, 5_001);
    const onSpawned = c.send({ type: "spawned", ref: respawn.ref, pid: 555 }, 5_002);
    expect(onSpawned).toContainEqual({ type: "signal", ref: respawn.ref, pid: 555, signal: "SIGKILL" });
    expect(onSpawned.filter((command) => command.type === "signal" && command.signal === "SIGTERM")).toEqual([]);
  });

  it("does not stop again a proxy it already SIGKILLed", () => {
    const c = core([pool({ replicas: 1, maxRestarts: 5, restartPolicy: POLICY, server: server({ proxy: "haproxy", startPort: 9100 }) })]);
    const refs = c.started(c.send({ type: "start" }, 0), 0);
    const worker = refs.find((ref) => ref.worker !== PROXY_INDEX) as WorkerRef;
    for (let signal = 0; signal < 3; signal++) c.send({ type: "shutdownRequested", signal: "SIGTERM" }, 1_000);
    const afterWorker = c.exit(worker, 1_010);
    expect(afterWorker.filter((command) => command.type === "signal")).toEqual([]);
  });
});

describe("restart_policy", () => {
  it("restarts the first quick exit at once, then backs off from backoff_initial doubling to backoff_max", () => {
    const c = core([pool({ replicas: 1, maxRestarts: Infinity, restartPolicy: POLICY })]);
    let [ref] = c.started(c.send({ type: "start" }, 0), 0) as [WorkerRef];
    const delays: number[] = [];
    let nowMs = 0;
    for (let exit = 0; exit < 7; exit++) {
      nowMs += 10; // each run lasts 10 ms: a quick exit
      const commands = c.exit(ref, nowMs);
      let spawns = c.spawnsOf(commands);
      let startedAtMs = nowMs;
      if (spawns.length === 0) {
        expect(c.state.pools[0]?.workers[0]?.status).toBe("pending");
        const fired = c.fire(commands, "restart");
        spawns = c.spawnsOf(fired.commands);
        startedAtMs = fired.atMs;
      }
      delays.push(startedAtMs - nowMs);
      nowMs = startedAtMs;
      [ref] = c.started(spawns, nowMs) as [WorkerRef];
    }
    expect(delays).toEqual([0, 100, 200, 400, 800, 1_000, 1_000]);
  });

  it("forgets the quick exits after a run longer than min_uptime", () => {
    const c = core([pool({ replicas: 1, maxRestarts: Infinity, restartPolicy: POLICY })]);
    const [ref] = c.started(c.send({ type: "start" }, 0), 0) as [WorkerRef];
    const [again] = c.started(c.exit(ref, 10), 10) as [WorkerRef];
    const afterSecondQuick = c.fire(c.exit(again, 20), "restart");
    expect(afterSecondQuick.atMs).toBe(120);
    const [third] = c.started(c.spawnsOf(afterSecondQuick.commands), 120) as [WorkerRef];
    // A long run: its exit restarts at once and the next quick exit is "the first" again.
    const [fourth] = c.started(c.exit(third, 5_000), 5_000) as [WorkerRef];
    expect(c.state.pools[0]?.workers[0]?.quickExits).toBe(0);
    expect(c.spawnsOf(c.exit(fourth, 5_010))).toHaveLength(1);
  });

  it("backoff_initial 0 disables backoff", () => {
    expect([1, 2, 3, 30].map((n) => backoffDelayMs({ backoffInitialMs: 0, backoffMaxMs: 30_000 }, n))).toEqual([0, 0, 0, 0]);
    expect([0, 1, 2, 3, 4, 200].map((n) => backoffDelayMs({ backoffInitialMs: 100, backoffMaxMs: 30_000 }, n))).toEqual([0, 0, 100, 200, 400, 30_000]);
  });

  it("with a window, max_restarts counts only the restarts within it", () => {
    const c = core([pool({ replicas: 1, maxRestarts: 2, restartPolicy: { ...POLICY, windowMs: 60_000 } })]);
    let [ref] = c.started(c.send({ type: "start" }, 0), 0) as [WorkerRef];
    // Exits 50 s apart: never more than 2 within a minute, so it runs for ever.
    for (let exit = 1; exit <= 6; exit++) [ref] = c.started(c.exit(ref, exit * 50_000), exit * 50_000) as [WorkerRef];
    expect(c.state.phase).toBe("running");
    expect(c.state.pools[0]?.workers[0]?.restarts).toBe(6);
    // Three within a minute: the third is over budget.
    [ref] = c.started(c.exit(ref, 310_000), 310_000) as [WorkerRef];
    expect(c.exit(ref, 320_000)).toContainEqual({ type: "exit", code: 1 });
  });

  it("without a window, every unplanned restart counts (the original)", () => {
    const c = core([pool({ replicas: 1, maxRestarts: 2, restartPolicy: POLICY })]);
    let [ref] = c.started(c.send({ type: "start" }, 0), 0) as [WorkerRef];
    for (let exit = 1; exit <= 2; exit++) [ref] = c.started(c.exit(ref, exit * 3_600_000), exit * 3_600_000) as [WorkerRef];
    c.exit(ref, 3 * 3_600_000);
    expect(c.state.exitCode).toBe(1);
  });

  it("does not charge a spawn failure for lack of a resource to max_restarts, and retries it with a growing delay", () => {
    const c = core([pool({ replicas: 1, maxRestarts: 0, restartPolicy: POLICY })]);
    let commands = c.send({ type: "start" }, 0);
    const retries: number[] = [];
    for (let failure = 0; failure < 8; failure++) {
      const spawn = c.spawnsOf(commands)[0];
      if (spawn === undefined) throw new Error("no spawn");
      const failedAtMs = retries.reduce((a, b) => a + b, 0);
      const fired = c.fire(c.send({ type: "spawnFailed", ref: spawn.ref, errorCode: "EMFILE", message: "spawn EMFILE" }, failedAtMs), "restart");
      retries.push(fired.atMs - failedAtMs);
      commands = fired.commands;
    }
    expect(c.state.phase).toBe("running");
    expect(retries).toEqual([100, 200, 400, 800, 1_600, 3_200, 5_000, 5_000]);
    expect(c.state.pools[0]?.workers[0]?.restarts).toBe(0);
  });

  it("charges any other spawn failure (ENOENT) like an exit", () => {
    const c = core([pool({ replicas: 1, maxRestarts: 0, restartPolicy: POLICY })]);
    const spawn = c.spawnsOf(c.send({ type: "start" }, 0))[0] as Extract<Command, { type: "spawn" }>;
    expect(c.send({ type: "spawnFailed", ref: spawn.ref, errorCode: "ENOENT", message: "spawn ENOENT" }, 0)).toContainEqual({ type: "exit", code: 1 });
  });
});

describe("health", () => {
  it("counts a worker only once it has run min_uptime, and never a crash-looping one", () => {
    const c = core([pool({ replicas: 2, desiredHealthyPercentage: 50, maxRestarts: Infinity, restartPolicy: POLICY })]);
    const [a] = c.started(c.send({ type: "start" }, 0), 0) as [WorkerRef, WorkerRef];
    expect(supervisorHealth(c.state, 999).pools[0]).toMatchObject({ running: 2, up: 0, healthy: false });
    expect(supervisorHealth(c.state, 1_000).pools[0]).toMatchObject({ running: 2, up: 2, healthy: true });
    // Worker 0 starts crash-looping: restarted at once after its long run, then after its first quick exit…
    const [again] = c.started(c.exit(a, 1_500), 1_500) as [WorkerRef];
    const [third] = c.started(c.exit(again, 1_600), 1_600) as [WorkerRef];
    expect(supervisorHealth(c.state, 2_500).pools[0]).toMatchObject({ running: 2, up: 1, runningPercentage: 50, healthy: true });
    // …then it waits in backoff: not running, not up.
    c.exit(third, 1_700);
    expect(c.state.pools[0]?.workers[0]?.status).toBe("pending");
    expect(supervisorHealth(c.state, 1_750).pools[0]).toMatchObject({ running: 1, up: 1 });
  });

  it("truncates the share to a whole percentage, as the original does", () => {
    const c = core([pool({ replicas: 3, desiredHealthyPercentage: 67, maxRestarts: Infinity, restartPolicy: POLICY })]);
    const [a] = c.started(c.send({ type: "start" }, 0), 0) as [WorkerRef];
    c.exit(a, 10_000, { groupEmpty: false });
    // 2 of 3 is 66.67%: 66 < 67.
    expect(supervisorHealth(c.state, 10_000).pools[0]).toMatchObject({ up: 2, runningPercentage: 66, healthy: false });
  });

  it("reports a pool whose proxy is not running as unhealthy, whatever its workers do", () => {
    const c = core([pool({ replicas: 1, desiredHealthyPercentage: 0, maxRestarts: Infinity, restartPolicy: POLICY, server: server({ proxy: "haproxy", startPort: 9100 }) })]);
    const refs = c.started(c.send({ type: "start" }, 0), 0);
    const proxy = refs.find((ref) => ref.worker === PROXY_INDEX) as WorkerRef;
    expect(supervisorHealth(c.state, 5_000).healthy).toBe(true);
    c.exit(proxy, 5_000);
    expect(supervisorHealth(c.state, 5_001).pools[0]).toMatchObject({ proxyRunning: false, healthy: false });
  });
});
