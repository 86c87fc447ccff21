// The monitor's own account of every worker slot and proxy, built only from what crosses the
// core's boundary (the events it was given, the commands it answered) and the README's rules,
// never from the core's state or helpers. From it follow the timing rules the core must keep
// exactly: when a slot is free again (nothing left of its group, its output closed, or given up
// on), when it must be restarted (restart_policy's backoff, the spawn retry floor, the proxy's
// backoff), how the restart budget is charged (planned restarts never are), and which workers
// count for /health. Checks, readiness and memory are check-model.ts's; planned restarts and
// max_unavailable planned-restarts.ts's.
import type { Config, PoolConfig } from "../src/config/types.js";
import type { Command, PlannedCause, SupervisorEvent, WorkerRef } from "../src/domain/types.js";
import { newIncarnationChecks, type IncarnationChecks } from "./check-model.js";
import type { Behaviour } from "./coverage.js";
import { policyDelayMs, proxyDelayMs, RESOURCE_ERRORS, SPEC, spawnRetryDelayMs } from "./spec.js";

export const PROXY_WORKER = -1;

/** May get requests: running, not asked to stop, and (with a health check) passing it; what the rotation and /health count. */
export function isReady(slot: Slot): boolean {
  return slot.phase === "running" && slot.stopping === null && slot.checks.ready;
}

/**
 * pending:  not started yet, or waiting for its restart
 * spawning: spawn asked for, no outcome yet
 * running:  reported started, its leader's exit not reported
 * ended:    its leader's exit (or a failed spawn, or giving up on it) is known; the slot is free
 *           once nothing of its group is left and its output is closed (or given up on)
 * stopped:  will not be started again
 */
type Phase = "pending" | "spawning" | "running" | "ended" | "stopped";

export interface Slot {
  readonly poolIndex: number;
  readonly worker: number;
  readonly id: string;
  readonly pool: PoolConfig;
  generation: number;
  phase: Phase;
  pid: number | null;
  spawnedAtMs: number | null;
  /** Why it was asked to stop, if it was: a planned restart (from its start, rotation grace included), or shutdown. */
  stopping: PlannedCause | "shutdown" | null;
  sigtermAtMs: number | null;
  sigkillAtMs: number | null;
  endAtMs: number | null;
  groupDone: boolean;
  outputDone: boolean;
  releasedAtMs: number | null;
  /** When its restart is due (null: none is expected). */
  restartAtMs: number | null;
  /** Consecutive quick ends (runs shorter than min_uptime, failed spawns; for the proxy: runs shorter than 10 s). */
  quickExits: number;
  /** When charged restarts happened (exits and non-resource spawn failures). */
  chargedAtMs: number[];
  /** When the first spawn is due in a staggered start (null once it happened). */
  firstSpawnAtMs: number | null;
  spawns: number;
  /** This incarnation's health checks, readiness and memory samples (check-model.ts). */
  checks: IncarnationChecks;
  /** Planned restarts due and not begun yet (held back by max_unavailable), by cause, since when. */
  readonly due: Map<PlannedCause, number>;
  /**
   * The planned restart in flight (what max_unavailable counts), with all the causes due when it
   * started: from its start until the slot's next incarnation is ready, or until that replacement
   * ends unplanned (a crash, a failed spawn) before it was ready, or shutdown begins.
   */
  planned: { cause: PlannedCause; sinceMs: number; causes: PlannedCause[] } | null;
  /** Without any check, an in-place planned restart is done once its next incarnation has run min_uptime: at this time. */
  plannedDoneAtMs: number | null;
  /** When this incarnation's lifespan was reached (its lifespan restart decided); null before. */
  lifespanAtMs: number | null;
  /** A planned restart of a worker in the rotation: its SIGTERM is due rotation grace after it left; null otherwise. */
  graceSigtermAtMs: number | null;
}

/**
 * The instant whose events were all handled, and the next one: a deadline before the next instant
 * is missed too (nothing will happen at it, so the core has no timer for it).
 */
export class Deadlines {
  nowMs = 0;
  nextAtMs: number | null = null;

  missed(dueAtMs: number): boolean {
    return dueAtMs <= this.nowMs || (this.nextAtMs !== null && dueAtMs < this.nextAtMs);
  }

