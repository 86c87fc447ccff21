// What a fake process does, decided per spawn by a script, and the faults the memory backend can
// carry out. Plain data, so that a scenario can generate, print and replay it.
import type { SpawnRequest } from "../../runtime/ports.js";

export type SigtermBehaviour =
  | { kind: "exit"; afterMs: number; code: number | null; signal: string | null }
  | { kind: "ignore" };

/** A process the worker forked into its own group, which may outlive it. */
export interface FakeChildScript {
  /** Exits by itself this long after its leader exits; null: only a signal ends it. */
  exitAfterLeaderMs: number | null;
  /** What SIGTERM does to it (the code and signal are not reported: only a leader's exit is). */
  onSigterm: SigtermBehaviour;
  /** How long SIGKILL takes to end it: 0 or absent at once; more: stuck in D state; null: never. */
  sigkillDelayMs?: number | null;
  /** It inherited the worker's stdout and stderr and keeps them open while it lives. */
  holdsOutput: boolean;
  /** Its own resident memory (absent: CHILD_RSS_BYTES_DEFAULT) and how fast it grows: the group's sum is what limits.memory sees. */
  rssBytes?: number;
  rssGrowthBytesPerSecond?: number;
}

/** A child's resident memory when its script does not say. */
export const CHILD_RSS_BYTES_DEFAULT = 1024 * 1024;
/** A leader's resident memory when its script does not say. */
export const LEADER_RSS_BYTES_DEFAULT = 10 * 1024 * 1024;

/** Events a backend sends about one incarnation that can be sent again when stale. */
export type ReplayableEvent = "spawned" | "exited" | "groupEmpty" | "outputClosed";

export interface FakeProcessScript {
  /** Spawning fails with this error code (ENOENT, EACCES, EMFILE, ENFILE, EAGAIN, ENOMEM…). */
  spawnError?: string;
  /** How long the spawn takes to be reported (absent: the backend's latency); may be longer than other processes take to exit. */
  spawnLatencyMs?: number;
  /** Exits by itself this long after starting; null runs until signalled. */
  exitAfterMs: number | null;
  exitCode: number | null;
  exitSignal: string | null;
  onSigterm: SigtermBehaviour;
  /** How long SIGKILL takes to end the leader: 0 or absent at once; more: stuck in D state; null: never. */
  sigkillDelayMs?: number | null;
  /** The leader's exit is reported this long after it happened (until then it is a zombie: it exists, it does nothing). */
  exitReportDelayMs?: number;
  /** Processes in the worker's group besides its leader. */
  children?: readonly FakeChildScript[];
  /** A process outside the group (no signal to the group reaches it) holds the output this long after the leader exits; null: for ever. */
  outputHeldAfterExitMs?: number | null;
  /** Events about this incarnation sent again this long after its slot's next incarnation was reported started (stale duplicates). */
  staleReplays?: readonly { event: ReplayableEvent; afterMs: number }[];
  /** Resident memory at start, and how fast it grows (a leaking worker). */
  rssBytes?: number;
  rssGrowthBytesPerSecond?: number;
  /** The leader's memory falls back to rssBytes this often (a collector frees what grew): a worker over its limit for a while only. */
  rssDropEveryMs?: number;
  /** Health checks fail (connection refused) until this long after start; notify: READY=1 is sent then (absent: at once; Infinity: never). */
  readyAfterMs?: number;
  /** Health checks fail from this long after start on (undefined: always healthy); notify: keepalives stop then. */
  unhealthyAfterMs?: number;
  /** …until this long after start: then it passes again (notify: keepalives resume), a worker that recovers. Undefined: never. */
  healthyAgainAfterMs?: number;
  /** How an unhealthy worker answers: a failure, a timeout, or no result ever (a hung probe: the core's deadline must notice). */
  unhealthyAs?: "fail" | "timeout" | "hung";
  /** How long a check takes to answer (a slow answer past the check's timeout is a timeout). */
  probeLatencyMs?: number;
  /** Every n-th check of this worker cannot be made at all (Monoceros is out of file descriptors): a local error, which says nothing about the worker. */
  probeLocalErrorEvery?: number;
  /** notify: WATCHDOG=1 this often (absent: half of WATCHDOG_USEC, as sd_notify users do); also sends STATUS=… with each. */
  watchdogEveryMs?: number;
  /** notify: STOPPING=1 this long after start (keepalives go on, as they do while a service drains). */
  stoppingAfterMs?: number;
  /** notify: WATCHDOG=1 from the start, before READY=1 (which still comes at readyAfterMs, or never): a worker that pings but is not ready. */
  keepaliveBeforeReady?: boolean;
  /** Lines written to stdout right after start (for log tests). */
  lines?: readonly string[];
}

