// Each test breaks one rule of the real core (a copy of src/domain with one exact text replaced)
// and shows that the simulator catches it with a seed that replays the same violation. A mutant
// whose text is no longer found fails loudly: a refactor must update it, not silently skip it.
// Not by chance: the violation must be of the invariant the mutant breaks (`catches`), and the
// real core must not have the same violation at that seed (a seed where it does is skipped).
import { afterAll, describe, expect, it } from "vitest";
import { runSeed } from "../../../sim/run.js";
import { loadMutant, removeMutants, type Mutant } from "../../support/mutants.js";

/** Seeds searched per mutant, in order: deterministic, and a bound on the suite's time. */
const SEEDS_MAX = 2_000;

/** A mutant and the invariants (a part of their statement) that catching it means. */
type CaughtMutant = Mutant & { catches: readonly string[] };

const RESTART_LATE = "a restart is never later than restart_policy and the slot allow";
const HEALTH_RULE = "/health says healthy exactly when";
const NOT_IN_ROTATION_UNLESS_READY = "never in the proxy's rotation unless ready";
const ROTATION_GRACE = "rotation grace before its SIGTERM";
const BUDGET = "max_restarts counts only unplanned restarts";
const STARVATION = "a held-back planned restart starts as soon as fewer than max_unavailable are in flight";
/** A worker failing failure_threshold counted checks in a row is restarted: at once, or (if the monitor saw the failures late) by its deadline. */
const HEALTH_RESTART_DUE = ["a health restart is never held back: it starts with the failure_threshold-th", "a worker failing failure_threshold counted checks in a row gets SIGTERM within"];