  by(dueAtMs: number): string {
    return dueAtMs <= this.nowMs ? `by ${this.nowMs} ms` : `with nothing due before ${this.nextAtMs} ms`;
  }
}

export const isPlannedCause = (stopping: Slot["stopping"]): stopping is PlannedCause => stopping !== null && stopping !== "shutdown";

export interface SlotModelHooks {
  fail(invariant: string, detail: string, nowMs: number, workerId: string | null): never;
  count(behaviour: Behaviour): void;
  /** An incarnation of a worker ended unplanned (an exit not asked for, a failed spawn) outside shutdown. */
  unplannedEnd?(slot: Slot, spawnFailed: boolean, nowMs: number): void;
}

export class SlotModel {
  /** Every worker slot and proxy. */
  readonly slots: Slot[] = [];
  /** Per pool, the proxy (if any) at index 0 and worker i at i + 1. */
  private readonly byPool: (Slot | undefined)[][] = [];
  shutdownBegunAtMs: number | null = null;
  budgetExceeded = false;

  constructor(
    private readonly config: Config,
    private readonly hooks: SlotModelHooks,
  ) {
    config.pools.forEach((pool, poolIndex) => {
      for (let worker = 0; worker < pool.replicas; worker++) this.add(poolIndex, worker, `${pool.name}-${worker}`, pool);
      if (pool.server !== null) this.add(poolIndex, PROXY_WORKER, `${pool.name}-proxy`, pool);
    });
  }

  slotOf(ref: { pool: number; worker: number }): Slot | undefined {
    return this.byPool[ref.pool]?.[ref.worker + 1];
  }

  /** The slot, if the ref is about its current incarnation. */
  current(ref: WorkerRef): Slot | null {
    const slot = this.slotOf(ref);
    return slot !== undefined && slot.generation === ref.generation ? slot : null;
  }

  get shuttingDown(): boolean {
    return this.shutdownBegunAtMs !== null;
  }

  onEvent(event: SupervisorEvent, nowMs: number): void {
    switch (event.type) {
      case "start":
        for (const slot of this.slots) slot.firstSpawnAtMs = nowMs + (slot.worker === PROXY_WORKER ? 0 : slot.worker * slot.pool.startupWaitMs);
        return;
      case "shutdownRequested":
        this.beginShutdown(nowMs);
        return;
      case "spawned": {
        const slot = this.current(event.ref);
        if (slot === null || slot.phase !== "spawning") return;
        slot.phase = "running";
        slot.pid = event.pid;
        slot.spawnedAtMs = nowMs;
        return;
      }
      case "spawnFailed": {
        const slot = this.current(event.ref);
        if (slot === null || slot.phase !== "spawning") return;
        this.end(slot, nowMs, { spawnFailed: true, resourceError: RESOURCE_ERRORS.has(event.errorCode) }, true, true);
        return;
      }
      case "exited": {
        const slot = this.current(event.ref);
        if (slot === null || slot.phase !== "running") return;
        this.end(slot, nowMs, { spawnFailed: false, resourceError: false }, event.groupEmpty, event.outputClosed);
        return;
      }
      case "groupEmpty":
      case "outputClosed": {
        const slot = this.current(event.ref);
        if (slot === null || slot.phase !== "ended" || slot.releasedAtMs !== null) return;
        if (event.type === "groupEmpty") slot.groupDone = true;
        else slot.outputDone = true;
        this.releaseIfDone(slot, nowMs);
        return;
      }
      case "timer":
        this.onTimer(event.timer, nowMs);
        return;
    }
  }

