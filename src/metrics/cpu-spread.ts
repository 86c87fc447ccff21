// The CPU-spread advisor's measure, pure: from rounds of per-worker CPU samples, how unevenly a
// pool's workers use the CPU, and what to do about it (README, "Status page").
//
// Measure: each running worker's CPU rate (CPU seconds per second of its whole process group)
// over the window, from the samples of its current pid only; then the coefficient of variation
// of those rates (population standard deviation / mean) over the workers observed for at least
// minWindowMs. 0 means every worker uses the same CPU; 1 means the rates typically differ from
// the mean by as much as the mean itself.
import type { LoadBalancerAlgorithm } from "../config/types.js";

export interface CpuSpreadSettings {
  sampleIntervalMs: number;
  windowMs: number;
  /** A worker counts once its current pid has been sampled over this long; a pool needs two such workers for a verdict. */
  minWindowMs: number;
}

export const CPU_SPREAD_DEFAULTS: Readonly<CpuSpreadSettings> = { sampleIntervalMs: 5_000, windowMs: 300_000, minWindowMs: 30_000 };

export const CPU_SPREAD_LIMITS = {
  sampleIntervalMinMs: 100,
  sampleIntervalMaxMs: 60_000,
  windowMaxMs: 3_600_000,
  /** Rounds kept per pool (window / interval + 1): bounds memory and the cost of one computation. */
  roundsMax: 721,
} as const;

/**
 * Below this ratio a pool is "balanced": the workers' rates lie within about ±25% of their mean.
 * A judgement, not a measurement: beyond it one worker does clearly more than another (e.g. 0.6
 * and 0.3 of a core give 0.33), which is what a proxy with LEAST_REQUEST evens out.
 */
export const BALANCED_RATIO_MAX = 0.25;

/** A mean CPU rate below this (2% of a core per worker) is idle: its spread is noise, not load. */
export const IDLE_CPU_SECONDS_PER_SECOND = 0.02;

/** Workers whose rate history is kept for the chart; the others still count in the measure. */
export const CHART_WORKERS_MAX = 32;

export interface WorkerCpuSample {
  pid: number;
  cpuSeconds: number;
}

/** One sampling of a pool: every running worker's group CPU seconds, by worker id. */
export interface CpuRound {
  atMs: number;
  workers: ReadonlyMap<string, WorkerCpuSample>;
}

/** The last `capacity` rounds, oldest first. */
export class CpuRoundRing {
  private readonly slots: (CpuRound | undefined)[];
  private next = 0;
  private size = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 2 || capacity > CPU_SPREAD_LIMITS.roundsMax) throw new Error(`cpu spread: ring capacity ${capacity} outside 2..${CPU_SPREAD_LIMITS.roundsMax}`);
    this.slots = new Array<CpuRound | undefined>(capacity);
  }

  push(round: CpuRound): void {
    const last = this.size === 0 ? undefined : this.slots[(this.next - 1 + this.capacity) % this.capacity];
    // Rounds come from one monotonic clock; an older one would make negative intervals.
    if (last !== undefined && round.atMs <= last.atMs) throw new Error(`cpu spread: round at ${round.atMs} ms is not after ${last.atMs} ms`);
    this.slots[this.next] = round;
    this.next = (this.next + 1) % this.capacity;
    this.size = Math.min(this.size + 1, this.capacity);
  }

  rounds(): CpuRound[] {
    const out: CpuRound[] = [];
    for (let i = 0; i < this.size; i++) out.push(this.slots[(this.next - this.size + i + this.capacity) % this.capacity] as CpuRound);
    return out;
  }
}

/** Rounds a ring needs to hold one window. */
export function ringCapacity(settings: CpuSpreadSettings): number {
  return Math.min(CPU_SPREAD_LIMITS.roundsMax, Math.max(2, Math.ceil(settings.windowMs / settings.sampleIntervalMs) + 1));
}

export interface WorkerCpuRate {
  id: string;
  pid: number;
  /** Over the intervals between its current pid's samples in the window; null before two samples. */
  cpuSecondsPerSecond: number | null;
  /** Over the last interval only (what it does now); null before two samples. */
  lastCpuSecondsPerSecond: number | null;
  /** Time covered by those intervals. */
  observedMs: number;
  /** The rate in each interval, at the interval's end, in seconds relative to the last round (≤ 0); empty past CHART_WORKERS_MAX workers. */
  points: [atSeconds: number, cpuSecondsPerSecond: number][];
}

export type CpuSpreadVerdict = "not_enough_data" | "idle" | "balanced" | "spread";

export interface CpuSpreadReport {
  /** Coefficient of variation of the rates; null without a verdict's worth of data. */
  ratio: number | null;
  verdict: CpuSpreadVerdict;
  /** The verdict in words, for the page and /status. */
  text: string;
  /** The last round's time (the runtime clock); null before any. */
  atMs: number | null;
  /** Rounds in the window, and the time they span. */
  samples: number;
  coveredMs: number;
  workersWithData: number;
  meanCpuSecondsPerSecond: number | null;
  /** The running workers (those in the last round), in the order of that round. */
  workers: WorkerCpuRate[];
}

/** The pool's proxy, when it runs in proxy mode: its algorithm decides the advice. */
export type ProxyMode = { algorithm: LoadBalancerAlgorithm } | null;

