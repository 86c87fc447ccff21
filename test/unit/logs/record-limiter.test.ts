import { afterEach, describe, expect, it, vi } from "vitest";
import { LimitedRecords, RecordLimiter } from "../../../src/logs/record-limiter.js";

describe("record limiter", () => {
  it("lets the first occurrence through, holds the rest of the interval back and counts them", () => {
    const limiter = new RecordLimiter(1_000);
    expect(limiter.offer("SIGUSR2", 0)).toEqual({ write: true });
    expect(limiter.offer("SIGUSR2", 10)).toEqual({ write: false, startsHolding: true, flushAtMs: 1_000 });
    expect(limiter.offer("SIGUSR2", 20)).toEqual({ write: false, startsHolding: false, flushAtMs: 1_000 });
    expect(limiter.takeHeld("SIGUSR2", 1_000)).toBe(2);
    expect(limiter.takeHeld("SIGUSR2", 1_000)).toBe(0);
  });

  it("keeps a steady storm to one record per interval, and loses no occurrence", () => {
    const limiter = new RecordLimiter(1_000);
    let records = 0;
    let counted = 0;
    let flushAtMs: number | null = null;
    for (let nowMs = 0; nowMs < 10_000; nowMs += 1) {
      if (flushAtMs !== null && nowMs >= flushAtMs) {
        const held = limiter.takeHeld("SIGALRM", nowMs);
        if (held > 0) records++;
        counted += held;
        flushAtMs = null;
      }
      const decision = limiter.offer("SIGALRM", nowMs);
      if (decision.write) {
        records++;
        counted++;
      } else if (decision.startsHolding) {
        flushAtMs = decision.flushAtMs;
      }
    }
    for (const key of limiter.heldKeys()) counted += limiter.takeHeld(key, 10_000);
    expect(counted).toBe(10_000);
    expect(records).toBeLessThanOrEqual(11);
  });

  it("limits each key on its own", () => {
    const limiter = new RecordLimiter(1_000);
    expect(limiter.offer("SIGUSR1", 0).write).toBe(true);
    expect(limiter.offer("SIGUSR2", 1).write).toBe(true);
    expect(limiter.offer("SIGUSR1", 2).write).toBe(false);
    expect(limiter.heldKeys()).toEqual(["SIGUSR1"]);
  });

  it("writes again at once after a quiet interval", () => {
    const limiter = new RecordLimiter(1_000);
    expect(limiter.offer("EMFILE", 0).write).toBe(true);
    expect(limiter.offer("EMFILE", 1_000).write).toBe(true);
  });

  it("remembers a bounded number of keys", () => {
    const limiter = new RecordLimiter(1_000, 4);
    for (let key = 0; key < 100; key++) limiter.offer(`k${key}`, 0);
    for (let key = 96; key < 100; key++) expect(limiter.offer(`k${key}`, 1).write).toBe(false);
    expect(limiter.offer("k0", 2).write).toBe(true); // forgotten, so written again
  });
});

describe("limited records (the limiter with its timer)", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("writes the first at once, then the count held back with the latest detail when the interval ends, and the rest at close", () => {
    vi.useFakeTimers();
    let nowMs = 0;
    const written: [key: string, count: number, detail: string][] = [];
    const records = new LimitedRecords(1_000, (key, count, detail) => written.push([key, count, detail]), () => nowMs);
    records.note("EMFILE", "first");
    records.note("EMFILE", "second");
    records.note("EMFILE", "third");
    expect(written).toEqual([["EMFILE", 1, "first"]]);
    nowMs = 1_000;
    vi.advanceTimersByTime(1_000);
    expect(written).toEqual([["EMFILE", 1, "first"], ["EMFILE", 2, "third"]]);
    records.note("EMFILE", "fourth"); // within the interval that report opened: held
    expect(written).toHaveLength(2);
    records.close();
    expect(written.at(-1)).toEqual(["EMFILE", 1, "fourth"]);
    vi.advanceTimersByTime(10_000);
    expect(written).toHaveLength(3);
  });
});
