// The rules every run must keep, checked from outside the core: from the events it was given,
// the commands it returned, and the fake processes that really exist. A second, independent
// path to each property the core is meant to have.
import type { Config } from "../src/config/types.js";
import type { FakeProcess, MemoryBackend } from "../src/backends/memory/memory-backend.js";
import { PROXY_INDEX } from "../src/domain/state.js";
import { TIMING } from "../src/domain/supervisor.js";
import type { Command, SupervisorEvent } from "../src/domain/types.js";

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

interface Slot {
  poolIndex: number;
  id: string;
  spawns: number;
  /** When its restarts that count against max_restarts were charged (exits, spawn failures). */
  chargedEndsMs: number[];
  unplannedRestarts: number;
  /** Spawn failures for lack of a resource: restarted without a charge. */
  unchargedEnds: number;
  /** The last stop of this slot's process was a lifespan stop, so its next spawn is planned. */
  plannedNext: boolean;
}

const RESOURCE_ERRORS = new Set(["EMFILE", "ENFILE", "EAGAIN", "ENOMEM"]);

const slotKey = (pool: number, worker: number) => `${pool}/${worker}`;
const refKey = (ref: { pool: number; worker: number; generation: number }) => `${ref.pool}/${ref.worker}/${ref.generation}`;

export class InvariantMonitor {
  private readonly slots = new Map<string, Slot>();
  private shutdownBegunAtMs: number | null = null;
  private shutdownRequests = 0;
  private budgetExceeded = false;
  private exitCode: number | null = null;
  private readonly lifespanStoppedPids = new Set<number>();
  /** Live processes by worker incarnation, kept until their exit is checked. */
  private readonly tracked = new Map<string, FakeProcess>();
  /** Spawns asked for and not yet answered, per pool: a worker being started counts as there. */
  private readonly spawnsInFlight = new Map<number, number>();
  /** Proxy spawns per pool (restarts of the proxy are counted in restarts_total too). */
  private readonly proxySpawns = new Map<number, number>();
  private readonly proxySpawnsInFlight = new Map<number, number>();
  /** The last rotation sent for each proxy pool: which workers may get requests. */
  private readonly rotation = new Map<number, readonly { worker: number; inRotation: boolean }[]>();
  private readonly counted = { restartMetric: 0, sigkillMetric: 0, limitMetric: 0, sigkills: 0, lifespanStops: 0 };
  private readonly shutdownBoundMs: number;
  private readonly startupEndMs: number;

  constructor(
    private readonly config: Config,
    private readonly backend: MemoryBackend,
    private readonly faultFree: boolean,
  ) {
    config.pools.forEach((pool, poolIndex) => {
      for (let worker = 0; worker < pool.replicas; worker++) {
        this.slots.set(slotKey(poolIndex, worker), { poolIndex, id: `${pool.name}-${worker}`, spawns: 0, chargedEndsMs: [], unplannedRestarts: 0, unchargedEnds: 0, plannedNext: false });
      }
    });
    // Workers stop first, then each proxy: both phases may run to SIGKILL and the wait after it.
    const proxyBoundMs = Math.max(0, ...config.pools.map((pool) => (pool.server === null ? 0 : pool.server.signalTimeoutMs + TIMING.killWaitMs)));
    this.shutdownBoundMs = Math.max(...config.pools.map((pool) => pool.signalTimeoutMs)) + TIMING.killWaitMs + proxyBoundMs + TIMING.rotationGraceMs;
    this.startupEndMs = Math.max(...config.pools.map((pool) => (pool.replicas - 1) * pool.startupWaitMs));
  }

  get exited(): number | null {
    return this.exitCode;
  }

  /** Called for every event the core handled, with the commands it answered. */
  afterStep(event: SupervisorEvent, commands: readonly Command[], nowMs: number): void {
    this.noteEvent(event, nowMs);
    for (const command of commands) this.checkCommand(command, nowMs);
    this.checkWorld(nowMs);
  }

