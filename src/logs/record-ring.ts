// The recent log records Monoceros keeps in memory for `monoceros ctl logs`: the log stream itself
// goes to stdout/stderr and whatever collects them; this is only so that an operator on the host
// can see what just happened (and follow it) without knowing where the logs are shipped.
// Bounded by count and by bytes, oldest first out; what falls out is counted, so `ctl logs` can
// say that its history is incomplete instead of implying that nothing happened before.

/** Which records a reader wants: every one (both null), a pool's, or one worker's (by worker_id). */
export interface RecordFilter {
  pool: string | null;
  workerId: string | null;
}

export interface RecentRecords {
  /** Oldest first. */
  records: Record<string, unknown>[];
  /** Matching records that would have been among them but are no longer kept (0 when none were missing). */
  dropped: number;
}

/** What the control channel reads logs from (a RecordRing in Monoceros, anything in tests). */
export interface LogSource {
  /** The last `n` records that match. */
  recent(filter: RecordFilter, n: number): RecentRecords;
  /** Calls onRecord with each record pushed from now on that matches; returns the unsubscribe function. */
  subscribe(filter: RecordFilter, onRecord: (record: Record<string, unknown>) => void): () => void;
}

export const RING_RECORDS_MAX_DEFAULT = 2_000;
export const RING_BYTES_MAX_DEFAULT = 2 * 1024 * 1024;
/** The control server allows 8 followers; more subscribers than this is a leak. */
const SUBSCRIBERS_MAX = 64;
/** Distinct pools and workers whose dropped records are counted; past it, only the total counts. */
const DROPPED_KEYS_MAX = 4_096;

interface Entry {
  /** The record; null for a worker's line kept as text, parsed only when someone reads it. */
  record: Record<string, unknown> | null;
  text: string | null;
  pool: string | null;
  workerId: string | null;
  /** Its size as JSON: what the byte bound counts (the objects themselves take a few times more). */
  bytes: number;
}

/** `web` from `web-2`: worker ids are always `<pool>-<index>`, and pool names may contain '-'. */
function poolOfWorkerId(workerId: string): string | null {
  return /^(.+)-\d+$/.exec(workerId)?.[1] ?? null;
}

function describe(record: Record<string, unknown>): { pool: string | null; workerId: string | null } {
  const workerId = typeof record.worker_id === "string" ? record.worker_id : null;
  const pool = typeof record.pool === "string" ? record.pool : workerId === null ? null : poolOfWorkerId(workerId);
  return { pool, workerId };
}

/** A kept line's record: parsed on first read (a line that is not a JSON object is shown as its text). */
function recordOf(entry: Entry): Record<string, unknown> {
  if (entry.record !== null) return entry.record;
  let record: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(entry.text ?? "");
    record = typeof parsed === "object" && parsed !== null && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : { worker_id: entry.workerId, line: entry.text };
  } catch {
    record = { worker_id: entry.workerId, line: entry.text };
  }
  entry.record = record;
  entry.text = null;
  return record;
}

function matches(entry: { pool: string | null; workerId: string | null }, filter: RecordFilter): boolean {
  return (filter.pool === null || entry.pool === filter.pool) && (filter.workerId === null || entry.workerId === filter.workerId);
}

export class RecordRing implements LogSource {
  /** A circular buffer: `size` entries from `head`. */
  private readonly entries: (Entry | undefined)[];
  private head = 0;
  private size = 0;
  private bytes = 0;
  private readonly subscribers = new Set<{ filter: RecordFilter; onRecord: (record: Record<string, unknown>) => void }>();
  private droppedTotal = 0;
  private readonly droppedByPool = new Map<string, number>();
  private readonly droppedByWorker = new Map<string, number>();

  constructor(
    private readonly recordsMax = RING_RECORDS_MAX_DEFAULT,
    private readonly bytesMax = RING_BYTES_MAX_DEFAULT,
  ) {
    if (!(Number.isInteger(recordsMax) && recordsMax > 0 && bytesMax > 0)) throw new Error(`RecordRing: bounds must be positive, got ${recordsMax} records, ${bytesMax} bytes`);
    this.entries = new Array<Entry | undefined>(recordsMax);
  }

