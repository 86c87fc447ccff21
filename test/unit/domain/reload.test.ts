// What a reload may change on a running Monoceros, and what it refuses (then nothing changes).
import { describe, expect, it } from "vitest";
import type { Config } from "../../../src/config/types.js";
import type { PoolConfig } from "../../../src/config/types.js";
import { planReload, type RunningPool } from "../../../src/domain/reload.js";
import { harness, pool, server } from "../../support/harness.js";

const config = (pools = [pool()]): Config => ({ admin: { port: 0, host: null }, pools });
/** The pools of a config as they run: the slots they start with, none removed. */
const running = (c: Config, removal: RunningPool["removal"] = null): { admin: Config["admin"]; pools: RunningPool[] } => ({
  admin: c.admin,
  pools: c.pools.map((p: PoolConfig) => ({ config: p, slots: p.replicas + p.maxSurge, removal })),
});

describe("config reload", () => {
  it("plans replacements for exec, args, limits and checks, updates the rest in place, and scales", () => {
    const plan = planReload(running(config()), config([pool({ args: ["--new"], maxRestarts: 9, replicas: 4 })]));
    expect(plan).toMatchObject({ ok: true, lines: ["pool web: replace every worker (args changed), rolling", "pool web: replicas 2 -> 4", "pool web: max_restarts updated (no worker replaced for them)"] });
    expect(planReload(running(config()), config())).toMatchObject({ ok: true, pools: [], added: [], removed: [], lines: ["nothing changed"] });
  });

  it("refuses what only a restart can change, every problem at once", () => {
    const plan = planReload(
      running({ admin: { port: 9000, host: null }, pools: [pool({ server: server() }), pool({ name: "b" })] }),
      { admin: { port: 9001, host: null }, pools: [pool({ name: "c" }), pool({ server: server({ listenerPort: 8081 }) })] },
    );
    expect(plan).toEqual({
      ok: false,
      problems: [
        "admin.port changed: the admin endpoint and control socket are bound at start; restart Monoceros to change them",
        "supervisor.workers[1].server changed: it is set up at start (the proxy's files and ports); restart Monoceros, or remove the pool in one reload and add it back in the next",
      ],
    });
  });

  it("adds and removes pools by name, whatever their order", () => {
    const plan = planReload(running(config([pool({ name: "a" }), pool({ name: "b", server: server() })])), config([pool({ name: "c", replicas: 3 }), pool({ name: "a" })]));
    expect(plan).toMatchObject({ ok: true, removed: [1], added: [{ name: "c" }], lines: ["pool b: removed (its workers stop, out of the rotation first, then its proxy)", "pool c: added (3 workers)"] });
  });

  it("refuses an added pool that would meet a removed pool's processes: its ports, its proxy folder, its name while it drains", () => {
    const old = pool({ name: "old", server: server({ startPort: 9000, listenerPort: 8080 }) });
    const renamed = pool({ name: "new", server: server({ startPort: 9001, listenerPort: 8090, proxyConfigPath: "envoy/" }) });
    expect(planReload(running(config([old])), config([renamed]))).toEqual({
      ok: false,
      problems: [
        "supervisor.workers[0]: worker ports (9001-9002) overlap worker ports (9000-9001) of pool old, which is being removed and may still run: remove it in one reload and add this pool in the next",
        "supervisor.workers[0].server.proxy_config_path: envoy/ is the proxy folder of pool old, which is being removed and whose proxy may still run: remove it in one reload and add this pool in the next",
      ],
    });
    // Still draining from an earlier reload: its name comes back only once it is gone.
    const draining = { admin: config().admin, pools: [{ config: pool({ name: "a" }), slots: 2, removal: "draining" as const }, { config: pool({ name: "b" }), slots: 2, removal: null }] };
    expect(planReload(draining, config([pool({ name: "a" }), pool({ name: "b" })]))).toMatchObject({ ok: false, problems: [expect.stringContaining("pool a was removed by an earlier reload and its processes are still stopping")] });
    expect(planReload({ ...draining, pools: [{ ...draining.pools[0]!, removal: "done" as const }, draining.pools[1]!] }, config([pool({ name: "a" }), pool({ name: "b" })]))).toMatchObject({ ok: true, added: [{ name: "a" }] });
  });

  it("in the core: a refused reload changes nothing; an applied one replaces the workers rolling, with surge", () => {
    const h = harness([pool({ replicas: 2, maxSurge: 1, restartPolicy: { minUptimeMs: 200, backoffInitialMs: 0, backoffMaxMs: 0, windowMs: null } })]);
    h.runUntil(100);
    h.runtime.dispatch({ type: "reload", requestId: 1, config: { admin: { port: 1, host: null }, pools: [pool({ name: "other" })] } });
    expect(h.runtime.state.pools[0]?.config.name).toBe("web");
    h.runtime.dispatch({ type: "reload", requestId: 2, config: config([pool({ replicas: 2, maxSurge: 1, args: ["--v2"], restartPolicy: { minUptimeMs: 200, backoffInitialMs: 0, backoffMaxMs: 0, windowMs: null } })]) });
    h.runUntil(2_000);
    const replies = h.commands.flatMap(({ command }) => (command.type === "reply" ? [[command.ok, command.message]] : []));
    expect(replies[0]).toEqual([false, "config not reloaded, nothing changed: admin.port changed: the admin endpoint and control socket are bound at start; restart Monoceros to change them"]);
    expect(replies[1]).toEqual([true, "config reloaded"]);
    expect(h.spawns.slice(2).map((s) => [s.workerId, s.args])).toEqual([["web-2", ["--v2"]], ["web-0", ["--v2"]]]);
    expect(h.metrics.filter((m) => m.metric === "configReload").map((m) => (m as { result: string }).result)).toEqual(["failed", "success"]);
  });

  it("in the core: an added pool starts (its proxy first), a removed one stops for good (workers drained, then its proxy) and is reported gone", () => {
    const h = harness([pool({ name: "a", server: server() }), pool({ name: "b" })]);
    h.runUntil(100);
    const b = pool({ name: "b" });
    const c = pool({ name: "c", replicas: 1, server: server({ startPort: 9500, listenerPort: 8500, proxyConfigPath: "./envoy-c" }) });
    // A proxy-mode pool cannot be added without its prepared proxy.
    h.runtime.dispatch({ type: "reload", requestId: 1, config: config([b, c]) });
    h.runtime.dispatch({ type: "reload", requestId: 2, config: config([b, c]), proxyLaunches: { c: { exec: "envoy", args: ["-c", "c.yaml"], stopSignal: "SIGTERM" } } });
    const replies = h.commands.flatMap(({ command }) => (command.type === "reply" ? [[command.ok, command.message, command.plan]] : []));
    expect(replies[0]).toEqual([false, "config not reloaded, nothing changed: no proxy prepared for the added pool c", []]);
    expect(replies[1]).toEqual([true, "config reloaded", ["pool a: removed (its workers stop, out of the rotation first, then its proxy)", "pool c: added (1 worker, and its proxy first)"]]);
    expect(h.spawns.slice(-2).map((s) => [s.workerId, s.args])).toEqual([["c-proxy", ["-c", "c.yaml"]], ["c-0", ["--port", "9500"]]]);
    const state = h.runtime.state;
    expect(state.pools.map((p) => [p.index, p.config.name, p.removal])).toEqual([[0, "a", "draining"], [1, "b", null], [2, "c", null]]);
    h.runUntil(5_000);
    // a's workers got SIGTERM (after leaving the rotation), then its proxy once they had exited; nothing of it restarted.
    const aSignals = h.signals().filter((s) => s.workerId.startsWith("a-"));
    expect(aSignals.map((s) => s.workerId)).toEqual(["a-1", "a-0", "a-proxy"]);
    expect(state.pools[0]?.removal).toBe("done");
    expect(h.commands.filter(({ command }) => command.type === "poolRemoved").map(({ command }) => command)).toEqual([{ type: "poolRemoved", pool: 0 }]);
    expect(h.spawns.filter((s) => s.workerId.startsWith("a-")).length).toBe(3);
    // The name comes back as a new pool with a new index; scaling and restarts refuse the removed one.
    h.runtime.dispatch({ type: "reload", requestId: 3, config: config([b, c, pool({ name: "a", replicas: 1 })]) });
    expect(state.pools.map((p) => [p.index, p.config.name, p.removal])).toEqual([[0, "a", "done"], [1, "b", null], [2, "c", null], [3, "a", null]]);
    h.runtime.dispatch({ type: "scale", requestId: 4, pool: 0, replicas: 3 });
    expect(h.commands.at(-1)?.command).toMatchObject({ type: "reply", ok: false, message: "no pool #0" });
    h.runUntil(6_000);
    expect(h.spawns.at(-1)?.workerId).toBe("a-0");
    h.runtime.dispatch({ type: "shutdownRequested", signal: "SIGTERM" });
    expect(h.runToExit()).toBe(0);
  });

  it("in the core: an added pool with limits.memory starts the memory sampling when no pool had it", () => {
    const h = harness([pool({ name: "a" })]);
    h.runUntil(100);
    expect(h.commands.some(({ command }) => command.type === "setTimer" && command.timer.kind === "memorySample")).toBe(false);
    h.runtime.dispatch({ type: "reload", requestId: 1, config: config([pool({ name: "a" }), pool({ name: "m", limits: { lifespanMs: 0, jitterRatio: 0, memoryBytes: 1_000_000 } })]) });
    h.runUntil(20_000);
    const sampled = h.commands.filter(({ command }) => command.type === "sampleMemory").map(({ command }) => (command as unknown as { groups: { ref: { pool: number } }[] }).groups.map((g) => g.ref.pool));
    expect(sampled.length).toBeGreaterThan(1);
    expect(sampled[0]).toEqual([1, 1]);
  });

  it("in the core: a shutdown while a removed pool drains stops everything once and exits 0", () => {
    const h = harness([pool({ name: "a", server: server() }), pool({ name: "b" })]);
    h.runUntil(100);
    h.runtime.dispatch({ type: "reload", requestId: 1, config: config([pool({ name: "b" })]) });
    h.runtime.dispatch({ type: "shutdownRequested", signal: "SIGTERM" });
    expect(h.runToExit()).toBe(0);
    const signalled = h.signals().map((s) => s.workerId);
    expect(new Set(signalled).size).toBe(signalled.length);
    expect(signalled.sort()).toEqual(["a-0", "a-1", "a-proxy", "b-0", "b-1"]);
    expect(h.spawns.length).toBe(5);
  });
});
