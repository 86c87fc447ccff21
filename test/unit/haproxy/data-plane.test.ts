// HAProxy's data plane against a fake runtime API (a unix socket in a temp folder that answers
// like HAProxy: nothing for a `set server` that worked) and plain TCP listeners on 127.0.0.1 as
// the workers' ports, with small bounds: its two waits give up at their bounds, report it, and a
// burst of rotation changes ends with the latest, never with an older one.
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import type { PoolConfig } from "../../../src/config/types.js";
import { HAPROXY_WAITS, HaproxyDataPlane, type HaproxyWaits } from "../../../src/haproxy/data-plane.js";
import { NO_BACKOFF } from "../../support/harness.js";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Short: a unix socket path has a small limit. */
function tempFolder(): string {
  const folder = mkdtempSync(join(tmpdir(), "mhx-"));
  cleanups.push(() => rmSync(folder, { recursive: true, force: true }));
  return folder;
}

function haproxyPool(folder: string, replicas: number): PoolConfig {
  return {
    name: "web", replicas, exec: "./server", args: [], signalTimeoutMs: 10_000, maxRestarts: 1, startupWaitMs: 0, desiredHealthyPercentage: 0,
    limits: { lifespanMs: 0, jitterRatio: 0, memoryBytes: 0 },
    restartPolicy: NO_BACKOFF,
    healthCheck: null,
    maxUnavailable: 1, maxSurge: 0, readyTimeoutMs: 60_000, listen: [], reusePort: true, env: {}, cwd: null, user: null, group: null,
    server: {
      proxy: "haproxy", portArgName: "--port", portValueTemplate: "{{.Port}}", startPort: 1, signalTimeoutMs: 10_000, healthCheckPath: "/health",
      loadBalancerAlgorithm: "ROUND_ROBIN", proxyConfigPath: folder, proxyAdminPort: 0, listenerPort: 8080, proxyBinary: "haproxy",
    },
  };
}

const closeServer = (server: Server) => new Promise<void>((done) => server.close(() => done()));

interface Received {
  line: string;
  atMs: number;
}

/** How the fake API treats a command: answer (HAProxy answers nothing for a `set server` that worked), or never answer. */
type Mode = { answer: string; delayMs?: number } | "hang";

interface FakeRuntimeApi {
  received: Received[];
  mode: Mode;
  close(): Promise<void>;
}

async function fakeRuntimeApi(folder: string, mode: Mode = { answer: "" }): Promise<FakeRuntimeApi> {
  const sockets = new Set<Socket>();
  const api: FakeRuntimeApi = { received: [], mode, close: () => Promise.resolve() };
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => undefined);
    let text = "";
    socket.on("data", (chunk) => {
      text += chunk.toString("utf8");
      const end = text.indexOf("\n");
      if (end < 0) return;
      api.received.push({ line: text.slice(0, end), atMs: performance.now() });
      const current = api.mode;
      if (current === "hang") return;
      setTimeout(() => socket.end(current.answer === "" ? "" : `${current.answer}\n`), current.delayMs ?? 0);
    });
  });
  await new Promise<void>((done) => server.listen(join(folder, "haproxy.sock"), done));
  api.close = async () => {
    for (const socket of sockets) socket.destroy();
    await closeServer(server);
  };
  cleanups.push(() => api.close());
  return api;
}

/** A port nothing listens on (yet). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  const address = server.address();
  await closeServer(server);
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

/** A worker that listens on port (accepts and closes). */
async function listenOn(port: number): Promise<() => Promise<void>> {
  const server = createServer((socket) => socket.destroy());
  await new Promise<void>((done) => server.listen(port, "127.0.0.1", done));
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await closeServer(server);
  };
  cleanups.push(close);
  return close;
}

type Report = { level: string; msg: string; fields: Record<string, unknown> };

interface Setup {
  plane: HaproxyDataPlane;
  pool: PoolConfig;
  folder: string;
  ports: number[];
  reports: Report[];
  /** The core's decision: these workers in rotation, the others out. */
  rotate(inRotation: readonly boolean[]): void;
}

