// The vocabulary between the pure core and the runtime: events in, commands out.
import type { Config } from "../config/types.js";
import type { ProxyLaunch } from "./state.js";

/** Which process an event or command is about: a worker of a pool, in one of its incarnations. */
export interface WorkerRef {
  pool: number;
  worker: number;
  /** Incremented each time the worker is spawned, so a late event about an old process is recognisable. */
  generation: number;
}

/** SIGUSR1 is HAProxy's graceful stop (its SIGTERM stops at once). */
export type Signal = "SIGTERM" | "SIGUSR1" | "SIGKILL";

/** Why a running worker is restarted on purpose; none of them counts against max_restarts. */
export type PlannedCause = "lifespan" | "memory" | "health" | "manual" | "reload";

/** A health check's outcome; "timeout" also when no result came at all. */
export type CheckResult = "ok" | "fail" | "timeout";

/** One check of one worker, as the runtime carries it out. */
export type ProbeSpec =
  | { kind: "http"; host: string; port: number; path: string }
  | { kind: "exec"; argv: readonly string[] }
  /** The readiness of a proxy-mode worker without a health check: its port accepts a connection. */
  | { kind: "tcp"; host: string; port: number };

/** What a timer is for; the runtime hands it back unchanged when the timer fires. */
export type TimerPayload =
  | { kind: "stagger"; pool: number }
  /** A worker's next start after a crash-loop backoff or a failed spawn. */
  | { kind: "restart"; pool: number; worker: number }
  | { kind: "lifespan"; ref: WorkerRef }
  | { kind: "sigterm"; ref: WorkerRef }
  | { kind: "kill"; ref: WorkerRef }
  | { kind: "abandon"; ref: WorkerRef }
  /** The leader exited but its pipes are still open (held by a leftover): stop waiting for them. */
  | { kind: "outputDrain"; ref: WorkerRef }
  /** The worker's next health check, or the deadline of the one in flight. */
  | { kind: "check"; ref: WorkerRef }
  /** The next memory sample of every pool with limits.memory. */
  | { kind: "memorySample" }
  /** A surge replacement that is not ready by now (ready_timeout) is given up on. */
  | { kind: "surgeTimeout"; ref: WorkerRef }
  /** A surge replacement in a supervisor-mode pool without a check counts as ready once it ran min_uptime. */
  | { kind: "settled"; ref: WorkerRef };

export type SupervisorEvent =
  | { type: "start" }
  | { type: "spawned"; ref: WorkerRef; pid: number }
  | { type: "spawnFailed"; ref: WorkerRef; errorCode: string; message: string }
  /**
   * The worker's leader process exited. `groupEmpty`: nothing is left in its process group;
   * `outputClosed`: its stdout and stderr reached end of file, so every line it wrote was forwarded.
   * Whatever is false now is reported later by groupEmpty / outputClosed.
   */
  | { type: "exited"; ref: WorkerRef; code: number | null; signal: string | null; groupEmpty: boolean; outputClosed: boolean }
  /** The last process of an exited worker's group is gone. */
  | { type: "groupEmpty"; ref: WorkerRef }
  /** An exited worker's stdout and stderr are closed. */
  | { type: "outputClosed"; ref: WorkerRef }
  | { type: "timer"; timer: TimerPayload }
  | { type: "shutdownRequested"; signal: string }
  /**
   * The outcome of a probe command; detail is one bounded line (why it failed). localError: the
   * probe could not be made for lack of a resource on Monoceros's side (EMFILE, ENFILE, EAGAIN,
   * ENOMEM): says nothing about the worker, so it is not counted.
   */
  | { type: "checkResult"; ref: WorkerRef; seq: number; result: CheckResult; detail: string; localError?: boolean }
  /** A datagram on the worker's NOTIFY_SOCKET (sd_notify); status is STATUS=…, bounded. */
  | { type: "notify"; ref: WorkerRef; ready: boolean; watchdog: boolean; stopping: boolean; status: string | null }
  /** The resident memory of each process group a sampleMemory command asked about. */
  | { type: "memorySampled"; samples: readonly { ref: WorkerRef; rssBytes: number }[] }
  /** An operator's request (ctl, SIGTTIN/SIGTTOU); answered by one reply command with the same requestId. */
  | { type: "scale"; requestId: number; pool: number; replicas: number }
  /** Replace the pool's running workers (worker null), or one, rolling and with surge. */
  | { type: "restartRequested"; requestId: number; pool: number; worker: number | null }
  /**
   * A new config (already validated) to apply: SIGHUP or ctl reload. proxyLaunches: how the proxy of
   * each pool it adds in proxy mode is launched, by pool name (its files were written by the runtime).
   */
  | { type: "reload"; requestId: number; config: Config; proxyLaunches?: Readonly<Record<string, ProxyLaunch>> };

