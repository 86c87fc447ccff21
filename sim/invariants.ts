// The rules every run must keep, checked from outside the core: from the events it was given,
// the commands it returned, and the fake processes that really exist (leftover children and
// unreported exits included). A second, independent path to each property the core is meant to
// have: the timing rules are restated in spec.ts and slot-model.ts (lifecycle, restarts, budget),
// check-model.ts (health checks, readiness, memory samples) and planned-restarts.ts (lifespan,
// memory and health restarts under max_unavailable), never imported from the core.
//
// Processes that survive SIGKILL: the core gives up on a process that is not reported gone
// SPEC.killWaitMs after its SIGKILL. From that moment the monitor calls it *abandoned*: it may
// still exist (a process stuck in D state for ever does), it no longer counts against replicas,
// its slot may be spawned again, the proxy may be stopped, and it may still exist when Monoceros
// exits. Every other process (leader, zombie or leftover child) must be gone by then.
import type { Config } from "../src/config/types.js";
import type { FakeProcess, MemoryBackend } from "../src/backends/memory/memory-backend.js";
import type { Command, SupervisorEvent } from "../src/domain/types.js";
import { CheckModel } from "./check-model.js";
import type { Behaviour } from "./coverage.js";
import { expectHealthy, healthShortfalls } from "./health-rule.js";
import { PlannedRestarts } from "./planned-restarts.js";
import { Deadlines, isPlannedCause, isReady, PROXY_WORKER, SlotModel, type Slot } from "./slot-model.js";
import { SPEC } from "./spec.js";

export class InvariantViolation extends Error {
  constructor(
    readonly invariant: string,
    readonly detail: string,
    readonly atMs: number,
    readonly workerId: string | null,
  ) {
    super(`${invariant}: ${detail} (at ${atMs} ms)`);
  }
}

export interface MonitorOptions {
  /** No faults at all: every replica must run once start-up is over. */
  faultFree: boolean;
  /** The longest a spawn may take to be reported in this run (a slow spawn delays shutdown by as much). */
  spawnLatencyMaxMs: number;
  /** The core's own answer to /health at nowMs, compared with the monitor's. */
  coreHealthy: (nowMs: number) => boolean;
  /** Counts behaviours the run exercised (coverage). */
  count: (behaviour: Behaviour) => void;
}

type PoolConfig = Config["pools"][number];

const refKey = (ref: { pool: number; worker: number; generation: number }) => `${ref.pool}/${ref.worker}/${ref.generation}`;

/** A worker's key in the rotation maps (replicas are at most 4096). */
const rotationKey = (pool: number, worker: number) => pool * 65_536 + worker;

/** A step about health checks or memory that signalled, spawned and told the proxy nothing. */
function quiet(event: SupervisorEvent, commands: readonly Command[]): boolean {
  const aboutChecks = event.type === "checkResult" || event.type === "notify" || event.type === "memorySampled" || (event.type === "timer" && (event.timer.kind === "check" || event.timer.kind === "memorySample"));
  if (!aboutChecks) return false;
  for (const command of commands) if (command.type === "signal" || command.type === "spawn" || command.type === "proxyRotation" || command.type === "exit") return false;
  return true;
}

export class InvariantMonitor {
  private readonly model: SlotModel;
  private readonly checks: CheckModel;
  private readonly planned: PlannedRestarts;
  private readonly deadlines = new Deadlines();
  private shutdownRequests = 0;
  private exitCode: number | null = null;
  /** Processes seen alive, by pid, kept until they are gone and the deadlines they lived through are checked. */
  private readonly tracked = new Map<number, FakeProcess>();
  /** Incarnations whose group the core was told is empty: a signal to its pid could reach a process that reuses it. */
  private readonly reportedEmpty = new Set<string>();
  /** Per proxy pool and worker: in the rotation last sent, and since when it is out. */
  private readonly rotation = new Map<number, { inRotation: boolean; outSinceMs: number }>();
  /** Per proxy pool, the proxy incarnation last told to drain. */
  private readonly drained = new Map<number, number>();
  private readonly counted = {
    restartMetric: 0, sigkillMetric: 0, sigkills: 0,
    limitMetric: { time: 0, memory: 0, health: 0 } as Record<string, number>,
    checkMetric: { ok: 0, fail: 0, timeout: 0 } as Record<string, number>,
  };
  private readonly shutdownBoundMs: number;
  private readonly startupEndMs: number;

