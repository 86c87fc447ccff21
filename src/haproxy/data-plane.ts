// HAProxy as proxy mode's data plane: its config file (atomically written, with the current
// rotation), and its runtime API on a unix socket to move servers in and out of rotation at once.
import { createConnection } from "node:net";
import { join, resolve } from "node:path";
import type { PoolConfig } from "../config/types.js";
import type { ProxyLaunch } from "../domain/state.js";
import { writeAtomically, type ProxyDataPlane } from "../proxy/data-plane.js";
import type { EndpointState } from "../proxy/data-plane.js";
import { mkdirSync } from "node:fs";
import { haproxyArgs, haproxyServerName, HAPROXY_FILES, renderHaproxyConfig } from "./render.js";

/** The socket appears a moment after HAProxy starts: retry this often, this long apart. */
const SOCKET_ATTEMPTS_MAX = 50;
const SOCKET_RETRY_MS = 100;
const SOCKET_TIMEOUT_MS = 1_000;

export function haproxyFolder(pool: PoolConfig): string {
  if (pool.server === null) throw new Error(`pool ${pool.name} is not in proxy mode`);
  return resolve(pool.server.proxyConfigPath);
}

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
function rotationCommand(pool: PoolConfig, index: number, inRotation: boolean): string {
  return `set server ${pool.name}/${haproxyServerName(pool, index)} state ${inRotation ? "ready" : "maint"}`;
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

export class HaproxyDataPlane implements ProxyDataPlane {
  /** Per pool: the rotation to apply next, so a burst of changes sends only the latest. */
  private readonly pending = new Map<string, readonly EndpointState[]>();
  private readonly applying = new Set<string>();
  /** Per pool: what HAProxy was last told, so only changes are sent (sending "ready" again would reset a server's health). */
  private readonly applied = new Map<string, boolean[]>();

  constructor(
    private readonly binaryFor: (pool: PoolConfig) => string,
    private readonly report: (level: "info" | "warn", msg: string, fields: Record<string, unknown>) => void,
  ) {}

  prepare(pool: PoolConfig): ProxyLaunch {
    const folder = haproxyFolder(pool);
    mkdirSync(folder, { recursive: true });
    const notInRotation = Array.from({ length: pool.replicas }, (_, i) => ({ port: (pool.server?.startPort ?? 0) + i, inRotation: false }));
    writeAtomically(join(folder, HAPROXY_FILES.config), renderHaproxyConfig(pool, folder, notInRotation));
    return { exec: this.binaryFor(pool), args: haproxyArgs(folder), stopSignal: "SIGUSR1" };
  }

  rotation(pool: PoolConfig, endpoints: readonly EndpointState[]): void {
    const folder = haproxyFolder(pool);
    writeAtomically(join(folder, HAPROXY_FILES.config), renderHaproxyConfig(pool, folder, endpoints));
    this.pending.set(pool.name, endpoints);
    if (!this.applying.has(pool.name)) void this.apply(pool);
  }

  /** Workers leave the rotation as they are stopped and the soft stop at the end finishes what is in flight. */
  drain(pool: PoolConfig): void {
    this.report("info", "Proxy draining: workers leave its rotation as they stop; it is soft-stopped last", { pool: pool.name });
  }

  private async apply(pool: PoolConfig): Promise<void> {
    this.applying.add(pool.name);
    const socketPath = join(haproxyFolder(pool), HAPROXY_FILES.socket);
    try {
      for (let attempt = 1; this.pending.has(pool.name); attempt++) {
        const endpoints = this.pending.get(pool.name) as readonly EndpointState[];
        this.pending.delete(pool.name);
        // A fresh HAProxy starts from its file, written with the same rotation before it started.
        const before = this.applied.get(pool.name) ?? endpoints.map(() => false);
        const changed = endpoints.map((e, i) => e.inRotation !== before[i]);
        if (!changed.includes(true)) continue;
        // Out of rotation at once; into rotation once listening.
        const leaving = endpoints.flatMap((e, i) => (changed[i] && !e.inRotation ? [rotationCommand(pool, i, false)] : []));
        if (leaving.length > 0) await runtimeCommand(socketPath, leaving.join("; ")).catch(() => undefined);
        await Promise.all(endpoints.map((e, i) => (changed[i] && e.inRotation ? untilListening(e.port) : undefined)));
        const changes = endpoints.flatMap((e, i) => (changed[i] ? [rotationCommand(pool, i, e.inRotation)] : []));
        try {
          const answer = await runtimeCommand(socketPath, changes.join("; "));
          if (answer !== "") this.report("warn", "HAProxy's runtime API answered", { pool: pool.name, answer });
          this.applied.set(pool.name, endpoints.map((e) => e.inRotation));
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
