// The side-by-side comparison: one row per scenario, each system's median, and Monoceros's figure
// divided by the floor's, by each anchor's and by the Go original's (quoted, not measured here), with
// issue 17's target where it sets one. Both BENCHMARKS.md and bench/results.json are written from
// these rows, so the table and the JSON cannot disagree.

export type ScenarioKey =
  | "restartGapMedianMs"
  | "restartGapP99Ms"
  | "firstWorkerMs"
  | "start32Ms"
  | "stop32Ms"
  | "idleCpuSecondsPer20s"
  | "idleRssMiB"
  | "idleAnonMiB"
  | "logsJsonLinesPerSecond"
  | "logsPlainLinesPerSecond"
  | "logLinesLost"
  | "workersLeftAfterSigkill";

interface ScenarioDefinition {
  key: ScenarioKey;
  scenario: string;
  format: (value: number) => string;
  better: "lower" | "higher";
  /** false for counts, where a ratio says nothing (0 lost against 5,000 lost). */
  ratio: boolean;
  /** Issue 17's target for Monoceros, from the floor's figure where it is relative to it. */
  target?: { text: string; limit: (floor: number | null) => number | null };
}

const ms = (value: number) => `${value.toFixed(2)} ms`;
const count = (value: number) => Math.round(value).toLocaleString("en");

const SCENARIOS: ScenarioDefinition[] = [
  { key: "restartGapMedianMs", scenario: "Restart gap, median (exit → next start)", format: ms, better: "lower", ratio: true, target: { text: "≤ floor + 0.5 ms", limit: (floor) => (floor === null ? null : floor + 0.5) } },
  { key: "restartGapP99Ms", scenario: "Restart gap, p99", format: ms, better: "lower", ratio: true, target: { text: "≤ 3 ms", limit: () => 3 } },
  { key: "firstWorkerMs", scenario: "First of 32 workers started (launch → first started)", format: ms, better: "lower", ratio: true, target: { text: "≤ 40 ms", limit: () => 40 } },
  { key: "start32Ms", scenario: "Start 32 workers (launch → last started)", format: ms, better: "lower", ratio: true, target: { text: "≤ 70 ms", limit: () => 70 } },
  { key: "stop32Ms", scenario: "Stop 32 workers (stop request → supervisor gone)", format: ms, better: "lower", ratio: true, target: { text: "≤ 8 ms", limit: () => 8 } },
  { key: "idleCpuSecondsPer20s", scenario: "Idle CPU over 20 s, 32 sleeping workers (all the supervisor's processes)", format: (v) => `${v.toFixed(3)} s`, better: "lower", ratio: true, target: { text: "≤ 0.01 s", limit: () => 0.01 } },
  { key: "idleRssMiB", scenario: "Idle RSS, 32 sleeping workers (all the supervisor's processes)", format: (v) => `${v.toFixed(1)} MiB`, better: "lower", ratio: true, target: { text: "≤ 35 MiB", limit: () => 35 } },
  { key: "idleAnonMiB", scenario: "… of which anonymous memory (RSS less the pages of the binary and libraries, which processes of the same binary share)", format: (v) => `${v.toFixed(1)} MiB`, better: "lower", ratio: true },
  { key: "logsJsonLinesPerSecond", scenario: "Log forwarding into files, JSON lines/s (4 × 200,000, workers exit at once)", format: count, better: "higher", ratio: true },
  { key: "logsPlainLinesPerSecond", scenario: "Log forwarding into files, plain lines/s (same)", format: count, better: "higher", ratio: true },
  { key: "logLinesLost", scenario: "Log lines lost, all runs (of 800,000 per run)", format: count, better: "lower", ratio: false },
  { key: "workersLeftAfterSigkill", scenario: "Workers still running 3 s after the supervisor is SIGKILLed (of 8)", format: count, better: "lower", ratio: false },
];

/**
 * The Go original (github.com/reddit/monoceros), measured on this machine with the same C worker and
 * method, as issue 17 quotes it: a reference beside the figures of each run, not re-measured by it.
 */
