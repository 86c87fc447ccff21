// Wall-clock time for the runtime: monotonic milliseconds, and timers of any length (Node's
// setTimeout caps at about 24.8 days; a lifespan may be longer) that never fire before their time
// (Node's may, by up to a millisecond: it counts whole milliseconds from the loop's cached time).
import type { Clock, TimerHandle } from "../../runtime/ports.js";

const SET_TIMEOUT_MAX_MS = 2 ** 31 - 1;

export class RealClock implements Clock {
  private nextId = 1;
  private readonly timers = new Map<number, NodeJS.Timeout>();

  nowMs(): number {
    return performance.now();
  }

  setTimer(atMs: number, fire: () => void): TimerHandle {
    const id = this.nextId++;
    const arm = () => {
      const delayMs = atMs - this.nowMs();
      if (delayMs > SET_TIMEOUT_MAX_MS) {
        this.timers.set(id, setTimeout(arm, SET_TIMEOUT_MAX_MS));
        return;
      }
      this.timers.set(
        id,
        setTimeout(() => {
          if (this.nowMs() < atMs) {
            arm();
            return;
          }
          this.timers.delete(id);
          fire();
        }, Math.max(0, Math.ceil(delayMs))),
      );
    };
    arm();
    return { id };
  }

  cancelTimer(handle: TimerHandle): void {
    const timer = this.timers.get(handle.id);
    if (timer === undefined) return;
    clearTimeout(timer);
    this.timers.delete(handle.id);
  }
}