  /** Called when every event of one instant has been handled. */
  afterInstant(nowMs: number): void {
    if (!this.faultFree || this.shutdownBegunAtMs !== null || nowMs < this.startupEndMs || this.exitCode !== null) return;
    this.config.pools.forEach((pool, poolIndex) => {
      const proxyThere = (this.proxySpawnsInFlight.get(poolIndex) ?? 0) > 0 || [...this.backend.alive()].some((p) => p.request.ref.pool === poolIndex && p.request.ref.worker === PROXY_INDEX);
      if (pool.server !== null && !proxyThere) {
        this.fail("all replicas run once start-up is over", `the proxy of pool ${pool.name} is not running and nothing failed`, nowMs, null);
      }
      const present = this.aliveIn(poolIndex) + (this.spawnsInFlight.get(poolIndex) ?? 0);
      if (present !== pool.replicas) {
        this.fail("all replicas run once start-up is over", `pool ${pool.name} has ${present} of ${pool.replicas} workers running or starting, and nothing failed`, nowMs, null);
      }
    });
  }

  /** Called when the run is over. */
  finish(nowMs: number): void {
    if (this.exitCode === null) this.fail("shutdown finishes", "the run ended without an exit", nowMs, null);
    const left = [...this.backend.alive()];
    if (left.length > 0) this.fail("no process outlives Monoceros", `${left.length} process(es) alive at exit, e.g. pid ${left[0]?.pid}`, nowMs, left[0]?.request.workerId ?? null);
    const expectedCode = this.budgetExceeded ? 1 : 0;
    if (this.exitCode !== expectedCode) {
      this.fail("exit code", `exited ${this.exitCode}, expected ${expectedCode} (${this.budgetExceeded ? "a restart budget was exceeded" : "shutdown was requested"})`, nowMs, null);
    }
    const restarts =
      [...this.slots.values()].reduce((sum, slot) => sum + Math.max(0, slot.spawns - 1), 0) +
      [...this.proxySpawns.values()].reduce((sum, spawns) => sum + Math.max(0, spawns - 1), 0);
    const expectations: [string, number, number][] = [
      ["restarts_total", this.counted.restartMetric, restarts],
      ["sigkill_total", this.counted.sigkillMetric, this.counted.sigkills],
      ["limits_events_total{time}", this.counted.limitMetric, this.counted.lifespanStops],
    ];
    for (const [name, counted, happened] of expectations) {
      if (counted !== happened) this.fail("metric counters equal the events", `${name} is ${counted} but ${happened} happened`, nowMs, null);
    }
  }

  private noteEvent(event: SupervisorEvent, nowMs: number): void {
    if ((event.type === "spawned" || event.type === "spawnFailed") && event.ref.worker === PROXY_INDEX) {
      this.proxySpawnsInFlight.set(event.ref.pool, (this.proxySpawnsInFlight.get(event.ref.pool) ?? 0) - 1);
    }
    if ((event.type === "spawned" || event.type === "spawnFailed") && event.ref.worker !== PROXY_INDEX) {
      this.spawnsInFlight.set(event.ref.pool, (this.spawnsInFlight.get(event.ref.pool) ?? 0) - 1);
    }
    if (event.type === "exited") {
      const process = this.tracked.get(refKey(event.ref));
      this.tracked.delete(refKey(event.ref));
      // A process that exits on its own after a deadline passed was never checked at the deadline.
      if (process !== undefined) this.checkDeadlines(process, nowMs);
    }
    if (event.type === "shutdownRequested") {
      this.shutdownRequests++;
      this.shutdownBegunAtMs ??= nowMs;
      return;
    }
    if (this.shutdownBegunAtMs !== null) return;
    if (event.type !== "exited" && event.type !== "spawnFailed") return;
    if (event.ref.worker === PROXY_INDEX) return; // a proxy has no restart budget
    const slot = this.slots.get(slotKey(event.ref.pool, event.ref.worker)) as Slot;
    if (slot.plannedNext && event.type === "exited") return;
    // A machine short of a resource is not the worker's fault: such spawn failures are not charged.
    if (event.type === "spawnFailed" && RESOURCE_ERRORS.has(event.errorCode)) {
      slot.unchargedEnds++;
      return;
    }
    const pool = this.config.pools[slot.poolIndex];
    const windowMs = pool?.restartPolicy.windowMs ?? null;
    const charged = windowMs === null ? slot.chargedEndsMs.length : slot.chargedEndsMs.filter((atMs) => atMs > nowMs - windowMs).length;
    if (charged + 1 > (pool?.maxRestarts ?? 0)) {
      this.budgetExceeded = true;
      this.shutdownBegunAtMs = nowMs;
      return;
    }
    slot.chargedEndsMs.push(nowMs);
  }