async function setUp(replicas: number, waits: Partial<HaproxyWaits>): Promise<Setup> {
  const folder = tempFolder();
  const pool = haproxyPool(folder, replicas);
  const reports: Report[] = [];
  const plane = new HaproxyDataPlane((level, msg, fields) => reports.push({ level, msg, fields }), waits);
  const ports: number[] = [];
  for (let i = 0; i < replicas; i++) ports.push(await freePort());
  const rotate = (inRotation: readonly boolean[]) =>
    plane.apply(pool, { type: "proxyRotation", pool: 0, endpoints: ports.map((port, worker) => ({ worker, port, inRotation: inRotation[worker] ?? false })) });
  return { plane, pool, folder, ports, reports, rotate };
}

/** Polls until condition holds; fails after timeoutMs. */
async function until(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(5);
  }
}

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

/** `set server web/web-1 state ready; …` → [["web-1", "ready"], …] */
function commands(received: readonly Received[]): [string, string][] {
  return received.flatMap(({ line }) =>
    line.split("; ").map((command): [string, string] => {
      const match = /^set server web\/(\S+) state (ready|maint)$/.exec(command);
      if (match === null) throw new Error(`unexpected command: ${command}`);
      return [match[1] as string, match[2] as string];
    }),
  );
}

const commandsFor = (received: readonly Received[], server: string) => commands(received).filter(([name]) => name === server).map(([, state]) => state);

/** When the first command for server that sets it to state arrived. */
function arrival(received: readonly Received[], server: string, state: string): number | undefined {
  return received.find(({ line }) => line.split("; ").includes(`set server web/${server} state ${state}`))?.atMs;
}

const warnings = (reports: readonly Report[]) => reports.filter((report) => report.level === "warn");

describe("HAProxy data plane: waiting for a worker to listen", () => {
  it("keeps today's bounds by default: 10 s for a worker to listen, 50 runtime-API attempts 100 ms apart, 1 s each", () => {
    expect(HAPROXY_WAITS).toEqual({ listenWaitMsMax: 10_000, listenPollMs: 10, socketAttemptsMax: 50, socketRetryMs: 100, socketTimeoutMs: 1_000 });
  });

  it("sets a worker ready at once when its port already accepts connections", async () => {
    const s = await setUp(1, { listenWaitMsMax: 5_000 });
    const api = await fakeRuntimeApi(s.folder);
    await listenOn(s.ports[0] as number);
    const startedMs = performance.now();
    s.rotate([true]);
    await until(() => api.received.length === 1);
    expect(api.received[0]?.line).toBe("set server web/web-0 state ready");
    expect((api.received[0]?.atMs ?? Infinity) - startedMs).toBeLessThan(1_000);
    expect(s.reports).toEqual([]);
  });

  it("sets a worker ready promptly once its port starts listening during the wait", async () => {
    const s = await setUp(1, { listenWaitMsMax: 5_000, listenPollMs: 10 });
    const api = await fakeRuntimeApi(s.folder);
    s.rotate([true]);
    await sleep(300);
    expect(api.received).toEqual([]);
    const listeningMs = performance.now();
    await listenOn(s.ports[0] as number);
    await until(() => api.received.length === 1);
    expect(commands(api.received)).toEqual([["web-0", "ready"]]);
    expect((api.received[0]?.atMs ?? Infinity) - listeningMs).toBeLessThan(1_000);
    expect(s.reports).toEqual([]);
  });

  it("gives up at listenWaitMsMax, sets the server ready anyway, and reports the pool, worker, port and how long it waited", async () => {
    const s = await setUp(1, { listenWaitMsMax: 300 });
    const api = await fakeRuntimeApi(s.folder);
    const startedMs = performance.now();
    s.rotate([true]);
    await until(() => api.received.length === 1);
    expect(commands(api.received)).toEqual([["web-0", "ready"]]);
    const waitedMs = (api.received[0]?.atMs ?? 0) - startedMs;
    expect(waitedMs).toBeGreaterThanOrEqual(290);
    expect(waitedMs).toBeLessThan(3_000);
    expect(warnings(s.reports)).toEqual([
      {
        level: "warn",
        msg: "Gave up waiting for a worker to accept connections; setting it ready anyway (its health checks decide)",
        fields: { pool: "web", worker_id: "web-0", port: s.ports[0], waited_ms: expect.any(Number) },
      },
    ]);
    expect(s.reports[0]?.fields.waited_ms).toBeGreaterThanOrEqual(290);
  });

  it("takes a worker out at once, even while another worker's listen wait runs", async () => {
    const s = await setUp(2, { listenWaitMsMax: 3_000 });
    const api = await fakeRuntimeApi(s.folder);
    await listenOn(s.ports[1] as number);
    s.rotate([false, true]);
    await until(() => api.received.length === 1);
    s.rotate([true, true]); // web-0 does not listen: its wait runs for 3 s
    const leftMs = performance.now();
    s.rotate([true, false]);
    await until(() => commandsFor(api.received, "web-1").length === 2);
    expect(commandsFor(api.received, "web-1")).toEqual(["ready", "maint"]);
    expect((arrival(api.received, "web-1", "maint") ?? Infinity) - leftMs).toBeLessThan(1_000);
    expect(commandsFor(api.received, "web-0")).toEqual([]);
  });
});

