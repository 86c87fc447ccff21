// The vocabulary between the pure core and the runtime: events in, commands out.

/** Which process an event or command is about: a worker of a pool, in one of its incarnations. */
export interface WorkerRef {
  pool: number;
  worker: number;
  /** Incremented each time the worker is spawned, so a late event about an old process is recognisable. */
  generation: number;
}

/** SIGUSR1 is HAProxy's graceful stop (its SIGTERM stops at once). */
export type Signal = "SIGTERM" | "SIGUSR1" | "SIGKILL";

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
  | { kind: "outputDrain"; ref: WorkerRef };

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
  | { type: "shutdownRequested"; signal: string };

export type LogLevel = "debug" | "info" | "warn" | "error";

export type MetricEvent =
  | { metric: "restart"; pool: string; workerType: "worker" | "proxy" }
  | { metric: "sigkill"; pool: string }
  | { metric: "limitEvent"; pool: string; limitEvent: "time" | "memory" }
  | { metric: "sigtermReceived" };

export type Command =
  | { type: "spawn"; ref: WorkerRef; exec: string; args: readonly string[]; env: Readonly<Record<string, string>> }
  | { type: "signal"; ref: WorkerRef; pid: number; signal: Signal }
  | { type: "setTimer"; key: string; atMs: number; timer: TimerPayload }
  | { type: "cancelTimer"; key: string }
  | { type: "log"; level: LogLevel; msg: string; fields: Readonly<Record<string, unknown>> }
  | ({ type: "metric" } & MetricEvent)
  | { type: "exit"; code: number }
  /** Which workers the pool's proxy may send requests to: only those running and not asked to stop. */
  | { type: "proxyRotation"; pool: number; endpoints: readonly { worker: number; port: number; inRotation: boolean }[] }
  /** Shutdown began: the proxy stops accepting new connections and finishes those it has. */
  | { type: "drainProxy"; pool: number };

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
      return `${timer.kind}/${timer.ref.pool}/${timer.ref.worker}/${timer.ref.generation}`;
  }
}
