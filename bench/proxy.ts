// Proxy-mode benchmarks with HAProxy: the latency a proxy adds at light load, and the reason proxy
// mode exists: tail latency under a mixed workload, SO_REUSEPORT against HAProxy roundrobin and
// leastconn. Load goes to 127.0.0.1 only, bounded in count and time.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { findExecutable } from "../src/backends/os/executable.js";
import { stats, stopChild, type Stats } from "./supervisor.js";

const ROOT = resolve(new URL("..", import.meta.url).pathname);
const MONOCEROS = join(ROOT, "dist/monoceros");
const PROCESSBIN = join(ROOT, "dist/processbin");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One request on a new connection; resolves with its latency in ms and the worker that answered. */
function timedGet(port: number, path: string): Promise<{ ms: number; worker: string; ok: boolean }> {
  const startedAt = performance.now();
  return new Promise((done) => {
    const req = request({ host: "127.0.0.1", port, path, agent: false, timeout: 10_000 }, (res) => {
      res.resume();
      res.on("end", () => done({ ms: performance.now() - startedAt, worker: String(res.headers["x-worker-id"] ?? ""), ok: res.statusCode === 200 }));
    });
    req.on("error", () => done({ ms: performance.now() - startedAt, worker: "", ok: false }));
    req.on("timeout", () => req.destroy());
    req.end();
  });
}

function startMonoceros(yaml: string): ChildProcess {
  const folder = mkdtempSync(join(tmpdir(), "monoceros-bench-proxy-"));
  writeFileSync(join(folder, "config.yaml"), yaml.replaceAll("FOLDER", folder));
  return spawn(MONOCEROS, ["-c", join(folder, "config.yaml")], { stdio: ["ignore", "ignore", "ignore"] });
}

async function untilWorkers(port: number, workers: number, timeoutMs = 30_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    const seen = new Set<string>();
    for (let i = 0; i < workers * 6; i++) {
      const reply = await timedGet(port, "/");
      if (reply.ok) seen.add(reply.worker);
    }
    if (seen.size >= workers) return;
    await sleep(200);
  }
  throw new Error(`not every worker answered on ${port}`);
}

function pool(port: number, workers: number, server: string, args: string): string {
  return `supervisor:\n  workers:\n    - name: web\n      replicas: ${workers}\n      max_restarts: -1\n      exec: ${PROCESSBIN}\n      signal_timeout: 5s\n      args: [--log-interval, 60s${args}]\n${server}`;
}

function haproxyServer(startPort: number, algorithm: string): string {
  return `      server:\n        proxy: haproxy\n        port_arg: {name: --port, value_template: '{{.Port}}', start_port: ${startPort}}\n        health_check_path: /health\n        load_balancer_algorithm: ${algorithm}\n        proxy_config_path: FOLDER/haproxy\n        listener_port: ${startPort + 50}\n`;
}

export function haproxyAvailable(): boolean {
  return findExecutable("haproxy").ok;
}

/** Median latency, sequential requests on new connections: direct to worker 0 and through HAProxy. */
export async function benchProxyOverhead(requests = 500): Promise<{ direct: Stats; proxied: Stats }> {
  const start = 16_000 + Math.floor(Math.random() * 2_000); // below the ephemeral range (32768+), where client ports would collide
  const child = startMonoceros(pool(start, 2, haproxyServer(start, "ROUND_ROBIN"), ""));
  try {
    await untilWorkers(start + 50, 2);
    const direct: number[] = [];
    const proxied: number[] = [];
    for (let i = 0; i < requests; i++) {
      direct.push((await timedGet(start, "/")).ms);
      proxied.push((await timedGet(start + 50, "/")).ms);
    }
    return { direct: stats(direct), proxied: stats(proxied) };
  } finally {
    await stopChild(child, 30_000);
  }
}

export interface MixedResult {
  latency: Stats;
  failed: number;
  cpuSecondsPerWorker: number[];
}

function cpuSecondsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function workerPidsOf(monocerosPid: number): number[] {
  return readdirSync("/proc")
    .filter((name) => /^\d+$/.test(name))
    .map(Number)
    .filter((pid) => {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
        const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
        return ppid === monocerosPid && readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("processbin");
      } catch {
        return false;
      }
    });
}

/**
 * Open loop at a fixed rate: every 1000/rate ms a request starts on a new connection, 90% fast
 * (`/`) and 10% slow (`/work?ms=40`, 40 ms of CPU), whatever the previous ones are doing.
 */
async function mixedLoad(port: number, ratePerSecond: number, seconds: number): Promise<{ latencies: number[]; failed: number }> {
  const latencies: number[] = [];
  let failed = 0;
  const pending: Promise<void>[] = [];
  const total = ratePerSecond * seconds;
  const startedAt = performance.now();
  for (let i = 0; i < total; i++) {
    const due = startedAt + (i * 1000) / ratePerSecond;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    const path = i % 10 === 9 ? "/work?ms=40" : "/";
    pending.push(
      timedGet(port, path).then((reply) => {
        if (!reply.ok) failed++;
        else if (path === "/") latencies.push(reply.ms);
      }),
    );
  }
  await Promise.all(pending);
  return { latencies, failed };
}

export async function benchLoadBalancing(ratePerSecond = 120, seconds = 15, workers = 3): Promise<Record<"reuseport" | "roundrobin" | "leastconn", MixedResult>> {
  const results = {} as Record<"reuseport" | "roundrobin" | "leastconn", MixedResult>;
  const setups: [keyof typeof results, (start: number) => { yaml: string; port: number }][] = [
    ["reuseport", (start) => ({ yaml: pool(start, workers, "", `, --port, "${start}", --reuse-port`), port: start })],
    ["roundrobin", (start) => ({ yaml: pool(start, workers, haproxyServer(start, "ROUND_ROBIN"), ""), port: start + 50 })],
    ["leastconn", (start) => ({ yaml: pool(start, workers, haproxyServer(start, "LEAST_REQUEST"), ""), port: start + 50 })],
  ];
  for (const [name, setup] of setups) {
    const start = 18_000 + Math.floor(Math.random() * 2_000);
    const { yaml, port } = setup(start);
    const child = startMonoceros(yaml);
    try {
      await untilWorkers(port, workers);
      const pids = workerPidsOf(child.pid as number);
      const cpuBefore = pids.map(cpuSecondsOf);
      const { latencies, failed } = await mixedLoad(port, ratePerSecond, seconds);
      const cpuAfter = pids.map(cpuSecondsOf);
      results[name] = { latency: stats(latencies), failed, cpuSecondsPerWorker: cpuAfter.map((after, i) => after - (cpuBefore[i] ?? 0)) };
    } finally {
      await stopChild(child, 30_000);
    }
  }
  return results;
}
