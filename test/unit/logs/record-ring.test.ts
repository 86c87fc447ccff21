import { describe, expect, it } from "vitest";
import { RecordRing, type RecordFilter } from "../../../src/logs/record-ring.js";

const ALL: RecordFilter = { pool: null, workerId: null };
const record = (n: number, fields: Record<string, unknown> = {}) => ({ n, ...fields });

describe("record ring", () => {
  it("returns the last n records, oldest first", () => {
    const ring = new RecordRing(10);
    for (let n = 0; n < 5; n++) ring.push(record(n));
    expect(ring.recent(ALL, 3)).toEqual({ records: [record(2), record(3), record(4)], dropped: 0 });
    expect(ring.recent(ALL, 100).records).toHaveLength(5);
  });

  it("keeps at most its count, dropping the oldest, and says how many a reader misses", () => {
    const ring = new RecordRing(3);
    for (let n = 0; n < 10; n++) ring.push(record(n));
    expect(ring.recent(ALL, 3)).toEqual({ records: [record(7), record(8), record(9)], dropped: 0 });
    // Asked for 5: 3 are kept, and 2 of the 7 dropped would have been shown.
    expect(ring.recent(ALL, 5)).toEqual({ records: [record(7), record(8), record(9)], dropped: 2 });
    expect(ring.recent(ALL, 100).dropped).toBe(7);
    expect(ring.stats()).toMatchObject({ records: 3, dropped: 7 });
  });

  it("keeps at most its bytes (as JSON), dropping the oldest", () => {
    const one = JSON.stringify(record(0, { text: "x".repeat(90) })).length;
    const ring = new RecordRing(1_000, one * 4);
    for (let n = 0; n < 10; n++) ring.push(record(n, { text: "x".repeat(90) }));
    const { records } = ring.recent(ALL, 100);
    expect(records.map((r) => r.n)).toEqual([6, 7, 8, 9]);
    expect(ring.stats().bytes).toBeLessThanOrEqual(one * 4);
  });

  it("does not keep a record bigger than its bytes, but still hands it to followers", () => {
    const ring = new RecordRing(10, 100);
    ring.push(record(0));
    const seen: unknown[] = [];
    ring.subscribe(ALL, (r) => seen.push(r));
    const big = record(1, { text: "x".repeat(200) });
    ring.push(big);
    expect(ring.recent(ALL, 10).records).toEqual([record(0)]);
    expect(seen).toEqual([big]);
  });

  it("filters by pool (from pool or from worker_id) and by worker id", () => {
    const ring = new RecordRing(100);
    ring.push({ msg: "monoceros started" });
    ring.push({ msg: "worker exited", pool: "web", worker_id: "web-1" });
    ring.push({ level: "info", worker_id: "web-0", worker_info_msg: "hello" });
    ring.push({ worker_id: "my-api-10", msg: "passthrough" });
    ring.push({ msg: "pool scaled", pool: "web" });
    const msgs = (filter: RecordFilter) => ring.recent(filter, 100).records.map((r) => r.msg ?? r.worker_info_msg);
    expect(msgs({ pool: "web", workerId: null })).toEqual(["worker exited", "hello", "pool scaled"]);
    expect(msgs({ pool: null, workerId: "web-1" })).toEqual(["worker exited"]);
    expect(msgs({ pool: "my-api", workerId: null })).toEqual(["passthrough"]);
    expect(msgs({ pool: "my", workerId: null })).toEqual([]);
    expect(msgs(ALL)).toHaveLength(5);
  });

  it("counts dropped records per pool and worker, so a filtered reader is not told of others' losses", () => {
    const ring = new RecordRing(2);
    ring.push({ pool: "a", worker_id: "a-0" });
    ring.push({ pool: "b", worker_id: "b-0" });
    ring.push({ pool: "b", worker_id: "b-0" });
    ring.push({ pool: "b", worker_id: "b-0" });
    expect(ring.recent({ pool: "a", workerId: null }, 10)).toEqual({ records: [], dropped: 1 });
    expect(ring.recent({ pool: null, workerId: "b-0" }, 10)).toEqual({ records: [{ pool: "b", worker_id: "b-0" }, { pool: "b", worker_id: "b-0" }], dropped: 1 });
  });

  it("hands new matching records to subscribers until they unsubscribe", () => {
    const ring = new RecordRing(10);
    const web: unknown[] = [];
    const unsubscribe = ring.subscribe({ pool: "web", workerId: null }, (r) => web.push(r));
    ring.push({ pool: "web", n: 1 });
    ring.push({ pool: "api", n: 2 });
    unsubscribe();
    ring.push({ pool: "web", n: 3 });
    expect(web).toEqual([{ pool: "web", n: 1 }]);
    expect(ring.stats().subscribers).toBe(0);
  });

  it("drops a subscriber that throws, and keeps logging", () => {
    const ring = new RecordRing(10);
    ring.subscribe(ALL, () => {
      throw new Error("broken reader");
    });
    expect(() => ring.push(record(1))).not.toThrow();
    expect(ring.stats().subscribers).toBe(0);
    expect(ring.recent(ALL, 10).records).toEqual([record(1)]);
  });

  it("counts a record that cannot be serialized as dropped instead of failing", () => {
    const ring = new RecordRing(10);
    expect(() => ring.push({ big: 1n })).not.toThrow();
    expect(ring.stats()).toMatchObject({ records: 0, dropped: 1 });
  });

  it("bounds its subscribers", () => {
    const ring = new RecordRing(10);
    for (let i = 0; i < 64; i++) ring.subscribe(ALL, () => undefined);
    expect(() => ring.subscribe(ALL, () => undefined)).toThrow(/more than 64 subscribers/);
  });
});

describe("record ring: workers' lines", () => {
  it("keeps each line a worker wrote as text, parsed only when read, filtered by pool and worker", () => {
    const ring = new RecordRing(10, 10_000);
    ring.push({ level: "info", msg: "Worker started", pool: "web", worker_id: "web-0" });
    ring.pushLines('{"a":1,"worker_id":"web-0"}\n{"level":"info","msg":"","worker_id":"web-1","worker_info_msg":"plain"}\nnot json\n', "web", "web-1");
    // Kept under the worker that wrote them (a line's own worker_id is the worker's JSON, passed through).
    expect(ring.recent({ pool: "web", workerId: "web-1" }, 10).records).toEqual([
      { a: 1, worker_id: "web-0" },
      { level: "info", msg: "", worker_id: "web-1", worker_info_msg: "plain" },
      { worker_id: "web-1", line: "not json" },
    ]);
    expect(ring.recent({ pool: null, workerId: null }, 10).records).toHaveLength(4);
    expect(ring.stats().records).toBe(4);
  });

  it("hands new lines to a follower, and evicts the oldest past its bounds", () => {
    const ring = new RecordRing(3, 10_000);
    const seen: unknown[] = [];
    ring.subscribe({ pool: "web", workerId: "web-2" }, (record) => seen.push(record));
    ring.pushLines('{"n":1}\n{"n":2}\n{"n":3}\n{"n":4}\n', "web", "web-2");
    expect(seen).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }, { n: 4 }]);
    expect(ring.recent({ pool: null, workerId: null }, 10)).toEqual({ records: [{ n: 2 }, { n: 3 }, { n: 4 }], dropped: 1 });
  });
});
