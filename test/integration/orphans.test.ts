// No worker outlives a SIGKILLed Monoceros, even one killed while it restarts 20 workers every
// 50 ms. bench/orphans.ts does the runs (and kills, by pid, whatever a run left behind); this is
// its bounded version: 8 runs, each at most about 5 s.
import { describe, expect, it } from "vitest";
import { describeRun, runOrphanProbe } from "../../bench/orphans.js";

const RUNS = 8;

describe("a SIGKILLed Monoceros", () => {
  it(`leaves no process of its own behind, in ${RUNS} runs killed at random moments of constant restarts`, async () => {
    const seed = Math.floor(Math.random() * 2 ** 31);
    const report = await runOrphanProbe({ runs: RUNS, seed });
    const lines = report.runs.map((run) => describeRun(run, RUNS)).join("\n");
    expect(report.orphans, `${report.orphans} left behind in ${report.runsWithOrphans} of ${RUNS} runs; replay the kill delays: npx tsx bench/orphans.ts --runs ${RUNS} --seed ${seed}\n${lines}`).toBe(0);
  }, 60_000);
});