  constructor(
    private readonly config: Config,
    private readonly backend: MemoryBackend,
    private readonly options: MonitorOptions,
  ) {
    const fail = (...args: Parameters<InvariantMonitor["fail"]>) => this.fail(...args);
    this.model = new SlotModel(config, { fail, count: options.count, unplannedEnd: (slot, spawnFailed) => this.planned.replacementEnded(slot, spawnFailed) });
    this.planned = new PlannedRestarts(config, this.model, {
      fail,
      count: options.count,
      // The commands of the step are recorded after planned-restarts.ts saw them: this is the rotation sent before it.
      inToldRotation: (slot) => this.rotation.get(rotationKey(slot.poolIndex, slot.worker))?.inRotation ?? false,
    });
    this.checks = new CheckModel(config, this.model, backend, {
      fail,
      count: options.count,
      ready: (slot, nowMs) => this.planned.ready(slot, nowMs),
      healthFailed: (slot) => this.planned.healthFailedNow(slot),
      memoryOver: (slot, nowMs, urgent) => this.planned.memoryOver(slot, nowMs, urgent),
      memoryUnder: (slot) => this.planned.memoryUnder(slot),
    });
    // Workers stop first (a slow spawn may delay one's SIGTERM), then each proxy: both phases may run to SIGKILL and the wait after it.
    const proxyBoundMs = Math.max(0, ...config.pools.map((pool) => (pool.server === null ? 0 : pool.server.signalTimeoutMs + SPEC.killWaitMs)));
    this.shutdownBoundMs = options.spawnLatencyMaxMs + Math.max(...config.pools.map((pool) => pool.signalTimeoutMs)) + SPEC.killWaitMs + proxyBoundMs + SPEC.rotationGraceMs;
    this.startupEndMs = Math.max(...config.pools.map((pool) => (pool.replicas - 1) * pool.startupWaitMs));
  }

  get exited(): number | null {
    return this.exitCode;
  }

  /** Called for every event the core handled, with the commands it answered. */
  afterStep(event: SupervisorEvent, commands: readonly Command[], nowMs: number): void {
    if (event.type === "shutdownRequested") this.shutdownRequests++;
    const exitedSlot = event.type === "exited" ? this.model.current(event.ref) : null;
    const sigtermedBefore = exitedSlot?.phase === "running" && exitedSlot.sigtermAtMs !== null;
    const handledExit = exitedSlot?.phase === "running";
    if ((event.type === "exited" && event.groupEmpty) || event.type === "groupEmpty") this.reportedEmpty.add(refKey(event.ref));
    const starting = event.type === "spawned" ? this.model.current(event.ref) : null;
    const wasSpawning = starting?.phase === "spawning";
    this.model.onEvent(event, nowMs);
    if (starting !== null && wasSpawning && starting.phase === "running") this.checks.onStarted(starting, nowMs);
    this.checks.onEvent(event, nowMs);
    this.planned.onEvent(event, nowMs);
    this.planned.onCommands(event, commands, nowMs);
    for (const command of commands) this.checkCommand(command, nowMs);
    this.checks.afterStep(event, commands, nowMs);
    this.planned.afterStep(nowMs);
    if (event.type === "exited" && handledExit && !event.groupEmpty && !sigtermedBefore) {
      const slot = exitedSlot as Slot;
      const sigtermed = commands.some((c) => c.type === "signal" && c.pid === slot.pid && c.signal !== "SIGKILL");
      if (!sigtermed) this.fail("leftovers of an exited leader get SIGTERM at once", `${slot.id}'s leader exited with processes left in its group, and they got no SIGTERM`, nowMs, slot.id);
    }
    // After a third signal everything that exists is SIGKILLed at once, also a process reported started later.
    if ((event.type === "shutdownRequested" || event.type === "spawned") && this.shutdownRequests >= 3) this.checkForcedKill(nowMs);
    // A step about checks or memory that changed nothing outside the core leaves the world as the
    // last check saw it but for time: its deadlines are checked at the next step that changes something.
    if (!quiet(event, commands)) this.checkWorld(nowMs);
    this.checkRotationAndDrain(nowMs);
    this.checkHealth(nowMs);
  }

