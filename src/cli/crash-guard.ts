// What must happen before Monoceros dies of an unexpected error: kill its workers first.
const cleanups = new Set<() => void>();

export function onCrash(cleanup: () => void): () => void {
  cleanups.add(cleanup);
  return () => cleanups.delete(cleanup);
}

export function runCrashCleanups(): void {
  for (const cleanup of cleanups) {
    try {
      cleanup();
    } catch {
      // keep going: the next cleanup may still save the day
    }
  }
}
