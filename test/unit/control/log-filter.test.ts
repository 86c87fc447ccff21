import { describe, expect, it } from "vitest";
import { logFilterFor, poolsOfStatus } from "../../../src/control/log-filter.js";

const STATUS = { pools: [{ name: "web", replicas: 2, workers: [] }, { name: "web-1", replicas: 1, workers: [] }] };

describe("ctl logs filter", () => {
  it("reads the pools of a /status object, and nothing from anything else", () => {
    expect(poolsOfStatus(STATUS)).toEqual([{ name: "web", replicas: 2 }, { name: "web-1", replicas: 1 }]);
    expect(poolsOfStatus({ pools: [{ name: 1 }] })).toBeNull();
    expect(poolsOfStatus(null)).toBeNull();
  });

  it("filters by pool or worker as the target resolves against the pools", () => {
    const status = () => STATUS;
    expect(logFilterFor(null, () => {
      throw new Error("not asked without a target");
    })).toEqual({ ok: true, value: { pool: null, workerId: null } });
    expect(logFilterFor({ pool: "web", worker: null }, status)).toEqual({ ok: true, value: { pool: "web", workerId: null } });
    expect(logFilterFor({ pool: "web", worker: 1 }, status)).toEqual({ ok: true, value: { pool: "web", workerId: "web-1" } });
    // A pool named like a worker id wins.
    expect(logFilterFor({ pool: "web", worker: "web-1" }, status)).toEqual({ ok: true, value: { pool: "web-1", workerId: null } });
    expect(logFilterFor({ pool: "web", worker: "web-0" }, status)).toEqual({ ok: true, value: { pool: "web", workerId: "web-0" } });
    expect(logFilterFor({ pool: "db", worker: null }, status)).toEqual({ ok: false, error: "no pool named db (pools: web, web-1)" });
  });

  it("takes the target as written when the status cannot be read", () => {
    expect(logFilterFor({ pool: "web", worker: 3 }, () => "?")).toEqual({ ok: true, value: { pool: "web", workerId: "web-3" } });
    expect(logFilterFor({ pool: "web", worker: "web-3" }, () => "?")).toEqual({ ok: true, value: { pool: null, workerId: "web-3" } });
  });
});
