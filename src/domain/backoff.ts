// The one shape of every delay that backs off: the first delay, doubled per step, at most a cap.

/** firstMs × 2^doublings (no doubling below 0), at most maxMs. */
export function doublingMs(firstMs: number, maxMs: number, doublings: number): number {
  return Math.min(maxMs, firstMs * 2 ** Math.min(Math.max(0, doublings), 40));
}