describe("HAProxy data plane: a burst of rotation changes", () => {
  it("never sets a worker ready after it left during its listen wait, whether its port then listens or the wait would give up", async () => {
    const s = await setUp(1, { listenWaitMsMax: 300 });
    const api = await fakeRuntimeApi(s.folder);
    s.rotate([true]);
    await sleep(50);
    s.rotate([false]);
    await listenOn(s.ports[0] as number);
    await sleep(600);
    // It was never in rotation, so there was nothing to tell HAProxy: no ready, and no maint either.
    expect(api.received).toEqual([]);
    expect(s.reports).toEqual([]);
  });

  it("lets only the newest entry's listen wait put a worker back, when it is put back while an older wait is still running", async () => {
    const s = await setUp(1, { listenWaitMsMax: 400 });
    const api = await fakeRuntimeApi(s.folder);
    const startedMs = performance.now();
    s.rotate([true]); // wait A: would give up at 400 ms
    await sleep(50);
    s.rotate([false]);
    await sleep(200);
    s.rotate([true]); // wait B: gives up at ~650 ms
    await until(() => api.received.length === 1);
    await sleep(200);
    expect(commands(api.received)).toEqual([["web-0", "ready"]]);
    expect((api.received[0]?.atMs ?? 0) - startedMs).toBeGreaterThanOrEqual(600);
    expect(warnings(s.reports)).toHaveLength(1);
  });

  it("takes a replaced worker out and waits for its replacement to listen, when it leaves and comes back at once", async () => {
    const s = await setUp(1, { listenWaitMsMax: 3_000 });
    const api = await fakeRuntimeApi(s.folder);
    const stopWorker = await listenOn(s.ports[0] as number);
    s.rotate([true]);
    await until(() => api.received.length === 1);
    await stopWorker();
    // The old process exited and its replacement runs, in one burst: the replacement is not listening yet.
    s.rotate([false]);
    s.rotate([true]);
    await until(() => commandsFor(api.received, "web-0").length === 2);
    expect(commandsFor(api.received, "web-0")).toEqual(["ready", "maint"]);
    await sleep(100);
    await listenOn(s.ports[0] as number);
    await until(() => commandsFor(api.received, "web-0").length === 3);
    expect(commandsFor(api.received, "web-0")).toEqual(["ready", "maint", "ready"]);
    expect(s.reports).toEqual([]);
  });

  it("does not send an older rotation after a newer one when a listen wait ends", async () => {
    const s = await setUp(2, { listenWaitMsMax: 400 });
    const api = await fakeRuntimeApi(s.folder);
    s.rotate([true, true]); // neither listens yet; web-0 never will, so its wait ends at 400 ms
    await sleep(50);
    s.rotate([true, false]);
    await listenOn(s.ports[1] as number);
    await until(() => commandsFor(api.received, "web-0").length === 1);
    await sleep(200);
    expect(commandsFor(api.received, "web-0")).toEqual(["ready"]);
    // The rotation that had web-1 in is older than the one that took it out: nothing of it is sent.
    expect(commandsFor(api.received, "web-1")).toEqual([]);
  });

  it("sends a change that came while an exchange was in flight right after it, so the last command is the latest", async () => {
    const s = await setUp(1, { listenWaitMsMax: 3_000 });
    const api = await fakeRuntimeApi(s.folder, { answer: "", delayMs: 150 });
    await listenOn(s.ports[0] as number);
    s.rotate([true]);
    await until(() => api.received.length === 1);
    s.rotate([false]);
    await until(() => api.received.length === 2);
    await sleep(300);
    expect(commandsFor(api.received, "web-0")).toEqual(["ready", "maint"]);
  });

  it("sets a worker that left and came back during an exchange maint, then ready once it listens again, and says when it is done", async () => {
    const s = await setUp(1, { listenWaitMsMax: 3_000, listenPollMs: 5 });
    const api = await fakeRuntimeApi(s.folder, { answer: "", delayMs: 100 });
    const stopListening = await listenOn(s.ports[0] as number);
    s.rotate([true]);
    await until(() => api.received.length === 1);
    await stopListening(); // the worker restarts: out, and back in before it listens again
    s.rotate([false]);
    s.rotate([true]);
    expect(s.plane.settled(s.pool)).toBe(false);
    await until(() => api.received.length === 2);
    expect(commandsFor(api.received, "web-0")).toEqual(["ready", "maint"]);
    expect(s.plane.settled(s.pool)).toBe(false);
    await listenOn(s.ports[0] as number);
    await until(() => s.plane.settled(s.pool));
    expect(commandsFor(api.received, "web-0")).toEqual(["ready", "maint", "ready"]);
  });

  it("ends every burst with HAProxy told the latest rotation (generated bursts of changes, listeners and pauses)", async () => {
    const step = fc.oneof(
      fc.record({ kind: fc.constant("rotate" as const), worker: fc.nat(2) }),
      fc.record({ kind: fc.constant("listen" as const), worker: fc.nat(2) }),
      fc.record({ kind: fc.constant("pause" as const), ms: fc.integer({ min: 0, max: 60 }) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(step, { maxLength: 14 }), fc.integer({ min: 0, max: 40 }), async (steps, answerDelayMs) => {
        const s = await setUp(3, { listenWaitMsMax: 150, listenPollMs: 5 });
        const api = await fakeRuntimeApi(s.folder, { answer: "", delayMs: answerDelayMs });
        const wanted = [false, false, false];
        const listeners: ((() => Promise<void>) | null)[] = [null, null, null];
        try {
          for (const next of steps) {
            if (next.kind === "pause") await sleep(next.ms);
            else if (next.kind === "rotate") {
              wanted[next.worker] = !wanted[next.worker];
              s.rotate(wanted);
            } else {
              const listener = listeners[next.worker];
              if (listener) await listener();
              listeners[next.worker] = listener ? null : await listenOn(s.ports[next.worker] as number);
            }
          }
          // HAProxy's state: what the commands left it in, from a file with none in rotation. It may
          // match for a moment before the plane is done (a worker out and back in during an exchange
          // is set maint, then ready once it listens again), so the plane's own word ends the burst.
          const told = () => wanted.map((_, worker) => commandsFor(api.received, `web-${worker}`).at(-1) === "ready");
          await until(() => s.plane.settled(s.pool), 3_000);
          expect(told()).toEqual(wanted);
          const settled = api.received.length;
          await sleep(250);
          expect(api.received.length).toBe(settled);
          expect(s.reports.filter((report) => report.msg.startsWith("Gave up on HAProxy's runtime API"))).toEqual([]);
        } finally {
          for (const listener of listeners) await listener?.();
          await api.close();
        }
      }),
      // Real sockets and timers: a counterexample is reported as found. Shrinking it would cost a
      // real run per candidate and end in the test's timeout, with the counterexample lost.
      { numRuns: 12, endOnFailure: true },
    );
  });
});

describe("HAProxy data plane: the runtime API", () => {
  it("gives up after socketAttemptsMax attempts, reports the socket, and sends that change with the next one once the socket exists", async () => {
    const s = await setUp(2, { socketAttemptsMax: 3, socketRetryMs: 50 });
    await listenOn(s.ports[0] as number);
    await listenOn(s.ports[1] as number);
    const startedMs = performance.now();
    s.rotate([true, false]);
    await until(() => s.reports.length === 1);
    const socket = join(s.folder, "haproxy.sock");
    expect(s.reports).toEqual([
      {
        level: "warn",
        msg: "Gave up on HAProxy's runtime API; haproxy.cfg has the rotation for its next start, and the next change is sent again",
        fields: { pool: "web", socket, attempts: 3, waited_ms: expect.any(Number), error: expect.stringContaining("ENOENT") },
      },
    ]);
    expect(performance.now() - startedMs).toBeGreaterThanOrEqual(100);
    const api = await fakeRuntimeApi(s.folder);
    await sleep(200);
    expect(api.received).toEqual([]);
    s.rotate([true, true]);
    await until(() => commands(api.received).length === 2);
    expect(commands(api.received).sort()).toEqual([["web-0", "ready"], ["web-1", "ready"]]);
    expect(s.reports).toHaveLength(1);
  });

  it("reaches a socket that appears during the retries, without a report", async () => {
    const s = await setUp(1, { socketAttemptsMax: 50, socketRetryMs: 20 });
    await listenOn(s.ports[0] as number);
    s.rotate([true]);
    await sleep(150);
    const api = await fakeRuntimeApi(s.folder);
    await until(() => api.received.length === 1);
    expect(commands(api.received)).toEqual([["web-0", "ready"]]);
    expect(s.reports).toEqual([]);
  });

  it("times out an API that accepts and never answers at socketTimeoutMs per attempt, and sends again once it answers", async () => {
    const s = await setUp(1, { socketAttemptsMax: 2, socketRetryMs: 50, socketTimeoutMs: 200 });
    const api = await fakeRuntimeApi(s.folder, "hang");
    await listenOn(s.ports[0] as number);
    const startedMs = performance.now();
    s.rotate([true]);
    await until(() => s.reports.length === 1);
    const gaveUpMs = performance.now() - startedMs;
    expect(gaveUpMs).toBeGreaterThanOrEqual(440);
    expect(gaveUpMs).toBeLessThan(2_000);
    expect(s.reports[0]).toEqual({
      level: "warn",
      msg: "Gave up on HAProxy's runtime API; haproxy.cfg has the rotation for its next start, and the next change is sent again",
      fields: { pool: "web", socket: join(s.folder, "haproxy.sock"), attempts: 2, waited_ms: expect.any(Number), error: "Error: no answer within 200 ms (waiting for its answer)" },
    });
    expect(s.reports[0]?.fields.waited_ms).toBeGreaterThanOrEqual(440);
    expect(api.received.map(({ line }) => line)).toEqual(["set server web/web-0 state ready", "set server web/web-0 state ready"]);
    // It may have arrived: the next exchange (here, on the core's same rotation sent again) says it again.
    api.mode = { answer: "" };
    s.rotate([true]);
    await until(() => api.received.length === 3);
    expect(api.received[2]?.line).toBe("set server web/web-0 state ready");
  });

  it("reports an answer from the runtime API (a command it refused) with the command, and does not send it again", async () => {
    const s = await setUp(1, {});
    const api = await fakeRuntimeApi(s.folder, { answer: "No such server." });
    await listenOn(s.ports[0] as number);
    s.rotate([true]);
    await until(() => s.reports.length === 1);
    expect(s.reports[0]).toEqual({
      level: "warn",
      msg: "HAProxy's runtime API answered",
      fields: { pool: "web", socket: join(s.folder, "haproxy.sock"), command: "set server web/web-0 state ready", answer: "No such server." },
    });
    await sleep(100);
    expect(api.received).toHaveLength(1);
  });
});
