// Continuous HTTP load on 127.0.0.1 for zero-downtime tests and benchmarks: clients that open a
// new connection per request and clients that keep one alive, each sending its next request as
// soon as the last is answered. A failure is any request without a complete response (reset,
// refused, timeout) or with a 5xx status; each is kept with its error, for the report.
import { Agent, request } from "node:http";

export interface LoadResult {
  ok: number;
  failed: number;
  /** The first failures (at most FAILURES_KEPT): when, which client kind, and why. */
  failures: { atMs: number; kind: "new" | "keepalive"; error: string }[];
  /** Which workers answered (x-worker-id), with counts. */
  workers: Map<string, number>;
}

const FAILURES_KEPT = 50;
/** A request with no response within this counts as failed (a worker stuck would otherwise stall the client). */
const REQUEST_TIMEOUT_MS = 5_000;

export interface Load {
  /** Stops sending; resolves once every request in flight has ended. */
  stop(): Promise<LoadResult>;
  /** Requests answered so far (to wait until the load is flowing). */
  readonly answered: number;
}

export function startLoad(port: number, options: { newConnectionClients: number; keepAliveClients: number; path?: string }): Load {
  const result: LoadResult = { ok: 0, failed: 0, failures: [], workers: new Map() };
  const startedMs = performance.now();
  let running = true;
  const agents: Agent[] = [];
  const one = (kind: "new" | "keepalive", agent: Agent | false): Promise<void> =>
    new Promise((resolve) => {
      const fail = (error: string) => {
        result.failed++;
        if (result.failures.length < FAILURES_KEPT) result.failures.push({ atMs: Math.round(performance.now() - startedMs), kind, error });
        resolve();
      };
      const req = request({ host: "127.0.0.1", port, path: options.path ?? "/", agent, timeout: REQUEST_TIMEOUT_MS }, (res) => {
        res.on("data", () => {});
        res.on("error", (error) => fail(`response: ${error.message}`));
        res.on("end", () => {
          if ((res.statusCode ?? 0) >= 500) {
            fail(`HTTP ${res.statusCode}`);
            return;
          }
          result.ok++;
          const worker = String(res.headers["x-worker-id"] ?? "?");
          result.workers.set(worker, (result.workers.get(worker) ?? 0) + 1);
          resolve();
        });
      });
      req.on("timeout", () => req.destroy(new Error(`no response within ${REQUEST_TIMEOUT_MS} ms`)));
      req.on("error", (error: NodeJS.ErrnoException) => fail(error.code ?? error.message));
      req.end();
    });
  const client = async (kind: "new" | "keepalive"): Promise<void> => {
    const agent = kind === "keepalive" ? new Agent({ keepAlive: true, maxSockets: 1 }) : false;
    if (agent !== false) agents.push(agent);
    while (running) await one(kind, agent);
  };
  const clients = [
    ...Array.from({ length: options.newConnectionClients }, () => client("new")),
    ...Array.from({ length: options.keepAliveClients }, () => client("keepalive")),
  ];
  return {
    get answered() {
      return result.ok;
    },
    async stop() {
      running = false;
      await Promise.all(clients);
      for (const agent of agents) agent.destroy();
      return result;
    },
  };
}
