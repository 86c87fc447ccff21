// The one table from a pool's `server.proxy` to its data plane: `monoceros -c` and
// `monoceros proxy-config` look a pool's proxy up here and branch on its kind nowhere else.
import type { PoolConfig, ProxyKind } from "../config/types.js";
import { EnvoyDataPlane } from "../envoy/data-plane.js";
import { HaproxyDataPlane } from "../haproxy/data-plane.js";
import type { DataPlane, ProxyReport } from "./data-plane.js";

/** For messages: what the operator installs. */
export const PROXY_NAMES: Readonly<Record<ProxyKind, string>> = { envoy: "Envoy", haproxy: "HAProxy" };

export type DataPlanes = Readonly<Record<ProxyKind, DataPlane>>;

export function createDataPlanes(report: ProxyReport): DataPlanes {
  return { envoy: new EnvoyDataPlane(report), haproxy: new HaproxyDataPlane(report) };
}

/** The data plane of a proxy-mode pool. */
export function dataPlaneOf(planes: DataPlanes, pool: PoolConfig): DataPlane {
  if (pool.server === null) throw new Error(`pool ${pool.name} is not in proxy mode`);
  return planes[pool.server.proxy];
}
