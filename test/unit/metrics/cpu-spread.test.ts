import { describe, expect, it, vi } from "vitest";
import { BALANCED_RATIO_MAX, CHART_WORKERS_MAX, CPU_SPREAD_DEFAULTS, CPU_SPREAD_LIMITS, CpuRoundRing, cpuSpread, ringCapacity, type CpuRound, type CpuSpreadSettings } from "../../../src/metrics/cpu-spread.js";
import { CpuSpreadSampler, cpuSpreadSettingsFromEnv } from "../../../src/metrics/cpu-spread-sampler.js";
import { Metrics } from "../../../src/metrics/registry.js";
import { harness, pool, server } from "../../support/harness.js";

const SETTINGS: CpuSpreadSettings = { sampleIntervalMs: 5_000, windowMs: 300_000, minWindowMs: 30_000 };

/** Rounds every 5 s from 0 to durationMs, each worker at its own constant rate (CPU seconds per second) with its own pid. */
function steadyRounds(rates: Record<string, number>, durationMs: number, stepMs = 5_000): CpuRound[] {
  const rounds: CpuRound[] = [];
  for (let atMs = 0; atMs <= durationMs; atMs += stepMs) {
    rounds.push({ atMs, workers: new Map(Object.entries(rates).map(([id, rate], index) => [id, { pid: 100 + index, cpuSeconds: (rate * atMs) / 1000 }])) });
  }
  return rounds;
}

