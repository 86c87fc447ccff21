// What a config reload changes, decided before anything is touched: either a plan (per pool, its
// new config, whether its workers must be replaced, its new replica count) or the reasons it
// cannot be applied to a running Monoceros (then nothing changes). Pure: configs in, plan out.
import type { Config, PoolConfig } from "../config/types.js";
import { initialSlots as initialSlotsOf } from "./identity.js";

export interface PoolReload {
  pool: number;
  config: PoolConfig;
  /** exec, args, limits or the health check changed: every worker is replaced (rolling, with surge). */
  replace: string[];
  /** Settings that take effect at once (no worker is replaced for them). */
  updated: string[];
  replicas: number | null;
}

/** pools: changes to running pools (by index); added: new pools, in the config's order; removed: indexes of pools to stop. */
export type ReloadPlan = { ok: true; pools: PoolReload[]; added: PoolConfig[]; removed: number[]; lines: string[] } | { ok: false; problems: string[] };

/** Fields whose change means new processes: a worker started with the old ones would keep them. */
const RELAUNCH_FIELDS = ["exec", "args", "limits", "healthCheck", "env", "cwd", "user", "group"] as const satisfies readonly (keyof PoolConfig)[];
/** Fields that take effect at once. */
const LIVE_FIELDS = [
  "signalTimeoutMs", "maxRestarts", "startupWaitMs", "desiredHealthyPercentage", "restartPolicy", "maxUnavailable", "maxSurge", "readyTimeoutMs", "debug", "stderrLevel",
] as const satisfies readonly (keyof PoolConfig)[];
/** Fields only a restart of Monoceros can change (sockets bound, proxy files written, at start). */
const FIXED_FIELDS = ["server", "listen", "reusePort"] as const satisfies readonly (keyof PoolConfig)[];

const KEY_NAMES: Record<(typeof RELAUNCH_FIELDS)[number] | (typeof LIVE_FIELDS)[number] | (typeof FIXED_FIELDS)[number], string> = {
  exec: "exec", args: "args", limits: "limits", healthCheck: "health_check", env: "env", cwd: "cwd", user: "user", group: "group",
  signalTimeoutMs: "signal_timeout", maxRestarts: "max_restarts", startupWaitMs: "startup_wait_time", desiredHealthyPercentage: "desired_healthy_percentage",
  restartPolicy: "restart_policy", maxUnavailable: "max_unavailable", maxSurge: "max_surge", readyTimeoutMs: "ready_timeout", debug: "debug", stderrLevel: "stderr_level",
  server: "server", listen: "listen", reusePort: "reuse_port",
};

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/** A pool as the planner sees it: its config, its slots (ids, ports), and whether a reload removed it. */
export interface RunningPool {
  config: PoolConfig;
  slots: number;
  removal: null | "draining" | "done";
}

/**
 * The plan for going from the running pools to `next`; admin must stay. Pools are matched by name:
 * a name only in `next` is a pool added (started like at start-up), a name no longer in `next` a pool
 * removed (its workers stop, drained first, then its proxy). An added pool may not use a port or proxy
 * folder of a pool that is being removed (it would meet its processes still running), nor the name of
 * one still draining. sameFolder compares two proxy_config_path values (the runtime resolves them
 * against the working folder; without it, as written, less `./` and trailing slashes).
 */
