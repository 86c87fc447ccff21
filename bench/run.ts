// `make bench`: runs every benchmark scenario and writes BENCHMARKS.md and bench/results.json.
// Not part of `make test`: figures are measured and reported, not asserted.
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { benchSimulator } from "./sim.js";

function machine(): string {
  const cpu = cpus()[0]?.model ?? "unknown CPU";
  let os = "unknown OS";
  try {
    os = execFileSync("sh", ["-c", ". /etc/os-release && echo $PRETTY_NAME"], { encoding: "utf8" }).trim();
  } catch {
    // keep "unknown OS"
  }
  return `${cpus().length} × ${cpu}, ${Math.round(totalmem() / 2 ** 30)} GiB, ${os}, Node ${process.version}`;
}

const startedAt = new Date();
console.log("bench: simulator…");
const sim = benchSimulator();
const results = { date: startedAt.toISOString(), machine: machine(), simulator: sim };
writeFileSync("bench/results.json", `${JSON.stringify(results, null, 2)}\n`);

const verdict = (ok: boolean) => (ok ? "met" : "**missed**");
const markdown = `# Benchmarks

Latest run: ${startedAt.toISOString().slice(0, 10)} on ${results.machine}.
Produced by \`make bench\` (raw figures in \`bench/results.json\`). Figures are single runs on a shared 2-core machine; expect ±10%.

## Simulator (issue 3)

| Measure | Result | Target | |
|---|---|---|---|
| Simulated events per wall second (${sim.seeds} random seeds, ${sim.events} events) | ${sim.eventsPerSecond.toLocaleString("en")} /s | ≥ 100,000 /s | ${verdict(sim.eventsPerSecond >= 100_000)} |
| One simulated day, 64 workers, 1 h lifespans (10% jitter), random crashes (${sim.day.events} events) | ${sim.day.wallMs.toFixed(0)} ms | < 2,000 ms | ${verdict(sim.day.wallMs < 2_000)} |

Each event is handled by the real core and runtime, and the invariant monitor checks every rule after each one; that check, not the core, is most of the cost.
`;
writeFileSync("BENCHMARKS.md", markdown);
console.log(markdown);