  private onTimer(timer: Extract<SupervisorEvent, { type: "timer" }>["timer"], nowMs: number): void {
    if (timer.kind !== "abandon" && timer.kind !== "outputDrain") return;
    const slot = this.current(timer.ref);
    if (slot === null || slot.releasedAtMs !== null || (slot.phase !== "running" && slot.phase !== "ended")) return;
    if (timer.kind === "outputDrain") {
      if (slot.phase !== "ended" || slot.outputDone) return;
      const dueAtMs = (slot.endAtMs as number) + SPEC.outputDrainMs;
      if (nowMs < dueAtMs) this.hooks.fail("output is waited for outputDrain after the exit", `${slot.id} stopped waiting for its output ${nowMs - (slot.endAtMs as number)} ms after its exit (${SPEC.outputDrainMs} ms)`, nowMs, slot.id);
      this.hooks.count("outputDrained");
      slot.outputDone = true;
      this.releaseIfDone(slot, nowMs);
      return;
    }
    if (slot.sigkillAtMs === null) return;
    if (nowMs < slot.sigkillAtMs + SPEC.killWaitMs) {
      this.hooks.fail("processes are given up on only kill wait after SIGKILL", `${slot.id} given up on ${nowMs - slot.sigkillAtMs} ms after SIGKILL (${SPEC.killWaitMs} ms)`, nowMs, slot.id);
    }
    if (slot.phase === "running") {
      // The leader was never reported gone: from now on it is treated as exited.
      this.hooks.count("abandonedLeader");
      this.end(slot, nowMs, { spawnFailed: false, resourceError: false }, true, true);
      return;
    }
    this.hooks.count("abandonedLeftovers");
    slot.groupDone = true;
    slot.outputDone = true;
    this.releaseIfDone(slot, nowMs);
  }

  onCommand(command: Command, nowMs: number): void {
    if (command.type === "spawn") {
      this.onSpawn(command.ref, nowMs);
      return;
    }
    if (command.type !== "signal") return;
    const slot = this.current(command.ref);
    if (slot === null || slot.pid !== command.pid) return;
    if (command.signal === "SIGKILL") {
      slot.sigkillAtMs ??= nowMs;
      // A process SIGKILLed while running (a third signal) is being stopped, like one that got SIGTERM.
      if (slot.phase !== "ended" && slot.stopping === null) slot.stopping = "shutdown";
      return;
    }
    if (slot.phase === "ended") {
      if (slot.sigtermAtMs === null) this.hooks.count("leftoverSigterm");
    } else if (slot.stopping === null && (this.shuttingDown || slot.worker === PROXY_WORKER)) {
      // Outside shutdown a running worker's SIGTERM is a planned restart's: planned-restarts.ts set its cause when it began.
      slot.stopping = "shutdown";
    }
    slot.sigtermAtMs ??= nowMs;
  }

  private onSpawn(ref: WorkerRef, nowMs: number): void {
    const slot = this.slotOf(ref) as Slot;
    if (slot.firstSpawnAtMs !== null) {
      if (nowMs !== slot.firstSpawnAtMs) {
        this.hooks.fail("a staggered start spawns worker i at i × startup_wait_time", `${slot.id} first spawned at ${nowMs} ms, due at ${slot.firstSpawnAtMs} ms`, nowMs, slot.id);
      }
      slot.firstSpawnAtMs = null;
    } else {
      if (slot.phase !== "ended" && slot.phase !== "pending") {
        this.hooks.fail("a slot is spawned again only once its previous incarnation ended", `${slot.id} spawned while it is ${slot.phase}`, nowMs, slot.id);
      }
      if (slot.releasedAtMs === null) {
        this.hooks.fail("a slot is spawned again only once nothing of its group is left and its output is closed", `${slot.id} spawned while ${slot.groupDone ? "its output is open" : "its group has processes"}`, nowMs, slot.id);
      }
      if (slot.restartAtMs === null) {
        this.hooks.fail("no restart without a restart due", `${slot.id} spawned again though no restart was due (shutdown or restart budget)`, nowMs, slot.id);
      } else if (nowMs < slot.restartAtMs) {
        this.hooks.fail("a restart is never earlier than restart_policy allows", `${slot.id} spawned at ${nowMs} ms, due at ${slot.restartAtMs} ms (exit at ${slot.endAtMs} ms, ${slot.quickExits} quick end(s) in a row)`, nowMs, slot.id);
      } else if (nowMs > (this.restartDueAtMs(slot) as number)) {
        this.hooks.fail("a restart is never later than restart_policy and the slot allow", `${slot.id} spawned at ${nowMs} ms, due at ${this.restartDueAtMs(slot)} ms (exit at ${slot.endAtMs} ms, ${slot.quickExits} quick end(s) in a row)`, nowMs, slot.id);
      }
    }
    slot.generation = ref.generation;
    slot.phase = "spawning";
    slot.spawns++;
    slot.pid = null;
    slot.spawnedAtMs = null;
    slot.stopping = null;
    slot.sigtermAtMs = null;
    slot.sigkillAtMs = null;
    slot.endAtMs = null;
    slot.groupDone = false;
    slot.outputDone = false;
    slot.releasedAtMs = null;
    slot.restartAtMs = null;
    slot.checks = newIncarnationChecks();
    slot.due.clear();
    slot.lifespanAtMs = null;
    slot.graceSigtermAtMs = null;
  }