describe("cpu spread measure", () => {
  it("is the coefficient of variation of the workers' CPU rates over the window", () => {
    // Rates 0.6 and 0.3: mean 0.45, population stddev 0.15, ratio 1/3.
    const report = cpuSpread(steadyRounds({ "web-0": 0.6, "web-1": 0.3 }, 60_000), SETTINGS, null);
    expect(report.ratio).toBeCloseTo(1 / 3, 9);
    expect(report.verdict).toBe("spread");
    expect(report.text).toBe("spread 33% — proxy mode with LEAST_REQUEST would even it out");
    expect(report.meanCpuSecondsPerSecond).toBeCloseTo(0.45, 9);
    expect(report.samples).toBe(13);
    expect(report.coveredMs).toBe(60_000);
    expect(report.workersWithData).toBe(2);
    expect(report.workers.map((w) => [w.id, w.pid, w.cpuSecondsPerSecond, w.observedMs])).toEqual([["web-0", 100, expect.closeTo(0.6, 9), 60_000], ["web-1", 101, expect.closeTo(0.3, 9), 60_000]]);
    expect(report.workers[0]!.points).toHaveLength(12);
    expect(report.workers[0]!.points.at(-1)).toEqual([0, expect.closeTo(0.6, 9)]);
    expect(report.workers[0]!.points[0]).toEqual([-55, expect.closeTo(0.6, 9)]);
  });

  it("calls equal rates balanced, and says in proxy mode how well the proxy evens the load", () => {
    const even = steadyRounds({ a: 0.5, b: 0.5, c: 0.55 }, 60_000);
    const report = cpuSpread(even, SETTINGS, null);
    expect(report.ratio!).toBeLessThan(BALANCED_RATIO_MAX);
    expect(report.text).toBe("balanced: spread 5% (below 25%)");
    expect(cpuSpread(even, SETTINGS, { algorithm: "LEAST_REQUEST" }).text).toBe("balanced: spread 5% — the proxy (LEAST_REQUEST) evens the load out");
    const skewed = steadyRounds({ a: 0.9, b: 0.1 }, 60_000);
    expect(cpuSpread(skewed, SETTINGS, { algorithm: "ROUND_ROBIN" }).text).toBe("spread 80% behind the proxy with ROUND_ROBIN — LEAST_REQUEST would even it out");
    expect(cpuSpread(skewed, SETTINGS, { algorithm: "LEAST_REQUEST" }).text).toBe("spread 80% even behind the proxy with LEAST_REQUEST: the requests differ in cost, or some workers are slower");
  });

  it("gives no verdict before two workers were observed for the minimum window", () => {
    expect(cpuSpread([], SETTINGS, null)).toMatchObject({ ratio: null, verdict: "not_enough_data", samples: 0, atMs: null, text: "not enough data yet (0 of 0 running workers observed for 30 s; 2 needed)" });
    // 25 s of two workers: under the 30 s minimum.
    const short = cpuSpread(steadyRounds({ a: 0.9, b: 0.1 }, 25_000), SETTINGS, null);
    expect(short).toMatchObject({ ratio: null, verdict: "not_enough_data", text: "not enough data yet (0 of 2 running workers observed for 30 s; 2 needed)" });
    // One worker alone never has a spread.
    expect(cpuSpread(steadyRounds({ a: 0.9 }, 60_000), SETTINGS, null)).toMatchObject({ ratio: null, workersWithData: 1, verdict: "not_enough_data" });
  });

  it("says idle, not spread, when the workers barely use the CPU", () => {
    const report = cpuSpread(steadyRounds({ a: 0.01, b: 0.002 }, 60_000), SETTINGS, null);
    expect(report.verdict).toBe("idle");
    expect(report.ratio).toBeCloseTo(2 / 3, 9);
    expect(report.text).toBe("idle: the workers use 0.6% of a core on average, too little for their spread (67%) to matter");
    expect(cpuSpread(steadyRounds({ a: 0, b: 0 }, 60_000), SETTINGS, null)).toMatchObject({ ratio: 0, verdict: "idle" });
  });

  it("uses only the samples of a restarted worker's current pid, and waits for it to be observed long enough", () => {
    const rounds = steadyRounds({ a: 0.5, b: 0.5 }, 120_000);
    // b restarted at 100 s as pid 999: its CPU seconds start again from 0, at 0.1 per second.
    const restarted = rounds.map((round) => {
      if (round.atMs < 100_000) return round;
      const workers = new Map(round.workers);
      workers.set("b", { pid: 999, cpuSeconds: (0.1 * (round.atMs - 100_000)) / 1000 });
      return { atMs: round.atMs, workers };
    });
    const early = cpuSpread(restarted, SETTINGS, null);
    expect(early.workers[1]).toMatchObject({ id: "b", pid: 999, cpuSecondsPerSecond: expect.closeTo(0.1, 9), observedMs: 20_000 });
    expect(early.verdict).toBe("not_enough_data");
    const later = cpuSpread(restarted, { ...SETTINGS, minWindowMs: 20_000 }, null);
    // a at 0.5, b at 0.1 (never a negative rate across the restart): mean 0.3, stddev 0.2.
    expect(later.ratio).toBeCloseTo(2 / 3, 9);
    for (const worker of later.workers) for (const [, rate] of worker.points) expect(rate).toBeGreaterThanOrEqual(0);
  });

  it("skips an interval where a worker's CPU seconds went down (a counter reset), in CPU and in time", () => {
    const rounds: CpuRound[] = [0, 10, 20, 30, 40].map((s, i) => ({
      atMs: s * 1000,
      // 0, 5, 2 (reset: a member left), 7, 12: four intervals, three of them +5 in 10 s.
      workers: new Map([["a", { pid: 1, cpuSeconds: [0, 5, 2, 7, 12][i]! }], ["b", { pid: 2, cpuSeconds: s * 0.5 }]]),
    }));
    const report = cpuSpread(rounds, { ...SETTINGS, minWindowMs: 20_000 }, null);
    expect(report.workers[0]).toMatchObject({ cpuSecondsPerSecond: 0.5, observedMs: 30_000, lastCpuSecondsPerSecond: 0.5 });
    expect(report.workers[0]!.points.map(([at]) => at)).toEqual([-30, -10, 0]);
    expect(report.ratio).toBe(0);
  });

  it("counts only the rounds within the window of the last one", () => {
    // a was busy long ago, then both even for the last 300 s.
    const rounds = steadyRounds({ a: 0.5, b: 0.5 }, 600_000).map((round) => {
      const workers = new Map(round.workers);
      workers.set("a", { pid: 100, cpuSeconds: round.atMs <= 300_000 ? round.atMs / 1000 : 300 + (0.5 * (round.atMs - 300_000)) / 1000 });
      return { atMs: round.atMs, workers };
    });
    const report = cpuSpread(rounds, SETTINGS, null);
    expect(report.samples).toBe(61);
    expect(report.coveredMs).toBe(300_000);
    expect(report.ratio).toBeCloseTo(0, 9);
  });

  it("keeps chart points for at most CHART_WORKERS_MAX workers, and counts them all", () => {
    const rates = Object.fromEntries(Array.from({ length: CHART_WORKERS_MAX + 3 }, (_, i) => [`w-${i}`, 0.5]));
    const report = cpuSpread(steadyRounds(rates, 60_000), SETTINGS, null);
    expect(report.workersWithData).toBe(CHART_WORKERS_MAX + 3);
    expect(report.workers.filter((w) => w.points.length > 0)).toHaveLength(CHART_WORKERS_MAX);
  });
});