  private checkCommand(command: Command, nowMs: number): void {
    switch (command.type) {
      case "spawn": {
        if (command.ref.worker === PROXY_INDEX) {
          if (this.shutdownBegunAtMs !== null) this.fail("no spawn after shutdown began", `spawned the proxy of pool ${command.ref.pool} after shutdown began`, nowMs, null);
          this.proxySpawns.set(command.ref.pool, (this.proxySpawns.get(command.ref.pool) ?? 0) + 1);
          this.proxySpawnsInFlight.set(command.ref.pool, (this.proxySpawnsInFlight.get(command.ref.pool) ?? 0) + 1);
          return;
        }
        const slot = this.slots.get(slotKey(command.ref.pool, command.ref.worker)) as Slot;
        this.spawnsInFlight.set(command.ref.pool, (this.spawnsInFlight.get(command.ref.pool) ?? 0) + 1);
        if (this.shutdownBegunAtMs !== null) this.fail("no spawn after shutdown began", `spawned ${slot.id} after shutdown began at ${this.shutdownBegunAtMs} ms`, nowMs, slot.id);
        slot.spawns++;
        if (slot.spawns > 1 && !slot.plannedNext) slot.unplannedRestarts++;
        slot.plannedNext = false;
        const maxRestarts = this.config.pools[slot.poolIndex]?.maxRestarts ?? 0;
        if (this.config.pools[slot.poolIndex]?.restartPolicy.windowMs === null && slot.unplannedRestarts - slot.unchargedEnds > maxRestarts) this.fail("restarts never exceed max_restarts", `${slot.id} restarted ${slot.unplannedRestarts} times, max_restarts ${maxRestarts}`, nowMs, slot.id);
        return;
      }
      case "signal": {
        const process = [...this.backend.alive()].find((p) => p.pid === command.pid);
        if (process === undefined) return;
        const pool = this.config.pools[command.ref.pool];
        const id = process.request.workerId;
        if (pool === undefined) return;
        const forced = this.shutdownRequests >= 3;
        const isProxy = command.ref.worker === PROXY_INDEX;
        if (isProxy && !forced) {
          const workersLeft = [...this.backend.alive()].filter((p) => p.request.ref.pool === command.ref.pool && p.request.ref.worker !== PROXY_INDEX).length;
          if (workersLeft > 0) this.fail("the proxy is signalled only after all workers of its pool exited", `${command.signal} to ${id} while ${workersLeft} worker(s) of its pool are alive`, nowMs, id);
        }
        if (command.signal === "SIGKILL") {
          this.counted.sigkills++;
          const dueAtMs = process.sigtermAtMs === null ? Infinity : process.sigtermAtMs + this.timeoutOf(pool, isProxy);
          if (!forced && nowMs < dueAtMs) this.fail("SIGKILL only signal_timeout after SIGTERM", `${id} got SIGKILL at ${nowMs} ms, SIGTERM was at ${process.sigtermAtMs} ms`, nowMs, id);
          return;
        }
        if (isProxy || this.shutdownBegunAtMs !== null || this.lifespanStoppedPids.has(process.pid)) return;
        // A SIGTERM while running normally can only be a lifespan restart.
        const { lifespanMs, jitterRatio } = pool.limits;
        const earliest = process.startedAtMs + lifespanMs;
        const latest = process.startedAtMs + lifespanMs * (1 + jitterRatio) + this.rotationGraceOf(pool);
        if (lifespanMs === 0 || nowMs < earliest || nowMs > latest) {
          this.fail("lifespan restarts happen within [lifespan, lifespan × (1 + jitter_ratio)]", `${id} got SIGTERM ${nowMs - process.startedAtMs} ms after start; lifespan ${lifespanMs} ms, jitter ${jitterRatio}`, nowMs, id);
        }
        this.lifespanStoppedPids.add(process.pid);
        this.counted.lifespanStops++;
        const slot = this.slots.get(slotKey(command.ref.pool, command.ref.worker)) as Slot;
        slot.plannedNext = true;
        return;
      }
      case "metric":
        if (command.metric === "restart") this.counted.restartMetric++;
        if (command.metric === "sigkill") this.counted.sigkillMetric++;
        if (command.metric === "limitEvent") this.counted.limitMetric++;
        return;
      case "exit":
        if (this.exitCode !== null) this.fail("exit once", "a second exit command", nowMs, null);
        this.exitCode = command.code;
        return;
      case "proxyRotation":
        this.rotation.set(command.pool, command.endpoints);
        return;
      default:
        return;
    }
  }

