// Bounds how many log records one kind of event can produce: a signal storm or a flood of
// accept errors must not flood the log (nor the disk, nor the log pipeline behind it).
// Pure: time comes in as nowMs; the caller owns the timer that reports what was held back.

/** What to do with one occurrence of an event. */
export type LimitDecision =
  /** Write a record for it now. */
  | { write: true }
  /** Held back and counted; when `startsHolding`, call takeHeld(key) at flushAtMs and report the count. */
  | { write: false; startsHolding: boolean; flushAtMs: number };

interface KeyState {
  lastRecordAtMs: number;
  held: number;
}

/** Distinct keys remembered; more are forgotten oldest first (keys are signal names or error codes). */
const KEYS_MAX_DEFAULT = 64;

/** At most one record per key per intervalMs; the occurrences in between are counted, never lost. */
export class RecordLimiter {
  private readonly keys = new Map<string, KeyState>();

  constructor(
    private readonly intervalMs: number,
    private readonly keysMax = KEYS_MAX_DEFAULT,
  ) {}

  offer(key: string, nowMs: number): LimitDecision {
    const state = this.keys.get(key);
    if (state === undefined || (state.held === 0 && nowMs - state.lastRecordAtMs >= this.intervalMs)) {
      this.remember(key, { lastRecordAtMs: nowMs, held: 0 });
      return { write: true };
    }
    state.held++;
    return { write: false, startsHolding: state.held === 1, flushAtMs: state.lastRecordAtMs + this.intervalMs };
  }

  /** How many occurrences were held back since the last record (0 if none); that report counts as a record. */
  takeHeld(key: string, nowMs: number): number {
    const state = this.keys.get(key);
    if (state === undefined || state.held === 0) return 0;
    const held = state.held;
    this.remember(key, { lastRecordAtMs: nowMs, held: 0 });
    return held;
  }

  /** Every key with occurrences held back, for a last report (e.g. at exit). */
  heldKeys(): string[] {
    return [...this.keys].filter(([, state]) => state.held > 0).map(([key]) => key);
  }

  private remember(key: string, state: KeyState): void {
    this.keys.delete(key);
    if (this.keys.size >= this.keysMax) {
      const oldest = this.keys.keys().next();
      if (!oldest.done) this.keys.delete(oldest.value);
    }
    this.keys.set(key, state);
  }
}

/**
 * A RecordLimiter with its timer: `write(key, count, detail)` is called at once for the first
 * occurrence, then at most once per interval with the count held back meanwhile and the latest
 * detail (e.g. an error message).
 */
export class LimitedRecords {
  private readonly limiter: RecordLimiter;
  /** Per key held back: its report timer and latest detail (as many as keys held, so bounded by the timers). */
  private readonly held = new Map<string, { timer: NodeJS.Timeout; detail: string }>();

  constructor(
    intervalMs: number,
    private readonly write: (key: string, count: number, detail: string) => void,
    private readonly nowMs: () => number = () => performance.now(),
  ) {
    this.limiter = new RecordLimiter(intervalMs);
  }

  note(key: string, detail = ""): void {
    const now = this.nowMs();
    const decision = this.limiter.offer(key, now);
    if (decision.write) {
      this.write(key, 1, detail);
      return;
    }
    const pending = this.held.get(key);
    if (pending !== undefined) {
      pending.detail = detail;
      return;
    }
    const timer = setTimeout(() => this.report(key), Math.max(0, decision.flushAtMs - now));
    // A pending report must not keep a finished Monoceros alive.
    timer.unref();
    this.held.set(key, { timer, detail });
  }

  /** Reports every count still held back and stops the timers. */
  close(): void {
    for (const key of [...this.held.keys()]) this.report(key);
  }

  private report(key: string): void {
    const pending = this.held.get(key);
    if (pending === undefined) return;
    clearTimeout(pending.timer);
    this.held.delete(key);
    const count = this.limiter.takeHeld(key, this.nowMs());
    if (count > 0) this.write(key, count, pending.detail);
  }
}
