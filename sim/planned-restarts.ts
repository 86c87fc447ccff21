// Planned restarts and max_unavailable, restated from the README for the monitor:
// - a planned restart is due when its cause happens: the lifespan timer fires (within [lifespan,
//   lifespan × (1 + jitter_ratio)] of the start), memory was over limits.memory in 3 samples in a
//   row, or failure_threshold counted checks failed in a row (check-model.ts);
// - it is in flight from its start until the slot's next incarnation is ready, or until that
//   replacement ends unplanned (exits on its own, fails to spawn) before it was ready: from then
//   on it is an ordinary crash restart. Shutdown ends every one. A lifespan or memory restart
//   starts only while fewer than max_unavailable of the OTHER workers of its pool are in flight
//   (a replacement due again before it was ready is not held back by its own restart); else it
//   is held back (the worker runs on) and the oldest starts as soon as fewer than max_unavailable
//   others are in flight. A sample at or under the limit calls off a held-back memory restart,
//   nothing else is dropped. A health restart starts at once whatever is in flight, and so does a
//   memory restart whose deciding sample is over memoryUrgentFactor × the limit (held back
//   before or not); both then count as in flight too;
// - it starts with the worker leaving the rotation if it is in the rotation the proxy was last
//   told (proxy mode), its SIGTERM rotation grace later, or with its SIGTERM at once; it is never
//   charged to max_restarts (slot-model.ts restarts it at once, uncharged).
// The core's starts are seen in its commands: a SIGTERM to a running worker outside shutdown, or
// the timer of a SIGTERM after the rotation grace.
import { checkConfigOf } from "../src/domain/checks.js";
import type { Config } from "../src/config/types.js";
import type { Command, PlannedCause, SupervisorEvent } from "../src/domain/types.js";
import type { Behaviour } from "./coverage.js";
import { isReady, PROXY_WORKER, type Deadlines, type Slot, type SlotModel } from "./slot-model.js";
import { SPEC } from "./spec.js";

export interface PlannedRestartsHooks {
  fail(invariant: string, detail: string, nowMs: number, workerId: string | null): never;
  count(behaviour: Behaviour): void;
  /** Whether the last rotation sent to the slot's pool's proxy (before this step's commands) had it in. */
  inToldRotation(slot: Slot): boolean;
}

export class PlannedRestarts {
  /** Workers whose failure_threshold-th counted failure in a row came in this step: their restart starts in it. */
  private readonly healthFailed = new Set<Slot>();
  /** Workers whose memory restart was decided in this step by a sample over memoryUrgentFactor × the limit: it starts in it. */
  private readonly urgentMemory = new Set<Slot>();
  /** Lifespan and memory restarts started in this step, with since when they were due (oldest first is checked once all are known). */
  private startedThisStep: { slot: Slot; dueSinceMs: number }[] = [];
  /**
   * SIGTERMs of planned restarts by cause, what limits_events_total must count: `only` those with
   * one cause due, `maybe` those with it among others (a lifespan and a memory restart both due).
   */
  readonly sigterms = { all: 0, only: { lifespan: 0, memory: 0, health: 0, manual: 0, reload: 0 }, maybe: { lifespan: 0, memory: 0, health: 0, manual: 0, reload: 0 } };

  constructor(
    private readonly config: Config,
    private readonly model: SlotModel,
    private readonly hooks: PlannedRestartsHooks,
  ) {}

  private startable(slot: Slot): boolean {
    return slot.worker !== PROXY_WORKER && slot.phase === "running" && slot.stopping === null && !this.model.shuttingDown;
  }

