// What a run exercised: every event, timer, command, signal and metric kind of the core, every
// fault the memory backend can inject, and the behaviours the monitor recognises. The kind lists
// come from the core's types (`satisfies Record<…>`), so a kind added to the core without a line
// here fails the type check, and `make sim` fails when one of them never happened.
import { FAULT_KINDS } from "../src/backends/memory/memory-backend.js";
import type { Command, MetricEvent, Signal, SupervisorEvent, TimerPayload } from "../src/domain/types.js";

const EVENT_KINDS = {
  start: "the run began",
  spawned: "a process was reported started",
  spawnFailed: "a spawn failed",
  exited: "a leader's exit was reported",
  groupEmpty: "an exited worker's group became empty",
  outputClosed: "an exited worker's output closed",
  timer: "a timer fired",
  shutdownRequested: "SIGTERM/SIGINT reached Monoceros",
  checkResult: "a health check's result came",
  notify: "a worker sent an sd_notify datagram",
  memorySampled: "the memory of worker groups was sampled",
  scale: "an operator scaled a pool",
  restartRequested: "an operator asked for a rolling restart",
  reload: "a config reload (SIGHUP, ctl reload)",
} as const satisfies Record<SupervisorEvent["type"], string>;

const TIMER_KINDS = {
  stagger: "the next worker of a staggered start",
  restart: "a restart after a backoff or a failed spawn",
  lifespan: "a worker reached its lifespan",
  sigterm: "a planned restart's SIGTERM after the rotation grace",
  kill: "SIGKILL after signal_timeout",
  abandon: "gave up on processes kill wait after SIGKILL",
  outputDrain: "stopped waiting for an exited worker's output",
  check: "a health check was due (or its result overdue)",
  memorySample: "memory sampling was due",
  surgeTimeout: "a surge replacement's ready_timeout passed",
  settled: "a surge replacement ran min_uptime",
} as const satisfies Record<TimerPayload["kind"], string>;

const COMMAND_KINDS = {
  spawn: "spawn",
  signal: "signal",
  setTimer: "set a timer",
  cancelTimer: "cancel a timer",
  log: "log",
  metric: "metric",
  exit: "exit",
  proxyRotation: "tell the proxy its rotation",
  drainProxy: "drain the proxy",
  probe: "run a health check",
  sampleMemory: "sample the memory of worker groups",
  releaseLane: "release a lane's listen sockets",
  poolRemoved: "report a removed pool gone",
  reply: "answer an operator",
} as const satisfies Record<Command["type"], string>;

const SIGNAL_KINDS = {
  SIGTERM: "graceful stop",
  SIGUSR1: "HAProxy's soft stop",
  SIGKILL: "forced stop",
} as const satisfies Record<Signal, string>;

const METRIC_KINDS = {
  restart: "restarts_total",
  sigkill: "sigkill_total",
  limitEvent: "limits_events_total",
  healthCheck: "health_checks_total",
  plannedRestartFailed: "planned_restart_failures_total",
  configReload: "config_reloads_total",
  sigtermReceived: "sigterm_received",
} as const satisfies Record<MetricEvent["metric"], string>;

/** Every errno the scenarios make a spawn fail with (sim/scenario.ts draws from these keys). */
export const SPAWN_ERROR_KINDS = {
  ENOENT: "no such executable",
  EACCES: "not executable",
  EMFILE: "out of file descriptors (process)",
  ENFILE: "out of file descriptors (system)",
  EAGAIN: "out of processes",
  ENOMEM: "out of memory",
} as const;

