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

/** The port flag and its rendered value come before the configured args, as in the original. */
export function workerArgs(pool: PoolConfig, index: number): string[] {
  const port = workerPort(pool, index);
  if (pool.server === null || port === null) return pool.args;
  const template = parsePortTemplate(pool.server.portValueTemplate);
  if (!template.ok) throw new Error(`invalid port template for pool ${pool.name}: ${template.error}`);
  return [pool.server.portArgName, template.render(port), ...pool.args];
}
