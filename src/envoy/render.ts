// Envoy's configuration for one proxy pool, as plain objects in Envoy's v3 API (proto3 JSON
// names). Pure: the runtime writes them out (atomically) and test/unit checks them against
// Envoy's own .proto schema.
//
// Layout, one folder per pool (server.proxy_config_path):
//   bootstrap.yaml  node, admin on 127.0.0.1:admin_port, CDS and LDS from the files below
//   clusters.yaml   one cluster named after the pool; its endpoints come from endpoints.yaml (EDS)
//   listeners.yaml  listener_port → HTTP connection manager → router → the pool's cluster
//   endpoints.yaml  one endpoint per worker on 127.0.0.1, DRAINING while the worker is not in rotation
// Envoy notices file changes only when files are moved into place, so every write is a rename,
// and it watches the folder (watched_directory) for those moves.
import { join } from "node:path/posix";
import type { PoolConfig, ServerConfig } from "../config/types.js";
import type { EndpointState } from "../proxy/data-plane.js";

export type { EndpointState };

export const ENVOY_FILES = { bootstrap: "bootstrap.yaml", clusters: "clusters.yaml", listeners: "listeners.yaml", endpoints: "endpoints.yaml" } as const;

const TYPE = {
  cluster: "type.googleapis.com/envoy.config.cluster.v3.Cluster",
  listener: "type.googleapis.com/envoy.config.listener.v3.Listener",
  assignment: "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment",
  hcm: "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
  router: "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router",
} as const;

/** Health checking: quick to notice a dead worker, bounded so a slow one cannot hold a check. */
const HEALTH_CHECK = { timeout: "1s", interval: "2s", unhealthy_threshold: 2, healthy_threshold: 1 } as const;


/** Names that identify this pool's proxy in Envoy (unique across pools, as pool names are). */
export function envoyNames(pool: PoolConfig): { cluster: string; listener: string; node: string; routeConfig: string } {
  return { cluster: pool.name, listener: `${pool.name}-listener`, node: `monoceros-${pool.name}`, routeConfig: `${pool.name}-routes` };
}

function server(pool: PoolConfig): ServerConfig {
  if (pool.server === null) throw new Error(`pool ${pool.name} is not in proxy mode`);
  return pool.server;
}

/** Paths inside the config are absolute, so Envoy finds them whatever its working folder. */
export function envoyBootstrap(pool: PoolConfig, folder: string): object {
  const names = envoyNames(pool);
  const watched = { path: folder };
  return {
    node: { id: names.node, cluster: names.node },
    admin: { address: { socket_address: { address: "127.0.0.1", port_value: server(pool).proxyAdminPort } } },
    dynamic_resources: {
      cds_config: { resource_api_version: "V3", path_config_source: { path: join(folder, ENVOY_FILES.clusters), watched_directory: watched } },
      lds_config: { resource_api_version: "V3", path_config_source: { path: join(folder, ENVOY_FILES.listeners), watched_directory: watched } },
    },
  };
}

export function envoyClusters(pool: PoolConfig, folder: string): object {
  const config = server(pool);
  return {
    resources: [
      {
        "@type": TYPE.cluster,
        name: envoyNames(pool).cluster,
        type: "EDS",
        eds_cluster_config: {
          service_name: envoyNames(pool).cluster,
          eds_config: { resource_api_version: "V3", path_config_source: { path: join(folder, ENVOY_FILES.endpoints), watched_directory: { path: folder } } },
        },
        connect_timeout: "1s",
        lb_policy: config.loadBalancerAlgorithm,
        health_checks: [{ ...HEALTH_CHECK, http_health_check: { path: config.healthCheckPath } }],
        // A worker that is being replaced refuses connections: try another one at once.
        common_lb_config: { healthy_panic_threshold: { value: 0 } },
      },
    ],
  };
}

export function envoyListeners(pool: PoolConfig): object {
  const names = envoyNames(pool);
  return {
    resources: [
      {
        "@type": TYPE.listener,
        name: names.listener,
        address: { socket_address: { address: "0.0.0.0", port_value: server(pool).listenerPort } },
        filter_chains: [
          {
            filters: [
              {
                name: "envoy.filters.network.http_connection_manager",
                typed_config: {
                  "@type": TYPE.hcm,
                  stat_prefix: pool.name,
                  route_config: {
                    name: names.routeConfig,
                    virtual_hosts: [
                      {
                        name: pool.name,
                        domains: ["*"],
                        routes: [
                          {
                            match: { prefix: "/" },
                            route: {
                              cluster: names.cluster,
                              retry_policy: { retry_on: "connect-failure,refused-stream,reset", num_retries: 3, retry_host_predicate: [{ name: "envoy.retry_host_predicates.previous_hosts" }] },
                            },
                          },
                        ],
                      },
                    ],
                  },
                  http_filters: [{ name: "envoy.filters.http.router", typed_config: { "@type": TYPE.router } }],
                },
              },
            ],
          },
        ],
      },
    ],
  };
}

/** EDS: every worker's port; DRAINING takes it out of rotation before any health check notices. */
export function envoyEndpoints(pool: PoolConfig, endpoints: readonly EndpointState[]): object {
  return {
    resources: [
      {
        "@type": TYPE.assignment,
        cluster_name: envoyNames(pool).cluster,
        endpoints: [
          {
            lb_endpoints: endpoints.map((endpoint) => ({
              endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: endpoint.port } } },
              health_status: endpoint.inRotation ? "HEALTHY" : "DRAINING",
            })),
          },
        ],
      },
    ],
  };
}

/** Envoy's command line, as the original's: drain for as long as the workers get to stop. */
export function envoyArgs(pool: PoolConfig, folder: string): string[] {
  return ["-c", join(folder, ENVOY_FILES.bootstrap), "--drain-time-s", String(Math.ceil(pool.signalTimeoutMs / 1000)), "--drain-strategy", "immediate"];
}
