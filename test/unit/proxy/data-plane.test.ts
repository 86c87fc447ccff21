import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { PROXY_KINDS, type PoolConfig, type ServerConfig } from "../../../src/config/types.js";
import { proxyEndpoints } from "../../../src/domain/identity.js";
import { prepareProxy, proxyFolder } from "../../../src/proxy/data-plane.js";
import { createDataPlanes, PROXY_NAMES } from "../../../src/proxy/kinds.js";
import { pool, server } from "../../support/harness.js";

const planes = createDataPlanes(() => undefined);

function proxyPool(overrides: Partial<ServerConfig>): PoolConfig {
  return pool({ replicas: 3, maxRestarts: 1, server: server(overrides) });
}

const freshFolder = () => join(mkdtempSync(join(tmpdir(), "monoceros-data-plane-")), "proxy");

describe("proxy data planes", () => {
  it("has a data plane and a name for every proxy kind", () => {
    for (const kind of PROXY_KINDS) {
      expect(planes[kind]).toBeDefined();
      expect(PROXY_NAMES[kind]).not.toBe("");
    }
  });

  it("builds one endpoint per worker, on start_port + i, in rotation as asked", () => {
    expect(proxyEndpoints(proxyPool({}), 3, (worker) => worker === 1)).toEqual([
      { worker: 0, port: 9090, inRotation: false },
      { worker: 1, port: 9091, inRotation: true },
      { worker: 2, port: 9092, inRotation: false },
    ]);
  });

  it("writes Envoy's files under the original's names straight into proxy_config_path, and launches envoy -c on the starting config", () => {
    const folder = freshFolder();
    const launch = prepareProxy(planes.envoy, proxyPool({ proxyConfigPath: folder }), "/usr/bin/envoy");
    expect(readdirSync(folder).sort()).toEqual(["clusters.yaml", "endpoints.yaml", "envoy_starting_config.yaml", "listeners.yaml"]);
    expect(launch).toEqual({
      exec: "/usr/bin/envoy",
      args: ["-c", join(folder, "envoy_starting_config.yaml"), "--drain-time-s", "10", "--drain-strategy", "immediate", "--admin-address-path", join(folder, "admin-address.txt")],
      stopSignal: "SIGTERM",
    });
    // No worker is in rotation before the proxy starts.
    expect(readFileSync(join(folder, "endpoints.yaml"), "utf8").match(/health_status: DRAINING/g)).toHaveLength(3);
  });

  it("writes HAProxy's haproxy.cfg straight into proxy_config_path, its runtime socket beside it, and launches haproxy -db -f on it", () => {
    const folder = freshFolder();
    const launch = prepareProxy(planes.haproxy, proxyPool({ proxy: "haproxy", proxyConfigPath: folder }), "/usr/sbin/haproxy");
    expect(readdirSync(folder)).toEqual(["haproxy.cfg"]);
    expect(launch).toEqual({ exec: "/usr/sbin/haproxy", args: ["-db", "-f", join(folder, "haproxy.cfg")], stopSignal: "SIGUSR1" });
    const cfg = readFileSync(join(folder, "haproxy.cfg"), "utf8");
    expect(cfg).toContain(`stats socket ${join(folder, "haproxy.sock")} `);
    expect(cfg.match(/ check disabled\n/g)).toHaveLength(3);
  });

  it("resolves a relative proxy_config_path against the working folder, as the original", () => {
    expect(proxyFolder(proxyPool({ proxyConfigPath: "./envoy" }))).toBe(join(process.cwd(), "envoy"));
    expect(proxyFolder(proxyPool({ proxyConfigPath: "/srv/app/envoy/" }))).toBe("/srv/app/envoy");
  });

  it("moves an Envoy worker out of and back into rotation by rewriting endpoints.yaml only", () => {
    const folder = freshFolder();
    const pool = proxyPool({ proxyConfigPath: folder });
    prepareProxy(planes.envoy, pool, "envoy");
    const clusters = readFileSync(join(folder, "clusters.yaml"), "utf8");
    planes.envoy.apply(pool, { type: "proxyRotation", pool: 0, endpoints: proxyEndpoints(pool, pool.replicas, (worker) => worker !== 2) });
    const endpoints = readFileSync(join(folder, "endpoints.yaml"), "utf8");
    expect(endpoints.match(/health_status: HEALTHY/g)).toHaveLength(2);
    expect(endpoints).toMatch(/port_value: 9092\n\s+health_status: DRAINING/);
    expect(readFileSync(join(folder, "clusters.yaml"), "utf8")).toBe(clusters);
    expect(readdirSync(folder).filter((name) => name.includes(".tmp-"))).toEqual([]);
  });
});
