// GET / is one small, self-contained page that can only read /status; /status carries each pool's
// cpu_spread. The page's behaviour in a browser is tested in test/integration/status-page.test.ts.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { AdminServer } from "../../../src/admin/server.js";
import { STATUS_PAGE_CSP, STATUS_PAGE_HTML } from "../../../src/admin/status-page.js";
import { buildStatus } from "../../../src/admin/status.js";
import { CpuSpreadSampler } from "../../../src/metrics/cpu-spread-sampler.js";
import type { Metrics } from "../../../src/metrics/registry.js";
import { harness, pool } from "../../support/harness.js";
import { ROOT } from "../../support/monoceros.js";

const servers: AdminServer[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await server.close();
});

const metrics = { text: () => Promise.resolve("# metrics\n"), contentType: "text/plain" } as unknown as Metrics;

/** Page size budget: the README states the actual size. */
const PAGE_BYTES_MAX = 16 * 1024;

describe("status page", () => {
  it("is served at / as HTML with a policy that allows nothing but its own script, style and ./status", async () => {
    const h = harness([pool({ name: "web", replicas: 1 })]);
    const admin = new AdminServer(metrics, { state: h.runtime.state, stats: () => null, toEpochMs: (ms) => ms, nowMs: () => 0 });
    servers.push(admin);
    const port = await admin.listen({ port: 0, host: "127.0.0.1" });
    const response = await fetch(`http://127.0.0.1:${port}/`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(response.headers.get("content-security-policy")).toBe(STATUS_PAGE_CSP);
    expect(response.headers.get("x-content-type-options")).toBe("nosniff");
    expect(await response.text()).toBe(STATUS_PAGE_HTML);
    const notFound = await fetch(`http://127.0.0.1:${port}/nope`);
    expect([notFound.status, await notFound.text()]).toEqual([404, "not found: try / (the status page), /metrics, /health or /status\n"]);
  });

  it("is small, self-contained and inserts text only as text", () => {
    expect(Buffer.byteLength(STATUS_PAGE_HTML)).toBeLessThan(PAGE_BYTES_MAX);
    // The README states its size.
    const stated = /one HTML page of ([\d,]+) bytes/.exec(readFileSync(join(ROOT, "README.md"), "utf8"))?.[1];
    expect(Number(stated?.replaceAll(",", ""))).toBe(Buffer.byteLength(STATUS_PAGE_HTML));
    // The only absolute URL is the SVG namespace (an identifier, never fetched).
    expect([...STATUS_PAGE_HTML.matchAll(/\w+:\/\/[^\s"'<>]+/g)].map((m) => m[0])).toEqual(["http://www.w3.org/2000/svg"]);
    for (const sink of ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", " src="]) expect(STATUS_PAGE_HTML).not.toContain(sink);
    // One link: an empty inline icon, so the browser does not ask for /favicon.ico.
    expect([...STATUS_PAGE_HTML.matchAll(/<link[^>]*>/g)].map((m) => m[0])).toEqual(['<link rel="icon" href="data:,">']);
    // The inline script and style are exactly the ones the policy allows.
    const script = /<script>([\s\S]*)<\/script>/.exec(STATUS_PAGE_HTML)![1]!;
    const style = /<style>([\s\S]*)<\/style>/.exec(STATUS_PAGE_HTML)![1]!;
    const sha = (text: string) => createHash("sha256").update(text).digest("base64");
    expect(STATUS_PAGE_CSP).toContain(`script-src 'sha256-${sha(script)}'`);
    expect(STATUS_PAGE_CSP).toContain(`style-src 'sha256-${sha(style)}'`);
    expect(STATUS_PAGE_CSP).toMatch(/^default-src 'none';/);
    expect(STATUS_PAGE_CSP).toContain("connect-src 'self'");
    // At most once a second, and never two requests at once (the next is set up after an answer).
    expect(script).toContain("POLL_MS = 1000");
    expect(script).toMatch(/setTimeout\(poll, wait\)/);
    expect(script).not.toContain("setInterval");
  });
});

describe("/status cpu_spread", () => {
  it("states each pool's verdict and the settings it was reached with", () => {
    const h = harness([pool({ name: "web", replicas: 2 })]);
    h.runUntil(0);
    let nowMs = 0;
    const pids = h.runtime.state.pools[0]!.workers.filter((w) => w.pid !== null).map((w) => w.pid!);
    const sampler = new CpuSpreadSampler({
      state: h.runtime.state,
      readCpuSeconds: (pid) => (nowMs / 1000) * (pid === pids[0] ? 0.9 : 0.1),
      nowMs: () => nowMs,
      settings: { sampleIntervalMs: 1_000, windowMs: 10_000, minWindowMs: 2_000 },
      onProblem: () => {},
    });
    const status = () => buildStatus({ state: h.runtime.state, stats: () => null, toEpochMs: (ms) => 1_700_000_000_000 + ms, nowMs: () => nowMs, cpuSpread: sampler }) as { pools: { cpu_spread: Record<string, unknown> }[] };
    expect(status().pools[0]!.cpu_spread).toMatchObject({ ratio: null, verdict: "not_enough_data", samples: 0, sampled_at: null, workers: [] });
    for (nowMs = 0; nowMs <= 3_000; nowMs += 1_000) sampler.sample();
    nowMs -= 1_000;
    expect(status().pools[0]!.cpu_spread).toEqual({
      ratio: 0.8,
      verdict: "spread",
      text: "spread 80% — proxy mode with LEAST_REQUEST would even it out",
      balanced_below: 0.25,
      window_seconds: 10,
      min_window_seconds: 2,
      sample_interval_seconds: 1,
      samples: 4,
      covered_seconds: 3,
      workers_with_data: 2,
      mean_cpu_seconds_per_second: 0.5,
      sampled_at: new Date(1_700_000_003_000).toISOString(),
      workers: [
        { id: "web-0", pid: pids[0], cpu_seconds_per_second: 0.9, last_cpu_seconds_per_second: 0.9, observed_seconds: 3, points: [[-2, 0.9], [-1, 0.9], [0, 0.9]] },
        { id: "web-1", pid: pids[1], cpu_seconds_per_second: 0.1, last_cpu_seconds_per_second: 0.1, observed_seconds: 3, points: [[-2, 0.1], [-1, 0.1], [0, 0.1]] },
      ],
    });
  });
});
