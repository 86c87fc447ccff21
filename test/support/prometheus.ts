// A real Prometheus server (Debian's `prometheus` package) for integration tests: started on
// 127.0.0.1 with its own config and storage in a temporary folder, scraping the given targets every
// second, queried through its HTTP API. stop() ends it by pid (SIGTERM, SIGKILL after 5 s) and
// removes the folder.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { pollForAsync } from "./monoceros.js";

/** A command's path from PATH (or /usr/bin, where Debian puts them), or null when it is not installed. */
export function findCommand(name: string): string | null {
  const folders = [...(process.env.PATH ?? "").split(delimiter).filter(Boolean), "/usr/bin"];
  for (const folder of folders) {
    const path = join(folder, name);
    if (existsSync(path)) return path;
  }
  return null;
}

/** A port nothing listens on now (the OS's choice; a race with another process is possible but unlikely). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

export interface PromSample {
  metric: Record<string, string>;
  value: [number, string];
}

export interface PrometheusServer {
  pid: number;
  port: number;
  /** Its last output lines (warnings and errors), for a failing test's message. */
  output(): string;
  /** An instant query; throws on any answer but success (a parse error names it). */
  query(expr: string): Promise<PromSample[]>;
  /** The raw API answer to an instant query, error or not. */
  queryRaw(expr: string): Promise<{ status: string; errorType?: string; error?: string; data?: { resultType: string; result: unknown } }>;
  /** GET an API path (e.g. /api/v1/label/pool/values?match[]=…) and return its `data`. */
  api<T>(pathAndQuery: string): Promise<T>;
  stop(): Promise<void>;
}

const OUTPUT_LINES_KEPT = 50;
const STOP_GRACE_MS = 5_000;

/** Starts Prometheus scraping `targets` (host:port) as job `monoceros` every second; resolves once it is ready. */
export async function startPrometheus(binary: string, targets: string[], onStarted: (server: PrometheusServer) => void): Promise<PrometheusServer> {
  const folder = mkdtempSync(join(tmpdir(), "monoceros-prometheus-"));
  const config = join(folder, "prometheus.yml");
  writeFileSync(
    config,
    [
      "global:",
      "  scrape_interval: 1s",
      "  scrape_timeout: 1s",
      "  evaluation_interval: 1s",
      "scrape_configs:",
      "  - job_name: monoceros",
      "    static_configs:",
      `      - targets: [${targets.map((t) => JSON.stringify(t)).join(", ")}]`,
      "",
    ].join("\n"),
  );
  const port = await freePort();
  const child: ChildProcess = spawn(binary, [`--config.file=${config}`, `--storage.tsdb.path=${join(folder, "data")}`, `--web.listen-address=127.0.0.1:${port}`, "--log.level=warn"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: string[] = [];
  const keep = (chunk: Buffer) => {
    lines.push(...chunk.toString("utf8").split("\n").filter(Boolean));
    lines.splice(0, Math.max(0, lines.length - OUTPUT_LINES_KEPT));
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  child.on("error", (error) => lines.push(`spawn ${binary}: ${error.message}`));
  let exited = false;
  const exit = new Promise<void>((resolve) => child.on("close", () => resolve()));
  void exit.then(() => (exited = true));
  const base = `http://127.0.0.1:${port}`;

  const server: PrometheusServer = {
    pid: child.pid as number,
    port,
    output: () => lines.join("\n"),
    async queryRaw(expr) {
      const response = await fetch(`${base}/api/v1/query?query=${encodeURIComponent(expr)}`, { signal: AbortSignal.timeout(10_000) });
      return (await response.json()) as Awaited<ReturnType<PrometheusServer["queryRaw"]>>;
    },
    async query(expr) {
      const answer = await server.queryRaw(expr);
      if (answer.status !== "success" || answer.data === undefined) throw new Error(`Prometheus refused ${expr}: ${answer.errorType}: ${answer.error}`);
      const { resultType, result } = answer.data;
      // scalar and string results are one [time, value] pair.
      return resultType === "vector" || resultType === "matrix" ? (result as PromSample[]) : [{ metric: {}, value: result as [number, string] }];
    },
    async api<T>(pathAndQuery: string) {
      const response = await fetch(`${base}${pathAndQuery}`, { signal: AbortSignal.timeout(10_000) });
      const answer = (await response.json()) as { status: string; data: T; error?: string };
      if (answer.status !== "success") throw new Error(`Prometheus refused ${pathAndQuery}: ${answer.error}`);
      return answer.data;
    },
    async stop() {
      if (!exited) {
        process.kill(server.pid, "SIGTERM");
        const timer = setTimeout(() => {
          if (!exited) process.kill(server.pid, "SIGKILL");
        }, STOP_GRACE_MS);
        await exit;
        clearTimeout(timer);
      }
      rmSync(folder, { recursive: true, force: true });
    },
  };
  // Handed over before any wait, so the caller can stop it even when it never gets ready.
  onStarted(server);
  await pollForAsync(
    "Prometheus to be ready",
    async () => {
      if (exited) throw new Error(`Prometheus exited at start:\n${server.output()}`);
      try {
        return (await fetch(`${base}/-/ready`, { signal: AbortSignal.timeout(2_000) })).ok;
      } catch {
        return false;
      }
    },
    15_000,
  );
  return server;
}
