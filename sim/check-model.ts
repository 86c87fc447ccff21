// The monitor's own account of health checks, readiness and memory, restated from the README's
// rules and never from the core's checks.ts:
// - counted checks are due at spawn + start_period + interval, then every interval, and happen at
//   most the timer slack later; a check that starts at or after its due time counts, and the next
//   is due at the first interval mark after it (missed ones are skipped); one check is in flight
//   at a time, and a probe without a result by timeout + result grace, or by the next counted check if sooner (+ slack), is a timeout. notify: the counted check passes if the
//   worker sent READY=1 in this incarnation, has not sent STOPPING=1, and READY=1 or WATCHDOG=1
//   came since the last one; else it is a timeout (a worker that only pings, never ready, or runs
//   on after STOPPING=1 is not well). Failures of checks that do not count are ignored, and so
//   is a check that could not be made (a local error: Monoceros short of a resource) or the result
//   of an earlier probe than the one in flight (its seq says which).
// - readiness: without a check a worker is ready once it runs; with one, after a pass until a
//   counted failure. notify: a keepalive is a pass (it resets the failures and makes the worker
//   ready) only once READY=1 came and as long as STOPPING=1 did not; STOPPING=1 takes it out.
// - memory: every second a sample of each running worker's group, the backend's truth when it
//   was taken; 3 over limits.memory in a row make a memory restart due, one at or under it resets
//   the count and calls off a held-back one; a deciding sample over memoryUrgentFactor × the
//   limit makes it urgent (planned-restarts.ts decides when restarts start).
import type { MemoryBackend } from "../src/backends/memory/memory-backend.js";
import type { Config, HealthCheckConfig } from "../src/config/types.js";
import { checkConfigOf } from "../src/domain/checks.js";
import type { CheckResult, Command, SupervisorEvent } from "../src/domain/types.js";
import type { Behaviour } from "./coverage.js";
import { PROXY_WORKER, type Deadlines, type Slot, type SlotModel } from "./slot-model.js";
import { SPEC } from "./spec.js";

export interface IncarnationChecks {
  /** The next counted check is due at this time. */
  nextDueAtMs: number;
  inFlight: { startedAtMs: number; counted: boolean; seq: number } | null;
  /** When the last check in flight ended (a counted check due meanwhile starts then). */
  lastEndedAtMs: number;
  /** Counted failures in a row, when the first of them was counted, and counted checks that could not be made since. */
  failures: number;
  firstFailureAtMs: number | null;
  localErrorsSinceFailure: number;
  ready: boolean;
  /** notify: READY=1 came; a keepalive came since the last counted check; STOPPING=1 came. */
  readySent: boolean;
  keepalive: boolean;
  stoppingSent: boolean;
  /** Samples over limits.memory in a row, the last three samples, and the truth at a sample not answered yet. */
  overLimit: number;
  lastSamplesBytes: number[];
  sampleInFlightBytes: number | null;
}

export function newIncarnationChecks(): IncarnationChecks {
  return {
    nextDueAtMs: Infinity, inFlight: null, lastEndedAtMs: 0, failures: 0, firstFailureAtMs: null, localErrorsSinceFailure: 0, ready: false,
    readySent: false, keepalive: false, stoppingSent: false, overLimit: 0, lastSamplesBytes: [], sampleInFlightBytes: null,
  };
}

export interface CheckModelHooks {
  fail(invariant: string, detail: string, nowMs: number, workerId: string | null): never;
  count(behaviour: Behaviour): void;
  /** The worker became ready (a planned restart in flight for its slot is done). */
  ready(slot: Slot, nowMs: number): void;
  /** failure_threshold counted failures in a row: its health restart must start now. */
  healthFailed(slot: Slot, nowMs: number): void;
  /** memorySamplesOverLimit samples over the limit in a row (and still over; urgent: this one over memoryUrgentFactor × the limit), or one at or under it. */
  memoryOver(slot: Slot, nowMs: number, urgent: boolean): void;
  memoryUnder(slot: Slot, nowMs: number): void;
}

const TEMPLATE_FIELD = /\{\{\s*\.(Pid|WorkerId|Port)\s*\}\}/g;

