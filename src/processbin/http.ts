// The HTTP side of processbin: small endpoints that let tests tell workers apart (x-worker-id),
// probe health, and hold a request (sleeping or burning CPU) to exercise load balancing.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { Server as NetServer } from "node:net";
import type { Identity } from "./output.js";

export interface HttpSettings {
  readonly identity: Identity;
  readonly unhealthy: boolean;
  /** undefined = stays healthy. */
  readonly unhealthyAfterMs: number | undefined;
  readonly responseDelayMs: number;
  /** When processbin started, in performance.now() milliseconds. */
  readonly startedAtMs: number;
}

export const SLOW_MAX_MS = 60_000;
export const WORK_MAX_MS = 10_000;
const DEFAULT_HOLD_MS = 1000;

// Same idea as the original's 5s ReadTimeout: a client that never finishes its request
// cannot hold a connection (and so the shutdown) forever.
const HEADERS_TIMEOUT_MS = 5000;
const REQUEST_TIMEOUT_MS = 10_000;

export function isHealthy(settings: HttpSettings, nowMs: number): boolean {
  if (settings.unhealthy) return false;
  return settings.unhealthyAfterMs === undefined || nowMs - settings.startedAtMs < settings.unhealthyAfterMs;
}

export function workerLabel(identity: Identity): string {
  return identity.workerId ?? "none";
}

export interface Reply {
  readonly status: number;
  readonly body: string;
  readonly headers?: Readonly<Record<string, string>>;
}

type Hold = { kind: "sleep" | "spin"; ms: number };
type Route = { reply: Reply; hold?: Hold };

/** Parses ?ms= for /slow and /work; undefined when it is not a whole number within [0, maxMs]. */
export function parseHoldMs(raw: string | null, maxMs: number): number | undefined {
  if (raw === null) return DEFAULT_HOLD_MS;
  if (!/^\d{1,9}$/.test(raw)) return undefined;
  const ms = Number(raw);
  return ms <= maxMs ? ms : undefined;
}

/** Decides the answer to a request; pure apart from reading the clock value it is given. */
export function route(method: string, url: URL, settings: HttpSettings, nowMs: number): Route {
  const who = `worker=${workerLabel(settings.identity)} pid=${settings.identity.pid}`;
  const known = ["/", "/health", "/slow", "/work"];
  if (!known.includes(url.pathname)) return { reply: { status: 404, body: "not found\n" } };
  if (method !== "GET" && method !== "HEAD") {
    return { reply: { status: 405, body: "method not allowed\n", headers: { allow: "GET, HEAD" } } };
  }
  switch (url.pathname) {
    case "/health":
      return isHealthy(settings, nowMs)
        ? { reply: { status: 200, body: "ok\n" } }
        : { reply: { status: 503, body: "unhealthy\n" } };
    case "/slow":
    case "/work": {
      const isSlow = url.pathname === "/slow";
      const maxMs = isSlow ? SLOW_MAX_MS : WORK_MAX_MS;
      const ms = parseHoldMs(url.searchParams.get("ms"), maxMs);
      if (ms === undefined) return { reply: { status: 400, body: `ms must be a whole number of milliseconds, 0..${maxMs}\n` } };
      const body = `${isSlow ? "slept" : "worked"} ms=${ms} ${who}\n`;
      return { reply: { status: 200, body }, hold: { kind: isSlow ? "sleep" : "spin", ms } };
    }
    default:
      return { reply: { status: 200, body: `hello from processbin ${who}\n` } };
  }
}

/** Keeps the CPU busy (and this process's event loop blocked) for `ms`, like a CPU-bound handler. */
function spin(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // busy by design
  }
}

function delay(ms: number): Promise<void> {
  return ms <= 0 ? Promise.resolve() : new Promise((resolve) => setTimeout(resolve, ms));
}

export interface HttpState {
  /** Set on shutdown: responses then say "connection: close" so keep-alive clients let go. */
  closing: boolean;
}

async function handle(request: IncomingMessage, response: ServerResponse, settings: HttpSettings, state: HttpState): Promise<void> {
  const url = new URL(request.url ?? "/", "http://processbin.invalid");
  const { reply, hold } = route(request.method ?? "GET", url, settings, performance.now());
  if (hold?.kind === "spin") spin(hold.ms);
  await delay((hold?.kind === "sleep" ? hold.ms : 0) + settings.responseDelayMs);
  if (response.destroyed) return;
  response.writeHead(reply.status, {
    "content-type": "text/plain; charset=utf-8",
    "content-length": String(Buffer.byteLength(reply.body)),
    "x-worker-id": workerLabel(settings.identity),
    ...(state.closing ? { connection: "close" } : {}),
    ...reply.headers,
  });
  response.end(request.method === "HEAD" ? undefined : reply.body);
}

export function createProcessbinServer(settings: HttpSettings, state: HttpState): Server {
  const server = createServer({ headersTimeout: HEADERS_TIMEOUT_MS, requestTimeout: REQUEST_TIMEOUT_MS }, (request, response) => {
    handle(request, response, settings, state).catch(() => response.destroy());
  });
  return server;
}

/**
 * How long idle keep-alive connections stay open after shutdown began: a request the client sent
 * on one just before (already on its way) is answered, with "connection: close", instead of the
 * connection being reset under it.
 */
export const KEEP_ALIVE_LINGER_MS = 1_000;

/**
 * Stops accepting connections and resolves once in-flight requests finished, or after maxWaitMs,
 * whichever comes first. Idle keep-alive connections are closed KEEP_ALIVE_LINGER_MS later (or
 * sooner with a shorter maxWaitMs); every response from now on carries "connection: close".
 */
export function closeServer(server: Server, state: HttpState, maxWaitMs: number): Promise<void> {
  state.closing = true;
  return new Promise((resolve) => {
    const lingerTimer = setTimeout(() => server.closeIdleConnections(), Math.min(KEEP_ALIVE_LINGER_MS, maxWaitMs));
    const timer = setTimeout(resolve, maxWaitMs);
    // net's close, not http's: since Node 19 http.Server#close also closes idle connections at once.
    netServerClose.call(server, () => {
      clearTimeout(timer);
      clearTimeout(lingerTimer);
      resolve();
    });
  });
}

const netServerClose = NetServer.prototype.close;