  /** The lifespan timer: within [lifespan, lifespan × (1 + jitter_ratio)] of the start, its restart is due. */
  onEvent(event: SupervisorEvent, nowMs: number): void {
    if (event.type === "timer" && event.timer.kind === "settled") {
      // The core's own timer for it; that it comes on time is checked in afterInstant.
      const slot = this.model.current(event.timer.ref);
      if (slot !== null && slot.plannedDoneAtMs !== null && nowMs >= slot.plannedDoneAtMs) {
        slot.plannedDoneAtMs = null;
        // Not one asked to stop meanwhile (a lifespan shorter than min_uptime): that is a new planned restart.
        if (slot.planned !== null && slot.phase === "running" && slot.stopping === null) {
          slot.planned = null;
          this.hooks.count("plannedRestartDone");
        }
      }
    }
    if (event.type !== "timer" || event.timer.kind !== "lifespan") return;
    const slot = this.model.current(event.timer.ref);
    if (slot === null || !this.startable(slot)) return;
    const { lifespanMs, jitterRatio } = slot.pool.limits;
    const ranMs = nowMs - (slot.spawnedAtMs as number);
    if (lifespanMs === 0 || ranMs < lifespanMs || ranMs > lifespanMs * (1 + jitterRatio)) {
      this.hooks.fail("a lifespan restart is due within [lifespan, lifespan × (1 + jitter_ratio)] of the start", `${slot.id} reached its lifespan ${ranMs} ms after its start (lifespan ${lifespanMs} ms, jitter ${jitterRatio})`, nowMs, slot.id);
    }
    slot.lifespanAtMs = nowMs;
    this.due(slot, "lifespan", nowMs);
  }

  healthFailedNow(slot: Slot): void {
    this.healthFailed.add(slot);
  }

  memoryOver(slot: Slot, nowMs: number, urgent: boolean): void {
    this.due(slot, "memory", nowMs);
    if (urgent) this.urgentMemory.add(slot);
  }

  /** The slot's incarnation ended unplanned outside shutdown: a planned restart in flight (its replacement was not ready) is over. */
  replacementEnded(slot: Slot, spawnFailed: boolean): void {
    slot.plannedDoneAtMs = null;
    if (slot.planned === null) return;
    slot.planned = null;
    this.hooks.count(spawnFailed ? "plannedRestartEndedBySpawnFailure" : "plannedRestartEndedByExit");
  }

  /**
   * A memory restart is called off; a lifespan restart due meanwhile stays, and has waited since
   * the worker was first held back (its wait is continuous, whatever the cause).
   */
  memoryUnder(slot: Slot): void {
    const memorySinceMs = slot.due.get("memory");
    if (memorySinceMs === undefined) return;
    slot.due.delete("memory");
    this.hooks.count("memoryCalledOff");
    const lifespanSinceMs = slot.due.get("lifespan");
    if (lifespanSinceMs !== undefined) slot.due.set("lifespan", Math.min(lifespanSinceMs, memorySinceMs));
  }

  /** The slot's incarnation became ready: the planned restart in flight for it is done. */
  ready(slot: Slot, nowMs: number): void {
    if (slot.planned === null) return;
    // Without any check (supervisor mode) "ready" means it has run min_uptime.
    if (checkConfigOf(slot.pool) === null && slot.pool.restartPolicy.minUptimeMs > 0) {
      slot.plannedDoneAtMs = nowMs + slot.pool.restartPolicy.minUptimeMs;
      return;
    }
    slot.planned = null;
    this.hooks.count("plannedRestartDone");
  }

  private due(slot: Slot, cause: PlannedCause, nowMs: number): void {
    if (!slot.due.has(cause)) slot.due.set(cause, nowMs);
  }

  /** The planned restarts the core started in this step, from its commands; checked before the commands themselves. */
  onCommands(event: SupervisorEvent, commands: readonly Command[], nowMs: number): void {
    this.startedThisStep = [];
    for (const command of commands) {
      if (command.type === "setTimer" && command.timer.kind === "sigterm") {
        const slot = this.model.current(command.timer.ref);
        if (slot !== null && this.startable(slot)) this.start(slot, event, commands, true, nowMs);
      } else if (command.type === "signal" && command.signal === "SIGTERM") {
        const slot = this.model.current(command.ref);
        if (slot !== null && slot.pid === command.pid && this.startable(slot)) this.start(slot, event, commands, false, nowMs);
      }
    }
    for (const { slot, dueSinceMs } of this.startedThisStep) {
      const older = this.waiting(slot.poolIndex).find((other) => oldestDue(other)[1] < dueSinceMs);
      if (older !== undefined) {
        this.hooks.fail("held-back planned restarts start oldest first", `${slot.id}'s restart (due since ${dueSinceMs} ms) started while ${older.id}'s (due since ${oldestDue(older)[1]} ms) still waits`, nowMs, slot.id);
      }
    }
  }

