// Envoy as proxy mode's data plane: writes its files (atomically: Envoy notices moves, not
// edits), says how to launch it, moves workers in and out of rotation through EDS, and asks it
// to drain. Proxy lifecycle decisions (when to start, restart, drain, stop) are the core's.
import { mkdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { stringify } from "yaml";
import type { PoolConfig } from "../config/types.js";
import type { ProxyLaunch } from "../domain/state.js";
import { writeAtomically, type ProxyDataPlane } from "../proxy/data-plane.js";
import { ENVOY_FILES, envoyArgs, envoyBootstrap, envoyClusters, envoyEndpoints, envoyListeners, type EndpointState } from "./render.js";

/** Envoy writes its admin address here, so an admin_port of 0 (any free port) still reaches it. */
const ADMIN_ADDRESS_FILE = "admin-address.txt";
const DRAIN_REQUEST_TIMEOUT_MS = 2_000;


export function envoyFolder(pool: PoolConfig): string {
  if (pool.server === null) throw new Error(`pool ${pool.name} is not in proxy mode`);
  return resolve(pool.server.proxyConfigPath);
}

/** Every file of the pool's configuration, by name, as text. */
export function envoyFiles(pool: PoolConfig, folder: string, endpoints: readonly EndpointState[]): Record<string, string> {
  return {
    [ENVOY_FILES.bootstrap]: stringify(envoyBootstrap(pool, folder), { aliasDuplicateObjects: false }),
    [ENVOY_FILES.clusters]: stringify(envoyClusters(pool, folder), { aliasDuplicateObjects: false }),
    [ENVOY_FILES.listeners]: stringify(envoyListeners(pool)),
    [ENVOY_FILES.endpoints]: stringify(envoyEndpoints(pool, endpoints)),
  };
}


export function writeFolder(folder: string, files: Record<string, string>): void {
  mkdirSync(folder, { recursive: true });
  // Endpoints, clusters and listeners first: the bootstrap refers to them.
  for (const name of [ENVOY_FILES.endpoints, ENVOY_FILES.clusters, ENVOY_FILES.listeners, ENVOY_FILES.bootstrap]) {
    const text = files[name];
    if (text !== undefined) writeAtomically(join(folder, name), text);
  }
}

export class EnvoyDataPlane implements ProxyDataPlane {
  constructor(
    /** The resolved path of the envoy executable. */
    private readonly binaryFor: (pool: PoolConfig) => string,
    private readonly report: (level: "info" | "warn", msg: string, fields: Record<string, unknown>) => void,
  ) {}

  prepare(pool: PoolConfig): ProxyLaunch {
    const folder = envoyFolder(pool);
    const notInRotation = Array.from({ length: pool.replicas }, (_, i) => ({ port: (pool.server?.startPort ?? 0) + i, inRotation: false }));
    writeFolder(folder, envoyFiles(pool, folder, notInRotation));
    return { exec: this.binaryFor(pool), args: [...envoyArgs(pool, folder), "--admin-address-path", join(folder, ADMIN_ADDRESS_FILE)], stopSignal: "SIGTERM" };
  }

  rotation(pool: PoolConfig, endpoints: readonly EndpointState[]): void {
    writeAtomically(join(envoyFolder(pool), ENVOY_FILES.endpoints), stringify(envoyEndpoints(pool, endpoints)));
  }

  drain(pool: PoolConfig): void {
    const address = this.adminAddress(pool);
    if (address === null) {
      this.report("warn", "Cannot drain the proxy: its admin address is not known yet", { pool: pool.name });
      return;
    }
    fetch(`http://${address}/drain_listeners?graceful`, { method: "POST", signal: AbortSignal.timeout(DRAIN_REQUEST_TIMEOUT_MS) }).then(
      (response) => this.report(response.ok ? "info" : "warn", "Asked the proxy to drain", { pool: pool.name, status: response.status }),
      (error: unknown) => this.report("warn", "Could not ask the proxy to drain", { pool: pool.name, error: String(error) }),
    );
  }

  private adminAddress(pool: PoolConfig): string | null {
    const port = pool.server?.proxyAdminPort ?? 0;
    if (port > 0) return `127.0.0.1:${port}`;
    try {
      return readFileSync(join(envoyFolder(pool), ADMIN_ADDRESS_FILE), "utf8").trim() || null;
    } catch {
      return null;
    }
  }
}
