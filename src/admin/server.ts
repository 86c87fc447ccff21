// The admin endpoint: / (the status page), /metrics (Prometheus), /health, /status. Read-only:
// nothing here changes state, so listening on every interface (the original's default) exposes no control.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Metrics } from "../metrics/registry.js";
import { STATUS_PAGE_CSP, STATUS_PAGE_HTML } from "./status-page.js";
import { buildStatus, healthText, type StatusSources } from "./status.js";

/** Bounds on what a client can make the admin server hold. */
const HEADERS_TIMEOUT_MS = 15_000;
const REQUEST_TIMEOUT_MS = 30_000;
const CONNECTIONS_MAX = 256;

const STATUS_PAGE_BODY = Buffer.from(STATUS_PAGE_HTML);
const STATUS_PAGE_HEADERS = {
  "content-type": "text/html; charset=utf-8",
  "content-length": STATUS_PAGE_BODY.length,
  "content-security-policy": STATUS_PAGE_CSP,
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
};

export interface AdminOptions {
  port: number;
  /** undefined: every interface (IPv6 and IPv4), like the original's ":port". */
  host: string | undefined;
}

export class AdminServer {
  private readonly server: Server;

  constructor(
    private readonly metrics: Metrics,
    private readonly status: StatusSources,
    /** Told about errors that leave the server running (a failed accept, a failed request). */
    private readonly onProblem: (code: string, message: string) => void = () => {},
  ) {
    this.server = createServer((request, response) => {
      try {
        this.answer(request, response);
      } catch (error) {
        // A bug or a resource error answering one request fails that request, not Monoceros.
        this.onProblem(errorCode(error), `admin endpoint: cannot answer ${request.url ?? "/"}: ${errorMessage(error)}`);
        if (!response.headersSent) response.writeHead(500, { "content-type": "text/plain" });
        response.end("internal error\n");
      }
    });
    this.server.headersTimeout = HEADERS_TIMEOUT_MS;
    this.server.requestTimeout = REQUEST_TIMEOUT_MS;
    this.server.maxConnections = CONNECTIONS_MAX;
  }

  private answer(request: IncomingMessage, response: ServerResponse): void {
    const path = (request.url ?? "/").split("?")[0];
    if (request.method !== "GET" && request.method !== "HEAD") {
      response.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain" }).end("method not allowed\n");
      return;
    }
    if (path === "/") {
      response.writeHead(200, STATUS_PAGE_HEADERS).end(STATUS_PAGE_BODY);
      return;
    }
    if (path === "/metrics") {
      this.metrics.text().then(
        (text) => response.writeHead(200, { "content-type": this.metrics.contentType }).end(text),
        (error: unknown) => response.writeHead(500, { "content-type": "text/plain" }).end(`cannot collect metrics: ${String(error)}\n`),
      ).catch((error: unknown) => this.onProblem(errorCode(error), `admin endpoint: cannot answer /metrics: ${errorMessage(error)}`));
      return;
    }
    if (path === "/health") {
      const { healthy, text } = healthText(this.status.state, this.status.nowMs());
      response.writeHead(healthy ? 200 : 503, { "content-type": "text/plain" }).end(text);
      return;
    }
    if (path === "/status") {
      const body = `${JSON.stringify(buildStatus(this.status), null, 2)}\n`;
      response.writeHead(200, { "content-type": "application/json" }).end(body);
      return;
    }
    response.writeHead(404, { "content-type": "text/plain" }).end("not found: try / (the status page), /metrics, /health or /status\n");
  }

  /** Resolves with the bound port; rejects with a one-line reason (port in use, bad address). */
  listen(options: AdminOptions): Promise<number> {
    return new Promise((resolve, reject) => {
      const onError = (error: NodeJS.ErrnoException) => {
        const where = `${options.host ?? "*"}:${options.port}`;
        const reasons: Record<string, string> = {
          EADDRINUSE: `port ${options.port} is already in use`,
          EACCES: `permission denied for ${where}`,
          EADDRNOTAVAIL: `address ${options.host ?? ""} is not available on this machine`,
          ENOTFOUND: `host ${options.host ?? ""} cannot be resolved`,
        };
        reject(new Error(`cannot listen on ${where}: ${reasons[error.code ?? ""] ?? error.message}`));
      };
      this.server.once("error", onError);
      this.server.listen(options.port, options.host, () => {
        this.server.off("error", onError);
        // From now on an error is a failed accept (EMFILE, ENFILE, ENOMEM): the server keeps
        // listening, and without a listener the error would end Monoceros.
        this.server.on("error", (error) => this.onProblem(errorCode(error), `admin endpoint: cannot accept a connection: ${errorMessage(error)}`));
        const address = this.server.address();
        resolve(typeof address === "object" && address !== null ? address.port : options.port);
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}

function errorCode(error: unknown): string {
  return (error as NodeJS.ErrnoException | null)?.code ?? "ERROR";
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