  /** A third signal SIGKILLs everything that exists at once. */
  private checkForcedKill(nowMs: number): void {
    this.options.count("forcedKill");
    for (const process of this.backend.alive()) {
      if (process.sigkillAtMs === null) {
        this.fail("a third signal SIGKILLs every process at once", `${process.role} pid ${process.pid} of ${process.request.workerId} got no SIGKILL`, nowMs, process.request.workerId);
      }
    }
  }

  /** The proxy's rotation is exactly the ready workers (running, not asked to stop, passing their check); a running proxy drains once shutdown began. */
  private checkRotationAndDrain(nowMs: number): void {
    for (const slot of this.model.slots) {
      if (slot.pool.server === null) continue;
      if (slot.worker === PROXY_WORKER) {
        if (this.model.shuttingDown && slot.phase === "running" && slot.stopping === null && this.drained.get(slot.poolIndex) !== slot.generation) {
          this.fail("a running proxy is told to drain once shutdown began", `${slot.id} runs ${nowMs - (this.model.shutdownBegunAtMs as number)} ms into the shutdown and was not told to drain`, nowMs, slot.id);
        }
        continue;
      }
      const expected = isReady(slot);
      const sent = this.rotation.get(rotationKey(slot.poolIndex, slot.worker))?.inRotation ?? false;
      if (sent && !expected) {
        const why = slot.phase !== "running" ? `it is ${slot.phase}` : slot.stopping !== null ? `it was asked to stop (${slot.stopping})` : this.notReadyWhy(slot);
        this.fail("never in the proxy's rotation unless ready: running, not asked to stop, and passing its check (passed one in this incarnation, notify: sent READY=1, no counted failure since)", `${slot.id} is in the rotation while ${why}`, nowMs, slot.id);
      }
      if (!sent && expected) {
        this.fail("the proxy's rotation has every ready worker: running, not asked to stop, passing its check", `${slot.id} is out of the rotation while it is ready`, nowMs, slot.id);
      }
    }
  }

  private notReadyWhy(slot: Slot): string {
    const checks = slot.checks;
    if (slot.pool.healthCheck?.probe.kind === "notify") return checks.stoppingSent ? "it sent STOPPING=1" : checks.readySent ? `it failed ${checks.failures} counted check(s) since its last keepalive` : "it has not sent READY=1";
    return checks.failures > 0 ? `it failed ${checks.failures} counted check(s) in a row` : "it has not passed a check yet";
  }

  /** Called when every event of one instant has been handled, with the time of the next one (null: none). */
  afterInstant(nowMs: number, nextAtMs: number | null): void {
    this.deadlines.nowMs = nowMs;
    this.deadlines.nextAtMs = nextAtMs;
    this.model.afterInstant(this.deadlines);
    this.checks.afterInstant(this.deadlines);
    this.planned.afterInstant(this.deadlines);
    if (!this.options.faultFree || this.model.shuttingDown || nowMs < this.startupEndMs || this.exitCode !== null) return;
    this.config.pools.forEach((pool, poolIndex) => {
      const slots = this.model.slots.filter((slot) => slot.poolIndex === poolIndex);
      const present = (worker: boolean) => slots.filter((slot) => (slot.worker !== PROXY_WORKER) === worker && (slot.phase === "running" || slot.phase === "spawning")).length;
      if (pool.server !== null && present(false) !== 1) {
        this.fail("all replicas run once start-up is over", `the proxy of pool ${pool.name} is not running and nothing failed`, nowMs, null);
      }
      if (present(true) !== pool.replicas) {
        this.fail("all replicas run once start-up is over", `pool ${pool.name} has ${present(true)} of ${pool.replicas} workers running or starting, and nothing failed`, nowMs, null);
      }
    });
  }