export function planReload(current: { admin: Config["admin"]; pools: readonly RunningPool[] }, next: Config, sameFolder: (a: string, b: string) => boolean = sameRelativeFolder): ReloadPlan {
  const problems: string[] = [];
  for (const key of ["port", "host", "controlSocket"] as const) {
    if (!same(current.admin[key] ?? null, next.admin[key] ?? null)) problems.push(`admin.${key === "controlSocket" ? "control_socket" : key} changed: the admin endpoint and control socket are bound at start; restart Monoceros to change them`);
  }
  const active = new Map<string, number>();
  current.pools.forEach((pool, index) => {
    if (pool.removal === null) active.set(pool.config.name, index);
  });
  const nextNames = new Set(next.pools.map((pool) => pool.name));
  const removed = [...active].filter(([name]) => !nextNames.has(name)).map(([, index]) => index);
  const added = next.pools.filter((pool) => !active.has(pool.name));
  // Everything of a pool being removed (now, or by an earlier reload) may still run.
  const leaving = current.pools.filter((pool, index) => pool.removal === "draining" || removed.includes(index));
  for (const pool of added) {
    const at = `supervisor.workers[${next.pools.indexOf(pool)}]`;
    if (current.pools.some((old) => old.removal === "draining" && old.config.name === pool.name)) {
      problems.push(`${at}.name: pool ${pool.name} was removed by an earlier reload and its processes are still stopping; reload again once it is gone`);
    }
    for (const old of leaving) {
      const clash = portClash(poolPorts(pool, initialSlotsOf(pool)), poolPorts(old.config, old.slots));
      if (clash !== null) problems.push(`${at}: ${clash} of pool ${old.config.name}, which is being removed and may still run: remove it in one reload and add this pool in the next`);
      if (pool.server !== null && old.config.server !== null && sameFolder(pool.server.proxyConfigPath, old.config.server.proxyConfigPath)) {
        problems.push(`${at}.server.proxy_config_path: ${pool.server.proxyConfigPath} is the proxy folder of pool ${old.config.name}, which is being removed and whose proxy may still run: remove it in one reload and add this pool in the next`);
      }
    }
  }
  const pools: PoolReload[] = [];
  const lines: string[] = [];
  for (const index of removed) lines.push(`pool ${current.pools[index]?.config.name}: removed (its workers stop, out of the rotation first${current.pools[index]?.config.server === null ? "" : ", then its proxy"})`);
  for (const pool of added) lines.push(`pool ${pool.name}: added (${pool.replicas} worker${pool.replicas === 1 ? "" : "s"}${pool.server === null ? "" : ", and its proxy first"})`);
  current.pools.forEach((pool, index) => {
    const config = pool.config;
    const nextConfig = pool.removal === null ? next.pools.find((candidate) => candidate.name === config.name) : undefined;
    if (nextConfig === undefined) return;
    const at = `supervisor.workers[${next.pools.indexOf(nextConfig)}]`;
    for (const field of FIXED_FIELDS) {
      if (!same(config[field], nextConfig[field])) problems.push(`${at}.${KEY_NAMES[field]} changed: it is set up at start (${field === "server" ? "the proxy's files and ports" : "the listening sockets"}); restart Monoceros, or remove the pool in one reload and add it back in the next`);
    }
    const replace = RELAUNCH_FIELDS.filter((field) => !same(config[field], nextConfig[field])).map((field) => KEY_NAMES[field]);
    const updated = LIVE_FIELDS.filter((field) => !same(config[field], nextConfig[field])).map((field) => KEY_NAMES[field]);
    const replicas = config.replicas === nextConfig.replicas ? null : nextConfig.replicas;
    if (replace.length === 0 && updated.length === 0 && replicas === null) return;
    pools.push({ pool: index, config: nextConfig, replace, updated, replicas });
    if (replace.length > 0) lines.push(`pool ${config.name}: replace every worker (${replace.join(", ")} changed), rolling`);
    if (replicas !== null) lines.push(`pool ${config.name}: replicas ${config.replicas} -> ${replicas}`);
    if (updated.length > 0) lines.push(`pool ${config.name}: ${updated.join(", ")} updated (no worker replaced for them)`);
  });
  if (problems.length > 0) return { ok: false, problems };
  if (lines.length === 0) lines.push("nothing changed");
  return { ok: true, pools, added, removed, lines };
}

interface PortRange {
  first: number;
  last: number;
  what: string;
}

/** Every port a pool with this many slots binds or has its workers and proxy bind. */
function poolPorts(pool: PoolConfig, slots: number): PortRange[] {
  const ranges: PortRange[] = pool.listen.map((address) => ({ first: address.port, last: address.port, what: `the listen address ${address.text}` }));
  if (pool.server !== null) {
    ranges.push({ first: pool.server.startPort, last: pool.server.startPort + slots - 1, what: "worker ports" });
    ranges.push({ first: pool.server.listenerPort, last: pool.server.listenerPort, what: "the proxy listener port" });
    if (pool.server.proxyAdminPort > 0) ranges.push({ first: pool.server.proxyAdminPort, last: pool.server.proxyAdminPort, what: "the proxy admin port" });
  }
  const probe = pool.healthCheck?.probe;
  if (probe?.kind === "http" && probe.startPort !== null) ranges.push({ first: probe.startPort, last: probe.startPort + slots - 1, what: "health check ports" });
  return ranges;
}

function portClash(mine: readonly PortRange[], theirs: readonly PortRange[]): string | null {
  for (const range of mine) {
    const clash = theirs.find((other) => other.first <= range.last && range.first <= other.last);
    if (clash !== undefined) return `${range.what} (${portsText(range)}) overlap ${clash.what} (${portsText(clash)})`;
  }
  return null;
}

const portsText = (range: PortRange) => (range.first === range.last ? `${range.first}` : `${range.first}-${range.last}`);

function sameRelativeFolder(a: string, b: string): boolean {
  const normal = (path: string) => path.replace(/\/+/g, "/").replace(/^(\.\/)+/, "").replace(/\/$/, "");
  return normal(a) === normal(b);
}