  /** Keeps the record (which must not be changed afterwards) and hands it to every matching subscriber. */
  push(record: Record<string, unknown>): void {
    const { pool, workerId } = describe(record);
    let bytes: number;
    try {
      bytes = Buffer.byteLength(JSON.stringify(record), "utf8");
    } catch {
      // Not serializable (a cycle, a BigInt): no reader could be sent it either.
      this.countDropped({ pool, workerId });
      return;
    }
    this.keep({ record, text: null, pool, workerId, bytes });
  }

  /**
   * Keeps the lines a worker wrote, as Monoceros forwarded them (each a JSON object with worker_id,
   * or a record carrying a plain line): text only, split and measured here, parsed only when read,
   * so the log path pays a split and a small object per line, never a JSON round trip.
   */
  pushLines(text: string, pool: string, workerId: string): void {
    let start = 0;
    while (start < text.length) {
      let end = text.indexOf("\n", start);
      if (end < 0) end = text.length;
      if (end > start) this.keep({ record: null, text: text.slice(start, end), pool, workerId, bytes: end - start });
      start = end + 1;
    }
  }

  private keep(entry: Entry): void {
    const { bytes } = entry;
    if (bytes > this.bytesMax) {
      // It would push out everything else and still not fit; followers may still take it.
      this.countDropped(entry);
    } else {
      while (this.size === this.recordsMax || this.bytes + bytes > this.bytesMax) this.dropOldest();
      this.entries[(this.head + this.size) % this.recordsMax] = entry;
      this.size++;
      this.bytes += bytes;
    }
    if (this.subscribers.size === 0) return;
    for (const subscriber of [...this.subscribers]) {
      if (!matches(entry, subscriber.filter)) continue;
      try {
        subscriber.onRecord(recordOf(entry));
      } catch {
        // Logging must not fail because of one reader: a subscriber that throws is dropped.
        this.subscribers.delete(subscriber);
      }
    }
  }

  recent(filter: RecordFilter, n: number): RecentRecords {
    const records: Record<string, unknown>[] = [];
    for (let i = this.size - 1; i >= 0 && records.length < n; i--) {
      const entry = this.entries[(this.head + i) % this.recordsMax];
      if (entry !== undefined && matches(entry, filter)) records.push(recordOf(entry));
    }
    records.reverse();
    return { records, dropped: Math.min(Math.max(0, n - records.length), this.droppedMatching(filter)) };
  }

  subscribe(filter: RecordFilter, onRecord: (record: Record<string, unknown>) => void): () => void {
    if (this.subscribers.size >= SUBSCRIBERS_MAX) throw new Error(`RecordRing: more than ${SUBSCRIBERS_MAX} subscribers (a reader that never unsubscribed?)`);
    const subscriber = { filter, onRecord };
    this.subscribers.add(subscriber);
    return () => {
      this.subscribers.delete(subscriber);
    };
  }

  /** What is kept now, for metrics and tests. */
  stats(): { records: number; bytes: number; dropped: number; subscribers: number } {
    return { records: this.size, bytes: this.bytes, dropped: this.droppedTotal, subscribers: this.subscribers.size };
  }

  private dropOldest(): void {
    const entry = this.entries[this.head];
    if (entry === undefined) throw new Error("RecordRing: asked to drop from an empty ring (its byte count is wrong)");
    this.entries[this.head] = undefined;
    this.head = (this.head + 1) % this.recordsMax;
    this.size--;
    this.bytes -= entry.bytes;
    this.countDropped(entry);
  }

  private countDropped(entry: { pool: string | null; workerId: string | null }): void {
    this.droppedTotal++;
    if (entry.pool !== null) increment(this.droppedByPool, entry.pool);
    if (entry.workerId !== null) increment(this.droppedByWorker, entry.workerId);
  }

  private droppedMatching(filter: RecordFilter): number {
    if (filter.workerId !== null) return this.droppedByWorker.get(filter.workerId) ?? 0;
    if (filter.pool !== null) return this.droppedByPool.get(filter.pool) ?? 0;
    return this.droppedTotal;
  }
}

function increment(counts: Map<string, number>, key: string): void {
  const count = counts.get(key);
  if (count !== undefined) counts.set(key, count + 1);
  else if (counts.size < DROPPED_KEYS_MAX) counts.set(key, 1);
}
