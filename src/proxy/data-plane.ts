// What proxy mode needs from a proxy, whichever it is (Envoy, HAProxy): the lifecycle itself
// (start first, restart, stop last, the rotation) is the core's and the same for both.
import { renameSync, writeFileSync } from "node:fs";
import type { PoolConfig } from "../config/types.js";
import type { ProxyLaunch } from "../domain/state.js";

/** A worker's port and whether the proxy may send it requests. */
export interface EndpointState {
  port: number;
  inRotation: boolean;
}

export interface ProxyDataPlane {
  /** Writes the pool's whole configuration (no worker in rotation yet) and says how to launch the proxy. */
  prepare(pool: PoolConfig): ProxyLaunch;
  /** Only the workers marked inRotation may get requests from now on. */
  rotation(pool: PoolConfig, endpoints: readonly EndpointState[]): void;
  /** Stop accepting new connections and finish the ones in flight. */
  drain(pool: PoolConfig): void;
}

/** Writes next to the target, then renames over it: readers see the old file or the new one, never half. */
export function writeAtomically(path: string, text: string): void {
  const temporary = `${path}.tmp-${process.pid}`;
  writeFileSync(temporary, text);
  renameSync(temporary, path);
}
