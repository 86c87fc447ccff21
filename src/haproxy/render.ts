// HAProxy's configuration for one proxy pool, rendered from the same `server` keys as Envoy's.
// Pure text; the data plane writes it atomically into server.proxy_config_path, where HAProxy
// also opens its runtime API socket:
//   haproxy.cfg   given to `haproxy -db -f`; rewritten with the current rotation on every change
//   haproxy.sock  HAProxy's runtime API (created by HAProxy), through which the rotation changes
import { join } from "node:path/posix";
import type { LoadBalancerAlgorithm, PoolConfig } from "../config/types.js";
import type { ProxyEndpoint, ProxyFile } from "../proxy/data-plane.js";

export const HAPROXY_FILES = { config: "haproxy.cfg", socket: "haproxy.sock" } as const;

const BALANCE: Readonly<Record<LoadBalancerAlgorithm, string>> = {
  ROUND_ROBIN: "roundrobin",
  LEAST_REQUEST: "leastconn",
  RANDOM: "random",
};

/** `web-0`: the HAProxy server name of worker i (the backend is named after the pool). */
export function haproxyServerName(pool: PoolConfig, index: number): string {
  return `${pool.name}-${index}`;
}

/**
 * Servers out of rotation are written `disabled`, so a restarted HAProxy starts from the current
 * rotation; the running one is told through its runtime API.
 */
export function renderHaproxyConfig(pool: PoolConfig, folder: string, endpoints: readonly ProxyEndpoint[]): string {
  const server = pool.server;
  if (server === null) throw new Error(`pool ${pool.name} is not in proxy mode`);
  const lines = [
    "# Written by Monoceros; rewritten on every change. Do not edit.",
    "global",
    `  stats socket ${join(folder, HAPROXY_FILES.socket)} mode 600 level admin`,
    "  stats timeout 30s",
    "  maxconn 4096",
    "",
    "defaults",
    "  mode http",
    "  timeout connect 1s",
    "  timeout client 60s",
    "  timeout server 60s",
    "  timeout http-request 15s",
    "  timeout queue 5s",
    "  timeout http-keep-alive 5s",
    // A worker that is restarting refuses connections: retry elsewhere, so clients never see it.
    "  retries 3",
    "  option redispatch 1",
    "  retry-on all-retryable-errors",
    // A worker being replaced closes its idle connections; reusing one at that moment loses the request.
    "  http-reuse never",
    "",
    `frontend ${pool.name}`,
    `  bind :${server.listenerPort}`,
    `  default_backend ${pool.name}`,
    "",
    `backend ${pool.name}`,
    `  balance ${BALANCE[server.loadBalancerAlgorithm]}`,
    `  option httpchk GET ${server.healthCheckPath}`,
    "  default-server inter 2s downinter 200ms fall 2 rise 1",
    ...endpoints.map((endpoint) => `  server ${haproxyServerName(pool, endpoint.worker)} 127.0.0.1:${endpoint.port} check${endpoint.inRotation ? "" : " disabled"}`),
  ];
  if (server.proxyAdminPort > 0) {
    lines.push(
      "",
      "frontend monoceros-haproxy-admin",
      `  bind 127.0.0.1:${server.proxyAdminPort}`,
      "  http-request use-service prometheus-exporter if { path /metrics }",
      "  stats enable",
      "  stats uri /stats",
    );
  }
  return `${lines.join("\n")}\n`;
}

export function haproxyFiles(pool: PoolConfig, folder: string, endpoints: readonly ProxyEndpoint[]): ProxyFile[] {
  return [{ name: HAPROXY_FILES.config, text: renderHaproxyConfig(pool, folder, endpoints) }];
}

/** Foreground (-db), this file. Stopped gracefully with SIGUSR1 (a soft stop: finish, then exit). */
export function haproxyArgs(folder: string): string[] {
  return ["-db", "-f", join(folder, HAPROXY_FILES.config)];
}

/** HAProxy checks a configuration without serving with -c. */
export function haproxyCheckArgs(folder: string): string[] {
  return ["-c", "-f", join(folder, HAPROXY_FILES.config)];
}
