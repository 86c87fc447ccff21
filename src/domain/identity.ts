// Worker names and environment exactly as the Go original forms them.
import { parsePortTemplate } from "../config/port-template.js";
import type { PoolConfig } from "../config/types.js";

/** `web-0`: the worker's name in logs (`worker_id`) and metric labels (`worker`). */
export function workerId(poolName: string, index: number): string {
  return `${poolName}-${index}`;
}

/** `web_web-0`: the value of MULTIPROCESS_WORKER_ID. */
export function multiprocessWorkerId(poolName: string, index: number): string {
  return `${poolName}_${workerId(poolName, index)}`;
}

/** Worker i's port in proxy mode, or null in supervisor mode. */
export function workerPort(pool: PoolConfig, index: number): number | null {
  return pool.server === null ? null : pool.server.startPort + index;
}

/** One worker as its pool's proxy sees it: where it listens and whether it may get requests. */
export interface ProxyEndpoint {
  worker: number;
  port: number;
  inRotation: boolean;
}

/**
 * Every worker slot of a proxy pool in index order, with its port: the one place the proxy's endpoint
 * list is built (the core's rotation, the files written before the proxy starts, proxy-config).
 */
export function proxyEndpoints(pool: PoolConfig, slots: number, inRotation: (worker: number) => boolean): ProxyEndpoint[] {
  if (pool.server === null) throw new Error(`pool ${pool.name} is not in proxy mode`);
  const startPort = pool.server.startPort;
  return Array.from({ length: slots }, (_, worker) => ({ worker, port: startPort + worker, inRotation: inRotation(worker) }));
}

/** Worker slots a pool starts with: replicas + max_surge (each with its id and, in proxy mode, its port). */
export function initialSlots(pool: PoolConfig): number {
  return pool.replicas + pool.maxSurge;
}

/** {{.Port}} and {{.WorkerId}} in an arg (other {{…}} text is passed as written, as the original passes args). */
const ARG_FIELD = /\{\{\s*\.(Port|WorkerId)\s*\}\}/g;

/**
 * Worker i's args: in proxy mode the port flag and its rendered value first, as in the original
 * (none when port_arg.name is ""); in every arg {{.Port}} (proxy mode: the worker's port) and
 * {{.WorkerId}} (`web-0`) filled in.
 */
export function workerArgs(pool: PoolConfig, index: number): string[] {
  const port = workerPort(pool, index);
  const id = workerId(pool.name, index);
  const args = pool.args.map((arg) => (arg.includes("{{") ? arg.replace(ARG_FIELD, (_, field: string) => (field === "Port" ? String(port ?? "") : id)) : arg));
  if (pool.server === null || port === null || pool.server.portArgName === "") return args;
  const template = parsePortTemplate(pool.server.portValueTemplate);
  if (!template.ok) throw new Error(`invalid port template for pool ${pool.name}: ${template.error}`);
  return [pool.server.portArgName, template.render(port), ...args];
}
