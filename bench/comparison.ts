// The side-by-side comparison: one row per scenario, each system's median, and Monoceros's figure
// divided by the floor's and by each anchor's. Both BENCHMARKS.md and bench/results.json are
// written from these rows, so the table and the JSON cannot disagree.

export type ScenarioKey =
  | "restartGapMedianMs"
  | "restartGapP99Ms"
  | "start32Ms"
  | "stop32Ms"
  | "idleCpuPercentOfCore"
  | "idleRssMiB"
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
}

const ms = (value: number) => `${value.toFixed(2)} ms`;
const count = (value: number) => Math.round(value).toLocaleString("en");

const SCENARIOS: ScenarioDefinition[] = [
  { key: "restartGapMedianMs", scenario: "Restart gap, median (exit → next start)", format: ms, better: "lower", ratio: true },
  { key: "restartGapP99Ms", scenario: "Restart gap, p99", format: ms, better: "lower", ratio: true },
  { key: "start32Ms", scenario: "Start 32 workers (launch → last started)", format: ms, better: "lower", ratio: true },
  { key: "stop32Ms", scenario: "Stop 32 workers (stop request → supervisor gone)", format: ms, better: "lower", ratio: true },
  { key: "idleCpuPercentOfCore", scenario: "Idle CPU, 32 sleeping workers (% of a core)", format: (v) => `${v.toFixed(3)}%`, better: "lower", ratio: true },
  { key: "idleRssMiB", scenario: "Idle RSS of the supervisor", format: (v) => `${v.toFixed(1)} MiB`, better: "lower", ratio: true },
  { key: "logsJsonLinesPerSecond", scenario: "Log forwarding into files, JSON lines/s (4 × 200,000, workers exit at once)", format: count, better: "higher", ratio: true },
  { key: "logsPlainLinesPerSecond", scenario: "Log forwarding into files, plain lines/s (same)", format: count, better: "higher", ratio: true },
  { key: "logLinesLost", scenario: "Log lines lost, all runs (of 800,000 per run)", format: count, better: "lower", ratio: false },
  { key: "workersLeftAfterSigkill", scenario: "Workers still running 3 s after the supervisor is SIGKILLed (of 8)", format: count, better: "lower", ratio: false },
];

export interface ComparisonInput {
  floor: Partial<Record<ScenarioKey, number>>;
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
}

const divide = (a: number | null | undefined, b: number | null | undefined) =>
  a === null || a === undefined || b === null || b === undefined || b === 0 ? null : a / b;

export function comparisonRows(input: ComparisonInput): ComparisonRow[] {
  const [monoceros, ...anchors] = input.systems;
  return SCENARIOS.map((definition) => {
    const mine = monoceros?.values[definition.key];
    const floor = input.floor[definition.key] ?? null;
    return {
      key: definition.key,
      scenario: definition.scenario,
      better: definition.better,
      floor,
      values: Object.fromEntries(input.systems.map((system) => [system.name, system.values[definition.key] ?? null])),
      monocerosOverFloor: definition.ratio ? divide(mine, floor) : null,
      monocerosOverAnchor: Object.fromEntries(anchors.map((anchor) => [anchor.name, definition.ratio ? divide(mine, anchor.values[definition.key]) : null])),
    };
  });
}

export function comparisonTable(input: ComparisonInput, rows: ComparisonRow[]): string {
  const [monoceros, ...anchors] = input.systems;
  if (!monoceros) return "";
  const lines = [
    `| Scenario | Floor | ${input.systems.map((system) => system.label).join(" | ")} |`,
    `|---|---|${input.systems.map(() => "---|").join("")}`,
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
    lines.push(`| ${row.scenario} | ${cell(row.floor)} | **${myCell}** | ${anchorCells.join(" | ")} |`);
  }
  return lines.join("\n");
}