/** The first due time after nowMs on the grid dueAtMs + k × interval (the checks due meanwhile are skipped). */
/** The spec's deadline of a probe without a result (nextDueAtMs: the next counted check's due time, as of its start). */
const probeDeadlineMs = (check: HealthCheckConfig, startedAtMs: number, nextDueAtMs: number) =>
  Math.max(startedAtMs + check.timeoutMs, Math.min(startedAtMs + check.timeoutMs + SPEC.resultGraceMs, nextDueAtMs));

const nextDueAfter = (dueAtMs: number, nowMs: number, intervalMs: number) => dueAtMs + (Math.floor((nowMs - dueAtMs) / intervalMs) + 1) * intervalMs;

export class CheckModel {
  /** When the next memory sample is due (null: no pool has limits.memory). */
  private nextSampleAtMs: number | null = null;
  /** What health_checks_total must count, by result: every counted check, and every pass. */
  readonly checkMetrics: Record<CheckResult, number> = { ok: 0, fail: 0, timeout: 0 };

  constructor(
    private readonly config: Config,
    private readonly model: SlotModel,
    private readonly backend: MemoryBackend,
    private readonly hooks: CheckModelHooks,
  ) {}

  /** Whether the core checks this worker now: running, not asked to stop, no shutdown. */
  eligible(slot: Slot): boolean {
    return slot.worker !== PROXY_WORKER && slot.phase === "running" && slot.stopping === null && !this.model.shuttingDown;
  }

  /** An incarnation was reported started (and is handled as such). */
  onStarted(slot: Slot, nowMs: number): void {
    // Proxy pools without a health_check get readiness checks only (their port accepts): never counted.
    const check = checkConfigOf(slot.pool);
    if (check !== null) slot.checks.nextDueAtMs = nowMs + check.startPeriodMs + check.intervalMs;
    else if (this.eligible(slot)) this.setReady(slot, nowMs);
  }

  onEvent(event: SupervisorEvent, nowMs: number): void {
    switch (event.type) {
      case "start":
        if (this.config.pools.some((pool) => pool.limits.memoryBytes > 0)) this.nextSampleAtMs = nowMs + SPEC.memorySampleIntervalMs;
        return;
      case "checkResult": {
        const slot = this.model.current(event.ref);
        const inFlight = slot?.checks.inFlight ?? null;
        if (slot === null || inFlight === null || inFlight.seq !== event.seq || !this.eligible(slot)) return;
        slot.checks.inFlight = null;
        slot.checks.lastEndedAtMs = nowMs;
        if (event.localError === true) {
          this.hooks.count("checkNotMade");
          if (inFlight.counted && slot.checks.firstFailureAtMs !== null) slot.checks.localErrorsSinceFailure++;
          return;
        }
        this.record(slot, event.result, inFlight.counted, nowMs);
        return;
      }
      case "notify": {
        const slot = this.model.current(event.ref);
        if (slot !== null && this.eligible(slot) && slot.pool.healthCheck?.probe.kind === "notify") this.onNotify(slot, event, nowMs);
        return;
      }
      case "memorySampled":
        for (const sample of event.samples) {
          const slot = this.model.current(sample.ref);
          if (slot !== null && this.eligible(slot) && slot.pool.limits.memoryBytes > 0) this.onSample(slot, sample.rssBytes, nowMs);
        }
        return;
      case "timer":
        if (event.timer.kind === "memorySample") {
          if (this.nextSampleAtMs !== null && nowMs < this.nextSampleAtMs) {
            this.hooks.fail("memory is sampled every memory sample interval", `a sample at ${nowMs} ms, due at ${this.nextSampleAtMs} ms`, nowMs, null);
          }
          this.nextSampleAtMs = nowMs + SPEC.memorySampleIntervalMs;
        }
        if (event.timer.kind === "check") {
          const slot = this.model.current(event.timer.ref);
          if (slot !== null && this.eligible(slot)) this.onCheckTimer(slot, nowMs);
        }
        return;
      default:
        return;
    }
  }

