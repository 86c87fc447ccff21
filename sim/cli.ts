// `npm run sim -- --seeds 2000`, `npm run sim -- --seed 42 --trace`
import { Command } from "commander";
import { COVERAGE_KINDS, mergeCoverage, missingKinds, type Coverage } from "./coverage.js";
import { runSeed, type RunResult } from "./run.js";

/** A run stops after this many violations (each is printed with its trace). */
const VIOLATIONS_MAX = 3;

const program = new Command()
  .name("sim")
  .description("Deterministic simulation of the supervisor core under random configs and faults.")
  .option("--seeds <n>", "how many seeds to run", "1000")
  .option("--start <n>", "first seed", "1")
  .option("--seed <n>", "run only this seed")
  .option("--trace", "print the whole trace of the run (with --seed)")
  .option("--no-coverage", "do not fail when an event, timer, command, fault or behaviour kind never happened")
  .parse();

const options = program.opts<{ seeds: string; start: string; seed?: string; trace?: boolean; coverage: boolean }>();

function report(result: RunResult): void {
  const violation = result.violation;
  if (violation === null) return;
  console.error(`VIOLATION seed=${result.seed}: ${violation.invariant}`);
  console.error(`  ${violation.detail} at ${violation.atMs} ms`);
  console.error(`  replay: npm run sim -- --seed ${result.seed} --trace`);
  const replay = runSeed(result.seed, { keepTrace: true });
  const relevant = violation.workerId === null ? replay.trace : replay.trace.filter((line) => line.includes(`${violation.workerId}#`) || line.includes("shutdown") || line.includes("exit "));
  console.error(`  trace (${relevant.length > 40 ? `last 40 of ${relevant.length} lines` : `${relevant.length} lines`}${violation.workerId ? ` about ${violation.workerId}` : ""}):`);
  for (const line of relevant.slice(-40)) console.error(`    ${line}`);
}

/** One line per kind, grouped as in COVERAGE_KINDS: "event spawned 12345". */
function printCoverage(coverage: Coverage): void {
  let group = "";
  let line = "";
  for (const { name } of COVERAGE_KINDS) {
    const [kindGroup = "", kind = ""] = name.split(" ");
    if (kindGroup !== group) {
      if (line !== "") console.log(line);
      group = kindGroup;
      line = `  ${group}:`;
    }
    line += ` ${kind}=${coverage.get(name) ?? 0}`;
  }
  if (line !== "") console.log(line);
}

if (options.seed !== undefined) {
  const result = runSeed(Number(options.seed), { keepTrace: true });
  if (options.trace) for (const line of result.trace) console.log(line);
  console.log(`seed=${result.seed} events=${result.events} simulated=${result.simulatedMs}ms exit=${result.exitCode} trace-hash=${result.traceHash} ${result.violation ? "VIOLATION" : "ok"}`);
  report(result);
  process.exit(result.violation ? 1 : 0);
}

const first = Number(options.start);
const count = Number(options.seeds);
const started = performance.now();
const coverage: Coverage = new Map();
let events = 0;
let simulatedMs = 0;
let failures = 0;
let ran = 0;
for (let seed = first; seed < first + count && failures < VIOLATIONS_MAX; seed++) {
  const result = runSeed(seed);
  ran++;
  events += result.events;
  simulatedMs += result.simulatedMs;
  mergeCoverage(coverage, result.coverage);
  if (result.violation !== null) {
    failures++;
    report(result);
  }
}
const wallS = (performance.now() - started) / 1000;
const stoppedEarly = ran < count ? ` (stopped after ${VIOLATIONS_MAX} violations; ${count} asked for)` : "";
console.log("coverage (how often each kind happened over the run):");
printCoverage(coverage);
const missing = options.coverage ? missingKinds(coverage) : [];
for (const name of missing) console.error(`NEVER HAPPENED: ${name} (${COVERAGE_KINDS.find((kind) => kind.name === name)?.meaning}); the simulator does not exercise it`);
console.log(
  `sim: ${ran} seeds from ${first}${stoppedEarly}, ${events} events, ${(simulatedMs / 3_600_000).toFixed(1)} simulated hours in ${wallS.toFixed(2)} s (${Math.round(events / wallS)} events/s): ${failures === 0 ? "no violations" : `${failures} violation(s)`}${missing.length > 0 ? `, ${missing.length} kind(s) never happened` : ""}`,
);
process.exit(failures === 0 && missing.length === 0 ? 0 : 1);