  private start(slot: Slot, event: SupervisorEvent, commands: readonly Command[], viaGrace: boolean, nowMs: number): void {
    const [dueCause, dueSinceMs] = oldestDue(slot);
    const urgent = this.urgentMemory.has(slot);
    const cause = this.healthFailed.has(slot) ? "health" : urgent ? "memory" : dueCause;
    if (cause === null) this.unexpectedStart(slot, event, commands, nowMs);
    // Its own restart in flight (its replacement is not ready yet) does not hold it back: it is counted once.
    const others = this.inFlight(slot.poolIndex) - (slot.planned === null ? 0 : 1);
    if (cause === "health" || urgent) {
      if (others >= slot.pool.maxUnavailable) this.hooks.count(urgent ? "memoryUrgentNotHeldBack" : "healthNotHeldBack");
      if (urgent && dueSinceMs < nowMs) this.hooks.count("memoryUrgentWasHeldBack");
    } else {
      if (others >= slot.pool.maxUnavailable) {
        this.hooks.fail("when a lifespan or memory restart starts, the planned restarts of its pool in flight (it included) are at most max_unavailable (its own counted once)", `${slot.id}'s ${cause} restart started with ${others} other(s) in flight (max_unavailable ${slot.pool.maxUnavailable}): ${this.inFlightIds(slot.poolIndex)}`, nowMs, slot.id);
      }
      if (dueSinceMs < nowMs) this.hooks.count("heldBackStarted");
      if (slot.planned !== null && others + 1 >= slot.pool.maxUnavailable) this.hooks.count("notHeldBackByItself");
      // A restart whose own is in flight takes no new place: the oldest-first rule is about who gets one.
      if (slot.planned === null) this.startedThisStep.push({ slot, dueSinceMs });
    }
    if (cause === "memory") this.checkMemoryOver(slot, nowMs, urgent);
    const told = slot.pool.server !== null && this.hooks.inToldRotation(slot);
    if (viaGrace !== told) {
      this.hooks.fail(
        "in proxy mode a planned restart takes a worker in the rotation the proxy was last told out of it rotation grace before its SIGTERM; any other worker gets its SIGTERM at once",
        `${slot.id} (${told ? "in" : "out of"} the rotation last sent to the proxy, ${isReady(slot) ? "ready" : "not ready"}) ${viaGrace ? "waits for its SIGTERM" : "got its SIGTERM at once"}`, nowMs, slot.id,
      );
    }
    if (viaGrace) this.hooks.count(isReady(slot) ? "rotationGraceRestart" : "rotationGraceUnready");
    this.hooks.count(cause === "health" ? "healthRestart" : cause === "memory" ? "memoryRestart" : "lifespanRestart");
    slot.planned = { cause, sinceMs: nowMs, causes: cause === "health" ? ["health"] : [...slot.due.keys()] };
    slot.due.clear();
    this.healthFailed.delete(slot);
    this.urgentMemory.delete(slot);
    slot.stopping = cause;
    slot.checks.inFlight = null;
    slot.graceSigtermAtMs = viaGrace ? nowMs + SPEC.rotationGraceMs : null;
  }

