// What a config reload changes, decided before anything is touched: either a plan (per pool, its
// new config, whether its workers must be replaced, its new replica count) or the reasons it
// cannot be applied to a running Monoceros (then nothing changes). Pure: configs in, plan out.
import type { Config, PoolConfig } from "../config/types.js";

export interface PoolReload {
  pool: number;
  config: PoolConfig;
  /** exec, args, limits or the health check changed: every worker is replaced (rolling, with surge). */
  replace: string[];
  /** Settings that take effect at once (no worker is replaced for them). */
  updated: string[];
  replicas: number | null;
}

export type ReloadPlan = { ok: true; pools: PoolReload[]; lines: string[] } | { ok: false; problems: string[] };

/** Fields whose change means new processes: a worker started with the old ones would keep them. */
const RELAUNCH_FIELDS = ["exec", "args", "limits", "healthCheck"] as const satisfies readonly (keyof PoolConfig)[];
/** Fields that take effect at once. */
const LIVE_FIELDS = [
  "signalTimeoutMs", "maxRestarts", "startupWaitMs", "desiredHealthyPercentage", "restartPolicy", "maxUnavailable", "maxSurge", "readyTimeoutMs",
] as const satisfies readonly (keyof PoolConfig)[];
/** Fields only a restart of Monoceros can change (sockets bound, proxy files written, at start). */
const FIXED_FIELDS = ["server", "listen", "reusePort"] as const satisfies readonly (keyof PoolConfig)[];

const KEY_NAMES: Record<(typeof RELAUNCH_FIELDS)[number] | (typeof LIVE_FIELDS)[number] | (typeof FIXED_FIELDS)[number], string> = {
  exec: "exec", args: "args", limits: "limits", healthCheck: "health_check",
  signalTimeoutMs: "signal_timeout", maxRestarts: "max_restarts", startupWaitMs: "startup_wait_time", desiredHealthyPercentage: "desired_healthy_percentage",
  restartPolicy: "restart_policy", maxUnavailable: "max_unavailable", maxSurge: "max_surge", readyTimeoutMs: "ready_timeout",
  server: "server", listen: "listen", reusePort: "reuse_port",
};

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/** The plan for going from `current` (the pools as they run) to `next`; admin and the pools' identity must stay. */
export function planReload(current: { admin: Config["admin"]; pools: readonly PoolConfig[] }, next: Config): ReloadPlan {
  const problems: string[] = [];
  for (const key of ["port", "host", "controlSocket"] as const) {
    if (!same(current.admin[key] ?? null, next.admin[key] ?? null)) problems.push(`admin.${key === "controlSocket" ? "control_socket" : key} changed: the admin endpoint and control socket are bound at start; restart Monoceros to change them`);
  }
  const names = current.pools.map((pool) => pool.name);
  const nextNames = next.pools.map((pool) => pool.name);
  const added = nextNames.filter((name) => !names.includes(name));
  const removed = names.filter((name) => !nextNames.includes(name));
  if (added.length > 0) problems.push(`pools added (${added.join(", ")}): adding pools needs a restart of Monoceros`);
  if (removed.length > 0) problems.push(`pools removed (${removed.join(", ")}): removing pools needs a restart of Monoceros`);
  if (added.length === 0 && removed.length === 0 && !same(names, nextNames)) problems.push("the pools are in another order: keep their order (it is their index in logs and metrics)");
  const pools: PoolReload[] = [];
  const lines: string[] = [];
  current.pools.forEach((config, pool) => {
    const nextConfig = next.pools.find((candidate) => candidate.name === config.name);
    if (nextConfig === undefined) return;
    for (const field of FIXED_FIELDS) {
      if (!same(config[field], nextConfig[field])) problems.push(`supervisor.workers[${pool}].${KEY_NAMES[field]} changed: it is set up at start (${field === "server" ? "the proxy's files and ports" : "the listening sockets"}); restart Monoceros to change it`);
    }
    const replace = RELAUNCH_FIELDS.filter((field) => !same(config[field], nextConfig[field])).map((field) => KEY_NAMES[field]);
    const updated = LIVE_FIELDS.filter((field) => !same(config[field], nextConfig[field])).map((field) => KEY_NAMES[field]);
    const replicas = config.replicas === nextConfig.replicas ? null : nextConfig.replicas;
    if (replace.length === 0 && updated.length === 0 && replicas === null) return;
    pools.push({ pool, config: nextConfig, replace, updated, replicas });
    if (replace.length > 0) lines.push(`pool ${config.name}: replace every worker (${replace.join(", ")} changed), rolling`);
    if (replicas !== null) lines.push(`pool ${config.name}: replicas ${config.replicas} -> ${replicas}`);
    if (updated.length > 0) lines.push(`pool ${config.name}: ${updated.join(", ")} updated (no worker replaced for them)`);
  });
  if (problems.length > 0) return { ok: false, problems };
  if (lines.length === 0) lines.push("nothing changed");
  return { ok: true, pools, lines };
}
