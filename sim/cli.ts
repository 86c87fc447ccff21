// `npm run sim -- --seeds 2000`, `npm run sim -- --seed 42 --trace`
import { Command } from "commander";
import { runSeed, type RunResult } from "./run.js";

const program = new Command()
  .name("sim")
  .description("Deterministic simulation of the supervisor core under random configs and faults.")
  .option("--seeds <n>", "how many seeds to run", "1000")
  .option("--start <n>", "first seed", "1")
  .option("--seed <n>", "run only this seed")
  .option("--trace", "print the whole trace of the run (with --seed)")
  .parse();

const options = program.opts<{ seeds: string; start: string; seed?: string; trace?: boolean }>();

function report(result: RunResult): void {
  const violation = result.violation;
  if (violation === null) return;
  console.error(`VIOLATION seed=${result.seed}: ${violation.invariant}`);
  console.error(`  ${violation.detail} at ${violation.atMs} ms`);
  console.error(`  replay: npm run sim -- --seed ${result.seed} --trace`);
  const replay = runSeed(result.seed, { keepTrace: true });
  const relevant = violation.workerId === null ? replay.trace : replay.trace.filter((line) => line.includes(`${violation.workerId}#`) || line.includes("shutdown") || line.includes("exit"));
  console.error(`  trace (${relevant.length > 40 ? `last 40 of ${relevant.length} lines` : `${relevant.length} lines`}${violation.workerId ? ` about ${violation.workerId}` : ""}):`);
  for (const line of relevant.slice(-40)) console.error(`    ${line}`);
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
let events = 0;
let simulatedMs = 0;
let failures = 0;
for (let seed = first; seed < first + count; seed++) {
  const result = runSeed(seed);
  events += result.events;
  simulatedMs += result.simulatedMs;
  if (result.violation !== null) {
    failures++;
    report(result);
    if (failures >= 3) break;
  }
}
const wallS = (performance.now() - started) / 1000;
console.log(
  `sim: ${count} seeds from ${first}, ${events} events, ${(simulatedMs / 3_600_000).toFixed(1)} simulated hours in ${wallS.toFixed(2)} s (${Math.round(events / wallS)} events/s): ${failures === 0 ? "no violations" : `${failures} violation(s)`}`,
);
process.exit(failures === 0 ? 0 : 1);