  /** A check timer: notify's counted check, or the deadline of a probe without a result. */
  private onCheckTimer(slot: Slot, nowMs: number): void {
    const check = checkConfigOf(slot.pool) as HealthCheckConfig;
    const checks = slot.checks;
    if (check.probe.kind === "notify") {
      const counted = nowMs >= checks.nextDueAtMs;
      if (counted) checks.nextDueAtMs = nextDueAfter(checks.nextDueAtMs, nowMs, check.intervalMs);
      const passed = checks.keepalive && checks.readySent && !checks.stoppingSent;
      if (!passed && counted && (checks.stoppingSent || checks.keepalive)) this.hooks.count(checks.stoppingSent ? "notifyStoppingFailed" : "notifyNotReadyFailed");
      checks.keepalive = false;
      this.record(slot, passed ? "ok" : "timeout", counted, nowMs);
      return;
    }
    const inFlight = checks.inFlight;
    if (inFlight === null) return; // the next check starts: its probe is among the commands
    const deadlineMs = probeDeadlineMs(check, inFlight.startedAtMs, checks.nextDueAtMs);
    if (nowMs < deadlineMs) {
      this.hooks.fail("a probe without a result counts as a timeout only at timeout + result grace after it started, or when the next counted check is due if sooner (never before its timeout)", `${slot.id}'s probe of ${inFlight.startedAtMs} ms counted as a timeout at ${nowMs} ms, before ${deadlineMs} ms`, nowMs, slot.id);
    }
    this.hooks.count("probeDeadline");
    checks.inFlight = null;
    checks.lastEndedAtMs = nowMs;
    this.record(slot, "timeout", inFlight.counted, nowMs);
  }

  private record(slot: Slot, result: CheckResult, counted: boolean, nowMs: number): void {
    const check = checkConfigOf(slot.pool) as HealthCheckConfig;
    const checks = slot.checks;
    if (slot.pool.healthCheck !== null && (counted || result === "ok")) this.checkMetrics[result]++;
    if (result === "ok") {
      if (checks.failures > 0) this.hooks.count("passedAgain");
      checks.failures = 0;
      checks.firstFailureAtMs = null;
      checks.localErrorsSinceFailure = 0;
      if (check.probe.kind !== "notify" || (checks.readySent && !checks.stoppingSent)) this.setReady(slot, nowMs);
      return;
    }
    if (!counted) {
      this.hooks.count("uncountedFailure");
      return;
    }
    checks.failures++;
    if (checks.failures === 1) checks.firstFailureAtMs = nowMs;
    if (checks.ready) this.hooks.count("outOfRotationOnFailure");
    checks.ready = false;
    if (checks.failures >= check.failureThreshold) this.hooks.healthFailed(slot, nowMs);
  }

  private onNotify(slot: Slot, event: Extract<SupervisorEvent, { type: "notify" }>, nowMs: number): void {
    const checks = slot.checks;
    if (event.stopping && !checks.stoppingSent) {
      checks.stoppingSent = true;
      checks.ready = false;
      this.hooks.count("stoppingLeftRotation");
    }
    if (event.ready) checks.readySent = true;
    if (!event.ready && !event.watchdog) return;
    checks.keepalive = true;
    // Only the keepalive of a worker that said READY=1 (and not STOPPING=1) is a pass.
    if (!checks.readySent || checks.stoppingSent) return;
    checks.failures = 0;
    checks.firstFailureAtMs = null;
    checks.localErrorsSinceFailure = 0;
    this.setReady(slot, nowMs);
  }

  private setReady(slot: Slot, nowMs: number): void {
    if (slot.checks.ready) return;
    slot.checks.ready = true;
    if (slot.pool.healthCheck !== null) this.hooks.count(slot.checks.readySent ? "readyAfterNotify" : "readyAfterPass");
    this.hooks.ready(slot, nowMs);
  }

  private onSample(slot: Slot, reportedBytes: number, nowMs: number): void {
    const checks = slot.checks;
    // The truth when the sample was taken (the same instant, so the backend reports just that).
    const rssBytes = checks.sampleInFlightBytes ?? reportedBytes;
    checks.sampleInFlightBytes = null;
    checks.lastSamplesBytes.push(rssBytes);
    if (checks.lastSamplesBytes.length > SPEC.memorySamplesOverLimit) checks.lastSamplesBytes.shift();
    if (rssBytes <= slot.pool.limits.memoryBytes) {
      checks.overLimit = 0;
      this.hooks.memoryUnder(slot, nowMs);
      return;
    }
    checks.overLimit++;
    if (checks.overLimit >= SPEC.memorySamplesOverLimit) this.hooks.memoryOver(slot, nowMs, rssBytes > slot.pool.limits.memoryBytes * SPEC.memoryUrgentFactor);
  }