export const GO_ORIGINAL: Partial<Record<ScenarioKey, number>> = {
  idleRssMiB: 14.3,
  idleCpuSecondsPer20s: 0.0,
  start32Ms: 29.6,
  firstWorkerMs: 12,
  stop32Ms: 5,
  restartGapMedianMs: 1.3,
};

export interface ComparisonInput {
  floor: Partial<Record<ScenarioKey, number>>;
  /** The Go original's figures (GO_ORIGINAL), quoted. */
  reference?: Partial<Record<ScenarioKey, number>>;
  /** Monoceros first, then the anchors. */
  systems: { name: string; label: string; values: Partial<Record<ScenarioKey, number>> }[];
}

export interface ComparisonRow {
  key: ScenarioKey;
  scenario: string;
  better: "lower" | "higher";
  floor: number | null;
  values: Record<string, number | null>;
  /** Monoceros's figure divided by the floor's; null when there is no floor or no ratio. */
  monocerosOverFloor: number | null;
  /** Monoceros's figure divided by each anchor's. */
  monocerosOverAnchor: Record<string, number | null>;
  /** The Go original's figure (quoted), and Monoceros's divided by it. */
  reference: number | null;
  monocerosOverReference: number | null;
  /** Issue 17's target, and whether Monoceros's figure meets it; null where none is set. */
  target: string | null;
  met: boolean | null;
}

const divide = (a: number | null | undefined, b: number | null | undefined) =>
  a === null || a === undefined || b === null || b === undefined || b === 0 ? null : a / b;

export function comparisonRows(input: ComparisonInput): ComparisonRow[] {
  const [monoceros, ...anchors] = input.systems;
  return SCENARIOS.map((definition) => {
    const mine = monoceros?.values[definition.key];
    const floor = input.floor[definition.key] ?? null;
    const reference = input.reference?.[definition.key] ?? null;
    const limit = definition.target?.limit(floor) ?? null;
    return {
      key: definition.key,
      scenario: definition.scenario,
      better: definition.better,
      floor,
      values: Object.fromEntries(input.systems.map((system) => [system.name, system.values[definition.key] ?? null])),
      monocerosOverFloor: definition.ratio ? divide(mine, floor) : null,
      monocerosOverAnchor: Object.fromEntries(anchors.map((anchor) => [anchor.name, definition.ratio ? divide(mine, anchor.values[definition.key]) : null])),
      reference,
      monocerosOverReference: definition.ratio ? divide(mine, reference) : null,
      target: definition.target?.text ?? null,
      met: limit === null || mine === undefined ? null : mine <= limit,
    };
  });
}

export function comparisonTable(input: ComparisonInput, rows: ComparisonRow[]): string {
  const [monoceros, ...anchors] = input.systems;
  if (!monoceros) return "";
  const lines = [
    `| Scenario | Floor | ${input.systems.map((system) => system.label).join(" | ")} | Go original (quoted) | Target for Monoceros |`,
    `|---|---|${input.systems.map(() => "---|").join("")}---|---|`,
  ];
  for (const row of rows) {
    const definition = SCENARIOS.find((d) => d.key === row.key) as ScenarioDefinition;
    const cell = (value: number | null) => (value === null ? "n/a" : definition.format(value));
    const mine = row.values[monoceros.name] ?? null;
    const myCell = `${cell(mine)}${row.monocerosOverFloor === null ? "" : ` (${row.monocerosOverFloor.toFixed(1)}× floor)`}`;
    const anchorCells = anchors.map((anchor) => {
      const ratio = row.monocerosOverAnchor[anchor.name] ?? null;
      return `${cell(row.values[anchor.name] ?? null)}${ratio === null ? "" : ` (Monoceros ${ratio.toFixed(2)}×)`}`;
    });
    const referenceCell = row.reference === null ? "" : `${cell(row.reference)}${row.monocerosOverReference === null ? "" : ` (Monoceros ${row.monocerosOverReference.toFixed(2)}×)`}`;
    const targetCell = row.target === null ? "" : `${row.target}: ${row.met === null ? "n/a" : row.met ? "met" : "**missed**"}`;
    lines.push(`| ${row.scenario} | ${cell(row.floor)} | **${myCell}** | ${anchorCells.join(" | ")} | ${referenceCell} | ${targetCell} |`);
  }
  return lines.join("\n");
}
