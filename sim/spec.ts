// What the supervisor promises, restated for the monitor from the README rather than imported
// from the core: a second, independent path to every bound. A unit test checks that these
// figures agree with the core's TIMING, so a deliberate change must be made in both places.
import type { PoolConfig } from "../src/config/types.js";

export const SPEC = {
  /** A process not reported gone this long after SIGKILL is given up on ("abandoned"). */
  killWaitMs: 5_000,
  /** After a leader's exit, its output is waited for at most this long. */
  outputDrainMs: 2_000,
  /** In proxy mode a lifespan restart leaves the rotation this long before its SIGTERM. */
  rotationGraceMs: 100,
  /** A failed spawn is retried no sooner than 100 ms, doubling with each consecutive quick end, at most 5 s. */
  spawnRetryMinMs: 100,
  spawnRetryMaxMs: 5_000,
  /** A crashed proxy is restarted after 100 ms, doubling with each quick crash, at most 5 s… */
  proxyRestartBaseMs: 100,
  proxyRestartMaxMs: 5_000,
  /** …and a proxy that ran this long counts as stable: its next crash restarts after 100 ms again. */
  proxyStableAfterMs: 10_000,
  /** A probe without a result this long after its timeout counts as a timeout. */
  resultGraceMs: 1_000,
  /** A health check (or a probe's deadline) may come up to this much after it is due (checks of many workers share a wake-up). */
  checkTimerSlackMs: 50,
  /** Memory is sampled this often; this many samples over limits.memory in a row make a restart. */
  memorySampleIntervalMs: 1_000,
  memorySamplesOverLimit: 3,
  /** A memory restart decided by a sample over this many times limits.memory is never held back by max_unavailable. */
  memoryUrgentFactor: 2,
} as const;

/** Spawn errors that say the machine is short of a resource: retried, never charged to max_restarts. */
export const RESOURCE_ERRORS: ReadonlySet<string> = new Set(["EMFILE", "ENFILE", "EAGAIN", "ENOMEM"]);

/** 2^n without overflowing to Infinity for a long streak. */
const doubled = (baseMs: number, times: number): number => baseMs * 2 ** Math.min(times, 40);

/**
 * restart_policy: the first quick exit in a row restarts at once, the n-th (n ≥ 2) waits
 * backoff_initial × 2^(n−2), at most backoff_max. `quickExitsInARow` includes this exit.
 */
export function policyDelayMs(policy: PoolConfig["restartPolicy"], quickExitsInARow: number): number {
  if (quickExitsInARow <= 1 || policy.backoffInitialMs === 0) return 0;
  return Math.min(policy.backoffMaxMs, doubled(policy.backoffInitialMs, quickExitsInARow - 2));
}

/** A failed spawn's retry: never sooner than 100 ms × 2^(n−1) (at most 5 s), the policy's delay if longer. */
export function spawnRetryDelayMs(policy: PoolConfig["restartPolicy"], quickExitsInARow: number): number {
  const floorMs = Math.min(SPEC.spawnRetryMaxMs, doubled(SPEC.spawnRetryMinMs, Math.max(0, quickExitsInARow - 1)));
  return Math.max(policyDelayMs(policy, quickExitsInARow), floorMs);
}

/** The proxy's own policy: 100 ms × 2^(n−1) for its n-th quick crash in a row, at most 5 s. */
export function proxyDelayMs(quickCrashesInARow: number): number {
  return Math.min(SPEC.proxyRestartMaxMs, doubled(SPEC.proxyRestartBaseMs, quickCrashesInARow - 1));
}
