// Proxy mode's lifecycle with real processes and a stand-in for Envoy (test/fixtures/fake-envoy.mjs):
// files written, the proxy started first and stopped last, rotation through EDS, drain through
// the admin API, a crashed proxy restarted. Traffic through a real Envoy: envoy-container.test.ts.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { cleanUpAfterEach, proxyPoolConfig, ROOT, startMonoceros, type Running } from "../support/monoceros.js";
import { checkEnvoyObject } from "../support/envoy-schema.js";
import { parse } from "yaml";

const FAKE_ENVOY = join(ROOT, "test/fixtures/fake-envoy.mjs");
const track = cleanUpAfterEach(afterEach);

function runProxyPool(): { m: Running; folder: string; port: number } {
  const port = 21_000 + Math.floor(Math.random() * 10_000);
  const { yaml, folder } = proxyPoolConfig({
    admin: true, replicas: 2, signalTimeout: "2s", startPort: port, listenerPort: port + 10, proxyBinary: FAKE_ENVOY, adminPort: 0,
    serverSignalTimeout: "5s", folderPrefix: "monoceros-envoy-",
  });
  const m = track(startMonoceros(yaml));
  return { m, folder, port };
}

const fakeEnvoyEvents = (m: Running) =>
  m.stdoutLines.flatMap((line) => {
    try {
      const parsed = JSON.parse(line) as { fake_envoy?: string; at?: number; healthy?: number; worker_id?: string };
      return parsed.fake_envoy ? [parsed] : [];
    } catch {
      return [];
    }
  });

describe("proxy mode with Envoy's lifecycle (stand-in binary)", () => {
  it("writes schema-valid files, starts the proxy first with the original's flags, and puts workers in rotation as they run", async () => {
    const { m, folder } = runProxyPool();
    await m.waitFor("both workers in rotation", () => fakeEnvoyEvents(m).some((e) => e.fake_envoy === "endpoints" && e.healthy === 2));
    const startedMsgs = m.records().filter((r) => r.msg === "Proxy started" || r.msg === "Worker started").map((r) => r.msg);
    expect(startedMsgs[0]).toBe("Proxy started");
    expect(fakeEnvoyEvents(m)[0]).toMatchObject({ fake_envoy: "started", config: join(folder, "envoy_starting_config.yaml"), drain_time_s: "2", drain_strategy: "immediate", worker_id: "web-proxy" });
    // The original's file names, straight in proxy_config_path, plus the EDS file and the admin address Envoy writes.
    expect(readdirSync(folder).sort()).toEqual(["admin-address.txt", "clusters.yaml", "endpoints.yaml", "envoy_starting_config.yaml", "listeners.yaml"]);
    const bootstrap = parse(readFileSync(join(folder, "envoy_starting_config.yaml"), "utf8")) as object;
    expect(checkEnvoyObject("envoy.config.bootstrap.v3.Bootstrap", bootstrap)).toEqual([]);
    for (const file of ["clusters.yaml", "listeners.yaml", "endpoints.yaml"]) {
      expect(checkEnvoyObject("envoy.service.discovery.v3.DiscoveryResponse", parse(readFileSync(join(folder, file), "utf8")) as object)).toEqual([]);
    }
  });

  it("on SIGTERM drains the proxy, stops the workers, then stops the proxy last, and exits 0", async () => {
    const { m } = runProxyPool();
    await m.waitFor("both workers in rotation", () => fakeEnvoyEvents(m).some((e) => e.fake_envoy === "endpoints" && e.healthy === 2));
    await m.waitFor("workers ready", () => m.stderrLines.filter((l) => l.includes("processbin started")).length === 2);
    m.child.kill("SIGTERM");
    expect((await m.exited).code).toBe(0);
    const events = fakeEnvoyEvents(m);
    const drainAt = events.find((e) => e.fake_envoy === "drain")?.at ?? NaN;
    const proxySigtermAt = events.find((e) => e.fake_envoy === "sigterm")?.at ?? NaN;
    const workerExits = m.records().filter((r) => r.msg === "Worker exited").map((r) => (r.ts as number) * 1000);
    expect(workerExits).toHaveLength(2);
    // The drain request goes out in the same step as the workers' SIGTERM, over HTTP: it may land a
    // little after a worker that exits at once on SIGTERM (whose exit is logged when its leader exits).
    expect(drainAt).toBeLessThanOrEqual(Math.min(...workerExits) + 100);
    expect(proxySigtermAt).toBeGreaterThanOrEqual(Math.max(...workerExits) - 5);
    expect(events.some((e) => e.fake_envoy === "endpoints" && e.healthy === 0)).toBe(true); // out of rotation before they stopped
  });

  it("restarts a crashed proxy and counts it as a proxy restart", async () => {
    process.env.FAKE_ENVOY_CRASH_AFTER_MS = "300";
    try {
      const { m } = runProxyPool();
      await m.waitFor("two proxy starts", () => m.records().filter((r) => r.msg === "Proxy started").length >= 2, 20_000);
      expect(m.records().some((r) => r.msg === "Proxy exited; restarting it")).toBe(true);
    } finally {
      delete process.env.FAKE_ENVOY_CRASH_AFTER_MS;
    }
  });
});
