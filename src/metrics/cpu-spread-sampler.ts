// Samples every running worker's CPU seconds on a timer for the CPU-spread advisor, keeps one
// bounded ring of rounds per pool, and computes each pool's report once per round (so /status,
// the page and /metrics read a ready report instead of walking the rings on every request).
// Only while somebody reads the reports (a scrape of /metrics, /status, the status page): the
// first read starts the sampling, and ten minutes without one stop it and drop the history, so a
// Monoceros nobody watches spends nothing on it.
import type { PoolState } from "../domain/state.js";
import { leaderRunning } from "../domain/state.js";
import { CPU_SPREAD_DEFAULTS, CPU_SPREAD_LIMITS, CpuRoundRing, cpuSpread, ringCapacity, type CpuSpreadReport, type CpuSpreadSettings, type WorkerCpuSample } from "./cpu-spread.js";

export interface CpuSpreadSamplerOptions {
  /** Read at every round: a reload may replace a pool's config. */
  state: { readonly pools: readonly PoolState[] };
  /** The CPU seconds of the process group led by pid; null when it is gone. */
  readCpuSeconds: (pid: number) => number | null;
  nowMs: () => number;
  settings: CpuSpreadSettings;
  /** Told about a round that failed (it is skipped; the next one is tried). */
  onProblem: (code: string, message: string) => void;
  /** Sample on a timer while reports are read (Monoceros); false: only when sample() is called (tests). */
  sampleWhileRead?: boolean;
}

/** Sampling stops this long after the last read of a report. */
export const CPU_SPREAD_IDLE_STOP_MS = 10 * 60_000;

export class CpuSpreadSampler {
  // By pool: a reload may rename a pool or reuse a removed pool's name, the pool itself stays one.
  private readonly rings = new Map<PoolState, CpuRoundRing>();
  private readonly reports = new Map<PoolState, CpuSpreadReport>();
  private timer: NodeJS.Timeout | null = null;
  private lastReadAtMs = -Infinity;
  private stopped = false;

  constructor(private readonly options: CpuSpreadSamplerOptions) {}

  get settings(): CpuSpreadSettings {
    return this.options.settings;
  }

  /** Samples now, then every sampleIntervalMs until reports go unread; the timer never keeps Monoceros alive. */
  private start(): void {
    if (this.timer !== null || this.stopped || this.options.sampleWhileRead !== true) return;
    this.sample();
    this.timer = setInterval(() => this.tick(), this.options.settings.sampleIntervalMs);
    this.timer.unref();
  }

  private tick(): void {
    if (this.options.nowMs() - this.lastReadAtMs <= CPU_SPREAD_IDLE_STOP_MS) {
      this.sample();
      return;
    }
    // Nobody has read a report for a while: no more sampling until somebody does.
    this.pause();
    this.rings.clear();
    this.reports.clear();
  }

  /** For good (Monoceros is exiting): a later read starts nothing. */
  stop(): void {
    this.pause();
    this.stopped = true;
  }

  /** The pool's report as of the last round; null for a pool not sampled yet. A read (re)starts the sampling. */
  report(pool: PoolState): CpuSpreadReport | null {
    this.lastReadAtMs = this.options.nowMs();
    this.start();
    return this.reports.get(pool) ?? null;
  }

  private pause(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /** One round over every pool; public for tests. */
  sample(): void {
    try {
      const atMs = this.options.nowMs();
      const pools = this.options.state.pools;
      for (const pool of pools) {
        const workers = new Map<string, WorkerCpuSample>();
        for (const worker of pool.workers) {
          if (!leaderRunning(worker)) continue;
          const cpuSeconds = this.options.readCpuSeconds(worker.pid);
          if (cpuSeconds !== null && Number.isFinite(cpuSeconds)) workers.set(worker.id, { pid: worker.pid, cpuSeconds });
        }
        let ring = this.rings.get(pool);
        if (ring === undefined) {
          ring = new CpuRoundRing(ringCapacity(this.options.settings));
          this.rings.set(pool, ring);
        }
        ring.push({ atMs, workers });
        const server = pool.config.server;
        this.reports.set(pool, cpuSpread(ring.rounds(), this.options.settings, server === null ? null : { algorithm: server.loadBalancerAlgorithm }));
      }
      // A pool no longer listed takes its history with it.
      for (const pool of [...this.rings.keys()]) {
        if (pools.includes(pool)) continue;
        this.rings.delete(pool);
        this.reports.delete(pool);
      }
    } catch (error) {
      this.options.onProblem((error as NodeJS.ErrnoException | null)?.code ?? "ERROR", `cpu spread: a sampling round failed: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
}

/** Test knobs (README, "Status page"): shorter intervals and windows, so a test sees a verdict in seconds. */
export const CPU_SPREAD_ENV = {
  sampleIntervalMs: "MONOCEROS_CPU_SPREAD_SAMPLE_MS",
  windowMs: "MONOCEROS_CPU_SPREAD_WINDOW_MS",
  minWindowMs: "MONOCEROS_CPU_SPREAD_MIN_WINDOW_MS",
} as const;

/** The settings, from the defaults and the test knobs; knobs out of range are ignored with a reason each. */
export function cpuSpreadSettingsFromEnv(env: Readonly<Record<string, string | undefined>>): { settings: CpuSpreadSettings; problems: string[] } {
  const problems: string[] = [];
  const read = (key: keyof CpuSpreadSettings, min: number, max: number): number => {
    const name = CPU_SPREAD_ENV[key];
    const text = env[name];
    if (text === undefined || text === "") return CPU_SPREAD_DEFAULTS[key];
    const value = Number(text);
    if (Number.isInteger(value) && value >= min && value <= max) return value;
    problems.push(`${name}=${text} ignored: must be a whole number of milliseconds in ${min}..${max}; using ${CPU_SPREAD_DEFAULTS[key]}`);
    return CPU_SPREAD_DEFAULTS[key];
  };
  const sampleIntervalMs = read("sampleIntervalMs", CPU_SPREAD_LIMITS.sampleIntervalMinMs, CPU_SPREAD_LIMITS.sampleIntervalMaxMs);
  const windowMs = read("windowMs", 2 * sampleIntervalMs, Math.min(CPU_SPREAD_LIMITS.windowMaxMs, (CPU_SPREAD_LIMITS.roundsMax - 1) * sampleIntervalMs));
  const minWindowMs = read("minWindowMs", sampleIntervalMs, windowMs);
  return { settings: { sampleIntervalMs, windowMs, minWindowMs }, problems };
}
