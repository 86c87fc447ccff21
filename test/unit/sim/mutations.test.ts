// Each test breaks one rule of the real core (a copy of src/domain with one exact text replaced)
// and shows that the simulator catches it with a seed that replays the same violation. A mutant
// whose text is no longer found fails loudly: a refactor must update it, not silently skip it.
import { afterAll, describe, expect, it } from "vitest";
import { runSeed } from "../../../sim/run.js";
import { loadMutant, removeMutants, type Mutant } from "../../support/mutants.js";

/** Seeds searched per mutant, in order: deterministic, and a bound on the suite's time. */
const SEEDS_MAX = 2_000;

const MUTANTS: Mutant[] = [
  {
    name: "backoff-not-reset",
    breaks: "a long run resets the quick-exit streak (restart_policy)",
    file: "supervisor.ts",
    from: "worker.quickExits = cause.spawnFailed || ranForMs < policy.minUptimeMs ? worker.quickExits + 1 : 0;",
    to: "worker.quickExits = cause.spawnFailed || ranForMs < policy.minUptimeMs ? worker.quickExits + 1 : worker.quickExits;",
  },
  {
    name: "kill-wait-x10",
    breaks: "processes not gone 5 s after SIGKILL are given up on (the core waits 50 s; the monitor keeps its own 5 s)",
    file: "supervisor.ts",
    from: "killWaitMs: 5_000,",
    to: "killWaitMs: 50_000,",
  },
  {
    name: "health-ceil",
    breaks: "/health truncates the percentage of workers up (floor, not ceil)",
    file: "health.ts",
    from: "Math.floor((up * 100) / replicas)",
    to: "Math.ceil((up * 100) / replicas)",
  },
  {
    name: "proxy-backoff-not-reset",
    breaks: "a proxy that ran 10 s is restarted after the shortest delay again",
    file: "supervisor.ts",
    from: "    if (ranForMs >= TIMING.proxyStableAfterMs) worker.quickExits = 0;\n",
    to: "",
  },
  {
    name: "no-generation-check",
    breaks: "events about an old incarnation are recognised by their generation",
    file: "supervisor.ts",
    from: " || worker.generation !== ref.generation) return null;",
    to: ") return null;",
  },
  {
    name: "no-rotation-grace",
    breaks: "in proxy mode a lifespan restart leaves the rotation 100 ms before its SIGTERM",
    file: "supervisor.ts",
    from: "if (found.pool.proxy === null) {",
    to: "if (found.pool.proxy === null || found.pool.proxy !== null) {",
  },
  {
    name: "resource-errors-charged",
    breaks: "spawn failures for lack of a resource are not charged to max_restarts",
    file: "supervisor.ts",
    from: "if (!cause.resourceError && !takeRestart(state, pool, worker, nowMs, out)) return;",
    to: "if (!takeRestart(state, pool, worker, nowMs, out)) return;",
  },
  {
    name: "no-leftover-sigterm",
    breaks: "processes left in an exited worker's group get SIGTERM, then SIGKILL",
    file: "supervisor.ts",
    from: "if (!groupEmpty && worker.sigtermAtMs === null) {",
    to: "if (false) {",
  },
  {
    name: "no-output-drain",
    breaks: "output held open after the exit is waited for 2 s at most",
    file: "supervisor.ts",
    from: "if (!outputClosed) setTimer(out, nowMs + TIMING.outputDrainMs, { kind: \"outputDrain\", ref });",
    to: "",
  },
  {
    name: "no-spawn-retry-floor",
    breaks: "a failed spawn is retried no sooner than 100 ms, doubling",
    file: "supervisor.ts",
    from: "worker.restartAtMs = Math.max(worker.restartAtMs, nowMs + floorMs);",
    to: "",
  },
  {
    name: "leftovers-not-awaited",
    breaks: "a slot is freed only once nothing is left of its group",
    file: "supervisor.ts",
    from: "if (worker.status !== \"exiting\" || !worker.groupEmpty || !worker.outputClosed) return;",
    to: "if (worker.status !== \"exiting\" || !worker.outputClosed) return;",
  },
  {
    name: "window-ignored",
    breaks: "with restart_policy.window only the restarts within the window count",
    file: "supervisor.ts",
    from: "const counted = windowMs === null ? worker.restarts : worker.restartTimesMs.length;",
    to: "const counted = worker.restarts;",
  },
  {
    name: "backoff-doubles-early",
    breaks: "the second quick exit waits backoff_initial, the third twice that",
    file: "supervisor.ts",
    from: "doublingMs(policy.backoffInitialMs, policy.backoffMaxMs, quickExits - 2)",
    to: "doublingMs(policy.backoffInitialMs, policy.backoffMaxMs, quickExits - 1)",
  },
  {
    name: "health-ignores-min-uptime",
    breaks: "a worker counts for /health only once it has run min_uptime",
    file: "health.ts",
    from: "nowMs - worker.startedAtMs >= minUptimeMs",
    to: "nowMs - worker.startedAtMs >= 0",
  },
  {
    name: "health-ignores-proxy",
    breaks: "a pool whose proxy is not running is unhealthy",
    file: "health.ts",
    from: "!shuttingDown && proxyRunning !== false && ",
    to: "!shuttingDown && ",
  },
  {
    name: "sigkill-empty-group",
    breaks: "no SIGKILL goes to a group reported empty (its pid may be another process's by then)",
    file: "supervisor.ts",
    from: "      if (!mayHaveProcesses(found.worker)) return;\n",
    to: "",
  },
  {
    name: "kill-duplicate-spawned",
    breaks: "a second report that a process started is ignored, not answered with SIGKILL",
    file: "supervisor.ts",
    from: "    log(out, \"error\", \"Process reported as started twice; ignoring the second report\"",
    to: "    out.push({ type: \"signal\", ref, pid, signal: \"SIGKILL\" });\n    log(out, \"error\", \"Process reported as started twice; ignoring the second report\"",
  },
  {
    name: "third-signal-spares-a-spawning-worker",
    breaks: "a third signal SIGKILLs a worker that was being spawned, as soon as it has a pid",
    file: "supervisor.ts",
    from: "    if (state.shutdownRequests >= FORCE_AFTER_REQUESTS) kill(pool, worker, nowMs, out);\n    else requestStop(pool, worker, \"shutdown\", nowMs, out);",
    to: "    requestStop(pool, worker, \"shutdown\", nowMs, out);",
  },
];

afterAll(() => removeMutants());

describe("the simulator catches a core with a rule broken", () => {
  it.each(MUTANTS.map((mutant) => [mutant.name, mutant] as const))("%s", async (_name, mutant) => {
    const core = await loadMutant(mutant);
    let caught: { seed: number; message: string } | null = null;
    for (let seed = 1; seed <= SEEDS_MAX && caught === null; seed++) {
      const result = runSeed(seed, core);
      if (result.violation !== null) caught = { seed, message: result.violation.message };
    }
    expect(caught, `mutant ${mutant.name} (${mutant.breaks}) survived seeds 1–${SEEDS_MAX}`).not.toBeNull();
    const { seed, message } = caught as { seed: number; message: string };
    console.log(`mutant ${mutant.name}: caught by seed ${seed}: ${message}`);
    const replay = runSeed(seed, core);
    expect(replay.violation?.message, `mutant ${mutant.name}: seed ${seed} must replay the same violation`).toBe(message);
  });
});
