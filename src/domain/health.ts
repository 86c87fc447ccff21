// Pool health as the original computes it: the share of workers running, truncated to a whole
// percentage, against desired_healthy_percentage. The proxy is not counted (the original did).
import type { PoolState, SupervisorState } from "./state.js";

export interface PoolHealth {
  pool: string;
  running: number;
  replicas: number;
  runningPercentage: number;
  desiredPercentage: number;
  healthy: boolean;
}

export function poolHealth(pool: PoolState, shuttingDown: boolean): PoolHealth {
  const running = pool.workers.filter((worker) => worker.status === "running").length;
  const replicas = pool.config.replicas;
  const runningPercentage = Math.floor((running * 100) / replicas);
  const desiredPercentage = pool.config.desiredHealthyPercentage;
  return {
    pool: pool.config.name,
    running,
    replicas,
    runningPercentage,
    desiredPercentage,
    // From the moment shutdown begins the answer is "unhealthy", so traffic moves away.
    healthy: !shuttingDown && runningPercentage >= desiredPercentage,
  };
}

export function supervisorHealth(state: SupervisorState): { healthy: boolean; pools: PoolHealth[] } {
  const shuttingDown = state.phase === "stopping" || state.phase === "exited";
  const pools = state.pools.map((pool) => poolHealth(pool, shuttingDown));
  return { healthy: pools.every((pool) => pool.healthy), pools };
}
