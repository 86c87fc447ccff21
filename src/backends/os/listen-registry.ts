// The listening sockets of the pools with `listen`, by lane. With reuse_port (the default) each
// lane has its own SO_REUSEPORT socket per address: the kernel spreads connections over the lanes,
// and a lane's socket stays open while its worker restarts or is replaced (the replacement takes
// the same lane), so connections queued on it wait for the next worker instead of being reset. A
// lane's sockets are closed once no worker uses it (scaling down), after Monoceros has accepted
// what was queued on them and forwarded it to the port's other lanes (lane-drain.ts). With
// reuse_port: false every worker of the pool accepts from one shared socket, never closed while
// Monoceros runs.
import type { ListenAddress, PoolConfig } from "../../config/types.js";
import { LIMITS } from "../../config/types.js";
import { closeForwardedConnections, drainLane } from "./lane-drain.js";
import { closeListenSocket, handOverListenSocket, openListenSockets } from "./listen-sockets.js";

interface PoolSockets {
  readonly config: PoolConfig;
  /** Lane → one fd per address (reuse_port); with reuse_port false every lane maps to the shared fds. */
  readonly lanes: Map<number, readonly number[]>;
  shared: readonly number[] | null;
}

export class ListenRegistry {
  private readonly pools = new Map<number, PoolSockets>();

  constructor(pools: readonly PoolConfig[], private readonly onProblem: (message: string) => void = () => {}) {
    pools.forEach((config, index) => {
      if (config.listen.length > 0) this.pools.set(index, { config, lanes: new Map(), shared: null });
    });
  }

  get active(): boolean {
    return this.pools.size > 0;
  }

  /**
   * Opens, before any worker starts, the sockets of every lane the pools start with (one batch: one
   * helper run). Throws an Error naming the pool and address when one cannot be opened.
   */
  openInitial(): void {
    this.openLanesOf([...this.pools.keys()]);
  }

  /**
   * A pool added by a reload: its sockets are opened now, before the reload is applied, so an
   * address in use refuses the reload (throws an Error naming the pool and address) and starts nothing.
   */
  addPool(pool: number, config: PoolConfig): void {
    if (config.listen.length === 0) return;
    this.pools.set(pool, { config, lanes: new Map(), shared: null });
    try {
      this.openLanesOf([pool]);
    } catch (error) {
      this.pools.delete(pool);
      throw error;
    }
  }

  /** A pool removed by a reload is gone (or its addition was refused): its sockets are closed. */
  removePool(pool: number): void {
    const entry = this.pools.get(pool);
    if (entry === undefined) return;
    this.pools.delete(pool);
    closeSockets(entry);
  }

  /** Opens the sockets of the lanes these pools start with (one batch: one helper run). */
  private openLanesOf(pools: readonly number[]): void {
    const requests: { pool: number; lane: number | null; config: PoolConfig }[] = [];
    for (const pool of pools) {
      const entry = this.pools.get(pool) as PoolSockets;
      if (!entry.config.reusePort) requests.push({ pool, lane: null, config: entry.config });
      else for (let lane = 0; lane < entry.config.replicas; lane++) requests.push({ pool, lane, config: entry.config });
    }
    const fds = openListenSockets(requests.flatMap(({ config }) => config.listen.map((address) => ({ address, reusePort: config.reusePort, backlog: LIMITS.listenBacklog }))));
    let next = 0;
    for (const { pool, lane, config } of requests) {
      const group = fds.slice(next, next + config.listen.length);
      next += config.listen.length;
      const entry = this.pools.get(pool) as PoolSockets;
      if (lane === null) entry.shared = group;
      else entry.lanes.set(lane, group);
    }
  }

  /** The fds and their names for a worker of this pool on this lane (opened now for a new lane); null: the pool has no `listen`. */
  socketsFor(pool: number, lane: number): { fds: readonly number[]; names: string[] } | null {
    const entry = this.pools.get(pool);
    if (entry === undefined) return null;
    const { config } = entry;
    let fds = config.reusePort ? entry.lanes.get(lane) : entry.shared;
    if (fds === undefined || fds === null) {
      fds = withErrorCode(() => openListenSockets(config.listen.map((address) => ({ address, reusePort: config.reusePort, backlog: LIMITS.listenBacklog }))));
      if (config.reusePort) entry.lanes.set(lane, fds);
      else entry.shared = fds;
    }
    return { fds, names: config.listen.map((_, index) => (config.listen.length === 1 ? config.name : `${config.name}-${index}`)) };
  }

  /** No worker uses the lane any more: its own sockets (reuse_port) are drained to the port's other lanes and closed. */
  release(pool: number, lane: number): void {
    const entry = this.pools.get(pool);
    const fds = entry?.lanes.get(lane);
    if (entry === undefined || fds === undefined) return;
    entry.lanes.delete(lane);
    fds.forEach((fd, index) => drainLane(handOverListenSocket(fd), entry.config.listen[index] as ListenAddress, this.onProblem));
  }

  closeAll(): void {
    closeForwardedConnections();
    for (const entry of this.pools.values()) closeSockets(entry);
  }
}

function closeSockets(entry: PoolSockets): void {
  for (const fds of [...entry.lanes.values(), ...(entry.shared === null ? [] : [entry.shared])]) for (const fd of fds) closeListenSocket(fd);
  entry.lanes.clear();
  entry.shared = null;
}

/**
 * A new lane's sockets are opened as its worker is spawned: a failure becomes that spawn's failure,
 * with the errno the core decides on (EMFILE, ENFILE, ENOMEM are the machine's and never charged to
 * max_restarts). The native addon and the helper report errors as text, so the errno is read from it.
 */
function withErrorCode<T>(open: () => T): T {
  try {
    return open();
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const code = /too many open files|EMFILE/i.test(message) ? "EMFILE"
      : /file table overflow|ENFILE/i.test(message) ? "ENFILE"
        : /cannot allocate memory|no buffer space|ENOMEM|ENOBUFS/i.test(message) ? "ENOMEM"
          : /resource temporarily unavailable|EAGAIN/i.test(message) ? "EAGAIN" : "ELISTEN";
    throw Object.assign(new Error(message), { code });
  }
}
