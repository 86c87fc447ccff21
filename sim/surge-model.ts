// The invariants of surge replacement, moving ids, scaling and rolling restarts (issue 14),
// checked after every step of the runs whose pools have max_surge > 0. Those runs are checked by
// this monitor alone: the slot and planned-restart models of sim/invariants.ts describe in-place
// restarts, where an id never moves.
//
// - No two live processes with one id: a slot is spawned only once its previous process exited.
// - A pool's live processes never exceed its slots, and its slots never exceed the most replicas
//   it was asked for plus max_surge (ids stay within a bounded set).
// - A worker the proxy was last told is in the rotation never gets SIGTERM while Monoceros runs:
//   it leaves the rotation first (planned restarts, scaling down, failed replacements alike).
// - Fault-free runs: once every member of a pool was ready, all replicas stay ready during planned
//   work (a worker leaves only once its replacement is ready), until the pool is scaled again.
// - Every operator request gets exactly one reply; a reload that is refused changes nothing.
// - A worker asked to leave (scaled down, a replacement given up on) is never left running.
// - A pool removed by a reload starts nothing again (no worker, no proxy), and is reported gone
//   (poolRemoved) once, only when none of its processes (its proxy too) is left.
import type { Config } from "../src/config/types.js";
import { isMember, PROXY_INDEX, type SupervisorState } from "../src/domain/state.js";
import { inRotation } from "../src/domain/supervisor.js";
import type { Command, SupervisorEvent } from "../src/domain/types.js";
import { InvariantViolation } from "./invariants.js";

export class SurgeMonitor {
  /** Live leaders by "pool/slot" (spawn asked until its exit reported or its spawn failed). */
  private readonly live = new Set<string>();
  private readonly mostReplicas: number[];
  private readonly lastReplicas: number[];
  /** Per pool: every member was ready at some point since the last scaling. */
  private readonly settled: boolean[];
  private readonly pendingReplies = new Set<number>();
  /** Pools whose proxy has a live leader. */
  private readonly liveProxies = new Set<number>();
  private readonly reportedGone = new Set<number>();
  /** Surge replacements by the incarnation they replace ("pool/slot#generation" → the replacement's slot and generation). */
  private readonly replacements = new Map<string, { slot: number; generation: number }>();
  /** The rotation each pool's proxy was last told ("1" in the rotation), as sent so far. */
  private readonly rotation: string[];

  constructor(
    private readonly config: Config,
    private readonly state: SupervisorState,
    private readonly faultFree: boolean,
  ) {
    this.mostReplicas = config.pools.map((pool) => pool.replicas);
    this.lastReplicas = config.pools.map((pool) => pool.replicas);
    this.settled = config.pools.map(() => false);
    this.rotation = config.pools.map(() => "");
  }

  private fail(rule: string, detail: string, nowMs: number): never {
    throw new InvariantViolation(rule, detail, nowMs, null);
  }

  /** The old worker of a surge replacement that took over gets SIGTERM only once the replacement is ready (without a check: ran min_uptime). */
  private checkReplacementReady(poolIndex: number, slot: number, generation: number, nowMs: number): void {
    const key = `${poolIndex}/${slot}#${generation}`;
    const replacement = this.replacements.get(key);
    this.replacements.delete(key);
    const pool = this.state.pools[poolIndex];
    const worker = replacement === undefined ? undefined : pool?.workers[replacement.slot];
    if (pool === undefined || worker === undefined || replacement === undefined || worker.generation !== replacement.generation) return;
    // A replacement that failed (exited, timed out) is stopped itself; the old worker stays.
    if ((worker.status !== "running" && worker.status !== "stopping") || worker.retiring) return;
    // Scaled down, or its leader crashed (the SIGTERM is for what it left in its group).
    if (pool.workers[slot]?.stopReason === "scale" || pool.workers[slot]?.status === "exiting") return;
    const config = pool.config;
    const settled = worker.startedAtMs !== null && nowMs - worker.startedAtMs >= config.restartPolicy.minUptimeMs;
    if (!worker.ready || (config.healthCheck === null && config.server === null && !settled)) {
      this.fail("with surge the old worker gets SIGTERM only once its replacement is ready", `${pool.workers[slot]?.id} got SIGTERM while its replacement ${worker.id} is ${worker.ready ? `not yet min_uptime old (${worker.startedAtMs === null ? "not started" : `${nowMs - worker.startedAtMs} ms`})` : "not ready"}`, nowMs);
    }
  }

