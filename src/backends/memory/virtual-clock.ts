// Simulated time: timers fire in (time, order set) order, and time jumps straight to the next
// timer, so a simulated hour takes as long as the work done in it.
import type { Clock, TimerHandle } from "../../runtime/ports.js";

interface Entry {
  atMs: number;
  seq: number;
  fire: () => void;
  cancelled: boolean;
}

export class VirtualClock implements Clock {
  private now = 0;
  private seq = 0;
  private readonly heap: Entry[] = [];
  private readonly live = new Map<number, Entry>();

  nowMs(): number {
    return this.now;
  }

  setTimer(atMs: number, fire: () => void): TimerHandle {
    const entry: Entry = { atMs: Math.max(atMs, this.now), seq: this.seq++, fire, cancelled: false };
    this.live.set(entry.seq, entry);
    this.push(entry);
    return { id: entry.seq };
  }

  cancelTimer(handle: TimerHandle): void {
    const entry = this.live.get(handle.id);
    if (entry === undefined) return;
    entry.cancelled = true;
    this.live.delete(handle.id);
  }

  /** Time of the next pending timer, or null. */
  nextAtMs(): number | null {
    this.dropCancelled();
    return this.heap[0]?.atMs ?? null;
  }

  /** Fires the next timer if it is due no later than limitMs; returns whether one fired. */
  runNext(limitMs = Infinity): boolean {
    this.dropCancelled();
    const top = this.heap[0];
    if (top === undefined || top.atMs > limitMs) return false;
    this.pop();
    this.live.delete(top.seq);
    this.now = top.atMs;
    top.fire();
    return true;
  }

  /** Moves time forward with nothing firing (for a quiet stretch up to a limit). */
  advanceTo(atMs: number): void {
    if (atMs > this.now) this.now = atMs;
  }

  get pendingTimers(): number {
    return this.live.size;
  }

  private dropCancelled(): void {
    while (this.heap.length > 0 && (this.heap[0] as Entry).cancelled) this.pop();
  }

  private less(a: Entry, b: Entry): boolean {
    return a.atMs < b.atMs || (a.atMs === b.atMs && a.seq < b.seq);
  }

  private push(entry: Entry): void {
    const heap = this.heap;
    heap.push(entry);
    let index = heap.length - 1;
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if (!this.less(heap[index] as Entry, heap[parent] as Entry)) break;
      [heap[index], heap[parent]] = [heap[parent] as Entry, heap[index] as Entry];
      index = parent;
    }
  }

  private pop(): void {
    const heap = this.heap;
    const last = heap.pop() as Entry;
    if (heap.length === 0) return;
    heap[0] = last;
    let index = 0;
    for (;;) {
      const left = 2 * index + 1;
      const right = left + 1;
      let smallest = index;
      if (left < heap.length && this.less(heap[left] as Entry, heap[smallest] as Entry)) smallest = left;
      if (right < heap.length && this.less(heap[right] as Entry, heap[smallest] as Entry)) smallest = right;
      if (smallest === index) return;
      [heap[index], heap[smallest]] = [heap[smallest] as Entry, heap[index] as Entry];
      index = smallest;
    }
  }
}
