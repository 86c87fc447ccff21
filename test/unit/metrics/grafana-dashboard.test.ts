// deploy/grafana-dashboard.json as a file: Grafana's dashboard model as it imports it, every metric
// Monoceros exports drawn somewhere, every query filtered by the dashboard's variables. Whether the
// queries parse and return data is checked against a real Prometheus in
// test/integration/prometheus.test.ts.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Metrics } from "../../../src/metrics/registry.js";
import type { ProcessStats } from "../../../src/runtime/ports.js";
import { harness, pool } from "../../support/harness.js";
import { ROOT } from "../../support/monoceros.js";

interface Target {
  refId: string;
  expr: string;
  datasource: unknown;
}

interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: unknown;
  gridPos: { x: number; y: number; w: number; h: number };
  panels?: Panel[];
  targets?: Target[];
}

interface Variable {
  name: string;
  type: string;
  query: string;
  datasource?: unknown;
  multi?: boolean;
  includeAll?: boolean;
}

interface Dashboard {
  uid: string;
  title: string;
  schemaVersion: number;
  panels: Panel[];
  templating: { list: Variable[] };
}

const dashboard = JSON.parse(readFileSync(join(ROOT, "deploy/grafana-dashboard.json"), "utf8")) as Dashboard;
const DATASOURCE = { type: "prometheus", uid: "${DS_PROMETHEUS}" };
const panels = dashboard.panels.flatMap((panel) => [panel, ...(panel.panels ?? [])]);
const queries = panels.flatMap((panel) => (panel.targets ?? []).map((target) => ({ where: `${panel.title} (${target.refId})`, ...target })));
/** Grafana's own variables the queries may use. */
const BUILT_INS = new Set(["__rate_interval", "__range", "__interval"]);

describe("the Grafana dashboard", () => {
  it("is a current Grafana dashboard whose data source is the DS_PROMETHEUS variable, with a pool variable", () => {
    expect(dashboard.uid).toBe("monoceros");
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(39);
    const byName = new Map(dashboard.templating.list.map((v) => [v.name, v]));
    expect(byName.get("DS_PROMETHEUS")).toMatchObject({ type: "datasource", query: "prometheus" });
    expect(byName.get("pool")).toMatchObject({ type: "query", multi: true, includeAll: true, datasource: DATASOURCE });
    expect(byName.get("pool")?.query).toMatch(/^label_values\(.+, pool\)$/);
    for (const variable of dashboard.templating.list.filter((v) => v.type === "query")) expect(variable.datasource, variable.name).toEqual(DATASOURCE);
    for (const panel of panels.filter((p) => p.type !== "row")) {
      expect(panel.datasource, panel.title).toEqual(DATASOURCE);
      expect(panel.targets?.length ?? 0, `${panel.title} has no query`).toBeGreaterThan(0);
      for (const target of panel.targets ?? []) expect(target.datasource, `${panel.title} (${target.refId})`).toEqual(DATASOURCE);
      expect(new Set(panel.targets?.map((t) => t.refId)).size, `${panel.title}: refIds repeat`).toBe(panel.targets?.length);
    }
  });

  it("lays its panels out on Grafana's 24-column grid without overlaps, with unique ids", () => {
    expect(new Set(panels.map((p) => p.id)).size).toBe(panels.length);
    const taken = new Map<string, string>();
    for (const { title, gridPos: { x, y, w, h } } of panels) {
      expect(x >= 0 && y >= 0 && w >= 1 && h >= 1 && x + w <= 24, `${title}: ${JSON.stringify({ x, y, w, h })}`).toBe(true);
      for (let row = y; row < y + h; row++) {
        for (let column = x; column < x + w; column++) {
          const cell = `${column},${row}`;
          expect(taken.get(cell), `${title} overlaps ${taken.get(cell)} at ${cell}`).toBeUndefined();
          taken.set(cell, title);
        }
      }
    }
  });

  it("uses only its own variables and Grafana's, and filters every Monoceros metric by instance (and pool where it has one)", () => {
    const defined = new Set(dashboard.templating.list.map((v) => v.name));
    const problems: string[] = [];
    for (const { where, expr } of [...queries, ...dashboard.templating.list.filter((v) => v.type === "query").map((v) => ({ where: `$${v.name}`, expr: v.query }))]) {
      for (const [, name] of expr.matchAll(/\$\{?(\w+)\}?/g)) if (!defined.has(name!) && !BUILT_INS.has(name!)) problems.push(`${where}: unknown variable $${name}`);
      for (const [, metric, selector = ""] of expr.matchAll(/\b(monoceros_\w+)(\{[^}]*\})?/g)) {
        if (where === "$instance") continue; // the variable that lists the instances
        if (!selector.includes('instance=~"$instance"')) problems.push(`${where}: ${metric} without instance=~"$instance"`);
        const pooled = metric!.startsWith("monoceros_workerpool_") && metric !== "monoceros_workerpool_failed_to_parse_log_json_total";
        if (pooled && where !== "$pool" && !selector.includes('pool=~"$pool"')) problems.push(`${where}: ${metric} without pool=~"$pool"`);
      }
    }
    expect(problems).toEqual([]);
  });

  it("draws every metric Monoceros exports", async () => {
    const check = { probe: { kind: "http" as const, path: "/h", host: "127.0.0.1", startPort: 9100 }, intervalMs: 1_000, timeoutMs: 100, failureThreshold: 1, startPeriodMs: 0 };
    const h = harness([pool({ name: "web", replicas: 2, maxSurge: 1, healthCheck: check, limits: { lifespanMs: 60_000, jitterRatio: 0, memoryBytes: 1024 } })]);
    h.runUntil(0);
    const stats: ProcessStats = { cpuSeconds: 1, rssBytes: 1, virtualMemoryBytes: 1, openFds: 1, maxFds: 1, virtualMemoryMaxBytes: 1, startTimeSeconds: 1 };
    const metrics = new Metrics({ admin: { port: 0, host: null }, pools: h.runtime.state.pools.map((p) => p.config) }, h.runtime.state, () => stats, { version: "1", revision: "r", branch: "b" });
    metrics.setCpuSpreadSource(() => 0.3);
    const exported = [...(await metrics.text()).matchAll(/^# TYPE (monoceros_\S+) /gm)].map((m) => m[1]!);
    expect(exported.length).toBeGreaterThan(15);
    const drawn = queries.map((q) => q.expr).join("\n");
    expect(exported.filter((name) => !new RegExp(`\\b${name}\\b`).test(drawn))).toEqual([]);
  });
});