  /** The pools' configs and replicas after the last step: a refused reload must leave them as they were. */
  private lastPools: { config: unknown; replicas: number }[] = [];

  afterStep(event: SupervisorEvent, commands: readonly Command[], nowMs: number): void {
    this.checkRefusedReload(event, commands, nowMs);
    this.lastPools = this.state.pools.map((pool) => ({ config: pool.config, replicas: pool.replicas }));
    this.checkStep(event, commands, nowMs);
  }

  private checkRefusedReload(event: SupervisorEvent, commands: readonly Command[], nowMs: number): void {
    if (event.type !== "reload" || this.lastPools.length === 0) return;
    const reply = commands.find((command): command is Extract<Command, { type: "reply" }> => command.type === "reply");
    if (reply === undefined || reply.ok) return;
    this.state.pools.forEach((pool, index) => {
      const before = this.lastPools[index];
      const changed = before === undefined || before.config !== pool.config || before.replicas !== pool.replicas || pool.workers.some((worker) => worker.heldBack?.cause === "reload" && worker.heldBack.sinceMs === nowMs);
      if (changed) this.fail("a reload that is refused changes nothing", `${pool.config.name} changed by a refused reload (${reply.message})`, nowMs);
    });
  }

  private checkStep(event: SupervisorEvent, commands: readonly Command[], nowMs: number): void {
    if (event.type === "scale" || event.type === "restartRequested" || event.type === "reload") this.pendingReplies.add(event.requestId);
    if (event.type === "scale" && event.replicas >= 0) {
      this.mostReplicas[event.pool] = Math.max(this.mostReplicas[event.pool] ?? 0, event.replicas);
      this.settled[event.pool] = false;
    }
    if ((event.type === "exited" || event.type === "spawnFailed") && event.ref.worker !== PROXY_INDEX) this.live.delete(`${event.ref.pool}/${event.ref.worker}`);
    if ((event.type === "exited" || event.type === "spawnFailed") && event.ref.worker === PROXY_INDEX) this.liveProxies.delete(event.ref.pool);
    if (event.type === "timer" && event.timer.kind === "abandon" && event.timer.ref.worker === PROXY_INDEX) this.liveProxies.delete(event.timer.ref.pool);
    // Given up on after SIGKILL (a process stuck for killWaitMs): the core no longer counts it, nor does this.
    if (event.type === "timer" && event.timer.kind === "abandon" && event.timer.ref.worker !== PROXY_INDEX) this.live.delete(`${event.timer.ref.pool}/${event.timer.ref.worker}`);
    // A failing check or memory at twice the limit cannot wait for the replacement: that old worker
    // stops at once (logged so), and is no longer held to its replacement's readiness.
    for (const command of commands) {
      if (command.type !== "log" || !command.msg.includes("cannot wait for its replacement")) continue;
      this.state.pools.forEach((pool, poolIndex) => {
        const old = pool.workers.find((worker) => worker.id === command.fields.worker_id);
        if (old !== undefined) this.replacements.delete(`${poolIndex}/${old.index}#${old.generation}`);
      });
    }
    for (const command of commands) {
      if (command.type === "spawn" && this.state.pools[command.ref.pool]?.removal !== null) {
        this.fail("a pool removed by a reload starts nothing again", `${command.ref.worker === PROXY_INDEX ? "its proxy" : `slot ${command.ref.worker}`} of removed pool #${command.ref.pool} spawned`, nowMs);
      }
      if (command.type === "spawn" && command.ref.worker === PROXY_INDEX) this.liveProxies.add(command.ref.pool);
      if (command.type === "poolRemoved") {
        const left = [...this.live].filter((key) => key.startsWith(`${command.pool}/`));
        if (this.liveProxies.has(command.pool)) left.push("its proxy");
        if (left.length > 0 || this.reportedGone.has(command.pool)) {
          this.fail("a removed pool is reported gone once, when none of its processes is left", `pool #${command.pool}: ${left.length > 0 ? `still live: ${left.join(", ")}` : "reported gone twice"}`, nowMs);
        }
        this.reportedGone.add(command.pool);
      }
      if (command.type === "proxyRotation") this.rotation[command.pool] = command.endpoints.map((endpoint) => (endpoint.inRotation ? "1" : "0")).join("");
      if (command.type === "spawn" && command.ref.worker !== PROXY_INDEX) {
        const key = `${command.ref.pool}/${command.ref.worker}`;
        if (this.live.has(key)) this.fail("no two live processes share a worker id", `slot ${key} spawned again while its previous process has not exited`, nowMs);
        this.live.add(key);
      }
      if (command.type === "spawn" && command.ref.worker !== PROXY_INDEX) {
        const pool = this.state.pools[command.ref.pool];
        const replacing = pool?.workers[command.ref.worker]?.replacing ?? null;
        const old = replacing === null ? undefined : pool?.workers[replacing];
        if (old !== undefined) this.replacements.set(`${command.ref.pool}/${old.index}#${old.generation}`, { slot: command.ref.worker, generation: command.ref.generation });
      }
      if (command.type === "signal" && command.signal === "SIGTERM" && command.ref.worker !== PROXY_INDEX && this.state.phase === "running") {
        this.checkReplacementReady(command.ref.pool, command.ref.worker, command.ref.generation, nowMs);
        const pool = this.state.pools[command.ref.pool];
        const worker = pool?.workers[command.ref.worker];
        // A leader that exited (leftovers of its group get SIGTERM) is out of the rotation already.
        if (pool?.proxy !== null && worker !== undefined && worker.status !== "exiting" && this.rotation[command.ref.pool]?.[command.ref.worker] === "1") {
          this.fail("a worker leaves the proxy's rotation before its SIGTERM", `${worker.id} got SIGTERM while the proxy was last told it is in the rotation`, nowMs);
        }
      }
      if (command.type === "reply") {
        if (!this.pendingReplies.delete(command.requestId)) this.fail("every operator request gets exactly one reply", `reply #${command.requestId} without a request, or a second one`, nowMs);
      }
    }
    if (event.type === "scale" || event.type === "restartRequested" || event.type === "reload") {
      if (this.pendingReplies.has(event.requestId)) this.fail("every operator request gets exactly one reply", `request #${event.requestId} was not answered in its step`, nowMs);
    }
    this.state.pools.forEach((pool, index) => {
      const config = this.config.pools[index];
      if (config === undefined) return;
      // A worker asked to leave is stopped (status stopping) in the same step it runs: never left running.
      const stranded = pool.workers.find((worker) => worker.status === "running" && worker.retiring);
      if (stranded !== undefined) this.fail("a worker asked to leave the pool is stopped, not left running", `${stranded.id} is running and retiring (${stranded.stopReason ?? "no stop reason"})`, nowMs);
      const liveCount = pool.workers.filter((worker) => this.live.has(`${index}/${worker.index}`)).length;
      if (liveCount > pool.workers.length) this.fail("a pool's live processes never exceed its slots", `${config.name}: ${liveCount} live, ${pool.workers.length} slots`, nowMs);
      // Scaled (ctl, signals) or reloaded: the most replicas the pool was ever asked for, and readiness settles anew.
      if (pool.replicas !== this.lastReplicas[index]) this.settled[index] = false;
      this.lastReplicas[index] = pool.replicas;
      this.mostReplicas[index] = Math.max(this.mostReplicas[index] ?? 0, pool.replicas);
      const bound = (this.mostReplicas[index] ?? 0) + Math.max(config.maxSurge, pool.config.maxSurge);
      if (pool.workers.length > bound) this.fail("worker ids stay within replicas + max_surge", `${config.name}: ${pool.workers.length} slots, at most ${bound}`, nowMs);
      if (!this.faultFree || this.state.phase !== "running") return;
      const ready = pool.workers.filter((worker) => inRotation(worker)).length;
      if (pool.workers.filter((worker) => isMember(worker) && inRotation(worker)).length >= pool.replicas) this.settled[index] = true;
      // With surge a worker leaves only once its replacement is ready: none of the replicas is missing.
      const floor = config.maxSurge > 0 ? pool.replicas : pool.replicas - config.maxUnavailable;
      if (this.settled[index] && ready < floor) {
        this.fail("during planned work with surge every replica stays ready (the old worker leaves once its replacement is ready)", `${config.name}: ${ready} ready, replicas ${pool.replicas}, max_unavailable ${config.maxUnavailable}`, nowMs);
      }
    });
  }
}
