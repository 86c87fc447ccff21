// --grow-memory: allocate memory at a steady rate so a supervisor's memory limit can be tested.
// Buffers live outside V8's heap and are filled, so the pages are really touched and RSS grows
// (an untouched allocation may never be backed by physical memory).

export const GROW_STEP_MS = 100;

// Module-level on purpose: once growth stops, nothing else references the buffers, and the
// garbage collector would hand the memory back (the test would see RSS fall again).
const retained: Buffer[] = [];

/** Bytes to allocate in the next step: the per-step share of the rate, never past the maximum. */
export function nextChunkBytes(bytesPerSec: number, grownBytes: number, maxBytes: number): number {
  const perStep = Math.ceil((bytesPerSec * GROW_STEP_MS) / 1000);
  return Math.max(0, Math.min(perStep, maxBytes - grownBytes));
}

export interface MemoryGrowth {
  /** Bytes allocated so far. */
  readonly grownBytes: () => number;
  readonly stop: () => void;
}

/** Starts growing; calls onMaxReached once when the maximum is held. Memory is kept until exit. */
export function startMemoryGrowth(bytesPerSec: number, maxBytes: number, onMaxReached: (bytes: number) => void): MemoryGrowth {
  let grown = 0;
  const step = (): void => {
    const chunk = nextChunkBytes(bytesPerSec, grown, maxBytes);
    if (chunk > 0) {
      // allocUnsafeSlow: outside the small-buffer pool, so each chunk is its own allocation.
      retained.push(Buffer.allocUnsafeSlow(chunk).fill(0x5a));
      grown += chunk;
    }
    if (grown >= maxBytes) {
      clearInterval(timer);
      onMaxReached(grown);
    }
  };
  const timer = setInterval(step, GROW_STEP_MS);
  return { grownBytes: () => grown, stop: () => clearInterval(timer) };
}