  /** Rules about what exists right now, checked against the fake processes themselves. */
  private checkWorld(nowMs: number): void {
    const ids = new Set<string>();
    const perPool = new Map<number, number>();
    const inRotationOk = new Set<string>();
    for (const process of this.backend.alive()) {
      const { ref, env, workerId } = process.request;
      const pool = this.config.pools[ref.pool];
      if (pool === undefined) continue;
      if (!this.tracked.has(refKey(ref))) this.tracked.set(refKey(ref), process);
      this.checkDeadlines(process, nowMs);
      if (ref.worker === PROXY_INDEX) continue;
      if (process.sigtermAtMs === null) inRotationOk.add(`${ref.pool}/${ref.worker}`);
      const envId = env.MULTIPROCESS_WORKER_ID ?? "";
      if (ids.has(envId)) this.fail("every live worker has a unique id", `two live processes have MULTIPROCESS_WORKER_ID ${envId}`, nowMs, workerId);
      ids.add(envId);
      const count = (perPool.get(ref.pool) ?? 0) + 1;
      perPool.set(ref.pool, count);
      if (count > pool.replicas) this.fail("live workers never exceed replicas", `pool ${pool.name} has ${count} live processes, replicas ${pool.replicas}`, nowMs, workerId);
    }
    for (const [poolIndex, endpoints] of this.rotation) {
      for (const endpoint of endpoints) {
        if (endpoint.inRotation && !inRotationOk.has(`${poolIndex}/${endpoint.worker}`)) {
          const id = `${this.config.pools[poolIndex]?.name}-${endpoint.worker}`;
          this.fail("only running workers are in the proxy's rotation", `${id} is in rotation but is gone or was asked to stop`, nowMs, id);
        }
      }
    }
    if (this.shutdownBegunAtMs !== null && this.exitCode === null && nowMs > this.shutdownBegunAtMs + this.shutdownBoundMs) {
      this.fail("shutdown finishes within max(signal_timeout) + kill wait", `still not exited ${nowMs - this.shutdownBegunAtMs} ms after shutdown began (bound ${this.shutdownBoundMs} ms)`, nowMs, null);
    }
  }

  /** SIGKILL by signal_timeout after SIGTERM; a lifespan stop by lifespan × (1 + jitter_ratio) after start. */
  private checkDeadlines(process: FakeProcess, nowMs: number): void {
    const pool = this.config.pools[process.request.ref.pool];
    if (pool === undefined) return;
    const workerId = process.request.workerId;
    const isProxy = process.request.ref.worker === PROXY_INDEX;
    const timeoutMs = this.timeoutOf(pool, isProxy);
    if (process.sigtermAtMs !== null && process.sigkillAtMs === null && nowMs > process.sigtermAtMs + timeoutMs) {
      this.fail("every worker alive signal_timeout after SIGTERM gets SIGKILL", `${workerId} still alive without SIGKILL ${nowMs - process.sigtermAtMs} ms after SIGTERM (signal_timeout ${timeoutMs} ms)`, nowMs, workerId);
    }
    if (isProxy) return;
    const { lifespanMs, jitterRatio } = pool.limits;
    if (this.shutdownBegunAtMs === null && lifespanMs > 0 && process.sigtermAtMs === null && nowMs > process.startedAtMs + lifespanMs * (1 + jitterRatio) + this.rotationGraceOf(pool)) {
      this.fail("lifespan restarts happen within [lifespan, lifespan × (1 + jitter_ratio)]", `${workerId} has run ${nowMs - process.startedAtMs} ms without a lifespan restart (lifespan ${lifespanMs} ms, jitter ${jitterRatio})`, nowMs, workerId);
    }
  }

  /** In proxy mode a lifespan stop leaves the rotation first and gets its SIGTERM this much later. */
  private rotationGraceOf(pool: Config["pools"][number]): number {
    return pool.server === null ? 0 : TIMING.rotationGraceMs;
  }

  private timeoutOf(pool: Config["pools"][number], isProxy: boolean): number {
    return isProxy && pool.server !== null ? pool.server.signalTimeoutMs : pool.signalTimeoutMs;
  }

  private aliveIn(poolIndex: number): number {
    let count = 0;
    for (const process of this.backend.alive()) if (process.request.ref.pool === poolIndex && process.request.ref.worker !== PROXY_INDEX) count++;
    return count;
  }

  private fail(invariant: string, detail: string, nowMs: number, workerId: string | null): never {
    throw new InvariantViolation(invariant, detail, nowMs, workerId);
  }
}