  /**
   * A SIGTERM (or a rotation grace) with no cause due. The violation is named after what the core
   * says it acted on (its log lines name it), so that a report points at the rule it broke.
   */
  private unexpectedStart(slot: Slot, event: SupervisorEvent, commands: readonly Command[], nowMs: number): never {
    let claimed: unknown = null;
    for (const command of commands) {
      if (command.type !== "log") continue;
      const fields = command.fields;
      if (fields.max_restarts !== undefined) {
        this.hooks.fail(
          "max_restarts counts only unplanned restarts (exits, spawn failures not for lack of a resource): a planned restart (lifespan, memory, health) never counts",
          `the core shut down for ${String(fields.worker_id)}'s restarts (${String(fields.restarts)}, max_restarts ${String(fields.max_restarts)}); by the monitor's count it has ${this.model.slots.find((other) => other.id === fields.worker_id)?.chargedAtMs.length ?? "?"} charged`,
          nowMs, typeof fields.worker_id === "string" ? fields.worker_id : null,
        );
      }
      if (fields.worker_id === slot.id && fields.cause !== undefined) claimed = fields.cause;
    }
    if (claimed === "memory") this.checkMemoryOver(slot, nowMs, false);
    if (claimed === "health") {
      this.hooks.fail("a health restart follows failure_threshold counted failures in a row, and nothing less", `${slot.id} restarted with ${slot.checks.failures} counted failure(s) in a row (failure_threshold ${slot.pool.healthCheck?.failureThreshold ?? "none"})`, nowMs, slot.id);
    }
    this.hooks.fail(
      "a running worker gets SIGTERM only at shutdown or for a planned restart that is due (lifespan reached, memory over the limit 3 samples in a row, failure_threshold failures in a row)",
      `${slot.id} got SIGTERM (or left the rotation for one${claimed === null ? "" : `, for ${String(claimed)}`}) with no shutdown and no restart due (${event.type === "timer" ? `timer ${event.timer.kind}` : event.type})`,
      nowMs, slot.id,
    );
  }

  /**
   * A memory restart: the sample deciding it and the 2 before it were over the limit (the backend's
   * truth when each was taken); an urgent one's deciding sample over memoryUrgentFactor × the limit.
   */
  private checkMemoryOver(slot: Slot, nowMs: number, urgent: boolean): void {
    const samples = slot.checks.lastSamplesBytes;
    const limitBytes = slot.pool.limits.memoryBytes;
    const over = limitBytes > 0 && samples.length >= SPEC.memorySamplesOverLimit && samples.every((rssBytes) => rssBytes > limitBytes);
    if (over && (!urgent || (samples.at(-1) as number) > limitBytes * SPEC.memoryUrgentFactor)) return;
    this.hooks.fail("no memory restart while the group is under limits.memory: its last 3 samples (the backend's truth when taken) were all over it", `${slot.id} restarted for memory; its last samples were [${samples.join(", ")}] bytes, limit ${limitBytes}`, nowMs, slot.id);
  }

  /** After the step: a health restart started with its failure, and no held-back restart waits while fewer than max_unavailable are in flight. */
  afterStep(nowMs: number): void {
    if (this.model.shuttingDown) {
      this.healthFailed.clear();
      this.urgentMemory.clear();
      return;
    }
    for (const slot of this.healthFailed) {
      if (slot.phase !== "running" || slot.stopping !== null) continue;
      this.hooks.fail("a health restart is never held back: it starts with the failure_threshold-th counted failure in a row", `${slot.id} failed ${slot.checks.failures} counted checks in a row and was not restarted (${this.inFlight(slot.poolIndex)} in flight, max_unavailable ${slot.pool.maxUnavailable})`, nowMs, slot.id);
    }
    this.healthFailed.clear();
    for (const slot of this.urgentMemory) {
      if (slot.phase !== "running" || slot.stopping !== null) continue;
      this.hooks.fail(`a memory restart decided by a sample over ${SPEC.memoryUrgentFactor} × limits.memory is never held back: it starts with that sample`, `${slot.id}'s memory was sampled at ${slot.checks.lastSamplesBytes.at(-1)} bytes (limit ${slot.pool.limits.memoryBytes}, ${slot.checks.overLimit} samples over in a row) and it was not restarted (${this.inFlight(slot.poolIndex)} in flight, max_unavailable ${slot.pool.maxUnavailable})`, nowMs, slot.id);
    }
    this.urgentMemory.clear();
    if (!this.model.slots.some((slot) => slot.due.size > 0)) return;
    this.config.pools.forEach((pool, poolIndex) => {
      const waiting = this.waiting(poolIndex);
      if (waiting.length === 0) return;
      const slot = waiting[0] as Slot;
      const others = this.inFlight(poolIndex) - (slot.planned === null ? 0 : 1);
      if (others < pool.maxUnavailable) {
        this.hooks.fail("a held-back planned restart starts as soon as fewer than max_unavailable are in flight (no starvation)", `${slot.id}'s ${[...slot.due.keys()].join(" and ")} restart (due since ${oldestDue(slot)[1]} ms) waits with ${others} other(s) in flight, max_unavailable ${pool.maxUnavailable}: ${this.inFlightIds(poolIndex) || "none"}`, nowMs, slot.id);
      }
      for (const slot of waiting) if (oldestDue(slot)[1] === nowMs) this.hooks.count("restartHeldBack");
    });
  }

