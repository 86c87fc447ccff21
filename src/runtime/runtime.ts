// Connects a backend and a clock to the pure core: feeds it events one at a time and carries
// out the commands it returns. The same code runs with real processes and in the simulator.
import { step as coreStep } from "../domain/supervisor.js";
import { PROXY_INDEX, type SupervisorState } from "../domain/state.js";
import type { Command, MetricEvent, SupervisorEvent } from "../domain/types.js";
import type { Clock, ProcessBackend, TimerHandle } from "./ports.js";

export interface RuntimeHooks {
  log?: (level: "debug" | "info" | "warn" | "error", msg: string, fields: Readonly<Record<string, unknown>>) => void;
  metric?: (event: MetricEvent) => void;
  exit?: (code: number) => void;
  /** Proxy mode: the rotation changed, or the proxy must drain (the data plane carries it out). */
  proxy?: (command: Extract<Command, { type: "proxyRotation" | "drainProxy" }>) => void;
  /** The core's answer to an operator's request (scale, restartRequested). */
  reply?: (command: Extract<Command, { type: "reply" }>) => void;
  /** No slot of a pool uses this lane any more (its listen sockets may be closed). */
  releaseLane?: (pool: number, lane: number) => void;
  /** Nothing of a pool a reload removed runs any more (its sockets and proxy state may go). */
  poolRemoved?: (pool: number) => void;
  /** Sees every event and the commands the core answered it with, once they were carried out (simulator, tests). */
  observe?: (event: SupervisorEvent, commands: readonly Command[], nowMs: number) => void;
}

export type StepFunction = typeof coreStep;

/** Events handled in one drain before yielding; a bound against a feedback loop between core and backend. */
const EVENTS_PER_DRAIN_MAX = 100_000;

export class Runtime {
  private readonly timers = new Map<string, TimerHandle>();
  private readonly queue: SupervisorEvent[] = [];
  private draining = false;
  private exitCode: number | null = null;

  constructor(
    readonly state: SupervisorState,
    private readonly backend: ProcessBackend,
    private readonly clock: Clock,
    private readonly hooks: RuntimeHooks = {},
    /** The core's decision function; replaceable only so tests can prove the simulator catches a broken one. */
    private readonly step: StepFunction = coreStep,
  ) {
    backend.attach((event) => this.dispatch(event));
  }

  get exited(): number | null {
    return this.exitCode;
  }

  start(): void {
    this.dispatch({ type: "start" });
  }

  /** Queues an event; handled at once unless an event is being handled already (no re-entrance). */
  dispatch(event: SupervisorEvent): void {
    this.queue.push(event);
    if (this.draining) return;
    this.draining = true;
    try {
      for (let handled = 0; this.queue.length > 0; handled++) {
        if (handled >= EVENTS_PER_DRAIN_MAX) throw new Error(`more than ${EVENTS_PER_DRAIN_MAX} events without a pause`);
        this.handle(this.queue.shift() as SupervisorEvent);
      }
    } finally {
      this.draining = false;
    }
  }

  private handle(event: SupervisorEvent): void {
    const nowMs = this.clock.nowMs();
    const commands = this.step(this.state, event, nowMs);
    for (const command of commands) this.execute(command);
    this.hooks.observe?.(event, commands, nowMs);
  }

  private execute(command: Command): void {
    switch (command.type) {
      case "spawn": {
        const pool = this.state.pools[command.ref.pool];
        const worker = command.ref.worker === PROXY_INDEX ? pool?.proxy : pool?.workers[command.ref.worker];
        this.backend.spawn({
          ref: command.ref,
          poolName: pool?.config.name ?? "",
          workerId: worker?.id ?? "",
          exec: command.exec,
          args: command.args,
          env: command.env,
          notify: command.notify,
          lane: command.lane,
          stderrLevel: pool?.config.stderrLevel ?? "error",
          ...(command.ref.worker === PROXY_INDEX || pool === undefined
            ? { cwd: null, user: null, group: null }
            : { cwd: pool.config.cwd, user: pool.config.user, group: pool.config.group }),
        });
        return;
      }
      case "probe":
        this.backend.probe({ ref: command.ref, seq: command.seq, pid: command.pid, probe: command.probe, timeoutMs: command.timeoutMs });
        return;
      case "sampleMemory":
        this.backend.sampleMemory(command.groups);
        return;
      case "signal":
        this.backend.signal(command.pid, command.signal);
        return;
      case "setTimer": {
        const existing = this.timers.get(command.key);
        if (existing !== undefined) this.clock.cancelTimer(existing);
        const { key, timer, slackMs } = command;
        const atMs = slackMs === undefined || slackMs <= 0 ? command.atMs : Math.ceil(command.atMs / slackMs) * slackMs;
        this.timers.set(
          key,
          this.clock.setTimer(atMs, () => {
            this.timers.delete(key);
            this.dispatch({ type: "timer", timer });
          }),
        );
        return;
      }
      case "cancelTimer": {
        const existing = this.timers.get(command.key);
        if (existing === undefined) return;
        this.clock.cancelTimer(existing);
        this.timers.delete(command.key);
        return;
      }
      case "log":
        this.hooks.log?.(command.level, command.msg, command.fields);
        return;
      case "metric":
        this.hooks.metric?.(command);
        return;
      case "exit":
        this.exitCode = command.code;
        for (const handle of this.timers.values()) this.clock.cancelTimer(handle);
        this.timers.clear();
        this.hooks.exit?.(command.code);
        return;
      case "proxyRotation":
      case "drainProxy":
        this.hooks.proxy?.(command);
        return;
      case "reply":
        this.hooks.reply?.(command);
        return;
      case "releaseLane":
        this.hooks.releaseLane?.(command.pool, command.lane);
        return;
      case "poolRemoved":
        this.hooks.poolRemoved?.(command.pool);
        return;
    }
  }
}
