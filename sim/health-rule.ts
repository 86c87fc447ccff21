// /health as the README defines it, restated from the monitor's own count of workers (never the
// core's helpers): healthy when no shutdown began and every pool has floor(up × 100 / replicas) ≥
// desired_healthy_percentage, where a worker is up once it is ready (running, not asked to stop,
// and with a health check passing it: check-model.ts) and has run min_uptime, and every proxy
// pool's proxy is running.
import type { Config } from "../src/config/types.js";
import type { SlotModel } from "./slot-model.js";

/** Why the monitor expects "unhealthy" now; empty when it expects "healthy". */
export function healthShortfalls(config: Config, model: SlotModel, nowMs: number): string[] {
  const short: string[] = [];
  config.pools.forEach((pool, poolIndex) => {
    const up = model.upIn(poolIndex, nowMs);
    const percentage = Math.floor((up * 100) / pool.replicas);
    if (percentage < pool.desiredHealthyPercentage) short.push(`pool ${pool.name}: ${up} of ${pool.replicas} ready and up for min_uptime (${percentage}% < ${pool.desiredHealthyPercentage}%)`);
    if (pool.server !== null && !model.proxyRunning(poolIndex)) short.push(`pool ${pool.name}: its proxy is not running`);
  });
  if (model.shuttingDown) short.push("shutting down");
  return short;
}

/** The same rule without building the reasons (it runs after every step). */
export function expectHealthy(config: Config, model: SlotModel, nowMs: number): boolean {
  if (model.shuttingDown) return false;
  return config.pools.every((pool, poolIndex) =>
    Math.floor((model.upIn(poolIndex, nowMs) * 100) / pool.replicas) >= pool.desiredHealthyPercentage && (pool.server === null || model.proxyRunning(poolIndex)));
}