  /** Deadlines: a decided lifespan restart, and the SIGTERM after the rotation grace. */
  afterInstant(deadlines: Deadlines): void {
    const nowMs = deadlines.nowMs;
    if (this.model.shuttingDown) return;
    for (const slot of this.model.slots) {
      if (slot.worker === PROXY_WORKER || slot.phase !== "running") continue;
      if (slot.plannedDoneAtMs !== null && slot.stopping === null && deadlines.missed(slot.plannedDoneAtMs)) {
        this.hooks.fail("without a check, an in-place planned restart is done once the next incarnation has run min_uptime", `${slot.id}'s planned restart still in flight ${deadlines.by(slot.plannedDoneAtMs)}`, nowMs, slot.id);
      }
      if (slot.graceSigtermAtMs !== null && slot.sigtermAtMs === null && deadlines.missed(slot.graceSigtermAtMs)) {
        this.hooks.fail("a planned restart's SIGTERM comes rotation grace after the worker left the rotation", `${slot.id} left the rotation at ${slot.graceSigtermAtMs - SPEC.rotationGraceMs} ms and got no SIGTERM ${deadlines.by(slot.graceSigtermAtMs)}`, nowMs, slot.id);
      }
      const { lifespanMs, jitterRatio } = slot.pool.limits;
      const latestMs = (slot.spawnedAtMs as number) + lifespanMs * (1 + jitterRatio);
      if (lifespanMs > 0 && slot.stopping === null && slot.lifespanAtMs === null && deadlines.missed(latestMs)) {
        this.hooks.fail("a lifespan restart is due within [lifespan, lifespan × (1 + jitter_ratio)] of the start", `${slot.id} has run ${nowMs - (slot.spawnedAtMs as number)} ms and its lifespan was not reached ${deadlines.by(latestMs)} (lifespan ${lifespanMs} ms, jitter ${jitterRatio})`, nowMs, slot.id);
      }
    }
  }

  /** A planned restart's SIGTERM (now or after the rotation grace): counted by cause, no sooner than the grace. */
  onSigterm(slot: Slot, nowMs: number): void {
    if (slot.graceSigtermAtMs !== null && nowMs < slot.graceSigtermAtMs) {
      this.hooks.fail("a planned restart's SIGTERM comes rotation grace after the worker left the rotation", `${slot.id} got SIGTERM at ${nowMs} ms, ${nowMs - (slot.graceSigtermAtMs - SPEC.rotationGraceMs)} ms after it left (grace ${SPEC.rotationGraceMs} ms)`, nowMs, slot.id);
    }
    const causes = slot.planned?.causes ?? [];
    this.sigterms.all++;
    for (const cause of causes) this.sigterms[causes.length === 1 ? "only" : "maybe"][cause]++;
  }

  /** Workers of the pool whose lifespan or memory restart is due and held back, oldest first. */
  private waiting(poolIndex: number): Slot[] {
    return this.model.slots
      .filter((slot) => slot.poolIndex === poolIndex && slot.due.size > 0 && this.startable(slot))
      .sort((a, b) => oldestDue(a)[1] - oldestDue(b)[1]);
  }

  private inFlight(poolIndex: number): number {
    let count = 0;
    for (const slot of this.model.slots) if (slot.poolIndex === poolIndex && slot.planned !== null) count++;
    return count;
  }

  private inFlightIds(poolIndex: number): string {
    return this.model.slots.filter((slot) => slot.poolIndex === poolIndex && slot.planned !== null).map((slot) => `${slot.id} (${slot.planned?.cause} since ${slot.planned?.sinceMs} ms)`).join(", ");
  }
}

/** The cause due the longest, and since when ([null, Infinity] if none). */
function oldestDue(slot: Slot): [PlannedCause | null, number] {
  let oldest: [PlannedCause | null, number] = [null, Infinity];
  for (const [cause, sinceMs] of slot.due) if (sinceMs < oldest[1]) oldest = [cause, sinceMs];
  return oldest;
}
