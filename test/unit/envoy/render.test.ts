import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { loadConfigText } from "../../../src/config/load.js";
import type { PoolConfig } from "../../../src/config/types.js";
import { envoyArgs, envoyBootstrap, envoyClusters, envoyEndpoints, envoyListeners, envoyNames } from "../../../src/envoy/render.js";
import { checkEnvoyObject } from "../../support/envoy-schema.js";

const BOOTSTRAP = "envoy.config.bootstrap.v3.Bootstrap";
const DISCOVERY = "envoy.service.discovery.v3.DiscoveryResponse";

function proxyPools(text: string): PoolConfig[] {
  const loaded = loadConfigText(text);
  if (!loaded.ok) throw new Error(loaded.errors.join("\n"));
  return loaded.config.pools.filter((pool) => pool.server !== null);
}

const example = proxyPools(readFileSync(new URL("../../../examples/proxy.yaml", import.meta.url), "utf8"))[0]!;
const folder = "/srv/app/envoy";

describe("Envoy configuration", () => {
  it("renders files for examples/proxy.yaml that pass Envoy's own API schema", () => {
    expect(checkEnvoyObject(BOOTSTRAP, envoyBootstrap(example, folder))).toEqual([]);
    expect(checkEnvoyObject(DISCOVERY, envoyClusters(example, folder))).toEqual([]);
    expect(checkEnvoyObject(DISCOVERY, envoyListeners(example))).toEqual([]);
    const endpoints = [9090, 9091, 9092].map((port, i) => ({ port, inRotation: i !== 1 }));
    expect(checkEnvoyObject(DISCOVERY, envoyEndpoints(example, endpoints))).toEqual([]);
  });

  it("renders what the pool asks for: admin on 127.0.0.1, listener port, algorithm in Envoy's case, health path, endpoints on 127.0.0.1", () => {
    const bootstrap = envoyBootstrap(example, folder) as { admin: { address: { socket_address: { address: string; port_value: number } } } };
    expect(bootstrap.admin.address.socket_address).toEqual({ address: "127.0.0.1", port_value: 9901 });
    const cluster = (envoyClusters(example, folder) as { resources: Record<string, unknown>[] }).resources[0]!;
    expect(cluster).toMatchObject({ name: "web", lb_policy: "LEAST_REQUEST", health_checks: [{ http_health_check: { path: "/health" } }] });
    const listener = JSON.stringify(envoyListeners(example));
    expect(listener).toContain('"port_value":8080');
    expect(listener).toContain('"retry_on":"connect-failure,refused-stream,reset"');
    const endpoints = JSON.stringify(envoyEndpoints(example, [{ port: 9090, inRotation: true }, { port: 9091, inRotation: false }]));
    expect(endpoints).toContain('{"endpoint":{"address":{"socket_address":{"address":"127.0.0.1","port_value":9090}}},"health_status":"HEALTHY"}');
    expect(endpoints).toContain('"port_value":9091}}},"health_status":"DRAINING"');
    expect(envoyArgs(example, folder)).toEqual(["-c", "/srv/app/envoy/bootstrap.yaml", "--drain-time-s", "15", "--drain-strategy", "immediate"]);
  });

  it.each(["round_robin", "Least_Request", "RANDOM"])("accepts load_balancer_algorithm %s and renders a valid lb_policy", (algorithm) => {
    const pool = { ...example, server: { ...example.server!, loadBalancerAlgorithm: algorithm.toUpperCase() as "RANDOM" } };
    expect(checkEnvoyObject(DISCOVERY, envoyClusters(pool, folder))).toEqual([]);
  });

  it("gives two proxy pools distinct names, ports and folders", () => {
    const pools = proxyPools(`supervisor:
  workers:
    - {name: a, replicas: 2, exec: x, max_restarts: 1, server: {port_arg: {name: -p, value_template: '{{.Port}}', start_port: 9000}, health_check_path: /h, listener_port: 8001, admin_port: 9901, proxy_config_path: ./envoy-a}}
    - {name: b, replicas: 2, exec: x, max_restarts: 1, server: {port_arg: {name: -p, value_template: '{{.Port}}', start_port: 9100}, health_check_path: /h, listener_port: 8002, admin_port: 9902, proxy_config_path: ./envoy-b}}
`);
    const [a, b] = pools.map((pool) => envoyNames(pool));
    expect(new Set([a!.cluster, b!.cluster, a!.listener, b!.listener, a!.node, b!.node]).size).toBe(6);
  });

  it("the schema check itself rejects unknown fields, wrong types, bad enums and unknown @type URLs", () => {
    expect(checkEnvoyObject(BOOTSTRAP, { node: { idd: "x" } })).toEqual(["envoy.config.bootstrap.v3.Bootstrap.node.idd: unknown field of .envoy.config.core.v3.Node"]);
    expect(checkEnvoyObject(BOOTSTRAP, { admin: { address: { socket_address: { port_value: "80" } } } })[0]).toMatch(/port_value: expected uint32/);
    const badCluster = { resources: [{ "@type": "type.googleapis.com/envoy.config.cluster.v3.Cluster", name: "x", lb_policy: "FASTEST" }] };
    expect(checkEnvoyObject(DISCOVERY, badCluster)[0]).toMatch(/lb_policy: "FASTEST" is not a value of/);
    const badType = { resources: [{ "@type": "type.googleapis.com/envoy.config.cluster.v3.Clusterr", name: "x" }] };
    expect(checkEnvoyObject(DISCOVERY, badType)[0]).toMatch(/does not resolve/);
    expect(checkEnvoyObject(DISCOVERY, { resources: [{ "@type": "type.googleapis.com/envoy.config.cluster.v3.Cluster", connect_timeout: 5 }] })[0]).toMatch(/expected a duration/);
  });
});