/** The report for one pool from its rounds (oldest first); only rounds within settings.windowMs of the last one count. */
export function cpuSpread(rounds: readonly CpuRound[], settings: CpuSpreadSettings, proxy: ProxyMode): CpuSpreadReport {
  const last = rounds.at(-1);
  if (last === undefined) {
    return { ratio: null, verdict: "not_enough_data", text: notEnough(0, 0, settings), atMs: null, samples: 0, coveredMs: 0, workersWithData: 0, meanCpuSecondsPerSecond: null, workers: [] };
  }
  const inWindow = rounds.filter((round) => round.atMs >= last.atMs - settings.windowMs);
  const workers = [...last.workers.entries()].map(([id, sample], index) => workerRate(inWindow, id, sample.pid, last.atMs, index < CHART_WORKERS_MAX));
  const rates = workers.flatMap((worker) => (worker.observedMs >= settings.minWindowMs && worker.cpuSecondsPerSecond !== null ? [worker.cpuSecondsPerSecond] : []));
  const base = { atMs: last.atMs, samples: inWindow.length, coveredMs: last.atMs - (inWindow[0] as CpuRound).atMs, workersWithData: rates.length, workers };
  if (rates.length < 2) return { ...base, ratio: null, verdict: "not_enough_data", text: notEnough(rates.length, workers.length, settings), meanCpuSecondsPerSecond: null };
  const mean = rates.reduce((sum, rate) => sum + rate, 0) / rates.length;
  const stddev = Math.sqrt(rates.reduce((sum, rate) => sum + (rate - mean) ** 2, 0) / rates.length);
  // All idle at exactly 0 is as even as it gets.
  const ratio = mean === 0 ? 0 : stddev / mean;
  const verdict: CpuSpreadVerdict = mean < IDLE_CPU_SECONDS_PER_SECOND ? "idle" : ratio < BALANCED_RATIO_MAX ? "balanced" : "spread";
  return { ...base, ratio, verdict, text: verdictText(verdict, ratio, mean, proxy), meanCpuSecondsPerSecond: mean };
}

/**
 * One worker's rate from its current pid's samples: walking back from the last round to the first
 * round with another pid (rounds where it is missing are skipped). An interval where the group's
 * CPU seconds went down (a member left with CPU time nobody reaped into the group) is a counter
 * reset: it counts neither in CPU nor in time, so no rate is ever negative.
 */
function workerRate(rounds: readonly CpuRound[], id: string, pid: number, lastAtMs: number, chart: boolean): WorkerCpuRate {
  const own: { atMs: number; cpuSeconds: number }[] = [];
  for (let i = rounds.length - 1; i >= 0; i--) {
    const sample = (rounds[i] as CpuRound).workers.get(id);
    if (sample === undefined) continue;
    if (sample.pid !== pid) break;
    own.push({ atMs: (rounds[i] as CpuRound).atMs, cpuSeconds: sample.cpuSeconds });
  }
  own.reverse();
  let cpuSeconds = 0;
  let observedMs = 0;
  let lastRate: number | null = null;
  const points: [number, number][] = [];
  for (let i = 1; i < own.length; i++) {
    const before = own[i - 1] as (typeof own)[number];
    const after = own[i] as (typeof own)[number];
    const deltaSeconds = after.cpuSeconds - before.cpuSeconds;
    const intervalMs = after.atMs - before.atMs;
    lastRate = null;
    if (deltaSeconds < 0 || intervalMs <= 0) continue;
    cpuSeconds += deltaSeconds;
    observedMs += intervalMs;
    lastRate = deltaSeconds / (intervalMs / 1000);
    if (chart) points.push([(after.atMs - lastAtMs) / 1000, lastRate]);
  }
  return { id, pid, cpuSecondsPerSecond: observedMs > 0 ? cpuSeconds / (observedMs / 1000) : null, lastCpuSecondsPerSecond: lastRate, observedMs, points };
}

const percent = (ratio: number) => `${Math.round(ratio * 100)}%`;
const seconds = (ms: number) => `${Math.round(ms / 100) / 10} s`;

function notEnough(withData: number, running: number, settings: CpuSpreadSettings): string {
  return `not enough data yet (${withData} of ${running} running workers observed for ${seconds(settings.minWindowMs)}; 2 needed)`;
}

function verdictText(verdict: Exclude<CpuSpreadVerdict, "not_enough_data">, ratio: number, mean: number, proxy: ProxyMode): string {
  if (verdict === "idle") return `idle: the workers use ${(mean * 100).toFixed(1)}% of a core on average, too little for their spread (${percent(ratio)}) to matter`;
  if (proxy === null) {
    return verdict === "balanced"
      ? `balanced: spread ${percent(ratio)} (below ${percent(BALANCED_RATIO_MAX)})`
      : `spread ${percent(ratio)} — proxy mode with LEAST_REQUEST would even it out`;
  }
  if (verdict === "balanced") return `balanced: spread ${percent(ratio)} — the proxy (${proxy.algorithm}) evens the load out`;
  return proxy.algorithm === "LEAST_REQUEST"
    ? `spread ${percent(ratio)} even behind the proxy with LEAST_REQUEST: the requests differ in cost, or some workers are slower`
    : `spread ${percent(ratio)} behind the proxy with ${proxy.algorithm} — LEAST_REQUEST would even it out`;
}