/** What the monitor recognises in a run (counted by sim/slot-model.ts and sim/invariants.ts). */
export const BEHAVIOUR_KINDS = {
  backoffWait: "a quick exit restarted after a backoff",
  backoffReset: "a long run reset the quick-exit streak",
  spawnRetryWait: "a failed spawn retried after the floor",
  resourceErrorUncharged: "a resource spawn error not charged to max_restarts",
  windowForgotRestarts: "restarts older than restart_policy.window no longer counted",
  budgetExhausted: "a worker used up max_restarts",
  plannedRestart: "a planned restart's exit restarted at once, uncharged",
  lifespanRestart: "a lifespan restart started",
  memoryRestart: "a memory restart started (3 samples over limits.memory)",
  healthRestart: "a health restart started (failure_threshold counted failures in a row)",
  healthNotHeldBack: "a health restart started with max_unavailable others in flight",
  memoryUrgentNotHeldBack: "a memory restart over 2 × limits.memory started with max_unavailable others in flight",
  memoryUrgentWasHeldBack: "a held-back restart started at once by a memory sample over 2 × limits.memory",
  notHeldBackByItself: "a replacement due again before it was ready restarted, not held back by its own restart in flight",
  restartHeldBack: "a lifespan or memory restart held back by max_unavailable",
  heldBackStarted: "a held-back restart started once another was done",
  memoryCalledOff: "a held-back memory restart called off (memory under the limit again)",
  plannedRestartDone: "a planned restart done: the next incarnation became ready",
  plannedRestartEndedByExit: "a planned restart ended: its replacement exited on its own before it was ready",
  plannedRestartEndedBySpawnFailure: "a planned restart ended: its replacement failed to spawn",
  rotationGraceRestart: "a planned restart took a worker out of the rotation before its SIGTERM",
  rotationGraceUnready: "a worker the proxy was last told is in the rotation, not ready any more (failed in this step), got the rotation grace",
  readyAfterPass: "a worker with an http or exec check became ready by passing one",
  readyAfterNotify: "a notify worker became ready (READY=1)",
  uncountedFailure: "a check failed before the first counted one (readiness, start_period): not counted",
  outOfRotationOnFailure: "a ready worker left the rotation at a counted failure",
  passedAgain: "a worker passed again after counted failures",
  probeDeadline: "a probe without a result counted as a timeout at its deadline",
  checkNotMade: "a check that could not be made (a local error) not counted",
  stoppingLeftRotation: "a notify worker left the rotation with STOPPING=1",
  notifyNotReadyFailed: "a notify worker's counted check failed: keepalives, but no READY=1",
  notifyStoppingFailed: "a notify worker's counted check failed: it sent STOPPING=1 and runs on",
  proxyBackoffShortest: "a proxy restarted after the shortest delay",
  proxyBackoffGrown: "a proxy restarted after a grown delay",
  proxyBackoffReset: "a proxy that ran 10 s restarted after the shortest delay again",
  leftoverSigterm: "leftovers of an exited leader got SIGTERM",
  leftoversAtUnplannedExit: "a leader exited on its own with processes left in its group",
  leftoversAfterSigterm: "a stopped leader exited with processes left in its group",
  abandonedLeader: "gave up on a leader not gone after SIGKILL",
  abandonedLeftovers: "gave up on leftovers not gone after SIGKILL",
  outputDrained: "stopped waiting for output held open",
  abandonedAtExit: "a process given up on still existed at exit",
  forcedKill: "a third signal SIGKILLed everything",
  healthy: "/health healthy after a step",
  unhealthy: "/health unhealthy after a step",
} as const;

export type Behaviour = keyof typeof BEHAVIOUR_KINDS;

/** Every counter a run must have seen at least once, by name ("event spawned", "fault staleExited"…). */
export const COVERAGE_KINDS: readonly { name: string; meaning: string }[] = [
  ...Object.entries(EVENT_KINDS).map(([kind, meaning]) => ({ name: `event ${kind}`, meaning })),
  ...Object.entries(TIMER_KINDS).map(([kind, meaning]) => ({ name: `timer ${kind}`, meaning })),
  ...Object.entries(COMMAND_KINDS).map(([kind, meaning]) => ({ name: `command ${kind}`, meaning })),
  ...Object.entries(SIGNAL_KINDS).map(([kind, meaning]) => ({ name: `signal ${kind}`, meaning })),
  ...Object.entries(METRIC_KINDS).map(([kind, meaning]) => ({ name: `metric ${kind}`, meaning })),
  ...Object.entries(FAULT_KINDS).map(([kind, meaning]) => ({ name: `fault ${kind}`, meaning })),
  ...Object.entries(SPAWN_ERROR_KINDS).map(([kind, meaning]) => ({ name: `errno ${kind}`, meaning })),
  ...Object.entries(BEHAVIOUR_KINDS).map(([kind, meaning]) => ({ name: `behaviour ${kind}`, meaning })),
];

export type Coverage = Map<string, number>;

const names = <K extends string>(group: string, kinds: Record<K, string>) =>
  Object.fromEntries(Object.keys(kinds).map((kind) => [kind, `${group} ${kind}`])) as Record<K, string>;
const EVENT_NAMES = names("event", EVENT_KINDS);
const TIMER_NAMES = names("timer", TIMER_KINDS);
const COMMAND_NAMES = names("command", COMMAND_KINDS);
const SIGNAL_NAMES = names("signal", SIGNAL_KINDS);
const METRIC_NAMES = names("metric", METRIC_KINDS);

export function countStep(coverage: Coverage, event: SupervisorEvent, commands: readonly Command[]): void {
  bump(coverage, EVENT_NAMES[event.type]);
  if (event.type === "timer") bump(coverage, TIMER_NAMES[event.timer.kind]);
  if (event.type === "spawnFailed") bump(coverage, `errno ${event.errorCode}`);
  for (const command of commands) {
    bump(coverage, COMMAND_NAMES[command.type]);
    if (command.type === "signal") bump(coverage, SIGNAL_NAMES[command.signal]);
    if (command.type === "metric") bump(coverage, METRIC_NAMES[command.metric]);
  }
}

export function bump(coverage: Coverage, name: string, by = 1): void {
  coverage.set(name, (coverage.get(name) ?? 0) + by);
}

export function mergeCoverage(into: Coverage, from: Coverage): void {
  for (const [name, count] of from) bump(into, name, count);
}

/** The kinds that never happened, in the order of COVERAGE_KINDS. */
export function missingKinds(coverage: Coverage): string[] {
  return COVERAGE_KINDS.filter(({ name }) => (coverage.get(name) ?? 0) === 0).map(({ name }) => name);
}
