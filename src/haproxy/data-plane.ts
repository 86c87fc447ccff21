// HAProxy as proxy mode's data plane: renders its config file, and at run time rewrites it with
// the current rotation (so a restarted HAProxy starts from it) and tells the running HAProxy
// through its runtime API on a unix socket, to move servers in and out of rotation at once.
import { createConnection } from "node:net";
import { join } from "node:path";
import type { PoolConfig } from "../config/types.js";
import { proxyFolder, writeAtomically, type DataPlane, type ProxyCommand, type ProxyEndpoint, type ProxyRendering, type ProxyReport } from "../proxy/data-plane.js";
import { haproxyArgs, haproxyCheckArgs, haproxyFiles, haproxyServerName, HAPROXY_FILES, renderHaproxyConfig } from "./render.js";

/** The socket appears a moment after HAProxy starts: retry this often, this long apart. */
const SOCKET_ATTEMPTS_MAX = 50;
const SOCKET_RETRY_MS = 100;
const SOCKET_TIMEOUT_MS = 1_000;

/** One command line on the runtime API; resolves with HAProxy's answer. */
export function runtimeCommand(socketPath: string, command: string): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const socket = createConnection(socketPath);
    let answer = "";
    socket.setTimeout(SOCKET_TIMEOUT_MS, () => socket.destroy(new Error("runtime API timed out")));
    socket.on("connect", () => socket.write(`${command}\n`));
    socket.on("data", (chunk) => (answer += chunk.toString("utf8")));
    socket.on("end", () => resolvePromise(answer.trim()));
    socket.on("error", reject);
  });
}

/** Out of rotation: maint (no new requests; those in flight finish). Into rotation: ready. */
function rotationCommand(pool: PoolConfig, endpoint: ProxyEndpoint): string {
  return `set server ${pool.name}/${haproxyServerName(pool, endpoint.worker)} state ${endpoint.inRotation ? "ready" : "maint"}`;
}

/** How long a replacement may take to listen before it is put in rotation anyway (health checks then decide). */
const LISTEN_WAIT_MS_MAX = 10_000;
const LISTEN_POLL_MS = 10;

/**
 * Resolves once something accepts connections on 127.0.0.1:port, or after LISTEN_WAIT_MS_MAX. A
 * server leaving maintenance is UP at once in HAProxy, so a worker that runs but does not listen
 * yet would get requests and refuse them.
 */
function untilListening(port: number): Promise<void> {
  const deadline = performance.now() + LISTEN_WAIT_MS_MAX;
  return new Promise((done) => {
    const attempt = () => {
      const socket = createConnection({ host: "127.0.0.1", port });
      socket.once("connect", () => {
        socket.destroy();
        done();
      });
      socket.once("error", () => {
        socket.destroy();
        if (performance.now() >= deadline) done();
        else setTimeout(attempt, LISTEN_POLL_MS);
      });
    };
    attempt();
  });
}

export class HaproxyDataPlane implements DataPlane {
  /** Per pool: the rotation to apply next, so a burst of changes sends only the latest. */
  private readonly pending = new Map<string, readonly ProxyEndpoint[]>();
  private readonly applying = new Set<string>();
  /** Per pool: what HAProxy was last told, by worker, so only changes are sent (sending "ready" again would reset a server's health). */
  private readonly applied = new Map<string, ReadonlyMap<number, boolean>>();

  constructor(private readonly report: ProxyReport) {}

  render(pool: PoolConfig, folder: string, endpoints: readonly ProxyEndpoint[]): ProxyRendering {
    return { files: haproxyFiles(pool, folder, endpoints), args: haproxyArgs(folder), stopSignal: "SIGUSR1", checkArgs: haproxyCheckArgs(folder) };
  }

  apply(pool: PoolConfig, command: ProxyCommand): void {
    switch (command.type) {
      case "proxyRotation": {
        const folder = proxyFolder(pool);
        writeAtomically(join(folder, HAPROXY_FILES.config), renderHaproxyConfig(pool, folder, command.endpoints));
        this.pending.set(pool.name, command.endpoints);
        if (!this.applying.has(pool.name)) void this.sendRotation(pool);
        return;
      }
      case "drainProxy":
        // Workers leave the rotation as they are stopped, and the soft stop at the end finishes what is in flight.
        this.report("info", "Proxy draining: workers leave its rotation as they stop; it is soft-stopped last", { pool: pool.name });
        return;
    }
  }

  private async sendRotation(pool: PoolConfig): Promise<void> {
    this.applying.add(pool.name);
    const socketPath = join(proxyFolder(pool), HAPROXY_FILES.socket);
    try {
      for (let attempt = 1; this.pending.has(pool.name); attempt++) {
        const endpoints = this.pending.get(pool.name) as readonly ProxyEndpoint[];
        this.pending.delete(pool.name);
        // A fresh HAProxy starts from its file, written with no worker in rotation before it started.
        const before = this.applied.get(pool.name) ?? new Map<number, boolean>();
        const changed = endpoints.filter((e) => e.inRotation !== (before.get(e.worker) ?? false));
        if (changed.length === 0) continue;
        // Out of rotation at once; into rotation once listening.
        const leaving = changed.filter((e) => !e.inRotation).map((e) => rotationCommand(pool, e));
        if (leaving.length > 0) await runtimeCommand(socketPath, leaving.join("; ")).catch(() => undefined);
        await Promise.all(changed.filter((e) => e.inRotation).map((e) => untilListening(e.port)));
        try {
          const answer = await runtimeCommand(socketPath, changed.map((e) => rotationCommand(pool, e)).join("; "));
          if (answer !== "") this.report("warn", "HAProxy's runtime API answered", { pool: pool.name, answer });
          this.applied.set(pool.name, new Map(endpoints.map((e) => [e.worker, e.inRotation])));
          attempt = 0;
        } catch (error) {
          // Not listening yet (just started or restarting): the newest rotation wins on the next try.
          if (!this.pending.has(pool.name)) this.pending.set(pool.name, endpoints);
          if (attempt >= SOCKET_ATTEMPTS_MAX) {
            this.report("warn", "Could not reach HAProxy's runtime API; its file has the rotation for its next start", { pool: pool.name, error: String(error) });
            this.pending.delete(pool.name);
            return;
          }
          await new Promise((r) => setTimeout(r, SOCKET_RETRY_MS));
        }
      }
    } finally {
      this.applying.delete(pool.name);
    }
  }
}
