import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { loadConfigText } from "../../../src/config/load.js";
import type { PoolConfig } from "../../../src/config/types.js";
import { envoyArgs, envoyBootstrap, envoyClusters, envoyEndpoints, envoyListeners } from "../../../src/envoy/render.js";
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
    const endpoints = [9090, 9091, 9092].map((port, worker) => ({ worker, port, inRotation: worker !== 1 }));
    expect(checkEnvoyObject(DISCOVERY, envoyEndpoints(endpoints))).toEqual([]);
  });

  it("renders what the pool asks for: admin on 127.0.0.1, listener port, algorithm in Envoy's case, health path, endpoints on 127.0.0.1", () => {
    const bootstrap = envoyBootstrap(example, folder) as { admin: { address: { socket_address: { address: string; port_value: number } } } };
    expect(bootstrap.admin.address.socket_address).toEqual({ address: "127.0.0.1", port_value: 9901 });
    const cluster = (envoyClusters(example, folder) as { resources: Record<string, unknown>[] }).resources[0]!;
    expect(cluster).toMatchObject({ lb_policy: "LEAST_REQUEST", health_checks: [{ http_health_check: { path: "/health" } }] });
    const listener = JSON.stringify(envoyListeners(example));
    expect(listener).toContain('"port_value":8080');
    expect(listener).toContain('"retry_on":"connect-failure,refused-stream,reset"');
    const endpoints = JSON.stringify(envoyEndpoints([{ worker: 0, port: 9090, inRotation: true }, { worker: 1, port: 9091, inRotation: false }]));
    expect(endpoints).toContain('{"endpoint":{"address":{"socket_address":{"address":"127.0.0.1","port_value":9090}}},"health_status":"HEALTHY"}');
    expect(endpoints).toContain('"port_value":9091}}},"health_status":"DRAINING"');
  });

  it("points Envoy at its files as the original does: -c envoy_starting_config.yaml, CDS from clusters.yaml, LDS from listeners.yaml, all in proxy_config_path", () => {
    expect(envoyArgs(example, folder)).toEqual([
      "-c", "/srv/app/envoy/envoy_starting_config.yaml", "--drain-time-s", "15", "--drain-strategy", "immediate",
      "--admin-address-path", "/srv/app/envoy/admin-address.txt",
    ]);
    expect(envoyBootstrap(example, folder)).toMatchObject({
      dynamic_resources: {
        cds_config: { path_config_source: { path: "/srv/app/envoy/clusters.yaml", watched_directory: { path: folder } } },
        lds_config: { path_config_source: { path: "/srv/app/envoy/listeners.yaml", watched_directory: { path: folder } } },
      },
    });
    const cluster = (envoyClusters(example, folder) as { resources: Record<string, unknown>[] }).resources[0]!;
    expect(cluster).toMatchObject({ eds_cluster_config: { eds_config: { path_config_source: { path: "/srv/app/envoy/endpoints.yaml" } } } });
  });

  it("uses the original's resource names, so Envoy's stats and the dashboards built on them carry over", () => {
    expect(envoyBootstrap(example, folder)).toMatchObject({ node: { id: "monoceros-envoy", cluster: "local_workers" } });
    const cluster = (envoyClusters(example, folder) as { resources: Record<string, unknown>[] }).resources[0]!;
    expect(cluster).toMatchObject({
      name: "workers_cluster",
      typed_extension_protocol_options: { "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": { use_downstream_protocol_config: {} } },
    });
    const listener = (envoyListeners(example) as { resources: Record<string, unknown>[] }).resources[0]!;
    expect(listener).toMatchObject({
      name: "monoceros_proxy",
      filter_chains: [{ filters: [{ typed_config: { stat_prefix: "monoceros_proxy_http", route_config: { name: "local_route", virtual_hosts: [{ name: "local_service", routes: [{ route: { cluster: "workers_cluster" } }] }] } } }] }],
    });
    expect(envoyEndpoints([])).toMatchObject({ resources: [{ cluster_name: "workers_cluster" }] });
  });

  it.each(["round_robin", "Least_Request", "RANDOM"])("accepts load_balancer_algorithm %s and renders a valid lb_policy", (algorithm) => {
    const pool = { ...example, server: { ...example.server!, loadBalancerAlgorithm: algorithm.toUpperCase() as "RANDOM" } };
    expect(checkEnvoyObject(DISCOVERY, envoyClusters(pool, folder))).toEqual([]);
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