  /** Called when the run is over. */
  finish(nowMs: number): void {
    if (this.exitCode === null) this.fail("shutdown finishes", "the run ended without an exit", nowMs, null);
    for (const process of this.backend.alive()) {
      if (!this.abandoned(process, nowMs)) {
        this.fail("no process outlives Monoceros unless given up on after SIGKILL", `${process.role} pid ${process.pid} of ${process.request.workerId}#${process.request.ref.generation} is alive at exit (SIGKILL at ${process.sigkillAtMs} ms)`, nowMs, process.request.workerId);
      }
      this.options.count("abandonedAtExit");
    }
    const expectedCode = this.model.budgetExceeded ? 1 : 0;
    if (this.exitCode !== expectedCode) {
      this.fail("exit code", `exited ${this.exitCode}, expected ${expectedCode} (${this.model.budgetExceeded ? "a restart budget was exceeded" : "shutdown was requested"})`, nowMs, null);
    }
    const restarts = [...this.model.slots].reduce((sum, slot) => sum + Math.max(0, slot.spawns - 1), 0);
    const { limitMetric, checkMetric } = this.counted;
    const { only, maybe } = this.planned.sigterms;
    // [name, counted, happened at least, happened at most]
    const expectations: [string, number, number, number][] = [
      ["restarts_total", this.counted.restartMetric, restarts, restarts],
      ["sigkill_total", this.counted.sigkillMetric, this.counted.sigkills, this.counted.sigkills],
      ["limits_events_total{time}", limitMetric.time ?? 0, only.lifespan, only.lifespan + maybe.lifespan],
      ["limits_events_total{memory}", limitMetric.memory ?? 0, only.memory, only.memory + maybe.memory],
      ["limits_events_total{health}", limitMetric.health ?? 0, only.health, only.health + maybe.health],
      ["health_checks_total{ok}", checkMetric.ok ?? 0, this.checks.checkMetrics.ok, this.checks.checkMetrics.ok],
      ["health_checks_total{fail}", checkMetric.fail ?? 0, this.checks.checkMetrics.fail, this.checks.checkMetrics.fail],
      ["health_checks_total{timeout}", checkMetric.timeout ?? 0, this.checks.checkMetrics.timeout, this.checks.checkMetrics.timeout],
    ];
    for (const [name, counted, least, most] of expectations) {
      if (counted < least || counted > most) this.fail("metric counters equal the events", `${name} is ${counted} but ${least === most ? least : `${least} to ${most}`} happened`, nowMs, null);
    }
    const limitEvents = (limitMetric.time ?? 0) + (limitMetric.memory ?? 0) + (limitMetric.health ?? 0);
    const plannedSigterms = this.planned.sigterms.all;
    if (limitEvents !== plannedSigterms) this.fail("metric counters equal the events", `limits_events_total is ${limitEvents} in all but ${plannedSigterms} planned restarts got their SIGTERM`, nowMs, null);
  }

  private checkCommand(command: Command, nowMs: number): void {
    switch (command.type) {
      case "spawn": {
        const slot = this.model.slotOf(command.ref) as Slot;
        if (this.model.shuttingDown) this.fail("no spawn after shutdown began", `spawned ${slot.id} after shutdown began at ${this.model.shutdownBegunAtMs} ms`, nowMs, slot.id);
        this.model.onCommand(command, nowMs);
        return;
      }
      case "signal":
        this.checkSignal(command, nowMs);
        return;
      case "metric":
        if (command.metric === "restart") this.counted.restartMetric++;
        if (command.metric === "sigkill") this.counted.sigkillMetric++;
        if (command.metric === "limitEvent") this.counted.limitMetric[command.limitEvent] = (this.counted.limitMetric[command.limitEvent] ?? 0) + 1;
        if (command.metric === "healthCheck") this.counted.checkMetric[command.result] = (this.counted.checkMetric[command.result] ?? 0) + 1;
        return;
      case "exit":
        if (this.exitCode !== null) this.fail("exit once", "a second exit command", nowMs, null);
        this.exitCode = command.code;
        return;
      case "drainProxy": {
        const proxy = this.model.slotOf({ pool: command.pool, worker: PROXY_WORKER });
        if (proxy !== undefined) this.drained.set(command.pool, proxy.generation);
        return;
      }
      case "probe":
        this.checks.onProbe(command, nowMs);
        return;
      case "sampleMemory":
        this.checks.onSampleMemory(command, nowMs);
        return;
      case "proxyRotation":
        for (const endpoint of command.endpoints) {
          const key = rotationKey(command.pool, endpoint.worker);
          const before = this.rotation.get(key);
          if (before !== undefined && before.inRotation === endpoint.inRotation) continue;
          this.rotation.set(key, { inRotation: endpoint.inRotation, outSinceMs: nowMs });
        }
        return;
      default:
        return;
    }
  }