  /**
   * Rules about what must have happened by the end of an instant: restarts, giving up and output
   * waits are never late. A deadline before the next instant (nextAtMs) is missed too: nothing
   * will happen at it, so the core has no timer for it.
   */
  afterInstant(deadlines: Deadlines): void {
    const nowMs = deadlines.nowMs;
    for (const slot of this.slots) {
      if (!this.shuttingDown && slot.firstSpawnAtMs !== null && deadlines.missed(slot.firstSpawnAtMs)) {
        this.hooks.fail("a staggered start spawns worker i at i × startup_wait_time", `${slot.id} not spawned ${deadlines.by(slot.firstSpawnAtMs)}, due at ${slot.firstSpawnAtMs} ms`, nowMs, slot.id);
      }
      const waiting = slot.phase === "running" || (slot.phase === "ended" && slot.releasedAtMs === null);
      if (waiting && slot.sigkillAtMs !== null && deadlines.missed(slot.sigkillAtMs + SPEC.killWaitMs)) {
        this.hooks.fail("processes not gone kill wait after SIGKILL are given up on", `${slot.id} still waited ${deadlines.by(slot.sigkillAtMs + SPEC.killWaitMs)} (SIGKILL at ${slot.sigkillAtMs} ms, kill wait ${SPEC.killWaitMs} ms)`, nowMs, slot.id);
      }
      if (slot.phase === "ended" && slot.releasedAtMs === null && !slot.outputDone && deadlines.missed((slot.endAtMs as number) + SPEC.outputDrainMs)) {
        this.hooks.fail("output is waited for at most outputDrain after the exit", `${slot.id} still waits for its output ${deadlines.by((slot.endAtMs as number) + SPEC.outputDrainMs)} (exit at ${slot.endAtMs} ms, ${SPEC.outputDrainMs} ms)`, nowMs, slot.id);
      }
      const dueAtMs = this.restartDueAtMs(slot);
      if (dueAtMs !== null && deadlines.missed(dueAtMs)) {
        this.hooks.fail("a restart is never later than restart_policy and the slot allow", `${slot.id} not spawned ${deadlines.by(dueAtMs)}; due at ${dueAtMs} ms (exit at ${slot.endAtMs} ms, ${slot.quickExits} quick end(s) in a row, free since ${slot.releasedAtMs} ms)`, nowMs, slot.id);
      }
    }
  }

  /** When an ended incarnation's slot must be spawned again: once free and its restart is due; null if not (yet) known. */
  private restartDueAtMs(slot: Slot): number | null {
    if (this.shuttingDown || slot.phase !== "ended" || slot.releasedAtMs === null || slot.restartAtMs === null) return null;
    return Math.max(slot.releasedAtMs, slot.restartAtMs);
  }

  /** Workers that count for /health: ready (running, not asked to stop, passing its check if it has one), for at least min_uptime. */
  upIn(poolIndex: number, nowMs: number): number {
    let up = 0;
    for (const slot of this.slots) {
      if (slot.poolIndex !== poolIndex || slot.worker === PROXY_WORKER) continue;
      if (isReady(slot) && nowMs - (slot.spawnedAtMs as number) >= slot.pool.restartPolicy.minUptimeMs) up++;
    }
    return up;
  }

  proxyRunning(poolIndex: number): boolean {
    const proxy = this.byPool[poolIndex]?.[0];
    return proxy !== undefined && proxy.phase === "running" && proxy.stopping === null;
  }

  /** The end of an incarnation: decide, as the README says, whether and when it is restarted. */
  private end(slot: Slot, nowMs: number, cause: { spawnFailed: boolean; resourceError: boolean }, groupDone: boolean, outputDone: boolean): void {
    const ranMs = slot.spawnedAtMs === null ? 0 : nowMs - slot.spawnedAtMs;
    slot.phase = "ended";
    slot.endAtMs = nowMs;
    slot.groupDone = groupDone;
    slot.outputDone = outputDone;
    slot.restartAtMs = null;
    if (!groupDone) this.hooks.count(slot.sigtermAtMs === null ? "leftoversAtUnplannedExit" : "leftoversAfterSigterm");
    if (!this.shuttingDown && slot.worker !== PROXY_WORKER && (cause.spawnFailed || !isPlannedCause(slot.stopping))) this.hooks.unplannedEnd?.(slot, cause.spawnFailed, nowMs);
    if (!this.shuttingDown) this.decideRestart(slot, nowMs, ranMs, cause);
    this.releaseIfDone(slot, nowMs);
  }

