import { describe, expect, it } from "vitest";
import type { ProcSource } from "../../../src/metrics/proc-source.js";
import { createProcessStatsReader } from "../../../src/metrics/process-stats.js";

const MACHINE = () => ({ pageSizeBytes: 4096, bootTimeSeconds: 1_795_600_000, ticksPerSecond: 100 });

/** A stat line with the fields the figures use; the rest as the kernel writes them for a sleeping process. */
function stat(pid: number, pgrp: number, fields: { state?: string; utime?: number; rss?: number } = {}): string {
  return `${pid} (worker) ${fields.state ?? "S"} 1 ${pgrp} ${pgrp} 0 -1 4194304 100 0 0 0 ${fields.utime ?? 0} 0 0 0 20 0 1 0 5000 2654208 ${fields.rss ?? 100} 18446744073709551615 0 0 0 0 0 0 0 0 65538 1 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0`;
}

const limits = (openFiles: number) => `Limit                     Soft Limit           Hard Limit           Units\nMax open files            ${openFiles}                ${openFiles}                files\n`;

/** A /proc in memory that counts how often it is listed. */
class FakeProc implements ProcSource {
  listings = 0;
  stats = new Map<number, string>();
  limitsText = new Map<number, string>();
  fds = new Map<number, number>();
  /** Pids that vanish after being listed: their reads return nothing. */
  vanished = new Set<number>();

  pids(): number[] {
    this.listings++;
    return [...this.stats.keys()];
  }
  stat(pid: number): string | null {
    return this.vanished.has(pid) ? null : (this.stats.get(pid) ?? null);
  }
  limits(pid: number): string | null {
    return this.vanished.has(pid) ? null : (this.limitsText.get(pid) ?? null);
  }
  openFds(pid: number): number | null {
    return this.vanished.has(pid) ? null : (this.fds.get(pid) ?? null);
  }
}

const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

describe("reading worker figures at scrape time", () => {
  it("reports the open-files limit the worker has now, not the one of the first scrape", async () => {
    const proc = new FakeProc();
    proc.stats.set(100, stat(100, 100));
    proc.limitsText.set(100, limits(1024));
    const read = createProcessStatsReader(proc, MACHINE);
    expect(read(100)?.maxFds).toBe(1024);
    await nextTurn();
    proc.limitsText.set(100, limits(65536)); // the worker raised its own RLIMIT_NOFILE
    expect(read(100)?.maxFds).toBe(65536);
  });

  it("lists /proc once for all the workers of one scrape, and again at the next scrape", async () => {
    const proc = new FakeProc();
    for (const pid of [100, 200, 300]) proc.stats.set(pid, stat(pid, pid, { utime: 50 }));
    proc.stats.set(101, stat(101, 100, { utime: 150 }));
    const read = createProcessStatsReader(proc, MACHINE);
    expect([100, 200, 300].map((pid) => read(pid)?.cpuSeconds)).toEqual([2, 0.5, 0.5]);
    expect(proc.listings).toBe(1);
    await nextTurn();
    proc.stats.set(101, stat(101, 100, { utime: 250 }));
    expect(read(100)?.cpuSeconds).toBe(3);
    expect(proc.listings).toBe(2);
  });

  it("leaves out a member that vanished between listing and reading, and a worker whose leader did", () => {
    const proc = new FakeProc();
    proc.stats.set(100, stat(100, 100, { rss: 10 }));
    proc.stats.set(101, stat(101, 100, { rss: 20 }));
    proc.stats.set(102, stat(102, 100, { rss: 30 }));
    proc.stats.set(200, stat(200, 200));
    for (const pid of [100, 101, 102]) proc.fds.set(pid, 4);
    proc.vanished.add(102);
    proc.vanished.add(200);
    const read = createProcessStatsReader(proc, MACHINE);
    expect(read(100)).toMatchObject({ rssBytes: 30 * 4096, openFds: 8 });
    expect(read(200)).toBeNull();
    expect(read(999)).toBeNull();
  });

  it("returns nothing, without throwing, when /proc cannot be listed", () => {
    const proc = new FakeProc();
    proc.pids = () => [];
    expect(createProcessStatsReader(proc, MACHINE)(100)).toBeNull();
  });
});