  private checkSignal(command: Extract<Command, { type: "signal" }>, nowMs: number): void {
    const pool = this.config.pools[command.ref.pool] as PoolConfig;
    const slot = this.model.current(command.ref);
    const current = slot !== null && slot.pid === command.pid;
    if (this.reportedEmpty.has(refKey(command.ref))) {
      const id = `${pool.name}-${command.ref.worker === PROXY_WORKER ? "proxy" : command.ref.worker}`;
      this.fail("no signal to a process group after it was reported empty (its pid may be another process's by then)", `${command.signal} to pid ${command.pid} of ${id}#${command.ref.generation}, whose group was reported empty`, nowMs, id);
    }
    const members = [...this.backend.alive()].filter((process) => process.pgid === command.pid);
    const forced = this.shutdownRequests >= 3;
    const isProxy = command.ref.worker === PROXY_WORKER;
    const id = slot?.id ?? `${pool.name}-${isProxy ? "proxy" : command.ref.worker}`;
    // Stopping the proxy; not its leftovers after a crash, nor an old incarnation given up on (those are stopped like any worker's).
    if (isProxy && !forced && members.length > 0 && current && slot.phase === "running") {
      const workersLeft = [...this.backend.alive()].filter((p) => p.request.ref.pool === command.ref.pool && p.request.ref.worker !== PROXY_WORKER && !this.abandoned(p, nowMs)).length;
      if (workersLeft > 0) this.fail("the proxy is signalled only after all workers of its pool exited", `${command.signal} to ${id} while ${workersLeft} process(es) of its pool's workers exist`, nowMs, id);
    }
    if (command.signal === "SIGKILL") {
      if (current && slot.sigkillAtMs === null) this.counted.sigkills++;
      for (const process of members) {
        const dueAtMs = process.sigtermAtMs === null ? Infinity : process.sigtermAtMs + this.timeoutOf(pool, isProxy);
        if (!forced && nowMs < dueAtMs) this.fail("SIGKILL only signal_timeout after SIGTERM", `${id} (pid ${process.pid}) got SIGKILL at ${nowMs} ms, SIGTERM was at ${process.sigtermAtMs} ms`, nowMs, id);
      }
      this.model.onCommand(command, nowMs);
      return;
    }
    const plannedStop = current && !this.model.shuttingDown && !isProxy && slot.phase === "running" && slot.sigtermAtMs === null && isPlannedCause(slot.stopping);
    if (plannedStop) this.planned.onSigterm(slot, nowMs);
    this.model.onCommand(command, nowMs);
    if (!plannedStop || slot.graceSigtermAtMs === null) return;
    // It was in the rotation: it must have left it rotation grace ago.
    const rotation = this.rotation.get(rotationKey(command.ref.pool, command.ref.worker));
    const outForMs = rotation === undefined || rotation.inRotation ? -1 : nowMs - rotation.outSinceMs;
    if (outForMs < SPEC.rotationGraceMs) {
      this.fail("a planned restart's SIGTERM comes rotation grace after the worker left the proxy's rotation", `${id} got SIGTERM ${outForMs < 0 ? "while in the rotation" : `${outForMs} ms after it left the rotation`} (grace ${SPEC.rotationGraceMs} ms)`, nowMs, id);
    }
  }

