// When a worker's health is checked and what one check is, as pure functions of its state.
//
// Two kinds of checks run per incarnation (http and exec; notify has only the second):
// - counted checks, at spawn + start_period + interval and every interval after: their failures
//   count toward failure_threshold;
// - readiness checks, before the first pass only: 100 ms after spawn, doubling up to the
//   interval, so a worker joins the rotation as soon as it answers, not an interval later.
//   They never count as failures.
// One check is in flight per worker at a time (timeout ≤ interval), and one without a result is
// given up on when the next counted check is due at the latest, so counted checks after the first
// counted failure are interval apart (plus the timer slack): a worker that fails failure_threshold
// counted checks in a row is decided at most interval × failure_threshold after its first.
import type { HealthCheckConfig, PoolConfig } from "../config/types.js";
import { parseTemplate } from "../config/port-template.js";
import { workerPort } from "./identity.js";
import type { CheckState, WorkerState } from "./state.js";
import type { ProbeSpec } from "./types.js";

export const CHECK_TIMING = {
  /** The first readiness check after spawn; the next ones double, up to the interval. */
  readinessFirstMs: 100,
  /** A probe whose result has not come this long after its timeout counts as a timeout (or when the next counted check is due, if sooner). */
  resultGraceMs: 1_000,
  /** Memory is sampled this often; this many samples over the limit in a row make a restart. */
  memorySampleIntervalMs: 1_000,
  memorySamplesOverLimit: 3,
  /** A worker over this many times its limit is restarted even when max_unavailable would hold it back. */
  memoryUrgentFactor: 2,
  /**
   * Check timers are rounded up to a multiple of this, so the checks of many workers start in one
   * wake-up of the event loop instead of one each (a wake-up costs about as much as the probe).
   */
  timerSlackMs: 50,
} as const;

/** Where the proxy reaches workers (the data planes' files say the same). */
export const WORKER_HOST = "127.0.0.1";

/**
 * Proxy-mode workers without a health check are ready once their port accepts a connection:
 * readiness checks only (100 ms, doubling to a second), never counted, none after the first pass.
 */
const PROXY_READINESS: HealthCheckConfig = { probe: { kind: "tcp" }, intervalMs: 1_000, timeoutMs: 1_000, failureThreshold: Infinity, startPeriodMs: Infinity };

/** The checks a pool's workers get: its health_check, the implicit readiness check of a proxy pool, or none. */
export function checkConfigOf(pool: PoolConfig): HealthCheckConfig | null {
  return pool.healthCheck ?? (pool.server === null ? null : PROXY_READINESS);
}

/** The first counted check of an incarnation spawned at nowMs. */
export function firstCountedAtMs(check: HealthCheckConfig, spawnedAtMs: number): number {
  return spawnedAtMs + check.startPeriodMs + check.intervalMs;
}

/** When the next check starts (the previous one has ended at nowMs). */
export function nextCheckAtMs(config: HealthCheckConfig, state: CheckState, lastStartedAtMs: number, nowMs: number): number {
  if (config.probe.kind === "notify" || state.passedOnce) return Math.max(nowMs, state.nextCountedAtMs);
  const readinessDelayMs = Math.min(config.intervalMs, CHECK_TIMING.readinessFirstMs * 2 ** Math.min(30, state.started));
  return Math.max(nowMs, Math.min(lastStartedAtMs + readinessDelayMs, state.nextCountedAtMs));
}

/**
 * When a probe started at startedAtMs without a result counts as a timeout: resultGraceMs after its
 * timeout, but no later than the next counted check is due (a hung probe must not push the counted
 * checks further apart than the interval), and never before its own timeout.
 */
export function probeDeadlineMs(config: HealthCheckConfig, nextCountedAtMs: number, startedAtMs: number): number {
  const withGraceMs = startedAtMs + config.timeoutMs + CHECK_TIMING.resultGraceMs;
  return Math.max(startedAtMs + config.timeoutMs, Math.min(withGraceMs, nextCountedAtMs));
}

/** A check starting at nowMs counts if a counted one is due; the next counted one is an interval later (missed ones are skipped). */
export function startCheck(config: HealthCheckConfig, state: CheckState, nowMs: number): boolean {
  const counted = nowMs >= state.nextCountedAtMs;
  if (counted) {
    const missed = Math.floor((nowMs - state.nextCountedAtMs) / config.intervalMs);
    state.nextCountedAtMs += (missed + 1) * config.intervalMs;
  }
  state.started++;
  state.inFlight = { startedAtMs: nowMs, counted, seq: state.started };
  return counted;
}

/** What one http or exec check of this worker is: its port and its command's {{.Pid}}, {{.WorkerId}} and {{.Port}} filled in. */
export function probeFor(pool: PoolConfig, worker: WorkerState & { pid: number }): ProbeSpec | null {
  const probe = checkConfigOf(pool)?.probe;
  if (probe === undefined || probe.kind === "notify") return null;
  if (probe.kind === "tcp") {
    const port = workerPort(pool, worker.index);
    return port === null ? null : { kind: "tcp", host: WORKER_HOST, port };
  }
  const port = probe.kind === "http" && probe.startPort !== null ? probe.startPort + worker.index : workerPort(pool, worker.index);
  if (probe.kind === "http") return port === null ? null : { kind: "http", host: probe.host, port, path: probe.path };
  const values = { Pid: worker.pid, WorkerId: worker.id, Port: port ?? "" };
  return {
    kind: "exec",
    argv: probe.argv.map((arg) => {
      const template = parseTemplate(arg, ["Pid", "WorkerId", "Port"]);
      return template.ok ? template.render(values) : arg;
    }),
  };
}