export type LogLevel = "debug" | "info" | "warn" | "error";

export type MetricEvent =
  | { metric: "restart"; pool: string; workerType: "worker" | "proxy" }
  | { metric: "sigkill"; pool: string }
  | { metric: "limitEvent"; pool: string; limitEvent: "time" | "memory" | "health" }
  | { metric: "healthCheck"; pool: string; result: CheckResult }
  /** A surge replacement exited, failed to start or was not ready within ready_timeout: the old worker keeps serving. */
  | { metric: "plannedRestartFailed"; pool: string; cause: PlannedCause }
  | { metric: "configReload"; result: "success" | "failed" }
  | { metric: "sigtermReceived" };

export type Command =
  /** notify: give the worker a NOTIFY_SOCKET of its own (health_check.notify). */
  /** lane: which of the pool's listen socket sets the worker gets (null for the proxy). */
  | { type: "spawn"; ref: WorkerRef; exec: string; args: readonly string[]; env: Readonly<Record<string, string>>; notify: boolean; lane: number | null }
  | { type: "signal"; ref: WorkerRef; pid: number; signal: Signal }
  /** slackMs: the timer may fire up to this much late (rounded up to a multiple of it), to share a wake-up with others. */
  | { type: "setTimer"; key: string; atMs: number; timer: TimerPayload; slackMs?: number }
  | { type: "cancelTimer"; key: string }
  | { type: "log"; level: LogLevel; msg: string; fields: Readonly<Record<string, unknown>> }
  | ({ type: "metric" } & MetricEvent)
  | { type: "exit"; code: number }
  /** Which workers the pool's proxy may send requests to: only those running and not asked to stop. */
  | { type: "proxyRotation"; pool: number; endpoints: readonly { worker: number; port: number; inRotation: boolean }[] }
  /** Shutdown began: the proxy stops accepting new connections and finishes those it has. */
  | { type: "drainProxy"; pool: number }
  /** Run one health check of a running worker; its result comes back as checkResult with the same seq. */
  | { type: "probe"; ref: WorkerRef; seq: number; pid: number; probe: ProbeSpec; timeoutMs: number }
  /** Measure the resident memory of these workers' process groups; answered by memorySampled. */
  | { type: "sampleMemory"; groups: readonly { ref: WorkerRef; pid: number }[] }
  /** No slot of the pool uses this lane any more: its listen sockets (reuse_port) may be closed. */
  | { type: "releaseLane"; pool: number; lane: number }
  /** Nothing of a pool removed by a reload runs any more: its listen sockets and proxy state may go. */
  | { type: "poolRemoved"; pool: number }
  /** The answer to an operator's request: plan lines say what will happen. */
  | { type: "reply"; requestId: number; ok: boolean; message: string; plan: readonly string[] };

/** Each endpoint in rotation has a port; the proxy's own ref uses worker index -1 (PROXY_INDEX). */
export type ProxyRotation = Extract<Command, { type: "proxyRotation" }>;

/** One key per timer purpose, so setting a timer again replaces it and cancelling needs no handle. */
export function timerKey(timer: TimerPayload): string {
  switch (timer.kind) {
    case "stagger":
      return `stagger/${timer.pool}`;
    case "restart":
      return `restart/${timer.pool}/${timer.worker}`;
    case "lifespan":
    case "sigterm":
    case "kill":
    case "abandon":
    case "outputDrain":
    case "check":
    case "surgeTimeout":
    case "settled":
      return `${timer.kind}/${timer.ref.pool}/${timer.ref.worker}/${timer.ref.generation}`;
    case "memorySample":
      return "memorySample";
  }
}
