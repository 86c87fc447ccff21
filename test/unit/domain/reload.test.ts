// What a reload may change on a running Monoceros, and what it refuses (then nothing changes).
import { describe, expect, it } from "vitest";
import type { Config } from "../../../src/config/types.js";
import { planReload } from "../../../src/domain/reload.js";
import { harness, pool, server } from "../../support/harness.js";

const config = (pools = [pool()]): Config => ({ admin: { port: 0, host: null }, pools });

describe("config reload", () => {
  it("plans replacements for exec, args, limits and checks, updates the rest in place, and scales", () => {
    const plan = planReload(config(), config([pool({ args: ["--new"], maxRestarts: 9, replicas: 4 })]));
    expect(plan).toMatchObject({ ok: true, lines: ["pool web: replace every worker (args changed), rolling", "pool web: replicas 2 -> 4", "pool web: max_restarts updated (no worker replaced for them)"] });
    expect(planReload(config(), config())).toMatchObject({ ok: true, pools: [], lines: ["nothing changed"] });
  });

  it("refuses what only a restart can change, every problem at once", () => {
    const plan = planReload(
      { admin: { port: 9000, host: null }, pools: [pool({ server: server() }), pool({ name: "b" })] },
      { admin: { port: 9001, host: null }, pools: [pool({ server: server({ listenerPort: 8081 }) }), pool({ name: "c" })] },
    );
    expect(plan).toEqual({
      ok: false,
      problems: [
        "admin.port changed: the admin endpoint and control socket are bound at start; restart Monoceros to change them",
        "pools added (c): adding pools needs a restart of Monoceros",
        "pools removed (b): removing pools needs a restart of Monoceros",
        "supervisor.workers[0].server changed: it is set up at start (the proxy's files and ports); restart Monoceros to change it",
      ],
    });
  });

  it("in the core: a refused reload changes nothing; an applied one replaces the workers rolling, with surge", () => {
    const h = harness([pool({ replicas: 2, maxSurge: 1, restartPolicy: { minUptimeMs: 200, backoffInitialMs: 0, backoffMaxMs: 0, windowMs: null } })]);
    h.runUntil(100);
    h.runtime.dispatch({ type: "reload", requestId: 1, config: config([pool({ name: "other" })]) });
    expect(h.runtime.state.pools[0]?.config.name).toBe("web");
    h.runtime.dispatch({ type: "reload", requestId: 2, config: config([pool({ replicas: 2, maxSurge: 1, args: ["--v2"], restartPolicy: { minUptimeMs: 200, backoffInitialMs: 0, backoffMaxMs: 0, windowMs: null } })]) });
    h.runUntil(2_000);
    const replies = h.commands.flatMap(({ command }) => (command.type === "reply" ? [[command.ok, command.message]] : []));
    expect(replies[0]).toEqual([false, "config not reloaded, nothing changed: pools added (other): adding pools needs a restart of Monoceros; pools removed (web): removing pools needs a restart of Monoceros"]);
    expect(replies[1]).toEqual([true, "config reloaded"]);
    expect(h.spawns.slice(2).map((s) => [s.workerId, s.args])).toEqual([["web-2", ["--v2"]], ["web-0", ["--v2"]]]);
    expect(h.metrics.filter((m) => m.metric === "configReload").map((m) => (m as { result: string }).result)).toEqual(["failed", "success"]);
  });
});