  /** Rules about what exists right now, checked against the fake processes themselves. */
  private checkWorld(nowMs: number): void {
    const ids = new Set<string>();
    const perPool: number[] = [];
    const inRotationOk = new Set<number>();
    for (const process of this.backend.alive()) {
      const { ref, env, workerId } = process.request;
      const pool = this.config.pools[ref.pool] as PoolConfig;
      if (!this.tracked.has(process.pid)) this.tracked.set(process.pid, process);
      this.checkDeadlines(process, nowMs);
      if (this.abandoned(process, nowMs)) continue;
      const slot = this.model.slotOf(ref) as Slot;
      if (ref.generation !== slot.generation) {
        this.fail("no slot is respawned while processes of its previous incarnation exist (unless given up on after SIGKILL + kill wait)", `${process.role} pid ${process.pid} of ${workerId}#${ref.generation} exists while #${slot.generation} was spawned (SIGKILL at ${process.sigkillAtMs} ms)`, nowMs, workerId);
      }
      if (ref.worker === PROXY_WORKER || process.role !== "leader") continue;
      if (process.sigtermAtMs === null) inRotationOk.add(rotationKey(ref.pool, ref.worker));
      const envId = env.MULTIPROCESS_WORKER_ID ?? "";
      if (ids.has(envId)) this.fail("every live worker has a unique id", `two live processes have MULTIPROCESS_WORKER_ID ${envId}`, nowMs, workerId);
      ids.add(envId);
      const count = (perPool[ref.pool] ?? 0) + 1;
      perPool[ref.pool] = count;
      if (count > pool.replicas) this.fail("live workers never exceed replicas", `pool ${pool.name} has ${count} live processes, replicas ${pool.replicas}`, nowMs, workerId);
    }
    for (const [key, state] of this.rotation) {
      if (state.inRotation && !inRotationOk.has(key)) {
        const id = `${this.config.pools[Math.floor(key / 65_536)]?.name}-${key % 65_536}`;
        this.fail("only running workers are in the proxy's rotation", `${id} is in rotation but is gone or was asked to stop`, nowMs, id);
      }
    }
    // Processes that exited since the last step: check the deadlines they lived through.
    for (const [pid, process] of this.tracked) {
      if (process.goneAtMs === null) continue;
      this.tracked.delete(pid);
      this.checkDeadlines(process, process.goneAtMs);
    }
    const begunAtMs = this.model.shutdownBegunAtMs;
    if (begunAtMs !== null && this.exitCode === null && nowMs > begunAtMs + this.shutdownBoundMs) {
      this.fail("shutdown finishes within max(signal_timeout) + kill wait", `still not exited ${nowMs - begunAtMs} ms after shutdown began (bound ${this.shutdownBoundMs} ms)`, nowMs, null);
    }
  }

  /** /health (see health-rule.ts) from the monitor's own count, against the core's answer. */
  private checkHealth(nowMs: number): void {
    const expected = expectHealthy(this.config, this.model, nowMs);
    const answered = this.options.coreHealthy(nowMs);
    if (answered !== expected) {
      const why = expected ? "" : ` (${healthShortfalls(this.config, this.model, nowMs).join("; ")})`;
      this.fail("/health says healthy exactly when every pool has its share of workers ready and up for min_uptime and its proxy running", `the core answers ${answered ? "healthy" : "unhealthy"}; expected ${expected ? "healthy" : "unhealthy"}${why}`, nowMs, null);
    }
    this.options.count(expected ? "healthy" : "unhealthy");
  }

  /** SIGKILL by signal_timeout after SIGTERM. */
  private checkDeadlines(process: FakeProcess, nowMs: number): void {
    const pool = this.config.pools[process.request.ref.pool] as PoolConfig;
    const workerId = process.request.workerId;
    const isProxy = process.request.ref.worker === PROXY_WORKER;
    const timeoutMs = this.timeoutOf(pool, isProxy);
    if (process.sigtermAtMs !== null && process.sigkillAtMs === null && nowMs > process.sigtermAtMs + timeoutMs) {
      this.fail("every process alive signal_timeout after SIGTERM gets SIGKILL", `${process.role} pid ${process.pid} of ${workerId} still alive without SIGKILL ${nowMs - process.sigtermAtMs} ms after SIGTERM (signal_timeout ${timeoutMs} ms)`, nowMs, workerId);
    }
  }

  /** Given up on by the core: SIGKILLed at least kill wait ago and still not gone. */
  private abandoned(process: FakeProcess, nowMs: number): boolean {
    return process.sigkillAtMs !== null && nowMs >= process.sigkillAtMs + SPEC.killWaitMs;
  }

  private timeoutOf(pool: PoolConfig, isProxy: boolean): number {
    return isProxy && pool.server !== null ? pool.server.signalTimeoutMs : pool.signalTimeoutMs;
  }

  private fail(invariant: string, detail: string, nowMs: number, workerId: string | null): never {
    throw new InvariantViolation(invariant, detail, nowMs, workerId);
  }
}
