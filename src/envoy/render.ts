// Envoy's configuration for one proxy pool, in Envoy's v3 API (proto3 field names). Pure: the
// data plane writes the files (atomically), and test/unit checks them against Envoy's own .proto
// schema.
//
// The files, their names and the resource names are the Go original's (internal/worker/proxy/),
// written straight into server.proxy_config_path, so tooling and volume mounts built for it still
// fit; Envoy's stats keep the original's names (cluster workers_cluster, listener monoceros_proxy,
// stat prefix monoceros_proxy_http) because each pool has an Envoy of its own.
//   envoy_starting_config.yaml  given to `envoy -c`: node, admin on 127.0.0.1:admin_port, CDS and
//                               LDS from the two files below
//   clusters.yaml               the cluster workers_cluster; its endpoints come from endpoints.yaml
//   listeners.yaml              listener_port → HTTP connection manager → router → workers_cluster
//   endpoints.yaml              Monoceros's addition (EDS), so the rotation can change at run time:
//                               one endpoint per worker, DRAINING while it is not in rotation
// Envoy notices file changes only when files are moved into place, so every write is a rename,
// and it watches the folder (watched_directory) for those moves.
import { join } from "node:path/posix";
import { stringify } from "yaml";
import type { PoolConfig, ServerConfig } from "../config/types.js";
import type { ProxyEndpoint, ProxyFile } from "../proxy/data-plane.js";

export const ENVOY_FILES = {
  bootstrap: "envoy_starting_config.yaml",
  clusters: "clusters.yaml",
  listeners: "listeners.yaml",
  endpoints: "endpoints.yaml",
  /** Written by Envoy itself (--admin-address-path), so an admin_port of 0 still reaches its admin API. */
  adminAddress: "admin-address.txt",
} as const;

/** The original's names. They need not differ between pools: each pool runs an Envoy of its own. */
export const ENVOY_NAMES = {
  node: "monoceros-envoy",
  nodeCluster: "local_workers",
  cluster: "workers_cluster",
  listener: "monoceros_proxy",
  statPrefix: "monoceros_proxy_http",
  routeConfig: "local_route",
  virtualHost: "local_service",
} as const;

const TYPE = {
  cluster: "type.googleapis.com/envoy.config.cluster.v3.Cluster",
  listener: "type.googleapis.com/envoy.config.listener.v3.Listener",
  assignment: "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment",
  hcm: "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
  router: "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router",
  httpProtocolOptions: "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
} as const;

/**
 * Health checking: quicker than the original's 5 s to notice a hung worker, bounded so a slow one
 * cannot hold a check. The original also logged failed checks through `event_log_path`, a field
 * deprecated in Envoy's v3 API (and so possibly refused by a newer Envoy): left out.
 */
const HEALTH_CHECK = { timeout: "1s", interval: "2s", unhealthy_threshold: 2, healthy_threshold: 1 } as const;

function server(pool: PoolConfig): ServerConfig {
  if (pool.server === null) throw new Error(`pool ${pool.name} is not in proxy mode`);
  return pool.server;
}

/** Every file of the pool's configuration, in the order to write them (the bootstrap names the others). */
export function envoyFiles(pool: PoolConfig, folder: string, endpoints: readonly ProxyEndpoint[]): ProxyFile[] {
  return [
    { name: ENVOY_FILES.endpoints, text: stringify(envoyEndpoints(endpoints)) },
    { name: ENVOY_FILES.clusters, text: stringify(envoyClusters(pool, folder), { aliasDuplicateObjects: false }) },
    { name: ENVOY_FILES.listeners, text: stringify(envoyListeners(pool)) },
    { name: ENVOY_FILES.bootstrap, text: stringify(envoyBootstrap(pool, folder), { aliasDuplicateObjects: false }) },
  ];
}

/** Paths inside the config are absolute, so Envoy finds them whatever its working folder. */
export function envoyBootstrap(pool: PoolConfig, folder: string): object {
  const watched = { path: folder };
  return {
    node: { id: ENVOY_NAMES.node, cluster: ENVOY_NAMES.nodeCluster },
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
        name: ENVOY_NAMES.cluster,
        type: "EDS",
        eds_cluster_config: {
          service_name: ENVOY_NAMES.cluster,
          eds_config: { resource_api_version: "V3", path_config_source: { path: join(folder, ENVOY_FILES.endpoints), watched_directory: { path: folder } } },
        },
        connect_timeout: "1s",
        lb_policy: config.loadBalancerAlgorithm,
        // As the original: HTTP/1.1 to the workers for HTTP/1.1 clients, HTTP/2 for HTTP/2 ones.
        typed_extension_protocol_options: {
          "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": { "@type": TYPE.httpProtocolOptions, use_downstream_protocol_config: {} },
        },
        health_checks: [{ ...HEALTH_CHECK, http_health_check: { path: config.healthCheckPath } }],
        // A worker that is being replaced refuses connections: try another one at once.
        common_lb_config: { healthy_panic_threshold: { value: 0 } },
      },
    ],
  };
}

export function envoyListeners(pool: PoolConfig): object {
  return {
    resources: [
      {
        "@type": TYPE.listener,
        name: ENVOY_NAMES.listener,
        address: { socket_address: { address: "0.0.0.0", port_value: server(pool).listenerPort } },
        filter_chains: [
          {
            filters: [
              {
                name: "envoy.filters.network.http_connection_manager",
                typed_config: {
                  "@type": TYPE.hcm,
                  stat_prefix: ENVOY_NAMES.statPrefix,
                  route_config: {
                    name: ENVOY_NAMES.routeConfig,
                    virtual_hosts: [
                      {
                        name: ENVOY_NAMES.virtualHost,
                        domains: ["*"],
                        routes: [
                          {
                            match: { prefix: "/" },
                            route: {
                              cluster: ENVOY_NAMES.cluster,
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
export function envoyEndpoints(endpoints: readonly ProxyEndpoint[]): object {
  return {
    resources: [
      {
        "@type": TYPE.assignment,
        cluster_name: ENVOY_NAMES.cluster,
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

/**
 * Envoy's command line: the original's (drain for as long as the workers get to stop), plus where
 * to write its admin address.
 */
export function envoyArgs(pool: PoolConfig, folder: string): string[] {
  return [
    "-c", join(folder, ENVOY_FILES.bootstrap),
    "--drain-time-s", String(Math.ceil(pool.signalTimeoutMs / 1000)),
    "--drain-strategy", "immediate",
    "--admin-address-path", join(folder, ENVOY_FILES.adminAddress),
  ];
}

/** Envoy checks a configuration without serving with --mode validate. */
export function envoyCheckArgs(folder: string): string[] {
  return ["--mode", "validate", "-c", join(folder, ENVOY_FILES.bootstrap)];
}