/** How a process answers a check ranMs after its start: refused before it listens, then healthy or not as its script says. */
export type CheckAnswer = "refused" | "ok" | "fail" | "timeout" | "hung";

export function checkAnswerAt(script: FakeProcessScript, ranMs: number): CheckAnswer {
  if (ranMs < (script.readyAfterMs ?? 0)) return "refused";
  return unhealthyAt(script, ranMs) ? (script.unhealthyAs ?? "fail") : "ok";
}

/** In [unhealthyAfterMs, healthyAgainAfterMs): failing its checks, or silent (notify). */
export function unhealthyAt(script: FakeProcessScript, ranMs: number): boolean {
  return script.unhealthyAfterMs !== undefined && ranMs >= script.unhealthyAfterMs && ranMs < (script.healthyAgainAfterMs ?? Infinity);
}

/** A leader's resident memory ranMs after its start: grown since the start, or since the last drop. */
export function leaderRssBytesAt(script: FakeProcessScript, ranMs: number): number {
  const grownMs = script.rssDropEveryMs === undefined ? ranMs : ranMs % script.rssDropEveryMs;
  return (script.rssBytes ?? LEADER_RSS_BYTES_DEFAULT) + Math.round(((script.rssGrowthBytesPerSecond ?? 0) * grownMs) / 1000);
}

export function childRssBytesAt(script: FakeChildScript, ranMs: number): number {
  return (script.rssBytes ?? CHILD_RSS_BYTES_DEFAULT) + Math.round(((script.rssGrowthBytesPerSecond ?? 0) * ranMs) / 1000);
}

/** Decides what the n-th spawn (0-based, across the backend) will do. */
export type ScriptFor = (request: SpawnRequest, spawnIndex: number) => FakeProcessScript;

export interface FakeProcess {
  readonly pid: number;
  /** The leader's pid: a signal to the group reaches every member. */
  readonly pgid: number;
  readonly role: "leader" | "child";
  readonly request: SpawnRequest;
  readonly script: FakeProcessScript;
  readonly startedAtMs: number;
  /** alive: runs; zombie: a leader that exited and whose exit is not reported yet (it exists, signals do nothing). */
  state: "alive" | "zombie";
  /** The first SIGTERM (or SIGUSR1) and SIGKILL it received. */
  sigtermAtMs: number | null;
  sigkillAtMs: number | null;
  /** When it stopped existing (a leader: when its exit was reported); null while it exists. */
  goneAtMs: number | null;
}

/** Faults the backend carried out, counted so a run can tell which of them it exercised. */
export const FAULT_KINDS = {
  slowSpawn: "a spawn reported later than the backend's usual latency",
  spawnError: "a spawn failed",
  leaderSurvivedSigkill: "a leader stuck in D state after SIGKILL (for a while or for ever)",
  childSurvivedSigkill: "a leftover child stuck in D state after SIGKILL",
  exitReportedLate: "a leader's exit reported after a delay (a zombie meanwhile)",
  exitAfterRespawn: "a genuine exit reported after the slot's next incarnation was spawned",
  leftoverAtExit: "a leader exited with children left in its group",
  groupEmptyLater: "groupEmpty reported after the exit",
  outputOpenAtExit: "a leader exited with its output still open",
  outputClosedLater: "outputClosed reported after the exit",
  staleSpawned: "a stale spawned sent again",
  staleExited: "a stale exited sent again",
  staleGroupEmpty: "a stale groupEmpty sent again",
  staleOutputClosed: "a stale outputClosed sent again",
  probeRefused: "a health check refused: the worker does not listen yet",
  probeLocalError: "a health check that could not be made (Monoceros short of a resource)",
  probeFailed: "a health check answered with a failure",
  probeTimedOut: "a health check not answered within its timeout",
  probeHung: "a health check never answered at all",
  probeRecovered: "a worker that was unhealthy passed a check again",
  keepalivesStopped: "a notify worker fell silent (no WATCHDOG=1)",
  keepalivesResumed: "a silent notify worker sent WATCHDOG=1 again",
  notifyStopping: "a notify worker sent STOPPING=1",
  keepaliveBeforeReady: "a notify worker sent WATCHDOG=1 before READY=1",
  rssDropped: "a worker's memory fell back (sampled lower than before)",
} as const;
export type FaultKind = keyof typeof FAULT_KINDS;
