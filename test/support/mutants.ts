// Real source mutation: a copy of src/domain (and the src/config files it imports) with one exact
// text replaced, imported like the real core. No hook in production code decides anything here.
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import type { HealthFunction } from "../../sim/run.js";
import type { StepFunction } from "../../src/runtime/runtime.js";

export interface Mutant {
  /** Folder-safe name, e.g. "health-ceil". */
  name: string;
  /** The rule it breaks, in words. */
  breaks: string;
  file: "supervisor.ts" | "health.ts" | "checks.ts";
  /** Exact text that must occur exactly once in the file… */
  from: string;
  /** …and what it becomes. */
  to: string;
}

export interface MutatedCore {
  step: StepFunction;
  health: HealthFunction;
}

const ROOT = new URL("../../", import.meta.url).pathname;
/** Gitignored; one folder per mutant, with src's layout so that `../config/…` imports resolve. */
export const MUTANTS_DIR = join(ROOT, "test/.mutants");

export async function loadMutant(mutant: Mutant): Promise<MutatedCore> {
  const dir = join(MUTANTS_DIR, mutant.name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  cpSync(join(ROOT, "src/domain"), join(dir, "domain"), { recursive: true });
  cpSync(join(ROOT, "src/config"), join(dir, "config"), { recursive: true });
  const path = join(dir, "domain", mutant.file);
  const source = readFileSync(path, "utf8");
  const occurrences = source.split(mutant.from).length - 1;
  if (occurrences !== 1) {
    throw new Error(`mutant ${mutant.name}: expected the text to mutate exactly once in src/domain/${mutant.file}, found it ${occurrences} times (was the core refactored? update the mutant): ${JSON.stringify(mutant.from)}`);
  }
  writeFileSync(path, source.replace(mutant.from, mutant.to));
  const supervisor = (await import(pathToFileURL(join(dir, "domain/supervisor.ts")).href)) as { step: StepFunction };
  const health = (await import(pathToFileURL(join(dir, "domain/health.ts")).href)) as { supervisorHealth: HealthFunction };
  return { step: supervisor.step, health: health.supervisorHealth };
}

export function removeMutants(): void {
  rmSync(MUTANTS_DIR, { recursive: true, force: true });
}
