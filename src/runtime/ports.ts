// The two seams between the shared runtime and the world: processes and time. The OS backend
// and the in-memory backend implement them; nothing else differs between production and the
// simulator.
import type { ProbeSpec, Signal, SupervisorEvent, WorkerRef } from "../domain/types.js";
import type { LogLevelName } from "../config/types.js";

export interface SpawnRequest {
  ref: WorkerRef;
  /** Pool and worker names, for backends that label output or processes. */
  poolName: string;
  workerId: string;
  exec: string;
  args: readonly string[];
  env: Readonly<Record<string, string>>;
  /** Give it a NOTIFY_SOCKET of its own and report its datagrams as notify events. */
  notify: boolean;
  /** Which of its pool's listen socket sets it gets (pools with `listen`); null for a proxy. */
  lane: number | null;
  /** The level of the records carrying its plain stderr lines (the pool's stderr_level). */
  stderrLevel: LogLevelName;
  /** Workers only (a proxy runs as Monoceros does): the pool's cwd, user and group; null: Monoceros's own. */
  cwd: string | null;
  user: string | null;
  group: string | null;
}

/** One health check of a running worker. */
export interface ProbeRequest {
  ref: WorkerRef;
  /** Handed back in checkResult. */
  seq: number;
  pid: number;
  probe: ProbeSpec;
  timeoutMs: number;
}

/**
 * Events a backend reports: exactly one of spawned/spawnFailed per spawn; after spawned, one
 * exited; after an exited with groupEmpty or outputClosed false, at most one groupEmpty and one
 * outputClosed each, possibly much later (a leftover that ignores signals may never go).
 */
export type BackendEvent = Extract<SupervisorEvent, { type: "spawned" | "spawnFailed" | "exited" | "groupEmpty" | "outputClosed" | "checkResult" | "notify" | "memorySampled" }>;

export interface ProcessStats {
  cpuSeconds: number;
  rssBytes: number;
  virtualMemoryBytes: number;
  openFds: number | null;
  maxFds: number | null;
  virtualMemoryMaxBytes: number | null;
  startTimeSeconds: number;
}

export interface ProcessBackend {
  /** Reports the outcome later through the sink given to attach(); never throws for a failed spawn. */
  spawn(request: SpawnRequest): void;
  /** Signals the process's whole group (its pid is the group's id); a group already gone is not an error. */
  signal(pid: number, signal: Signal): void;
  /** Resource use of a live process, or null if it is gone (optional until the admin endpoint reads it). */
  stats?(pid: number): ProcessStats | null;
  attach(sink: (event: BackendEvent) => void): void;
  /** Runs the check; reports one checkResult for it, within timeoutMs plus a bounded slack. */
  probe(request: ProbeRequest): void;
  /** Measures the resident memory of each process group; reports one memorySampled for them all. */
  sampleMemory(groups: readonly { ref: WorkerRef; pid: number }[]): void;
}

export interface TimerHandle {
  readonly id: number;
}

export interface Clock {
  nowMs(): number;
  setTimer(atMs: number, fire: () => void): TimerHandle;
  cancelTimer(handle: TimerHandle): void;
}
