// What must happen before Monoceros dies of an unexpected error: kill its workers first (they
// must not run unsupervised), then write out the log records still buffered for a slow reader.
export type CrashStage = "killProcesses" | "flushOutput";

const STAGES: readonly CrashStage[] = ["killProcesses", "flushOutput"];
const cleanups = new Map<CrashStage, Set<() => void>>(STAGES.map((stage) => [stage, new Set()]));

export function onCrash(cleanup: () => void, stage: CrashStage = "killProcesses"): () => void {
  const set = cleanups.get(stage) as Set<() => void>;
  set.add(cleanup);
  return () => set.delete(cleanup);
}

/** Every cleanup, stage by stage; one that throws does not stop the others. */
export function runCrashCleanups(): void {
  for (const stage of STAGES) {
    for (const cleanup of cleanups.get(stage) ?? []) {
      try {
        cleanup();
      } catch {
        // keep going: the next cleanup may still save the day
      }
    }
  }
}
