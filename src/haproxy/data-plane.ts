// HAProxy as proxy mode's data plane: renders its config file, and at run time rewrites it with
// the current rotation (so a restarted HAProxy starts from it) and tells the running HAProxy
// through its runtime API on a unix socket, to move servers in and out of rotation at once.
//
// Two waits live here, each bounded by an option and covered by test/unit/haproxy: a worker
// entering the rotation is set ready once its port accepts connections (or at listenWaitMsMax),
// and the runtime API is retried socketAttemptsMax times. Every give-up is reported. Neither
// holds the core: it has already decided; these only decide when HAProxy hears of it.
import { join } from "node:path";
import type { PoolConfig } from "../config/types.js";
import { workerId } from "../domain/identity.js";
import { proxyFolder, writeAtomically, type DataPlane, type ProxyCommand, type ProxyEndpoint, type ProxyRendering, type ProxyReport } from "../proxy/data-plane.js";
import { untilListening } from "./listen-wait.js";
import { haproxyArgs, haproxyCheckArgs, haproxyFiles, haproxyServerName, HAPROXY_FILES, renderHaproxyConfig } from "./render.js";
import { runtimeExchange } from "./runtime-api.js";

export interface HaproxyWaits {
  /** How long a worker entering the rotation may take to listen before it is set ready anyway (its health checks then decide). */
  listenWaitMsMax: number;
  /** Pause between connection attempts to a worker's port. */
  listenPollMs: number;
  /** Failed runtime-API exchanges in a row before giving up until the next change (the socket appears a moment after HAProxy starts). */
  socketAttemptsMax: number;
  /** Pause after a failed exchange. */
  socketRetryMs: number;
  /** Bound on one exchange: connect, command, answer. */
  socketTimeoutMs: number;
}

/** Production's: ~5 s of retries for a socket that is not there yet, ~55 s for one that never answers. */
export const HAPROXY_WAITS: Readonly<HaproxyWaits> = {
  listenWaitMsMax: 10_000,
  listenPollMs: 10,
  socketAttemptsMax: 50,
  socketRetryMs: 100,
  socketTimeoutMs: 1_000,
};

/** One server of the pool's backend, as the core wants it and as HAProxy was told. */
interface ServerRotation {
  readonly worker: number;
  /** The core's latest decision. */
  wanted: boolean;
  /** Counts the worker's entries into rotation, so the listen wait of an earlier entry is known to be stale. */
  entry: number;
  /** The current entry's port accepted a connection, or its wait gave up: it may be set ready. */
  listened: boolean;
  /** Stops the current entry's listen wait (the worker left again). */
  listenWait: AbortController | null;
  /** What HAProxy last confirmed; undefined when an exchange about it failed and it may or may not have arrived. */
  told: boolean | undefined;
}

interface PoolRotation {
  readonly servers: Map<number, ServerRotation>;
  /** An exchange loop runs: it re-reads `servers` before each exchange, so it is never started twice. */
  sending: boolean;
}

/** What HAProxy should have now: out at once; in only once listening, so ready is never sent early. */
const target = (server: ServerRotation): boolean => server.wanted && server.listened;

/** Out of rotation: maint (no new requests; those in flight finish). Into rotation: ready. */
function rotationCommand(pool: PoolConfig, worker: number, ready: boolean): string {
  return `set server ${pool.name}/${haproxyServerName(pool, worker)} state ${ready ? "ready" : "maint"}`;
}

export class HaproxyDataPlane implements DataPlane {
  private readonly rotations = new Map<string, PoolRotation>();
  private readonly waits: Readonly<HaproxyWaits>;

  constructor(
    private readonly report: ProxyReport,
    waits: Partial<HaproxyWaits> = {},
  ) {
    this.waits = { ...HAPROXY_WAITS, ...waits };
  }

  render(pool: PoolConfig, folder: string, endpoints: readonly ProxyEndpoint[]): ProxyRendering {
    return { files: haproxyFiles(pool, folder, endpoints), args: haproxyArgs(folder), stopSignal: "SIGUSR1", checkArgs: haproxyCheckArgs(folder) };
  }

  apply(pool: PoolConfig, command: ProxyCommand): void {
    switch (command.type) {
      case "proxyRotation": {
        const folder = proxyFolder(pool);
        writeAtomically(join(folder, HAPROXY_FILES.config), renderHaproxyConfig(pool, folder, command.endpoints));
        const rotation = this.rotationOf(pool);
        for (const endpoint of command.endpoints) this.want(pool, rotation, endpoint);
        void this.send(pool, rotation);
        return;
      }
      case "drainProxy":
        // Workers leave the rotation as they are stopped, and the soft stop at the end finishes what is in flight.
        this.report("info", "Proxy draining: workers leave its rotation as they stop; it is soft-stopped last", { pool: pool.name });
        return;
    }
  }