  /** A probe the core sent: to a worker it checks, one at a time, aimed at that worker. */
  onProbe(command: Extract<Command, { type: "probe" }>, nowMs: number): void {
    const slot = this.model.current(command.ref);
    const check = slot === null ? null : checkConfigOf(slot.pool);
    const id = slot?.id ?? `${this.config.pools[command.ref.pool]?.name}-${command.ref.worker}#${command.ref.generation}`;
    if (slot === null || check === null || check.probe.kind === "notify" || !this.eligible(slot) || slot.pid !== command.pid || slot.checks.inFlight !== null) {
      const why = slot === null ? "not its current incarnation" : check === null || check.probe.kind === "notify" ? "its pool has no http or exec check"
        : slot.checks.inFlight !== null ? `a probe of ${slot.checks.inFlight.startedAtMs} ms is still in flight` : `it is ${slot.phase}${slot.stopping === null ? "" : `, asked to stop (${slot.stopping})`}`;
      this.hooks.fail("a probe goes only to a running worker with an http or exec check, not asked to stop, one at a time", `probe of ${id}: ${why}`, nowMs, slot?.id ?? null);
    }
    const port = check.probe.kind === "http" && check.probe.startPort !== null ? check.probe.startPort + slot.worker : slot.pool.server === null ? null : slot.pool.server.startPort + slot.worker;
    const probe = command.probe;
    const aimed = check.probe.kind === "http"
      ? probe.kind === "http" && probe.port === port && probe.host === check.probe.host && probe.path === check.probe.path
      : check.probe.kind === "tcp" ? probe.kind === "tcp" && probe.port === port && probe.host === "127.0.0.1" : probe.kind === "exec" && check.probe.kind === "exec" && probe.argv.length === check.probe.argv.length && check.probe.argv.every((arg, index) => probe.argv[index] === this.render(arg, slot, port));
    if (!aimed || command.timeoutMs !== check.timeoutMs) {
      const expected = check.probe.kind === "http" ? `port ${port}` : check.probe.kind !== "exec" ? check.probe.kind : `argv ${check.probe.argv.map((arg) => this.render(arg, slot, port)).join(" ")}`;
      this.hooks.fail("a probe checks the worker it names (its port; its {{.Pid}}, {{.WorkerId}}, {{.Port}}) within health_check.timeout", `${slot.id}: ${JSON.stringify({ ...probe, timeoutMs: command.timeoutMs })}, expected ${expected} within ${check.timeoutMs} ms`, nowMs, slot.id);
    }
    const counted = nowMs >= slot.checks.nextDueAtMs;
    if (counted) slot.checks.nextDueAtMs = nextDueAfter(slot.checks.nextDueAtMs, nowMs, check.intervalMs);
    slot.checks.inFlight = { startedAtMs: nowMs, counted, seq: command.seq };
  }

  /** A sample the core asked for: every running worker of the pools with limits.memory, nothing else; the truth is noted now. */
  onSampleMemory(command: Extract<Command, { type: "sampleMemory" }>, nowMs: number): void {
    let sampled = 0;
    for (const { ref, pid } of command.groups) {
      const slot = this.model.current(ref);
      if (slot === null || slot.pid !== pid || slot.pool.limits.memoryBytes === 0 || !this.eligible(slot) || slot.checks.sampleInFlightBytes !== null) {
        this.hooks.fail("memory is sampled for every running worker of a pool with limits.memory, and no other", `sampled pid ${pid} of ${this.model.slotOf(ref)?.id}#${ref.generation}, which is ${slot === null ? "not the current incarnation" : `${slot.phase}${slot.stopping === null ? "" : ` (${slot.stopping})`}`}`, nowMs, slot?.id ?? null);
      }
      slot.checks.sampleInFlightBytes = this.groupRssBytes(pid);
      sampled++;
    }
    const expected = this.memorySlots();
    if (sampled !== expected.length) {
      const missing = expected.filter((slot) => slot.checks.sampleInFlightBytes === null).map((slot) => slot.id);
      this.hooks.fail("memory is sampled for every running worker of a pool with limits.memory, and no other", `not sampled: ${missing.join(", ")}`, nowMs, null);
    }
  }

