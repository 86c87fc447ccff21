// Envoy as proxy mode's data plane: renders its files, and at run time moves workers in and out
// of rotation through EDS (endpoints.yaml, renamed into place: Envoy notices moves, not edits) and
// asks it to drain through its admin API. When to do either is the core's decision.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import type { PoolConfig } from "../config/types.js";
import { proxyFolder, writeAtomically, type DataPlane, type ProxyCommand, type ProxyEndpoint, type ProxyRendering, type ProxyReport } from "../proxy/data-plane.js";
import { ENVOY_FILES, envoyArgs, envoyCheckArgs, envoyEndpoints, envoyFiles } from "./render.js";

/** A drain request that gets no answer is given up on after this long (shutdown goes on regardless). */
const DRAIN_REQUEST_TIMEOUT_MS = 2_000;

export class EnvoyDataPlane implements DataPlane {
  constructor(private readonly report: ProxyReport) {}

  render(pool: PoolConfig, folder: string, endpoints: readonly ProxyEndpoint[]): ProxyRendering {
    return { files: envoyFiles(pool, folder, endpoints), args: envoyArgs(pool, folder), stopSignal: "SIGTERM", checkArgs: envoyCheckArgs(folder) };
  }

  apply(pool: PoolConfig, command: ProxyCommand): void {
    switch (command.type) {
      case "proxyRotation":
        writeAtomically(join(proxyFolder(pool), ENVOY_FILES.endpoints), stringify(envoyEndpoints(command.endpoints)));
        return;
      case "drainProxy":
        this.drain(pool);
        return;
    }
  }

  /** Nothing is kept per pool: its files stay in its folder, as after a shutdown. */
  forget(): void {}

  private drain(pool: PoolConfig): void {
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
      return readFileSync(join(proxyFolder(pool), ENVOY_FILES.adminAddress), "utf8").trim() || null;
    } catch {
      return null;
    }
  }
}