const MUTANTS: CaughtMutant[] = [
  {
    name: "backoff-not-reset",
    breaks: "a long run resets the quick-exit streak (restart_policy)",
    catches: [RESTART_LATE],
    file: "supervisor.ts",
    from: "worker.quickExits = cause.spawnFailed || ranForMs < policy.minUptimeMs ? worker.quickExits + 1 : 0;",
    to: "worker.quickExits = cause.spawnFailed || ranForMs < policy.minUptimeMs ? worker.quickExits + 1 : worker.quickExits;",
  },
  {
    name: "kill-wait-x10",
    breaks: "processes not gone 5 s after SIGKILL are given up on (the core waits 50 s; the monitor keeps its own 5 s)",
    catches: ["processes not gone kill wait after SIGKILL are given up on"],
    file: "supervisor.ts",
    from: "killWaitMs: 5_000,",
    to: "killWaitMs: 50_000,",
  },
  {
    name: "health-ceil",
    breaks: "/health truncates the percentage of workers up (floor, not ceil)",
    catches: [HEALTH_RULE],
    file: "health.ts",
    from: "Math.floor((up * 100) / replicas)",
    to: "Math.ceil((up * 100) / replicas)",
  },
  {
    name: "proxy-backoff-not-reset",
    breaks: "a proxy that ran 10 s is restarted after the shortest delay again",
    catches: [RESTART_LATE],
    file: "supervisor.ts",
    from: "    if (ranForMs >= TIMING.proxyStableAfterMs) worker.quickExits = 0;\n",
    to: "",
  },
  {
    name: "no-generation-check",
    breaks: "events about an old incarnation are recognised by their generation",
    catches: ["a slot is spawned again only once its previous incarnation ended"],
    file: "supervisor.ts",
    from: " || worker.generation !== ref.generation) return null;",
    to: ") return null;",
  },
  {
    name: "no-rotation-grace",
    breaks: "in proxy mode a planned restart takes a worker in the rotation out of it 100 ms before its SIGTERM",
    catches: [ROTATION_GRACE],
    file: "supervisor.ts",
    from: "  if (pool.proxy === null || pool.rotationKey[worker.index] !== \"1\") {",
    to: "  if (pool.proxy === null || pool.rotationKey[worker.index] !== \"1\" || pool.proxy !== null) {",
  },
  {
    name: "resource-errors-charged",
    breaks: "spawn failures for lack of a resource are not charged to max_restarts",
    catches: [BUDGET, "exit code"],
    file: "supervisor.ts",
    from: "if (!cause.resourceError && !takeRestart(state, pool, worker, nowMs, out)) return;",
    to: "if (!takeRestart(state, pool, worker, nowMs, out)) return;",
  },
  {
    name: "no-leftover-sigterm",
    breaks: "processes left in an exited worker's group get SIGTERM, then SIGKILL",
    catches: ["leftovers of an exited leader get SIGTERM at once"],
    file: "supervisor.ts",
    from: "if (!groupEmpty && worker.sigtermAtMs === null) {",
    to: "if (false) {",
  },
  {
    name: "no-output-drain",
    breaks: "output held open after the exit is waited for 2 s at most",
    catches: ["output is waited for at most outputDrain after the exit"],
    file: "supervisor.ts",
    from: "if (!outputClosed) setTimer(out, nowMs + TIMING.outputDrainMs, { kind: \"outputDrain\", ref });",
    to: "",
  },
  {
    name: "no-spawn-retry-floor",
    breaks: "a failed spawn is retried no sooner than 100 ms, doubling",
    catches: ["a restart is never earlier than restart_policy allows"],
    file: "supervisor.ts",
    from: "worker.restartAtMs = Math.max(worker.restartAtMs, nowMs + floorMs);",
    to: "",
  },
  {
    name: "leftovers-not-awaited",
    breaks: "a slot is freed only once nothing is left of its group",
    catches: ["the proxy is signalled only after all workers of its pool exited", "no process outlives Monoceros", "every process alive signal_timeout after SIGTERM gets SIGKILL", "a slot is spawned again only once nothing of its group is left"],
    file: "supervisor.ts",
    from: "if (worker.status !== \"exiting\" || !worker.groupEmpty || !worker.outputClosed) return;",
    to: "if (worker.status !== \"exiting\" || !worker.outputClosed) return;",
  },
  {
    name: "window-ignored",
    breaks: "with restart_policy.window only the restarts within the window count",
    catches: [BUDGET, "exit code"],
    file: "supervisor.ts",
    from: "const counted = windowMs === null ? worker.restarts : worker.restartTimesMs.length;",
    to: "const counted = worker.restarts;",
  },
  {
    name: "backoff-doubles-early",
    breaks: "the second quick exit waits backoff_initial, the third twice that",
    catches: [RESTART_LATE],
    file: "supervisor.ts",
    from: "doublingMs(policy.backoffInitialMs, policy.backoffMaxMs, quickExits - 2)",
    to: "doublingMs(policy.backoffInitialMs, policy.backoffMaxMs, quickExits - 1)",
  },
  {
    name: "health-ignores-min-uptime",
    breaks: "a worker counts for /health only once it has run min_uptime",
    catches: [HEALTH_RULE],
    file: "health.ts",
    from: "nowMs - worker.startedAtMs >= minUptimeMs",
    to: "nowMs - worker.startedAtMs >= 0",
  },
  {
    name: "health-ignores-proxy",
    breaks: "a pool whose proxy is not running is unhealthy",
    catches: [HEALTH_RULE],
    file: "health.ts",
    from: "!shuttingDown && proxyRunning !== false && ",
    to: "!shuttingDown && ",
  },
  {
    name: "sigkill-empty-group",
    breaks: "no SIGKILL goes to a group reported empty (its pid may be another process's by then)",
    catches: ["no signal to a process group after it was reported empty"],
    file: "supervisor.ts",
    from: "      if (!mayHaveProcesses(found.worker)) return;\n",
    to: "",
  },
  {
    name: "kill-duplicate-spawned",
    breaks: "a second report that a process started is ignored, not answered with SIGKILL",
    catches: ["no signal to a process group after it was reported empty"],
    file: "supervisor.ts",
    from: "    log(out, \"error\", \"Process reported as started twice; ignoring the second report\"",
    to: "    out.push({ type: \"signal\", ref, pid, signal: \"SIGKILL\" });\n    log(out, \"error\", \"Process reported as started twice; ignoring the second report\"",
  },
  {
    name: "third-signal-spares-a-spawning-worker",
    breaks: "a third signal SIGKILLs a worker that was being spawned, as soon as it has a pid",
    catches: ["a third signal SIGKILLs every process at once"],
    file: "supervisor.ts",
    from: "    if (state.shutdownRequests >= FORCE_AFTER_REQUESTS) kill(pool, worker, nowMs, out);\n    else requestStop(pool, worker, \"shutdown\", nowMs, out);",
    to: "    requestStop(pool, worker, \"shutdown\", nowMs, out);",
  },
  {
    name: "health-held-back",
    breaks: "a health restart is never held back by max_unavailable",
    catches: ["a health restart is never held back"],
    file: "supervisor.ts",
    from: "out: Out, gated = cause !== \"health\"): void {",
    to: "out: Out, gated = true): void {",
  },
  {
    name: "surge-old-stopped-before-ready",
    breaks: "with surge the old worker is stopped only once its replacement is ready",
    catches: ["with surge the old worker gets SIGTERM only once its replacement is ready"],
    file: "supervisor.ts",
    from: "  if (checkConfigOf(pool.config) === null && (replacement.startedAtMs === null",
    to: "  if (false && (replacement.startedAtMs === null",
  },
  {
    name: "surge-reuses-live-slot",
    breaks: "a replacement starts only in a vacant slot",
    catches: ["no two live processes share a worker id"],
    file: "supervisor.ts",
    from: "  for (const worker of pool.workers) if (worker.status === \"vacant\") return worker;",
    to: "  for (const worker of pool.workers) if (worker.status === \"vacant\" || worker.status === \"stopping\") return worker;",
  },
  {
    name: "removed-pool-restarts",
    breaks: "a pool removed by a reload starts nothing again",
    catches: ["a pool removed by a reload starts nothing again"],
    file: "supervisor.ts",
    from: "  if (pool.removal !== null) return;\n",
    to: "",
  },
  {
    name: "removed-pool-gone-early",
    breaks: "a removed pool is reported gone only once its proxy has stopped too",
    catches: ["a removed pool is reported gone once, when none of its processes is left"],
    file: "supervisor.ts",
    from: "    if (!processesOf(pool).every((worker) => worker.status === \"stopped\" || worker.status === \"vacant\")) continue;",
    to: "    if (!pool.workers.every((worker) => worker.status === \"stopped\" || worker.status === \"vacant\")) continue;",
  },
  {
    name: "scale-down-skips-rotation",
    breaks: "scaling down takes a worker out of the proxy's rotation before its SIGTERM",
    catches: ["a worker leaves the proxy's rotation before its SIGTERM"],
    file: "supervisor.ts",
    from: "  } else if (worker.status === \"running\") {\n    stopOutOfRotation(pool, worker, reason, nowMs, out);",
    to: "  } else if (worker.status === \"running\") {\n    requestStop(pool, worker, reason, nowMs, out);",
  },
  {
    name: "max-unavailable-ignored",
    breaks: "at most max_unavailable planned restarts of a pool are in flight when a lifespan or memory restart starts",
    catches: ["the planned restarts of its pool in flight (it included) are at most max_unavailable"],
    file: "supervisor.ts",
    from: "!gated ? null : inFlight >= pool.config.maxUnavailable ? \"max_unavailable\"",
    to: "!gated ? null : false ? \"max_unavailable\"",
  },
  {
    name: "memory-after-one-sample",
    breaks: "a memory restart needs 3 samples over limits.memory in a row",
    catches: ["no memory restart while the group is under limits.memory"],
    file: "supervisor.ts",
    from: "    if (worker.samplesOverLimit < CHECK_TIMING.memorySamplesOverLimit) continue;",
    to: "    if (worker.samplesOverLimit < 1) continue;",
  },
  {
    name: "memory-count-not-reset",
    breaks: "a sample at or under limits.memory resets the count of samples over it",
    catches: ["no memory restart while the group is under limits.memory"],
    file: "supervisor.ts",
    from: "      worker.samplesOverLimit = 0;\n      if (worker.heldBack",
    to: "      if (worker.heldBack",
  },
  {
    name: "memory-restart-not-called-off",
    breaks: "a sample at or under limits.memory calls off a held-back memory restart",
    catches: ["no memory restart while the group is under limits.memory"],
    file: "supervisor.ts",
    from: "      if (worker.heldBack?.cause === \"memory\") {",
    to: "      if (false) {",
  },
  {
    name: "failing-worker-kept-in-rotation",
    breaks: "a counted failure takes a worker out of the rotation",
    catches: [NOT_IN_ROTATION_UNLESS_READY, ROTATION_GRACE],
    file: "supervisor.ts",
    from: "  if (worker.ready) {\n    worker.ready = false;\n",
    to: "  if (worker.ready) {\n",
  },
  {
    name: "ready-at-spawn",
    breaks: "a worker with a health check is ready only after its first pass",
    catches: [NOT_IN_ROTATION_UNLESS_READY, HEALTH_RULE],
    file: "supervisor.ts",
    from: "  const check = checkConfigOf(pool.config);\n  if (check === null) {\n    markReady(pool, worker, nowMs, out);",
    to: "  const check = checkConfigOf(pool.config);\n  markReady(pool, worker, nowMs, out);\n  if (check === null) {\n    markReady(pool, worker, nowMs, out);",
  },
  {
    name: "stopping-ignored",
    breaks: "a notify worker that sent STOPPING=1 leaves the rotation",
    catches: [NOT_IN_ROTATION_UNLESS_READY],
    file: "supervisor.ts",
    from: "    check.stoppingSent = true;\n    worker.ready = false;",
    to: "    check.stoppingSent = true;",
  },
  {
    name: "health-counts-unready",
    breaks: "only ready workers count toward desired_healthy_percentage",
    catches: [HEALTH_RULE],
    file: "health.ts",
    from: "worker.status === \"running\" && worker.ready && ",
    to: "worker.status === \"running\" && ",
  },
  {
    name: "health-restart-charged",
    breaks: "a health restart never counts against max_restarts",
    catches: [BUDGET],
    file: "supervisor.ts",
    from: "wasStopReason !== null && wasStopReason !== \"shutdown\") {",
    to: "wasStopReason !== null && wasStopReason !== \"shutdown\" && wasStopReason !== \"health\") {",
  },
  {
    name: "health-threshold-ignored",
    breaks: "a health restart needs failure_threshold counted failures in a row",
    catches: ["a health restart follows failure_threshold counted failures in a row"],
    file: "supervisor.ts",
    from: "if (check.consecutiveFailures >= config.failureThreshold) {",
    to: "if (check.consecutiveFailures >= 1) {",
  },
  {
    name: "readiness-failures-counted",
    breaks: "failures before the first counted check (readiness checks, start_period) do not count",
    catches: ["a health restart follows failure_threshold counted failures in a row"],
    file: "supervisor.ts",
    from: "  if (!counted) return;\n",
    to: "",
  },
  {
    name: "no-result-grace",
    breaks: "a probe without a result counts as a timeout only at timeout + result grace after it started, or when the next counted check is due if sooner (never before its timeout)",
    catches: ["a probe without a result counts as a timeout only at timeout + result grace after it started, or when the next counted check is due if sooner (never before its timeout)"],
    file: "checks.ts",
    from: "const withGraceMs = startedAtMs + config.timeoutMs + CHECK_TIMING.resultGraceMs;",
    to: "const withGraceMs = startedAtMs + config.timeoutMs;",
  },
  {
    name: "held-back-never-started",
    breaks: "a held-back restart starts as soon as fewer than max_unavailable are in flight",
    catches: ["a held-back planned restart starts as soon as fewer than max_unavailable are in flight"],
    file: "supervisor.ts",
    from: "  startHeldBackRestarts(state, nowMs, out);\n",
    to: "",
  },
  {
    name: "held-back-newest-first",
    breaks: "held-back restarts start oldest first",
    catches: ["held-back planned restarts start oldest first"],
    file: "supervisor.ts",
    from: "worker.heldBack.sinceMs < (oldest.heldBack?.sinceMs ?? 0)",
    to: "worker.heldBack.sinceMs > (oldest.heldBack?.sinceMs ?? 0)",
  },
  {
    name: "planned-restart-not-ended-by-crash",
    breaks: "a planned restart whose replacement exits before it was ready ends (an ordinary crash restart): it no longer holds back the others",
    catches: [STARVATION],
    file: "supervisor.ts",
    from: "      endPlannedRestart(pool, worker, out);\n      decideRestart(state, pool, worker, ranForMs,",
    to: "      decideRestart(state, pool, worker, ranForMs,",
  },
  {
    name: "planned-restart-not-ended-by-spawn-failure",
    breaks: "a planned restart whose replacement fails to spawn ends: it no longer holds back the others",
    catches: [STARVATION],
    file: "supervisor.ts",
    from: "  endPlannedRestart(pool, worker, out);\n  decideRestart(state, pool, worker, 0, { spawnFailed: true",
    to: "  decideRestart(state, pool, worker, 0, { spawnFailed: true",
  },
  {
    name: "held-back-by-itself",
    breaks: "max_unavailable counts the planned restarts of the other workers: a replacement due again before it was ready is not held back by its own",
    catches: [STARVATION],
    file: "supervisor.ts",
    from: "  return plannedRestartsInFlight(pool) - (worker.plannedRestart === null ? 0 : 1);",
    to: "  return plannedRestartsInFlight(pool);",
  },
  {
    name: "urgent-memory-held-back",
    breaks: "a memory restart decided by a sample over 2 × limits.memory is not held back by max_unavailable",
    catches: ["limits.memory is never held back"],
    file: "supervisor.ts",
    from: "nowMs, out, !urgent);",
    to: "nowMs, out, true);",
  },
  {
    name: "grace-decided-on-ready",
    breaks: "the rotation grace is for a worker in the rotation the proxy was last told, not for one that is ready (failure_threshold 1: SIGTERM before it left the rotation)",
    catches: [ROTATION_GRACE],
    file: "supervisor.ts",
    from: "pool.rotationKey[worker.index] !== \"1\") {",
    to: "!worker.ready) {",
  },
  {
    name: "notify-keepalive-without-ready-passes",
    breaks: "a notify check passes only once READY=1 came (and no STOPPING=1): a worker that only pings is restarted for health",
    catches: HEALTH_RESTART_DUE,
    file: "supervisor.ts",
    from: "const passed = check.keepalive && check.readySent && !check.stoppingSent;",
    to: "const passed = check.keepalive;",
  },
];