  /** The memory sample timer fired: a sample must be asked for if any worker is to be sampled. */
  afterStep(event: SupervisorEvent, commands: readonly Command[], nowMs: number): void {
    if (event.type !== "timer" || event.timer.kind !== "memorySample" || this.model.shuttingDown) return;
    if (this.memorySlots().length > 0 && !commands.some((command) => command.type === "sampleMemory")) {
      this.hooks.fail("memory is sampled for every running worker of a pool with limits.memory, and no other", "the sample timer fired and no sample was asked for", nowMs, null);
    }
  }

  /**
   * Deadlines: the next memory sample, each counted check (its start; notify: the check itself),
   * each probe's result, and the restart of a worker failing failure_threshold checks in a row.
   */
  afterInstant(deadlines: Deadlines): void {
    const nowMs = deadlines.nowMs;
    if (this.model.shuttingDown) return;
    if (this.nextSampleAtMs !== null && deadlines.missed(this.nextSampleAtMs)) {
      this.hooks.fail("memory is sampled every memory sample interval", `no sample ${deadlines.by(this.nextSampleAtMs)}, due at ${this.nextSampleAtMs} ms`, nowMs, null);
    }
    for (const slot of this.model.slots) {
      const check = checkConfigOf(slot.pool);
      if (check === null || !this.eligible(slot)) continue;
      const checks = slot.checks;
      const inFlight = checks.inFlight;
      const checkByMs = Math.max(checks.nextDueAtMs, checks.lastEndedAtMs) + SPEC.checkTimerSlackMs;
      if (inFlight === null && deadlines.missed(checkByMs)) {
        this.hooks.fail("counted checks happen when due (within the timer slack): at spawn + start_period + interval, then every interval, or as soon as the check in flight ended", `${slot.id} not checked ${deadlines.by(checkByMs)}, due at ${checks.nextDueAtMs} ms`, nowMs, slot.id);
      }
      const resultByMs = inFlight === null ? Infinity : probeDeadlineMs(check, inFlight.startedAtMs, checks.nextDueAtMs) + SPEC.checkTimerSlackMs;
      if (inFlight !== null && deadlines.missed(resultByMs)) {
        this.hooks.fail("a probe without a result by timeout + result grace, or by the next counted check if sooner (within the timer slack), counts as a timeout", `${slot.id}'s probe of ${inFlight.startedAtMs} ms still in flight ${deadlines.by(resultByMs)}`, nowMs, slot.id);
      }
      if (checks.firstFailureAtMs === null) continue;
      // A counted check that could not be made is no check: the next one is an interval later.
      const boundMs = check.intervalMs * (check.failureThreshold + checks.localErrorsSinceFailure) + check.timeoutMs + SPEC.checkTimerSlackMs
        + (slot.pool.server === null ? 0 : SPEC.rotationGraceMs);
      if (deadlines.missed(checks.firstFailureAtMs + boundMs)) {
        this.hooks.fail(
          "a worker failing failure_threshold counted checks in a row gets SIGTERM within interval × failure_threshold + timeout (+ timer slack, + rotation grace; + an interval per check that could not be made) of its first counted failure",
          `${slot.id} failed ${checks.failures} counted check(s) in a row since ${checks.firstFailureAtMs} ms and got no SIGTERM ${deadlines.by(checks.firstFailureAtMs + boundMs)} (threshold ${check.failureThreshold}, interval ${check.intervalMs} ms, timeout ${check.timeoutMs} ms)`,
          nowMs, slot.id,
        );
      }
    }
  }

  private render(arg: string, slot: Slot, port: number | null): string {
    return arg.replace(TEMPLATE_FIELD, (_, field: string) => String(field === "Pid" ? slot.pid : field === "WorkerId" ? slot.id : (port ?? "")));
  }

  /** The workers a memory sample must cover now. */
  private memorySlots(): Slot[] {
    return this.model.slots.filter((slot) => slot.pool.limits.memoryBytes > 0 && this.eligible(slot));
  }

  /** What a sample of this group finds: the resident memory of its members alive now (zombies have none). */
  private groupRssBytes(pgid: number): number {
    let rssBytes = 0;
    for (const process of this.backend.alive()) if (process.pgid === pgid && process.state === "alive") rssBytes += this.backend.stats(process.pid)?.rssBytes ?? 0;
    return rssBytes;
  }
}