describe("cpu round ring", () => {
  it("keeps the last capacity rounds, oldest first, and refuses a round that is not later", () => {
    const ring = new CpuRoundRing(3);
    for (const atMs of [1, 2, 3, 4, 5]) ring.push({ atMs, workers: new Map() });
    expect(ring.rounds().map((r) => r.atMs)).toEqual([3, 4, 5]);
    expect(() => ring.push({ atMs: 5, workers: new Map() })).toThrow(/not after/);
    expect(() => new CpuRoundRing(CPU_SPREAD_LIMITS.roundsMax + 1)).toThrow(/capacity/);
  });

  it("holds one window: 61 rounds for 5 minutes every 5 s, never more than the limit", () => {
    expect(ringCapacity(CPU_SPREAD_DEFAULTS)).toBe(61);
    expect(ringCapacity({ sampleIntervalMs: 100, windowMs: 3_600_000, minWindowMs: 100 })).toBe(CPU_SPREAD_LIMITS.roundsMax);
  });
});

describe("cpu spread sampler", () => {
  it("samples running workers by pid, one report per pool, proxy mode from the pool's config", () => {
    const h = harness([pool({ name: "web", replicas: 2 }), pool({ name: "api", replicas: 2, server: server({ loadBalancerAlgorithm: "RANDOM" }) })]);
    h.runUntil(0);
    let nowMs = 0;
    const cpuByPid = new Map<number, number>();
    const sampler = new CpuSpreadSampler({
      state: h.runtime.state,
      readCpuSeconds: (pid) => cpuByPid.get(pid) ?? null,
      nowMs: () => nowMs,
      settings: { sampleIntervalMs: 1_000, windowMs: 10_000, minWindowMs: 2_000 },
      onProblem: (code, message) => {
        throw new Error(`${code} ${message}`);
      },
    });
    const pids = h.runtime.state.pools.map((p) => p.workers.filter((w) => w.pid !== null).map((w) => w.pid!));
    expect(pids.map((p) => p.length)).toEqual([2, 2]);
    for (let second = 0; second <= 3; second++) {
      nowMs = second * 1000;
      // web: 0.9 and 0.1 of a core; api: 0.5 each.
      pids[0]!.forEach((pid, i) => cpuByPid.set(pid, second * (i === 0 ? 0.9 : 0.1)));
      pids[1]!.forEach((pid) => cpuByPid.set(pid, second * 0.5));
      sampler.sample();
    }
    const [web, api] = h.runtime.state.pools;
    expect(sampler.report(web!)).toMatchObject({ verdict: "spread", ratio: expect.closeTo(0.8, 9), samples: 4 });
    expect(sampler.report(api!)!.text).toBe("balanced: spread 0% — the proxy (RANDOM) evens the load out");
    // A pool no longer listed (a reload removed it) is forgotten at the next round.
    h.runtime.state.pools = [web!];
    nowMs = 4_000;
    sampler.sample();
    expect(sampler.report(api!)).toBeNull();
  });

  it("samples only while its reports are read: the first read starts it, ten minutes without one stop it and drop the history", () => {
    vi.useFakeTimers();
    try {
      const h = harness([pool({ name: "web", replicas: 2 })]);
      h.runUntil(0);
      let reads = 0;
      const sampler = new CpuSpreadSampler({
        state: h.runtime.state,
        readCpuSeconds: () => {
          reads++;
          return 1;
        },
        nowMs: () => Date.now(),
        settings: { sampleIntervalMs: 5_000, windowMs: 300_000, minWindowMs: 30_000 },
        onProblem: () => {},
        sampleWhileRead: true,
      });
      const web = h.runtime.state.pools[0]!;
      vi.advanceTimersByTime(60_000);
      expect(reads).toBe(0); // nobody watches: nothing read from /proc
      sampler.report(web);
      expect(reads).toBe(2); // a round at once (2 workers)
      vi.advanceTimersByTime(9 * 60_000);
      expect(reads).toBe(2 + 2 * 108);
      sampler.report(web); // a scrape keeps it going
      vi.advanceTimersByTime(11 * 60_000);
      const afterIdle = reads;
      vi.advanceTimersByTime(60_000);
      expect(reads).toBe(afterIdle); // stopped
      expect(sampler.report(web)?.samples).toBe(1); // history dropped; this read started it again
      sampler.stop();
    } finally {
      vi.useRealTimers();
    }
  });

  it("reports a failed round and goes on", () => {
    const problems: string[] = [];
    const h = harness([pool({ name: "web", replicas: 1 })]);
    h.runUntil(0);
    const sampler = new CpuSpreadSampler({
      state: h.runtime.state,
      readCpuSeconds: () => {
        throw Object.assign(new Error("EMFILE: too many open files"), { code: "EMFILE" });
      },
      nowMs: () => 0,
      settings: SETTINGS,
      onProblem: (code, message) => problems.push(`${code} ${message}`),
    });
    sampler.sample();
    expect(problems).toEqual(["EMFILE cpu spread: a sampling round failed: EMFILE: too many open files"]);
  });

  it("takes its interval and windows from the test knobs, and ignores knobs out of range with a reason", () => {
    expect(cpuSpreadSettingsFromEnv({})).toEqual({ settings: CPU_SPREAD_DEFAULTS, problems: [] });
    expect(cpuSpreadSettingsFromEnv({ MONOCEROS_CPU_SPREAD_SAMPLE_MS: "200", MONOCEROS_CPU_SPREAD_WINDOW_MS: "10000", MONOCEROS_CPU_SPREAD_MIN_WINDOW_MS: "2000" })).toEqual({
      settings: { sampleIntervalMs: 200, windowMs: 10_000, minWindowMs: 2_000 },
      problems: [],
    });
    const bad = cpuSpreadSettingsFromEnv({ MONOCEROS_CPU_SPREAD_SAMPLE_MS: "5", MONOCEROS_CPU_SPREAD_WINDOW_MS: "1e9" });
    expect(bad.settings).toEqual(CPU_SPREAD_DEFAULTS);
    expect(bad.problems).toEqual([
      "MONOCEROS_CPU_SPREAD_SAMPLE_MS=5 ignored: must be a whole number of milliseconds in 100..60000; using 5000",
      "MONOCEROS_CPU_SPREAD_WINDOW_MS=1e9 ignored: must be a whole number of milliseconds in 10000..3600000; using 300000",
    ]);
  });
});

describe("cpu spread gauge", () => {
  it("has a series only for pools with a value", async () => {
    const h = harness([pool({ name: "web", replicas: 1 }), pool({ name: "api", replicas: 1 })]);
    h.runUntil(0);
    const metrics = new Metrics({ admin: { port: 0, host: null }, pools: h.runtime.state.pools.map((p) => p.config) }, h.runtime.state, () => null, { version: "1", revision: "r", branch: "b" });
    expect(await metrics.text()).toMatch(/^# TYPE monoceros_workerpool_cpu_spread_ratio gauge$/m);
    expect(await metrics.text()).not.toMatch(/^monoceros_workerpool_cpu_spread_ratio\{/m);
    let ratio: number | null = 0.42;
    metrics.setCpuSpreadSource((p) => (p.config.name === "web" ? ratio : Number.NaN));
    expect(await metrics.text()).toMatch(/^monoceros_workerpool_cpu_spread_ratio\{pool="web"\} 0\.42$/m);
    expect(await metrics.text()).not.toMatch(/^monoceros_workerpool_cpu_spread_ratio\{pool="api"\}/m);
    ratio = null;
    expect(await metrics.text()).not.toMatch(/^monoceros_workerpool_cpu_spread_ratio\{/m);
  });
});