afterAll(() => removeMutants());

describe("the simulator catches a core with a rule broken", () => {
  it.each(MUTANTS.map((mutant) => [mutant.name, mutant] as const))("%s", async (_name, mutant) => {
    const core = await loadMutant(mutant);
    let caught: { seed: number; message: string } | null = null;
    const otherViolations: string[] = [];
    for (let seed = 1; seed <= SEEDS_MAX && caught === null; seed++) {
      const violation = runSeed(seed, core).violation;
      if (violation === null) continue;
      const ofItsRule = mutant.catches.some((invariant) => violation.invariant.includes(invariant));
      if (ofItsRule && runSeed(seed).violation?.message !== violation.message) caught = { seed, message: violation.message };
      else if (otherViolations.length < 3) otherViolations.push(`seed ${seed}: ${violation.message}`);
    }
    expect(caught, `mutant ${mutant.name} (${mutant.breaks}) not caught by its rule in seeds 1–${SEEDS_MAX}; other violations: ${otherViolations.join("; ")}`).not.toBeNull();
    const { seed, message } = caught as { seed: number; message: string };
    console.log(`mutant ${mutant.name}: caught by seed ${seed}: ${message}`);
    const replay = runSeed(seed, core);
    expect(replay.violation?.message, `mutant ${mutant.name}: seed ${seed} must replay the same violation`).toBe(message);
  });
});