  private decideRestart(slot: Slot, nowMs: number, ranMs: number, cause: { spawnFailed: boolean; resourceError: boolean }): void {
    if (slot.worker === PROXY_WORKER) {
      if (ranMs >= SPEC.proxyStableAfterMs && slot.quickExits > 0) this.hooks.count("proxyBackoffReset");
      slot.quickExits = (ranMs >= SPEC.proxyStableAfterMs ? 0 : slot.quickExits) + 1;
      slot.restartAtMs = nowMs + proxyDelayMs(slot.quickExits);
      this.hooks.count(slot.quickExits > 1 ? "proxyBackoffGrown" : "proxyBackoffShortest");
      return;
    }
    // A planned restart (lifespan, memory, health) is carried out at once and never charged to max_restarts.
    if (isPlannedCause(slot.stopping) && !cause.spawnFailed) {
      slot.quickExits = 0;
      slot.restartAtMs = nowMs;
      this.hooks.count("plannedRestart");
      return;
    }
    const policy = slot.pool.restartPolicy;
    const quick = cause.spawnFailed || ranMs < policy.minUptimeMs;
    if (!quick && slot.quickExits > 0) this.hooks.count("backoffReset");
    slot.quickExits = quick ? slot.quickExits + 1 : 0;
    if (cause.resourceError) {
      this.hooks.count("resourceErrorUncharged");
    } else {
      const windowMs = slot.pool.restartPolicy.windowMs;
      const counted = windowMs === null ? slot.chargedAtMs.length : slot.chargedAtMs.filter((atMs) => atMs > nowMs - windowMs).length;
      if (counted + 1 > slot.pool.maxRestarts) {
        this.hooks.count("budgetExhausted");
        this.budgetExceeded = true;
        this.beginShutdown(nowMs);
        return;
      }
      if (windowMs !== null && slot.chargedAtMs.length > counted) this.hooks.count("windowForgotRestarts");
      slot.chargedAtMs.push(nowMs);
    }
    const delayMs = cause.spawnFailed ? spawnRetryDelayMs(policy, slot.quickExits) : policyDelayMs(policy, slot.quickExits);
    if (delayMs > 0) this.hooks.count(cause.spawnFailed ? "spawnRetryWait" : "backoffWait");
    slot.restartAtMs = nowMs + delayMs;
  }

  private releaseIfDone(slot: Slot, nowMs: number): void {
    if (slot.phase !== "ended" || !slot.groupDone || !slot.outputDone || slot.releasedAtMs !== null) return;
    slot.releasedAtMs = nowMs;
    if (this.shuttingDown || slot.restartAtMs === null) slot.phase = "stopped";
  }

  private beginShutdown(nowMs: number): void {
    if (this.shutdownBegunAtMs !== null) return;
    this.shutdownBegunAtMs = nowMs;
    for (const slot of this.slots) {
      if (slot.phase === "pending" || (slot.phase === "ended" && slot.releasedAtMs !== null)) slot.phase = "stopped";
      slot.firstSpawnAtMs = null;
      // No planned restart is in flight or due once shutdown began: every worker stops.
      slot.planned = null;
      slot.due.clear();
    }
  }

  private add(poolIndex: number, worker: number, id: string, pool: PoolConfig): void {
    const slot: Slot = {
      poolIndex, worker, id, pool, generation: 0, phase: "pending", pid: null, spawnedAtMs: null, stopping: null, sigtermAtMs: null, sigkillAtMs: null,
      endAtMs: null, groupDone: true, outputDone: true, releasedAtMs: null, restartAtMs: null, quickExits: 0, chargedAtMs: [], firstSpawnAtMs: null, spawns: 0,
      checks: newIncarnationChecks(), due: new Map(), planned: null, plannedDoneAtMs: null, lifespanAtMs: null, graceSigtermAtMs: null,
    };
    this.slots.push(slot);
    (this.byPool[poolIndex] ??= [])[worker + 1] = slot;
  }
}