  /**
   * Nothing pending for the pool: no listen wait and no exchange in flight, so HAProxy has been
   * told all it will be told until the next change (or an exchange gave up, and said so).
   */
  settled(pool: PoolConfig): boolean {
    const rotation = this.rotations.get(pool.name);
    return rotation === undefined || (!rotation.sending && [...rotation.servers.values()].every((server) => server.listenWait === null));
  }

  forget(pool: PoolConfig): void {
    this.rotations.delete(pool.name);
  }

  /** A fresh HAProxy starts from its file, written with no worker in rotation before it started. */
  private rotationOf(pool: PoolConfig): PoolRotation {
    let rotation = this.rotations.get(pool.name);
    if (rotation === undefined) {
      rotation = { servers: new Map(), sending: false };
      this.rotations.set(pool.name, rotation);
    }
    return rotation;
  }

  /** Records the core's decision for one worker; an entry starts its listen wait, a leave ends it. */
  private want(pool: PoolConfig, rotation: PoolRotation, endpoint: ProxyEndpoint): void {
    let server = rotation.servers.get(endpoint.worker);
    if (server === undefined) {
      server = { worker: endpoint.worker, wanted: false, entry: 0, listened: false, listenWait: null, told: false };
      rotation.servers.set(endpoint.worker, server);
    }
    if (endpoint.inRotation === server.wanted) return;
    server.wanted = endpoint.inRotation;
    server.listened = false;
    server.listenWait?.abort();
    server.listenWait = null;
    server.entry++;
    if (endpoint.inRotation) void this.waitUntilListening(pool, rotation, server, endpoint.port);
  }

  private async waitUntilListening(pool: PoolConfig, rotation: PoolRotation, server: ServerRotation, port: number): Promise<void> {
    const entry = server.entry;
    const controller = new AbortController();
    server.listenWait = controller;
    const startedMs = performance.now();
    const outcome = await untilListening(port, { waitMsMax: this.waits.listenWaitMsMax, pollMs: this.waits.listenPollMs }, controller.signal);
    // A leave aborts the wait; a later entry has its own. Only the current entry's wait may let a worker in.
    if (outcome === "cancelled" || server.entry !== entry) return;
    server.listenWait = null;
    server.listened = true;
    if (outcome === "gaveUp") {
      this.report("warn", "Gave up waiting for a worker to accept connections; setting it ready anyway (its health checks decide)", {
        pool: pool.name,
        worker_id: workerId(pool.name, server.worker),
        port,
        waited_ms: Math.round(performance.now() - startedMs),
      });
    }
    void this.send(pool, rotation);
  }

  /**
   * Tells HAProxy every server whose target differs from what it was told, one exchange at a time,
   * until nothing differs. Each exchange decides its command once connected, from the state then:
   * a burst of changes during a wait or a retry ends with the latest, and never with an older one.
   */
  private async send(pool: PoolConfig, rotation: PoolRotation): Promise<void> {
    if (rotation.sending) return;
    rotation.sending = true;
    const socket = join(proxyFolder(pool), HAPROXY_FILES.socket);
    let failures = 0;
    let firstFailureMs = 0;
    try {
      while ([...rotation.servers.values()].some((server) => target(server) !== server.told)) {
        let batch: { server: ServerRotation; ready: boolean }[] = [];
        const decide = () => {
          batch = [...rotation.servers.values()].filter((server) => target(server) !== server.told).map((server) => ({ server, ready: target(server) }));
          return batch.length === 0 ? null : batch.map(({ server, ready }) => rotationCommand(pool, server.worker, ready)).join("; ");
        };
        const attemptStartedMs = performance.now();
        try {
          const exchange = await runtimeExchange(socket, this.waits.socketTimeoutMs, decide);
          for (const { server, ready } of batch) server.told = ready;
          failures = 0;
          if (exchange !== null && exchange.answer !== "") {
            this.report("warn", "HAProxy's runtime API answered", { pool: pool.name, socket, command: exchange.command, answer: exchange.answer });
          }
        } catch (error) {
          // It may have arrived before the failure: unknown, so it is sent again.
          for (const { server } of batch) server.told = undefined;
          if (failures === 0) firstFailureMs = attemptStartedMs;
          failures++;
          if (failures >= this.waits.socketAttemptsMax) {
            this.report("warn", "Gave up on HAProxy's runtime API; haproxy.cfg has the rotation for its next start, and the next change is sent again", {
              pool: pool.name,
              socket,
              attempts: failures,
              waited_ms: Math.round(performance.now() - firstFailureMs),
              error: String(error),
            });
            return;
          }
          await new Promise((resolveSleep) => setTimeout(resolveSleep, this.waits.socketRetryMs));
        }
      }
    } finally {
      rotation.sending = false;
    }
  }
}
