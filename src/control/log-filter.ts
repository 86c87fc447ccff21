// Which records `ctl logs <target>` shows. Pure: the pools come from the /status object the
// handler already builds, so a target is checked the same way restart checks it (resolveTarget).
import { workerId } from "../domain/identity.js";
import type { RecordFilter } from "../logs/record-ring.js";
import { resolveTarget, type ControlTarget, type Parsed, type PoolSize } from "./protocol.js";

/** The pools in a /status object, or null if it does not have the shape of one. */
export function poolsOfStatus(status: unknown): PoolSize[] | null {
  const pools = (status as { pools?: unknown } | null)?.pools;
  if (!Array.isArray(pools)) return null;
  // Worker ids run over the pool's slots (replicas + max_surge, more after scaling up), not only replicas.
  const sizes = pools.map((pool: { name?: unknown; replicas?: unknown; workers?: unknown } | null) => ({ name: pool?.name, replicas: typeof pool?.replicas === "number" && Array.isArray(pool.workers) ? Math.max(pool.replicas, pool.workers.length) : pool?.replicas }));
  return sizes.every((pool) => typeof pool.name === "string" && typeof pool.replicas === "number") ? (sizes as PoolSize[]) : null;
}

/** Every record (null), a pool's, or one worker's; an unknown pool or worker is an error. */
export function logFilterFor(target: ControlTarget | null, status: () => unknown): Parsed<RecordFilter> {
  if (target === null) return { ok: true, value: { pool: null, workerId: null } };
  const pools = poolsOfStatus(status());
  if (pools === null) {
    // Nothing to check against: take the target as written.
    if (typeof target.worker === "string") return { ok: true, value: { pool: null, workerId: target.worker } };
    return { ok: true, value: { pool: target.pool, workerId: target.worker === null ? null : workerId(target.pool, target.worker) } };
  }
  const resolved = resolveTarget(target, pools);
  if (!resolved.ok) return resolved;
  const { pool, worker } = resolved.value;
  return { ok: true, value: { pool, workerId: worker === null ? null : workerId(pool, worker) } };
}
