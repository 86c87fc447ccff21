// Runs the built dist/monoceros on a config in a temp folder and watches its output, for
// integration tests. Every process started is killed in stop() (by pid; workers by group).
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { WATCHDOG_NAME } from "../../src/backends/os/watchdog.js";

export const ROOT = resolve(new URL("../..", import.meta.url).pathname);
export const MONOCEROS = join(ROOT, "dist/monoceros");
export const PROCESSBIN = join(ROOT, "dist/processbin");

export interface Running {
  child: ChildProcess;
  pid: number;
  stdoutLines: string[];
  stderrLines: string[];
  /** stderr lines that are Monoceros's own JSON records. */
  records(): Record<string, unknown>[];
  exited: Promise<{ code: number | null; signal: string | null }>;
  waitFor<T>(what: string, probe: () => T | undefined | false, timeoutMs?: number): Promise<T>;
  stop(): Promise<void>;
}

export function writeConfig(yaml: string): string {
  const folder = mkdtempSync(join(tmpdir(), "monoceros-it-"));
  const path = join(folder, "config.yaml");
  writeFileSync(path, yaml);
  return path;
}

export interface StartOptions {
  /**
   * A command that execs Monoceros in the same process, e.g. ["prlimit", "--nofile=48:48", "--"]:
   * the pid is still Monoceros's.
   */
  prefix?: string[];
  /** Options for node itself, before dist/monoceros (e.g. --require). */
  nodeArgs?: string[];
  /** Added to (or, when undefined, removed from) the test's environment. */
  env?: Record<string, string | undefined>;
}

export function startMonoceros(yaml: string, extraArgs: string[] = [], options: StartOptions = {}): Running {
  const argv = [process.execPath, ...(options.nodeArgs ?? []), MONOCEROS, "-c", writeConfig(yaml), ...extraArgs];
  return watchMonoceros([...(options.prefix ?? []), ...argv], { cwd: ROOT, env: options.env });
}

/**
 * Runs a command that is (or execs) a Monoceros, however it is installed or started (an npm
 * install's bin, as another user), and watches its output as startMonoceros does.
 */
export function watchMonoceros(commandLine: readonly string[], options: { cwd: string; env?: Record<string, string | undefined> }): Running {
  const [command, ...args] = commandLine as [string, ...string[]];
  const child = spawn(command, args, { cwd: options.cwd, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...options.env } });
  const stdoutLines: string[] = [];
  const stderrLines: string[] = [];
  const collect = (stream: NodeJS.ReadableStream, into: string[]) => {
    let rest = "";
    stream.setEncoding("utf8");
    stream.on("data", (chunk: string) => {
      const parts = (rest + chunk).split("\n");
      rest = parts.pop() ?? "";
      for (const part of parts) into.push(part);
    });
    stream.on("end", () => {
      if (rest !== "") into.push(rest);
    });
  };
  collect(child.stdout as NodeJS.ReadableStream, stdoutLines);
  collect(child.stderr as NodeJS.ReadableStream, stderrLines);
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolveExit) => {
    child.on("close", (code, signal) => resolveExit({ code, signal }));
  });
  let done = false;
  void exited.then(() => (done = true));
  const running: Running = {
    child,
    pid: child.pid as number,
    stdoutLines,
    stderrLines,
    records: () => stderrLines.flatMap((line) => {
      try {
        const parsed: unknown = JSON.parse(line);
        return typeof parsed === "object" && parsed !== null ? [parsed as Record<string, unknown>] : [];
      } catch {
        return [];
      }
    }),
    exited,
    waitFor: (what, probe, timeoutMs = 20_000) => pollFor(what, probe, timeoutMs),
    async stop() {
      if (done) return;
      child.kill("SIGKILL");
      await exited;
    },
  };
  return running;
}

/** Runs probe every intervalMs until it gives a value (not undefined or false); a probe that awaits is never run twice at once. */
export async function pollFor<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 20_000, intervalMs = 20): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** pollFor with a probe that needs to await (an HTTP request), every 100 ms. */
export function pollForAsync<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 20_000): Promise<T> {
  return pollFor(what, probe, timeoutMs, 100);
}

/** Alive and not a zombie (orphans are reaped late by some PID 1s, so kill -0 is not enough). */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

/** What a test's own workers look like; anything else with a recycled pid is left alone. */
const TEST_PROCESS = /processbin|notify-worker|bench\/bin\/worker|fake-envoy|sleep |slow-first-worker|cpu-burner|haproxy|http\.server|who=\$\(id/;

function isTestProcess(pid: number): boolean {
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ");
    return TEST_PROCESS.test(cmdline) && !cmdline.includes(`# ${WATCHDOG_NAME}`);
  } catch {
    return false;
  }
}

/**
 * Last resort for a test that failed half-way: SIGKILL these process groups and pids, if they are
 * still alive and still a test's worker (pids are recycled fast; a stale one must not hit, say,
 * another Monoceros's orphan watchdog).
 */
export function killAll(pids: Iterable<number>): void {
  for (const pid of pids) {
    if (!isAlive(pid) || !isTestProcess(pid)) continue;
    for (const target of [-pid, pid]) {
      try {
        process.kill(target, "SIGKILL");
      } catch {
        // gone
      }
    }
  }
}

export function workerPids(running: Running): number[] {
  return running.records().filter((r) => r.msg === "Worker started").map((r) => r.pid as number);
}

/** The admin port Monoceros reported (configs with `admin: {port: 0}`), once it has. */
export function adminPort(running: Running): number | undefined {
  const record = running.records().find((r) => r.msg === "Admin endpoint listening (/metrics, /health, /status)");
  return record === undefined ? undefined : (record.port as number);
}

/** GET /status from the admin endpoint; undefined when it does not answer (yet). */
export async function fetchStatus(port: number): Promise<StatusJson | undefined> {
  try {
    const response = await fetch(`http://127.0.0.1:${port}/status`, { signal: AbortSignal.timeout(5_000) });
    return response.ok ? ((await response.json()) as StatusJson) : undefined;
  } catch {
    return undefined;
  }
}

/** The parts of /status the tests read (README, "Admin endpoint"). */
export interface StatusJson {
  phase: string;
  pools: { name: string; running: number; workers: { id: string; pid: number | null; state: string }[] }[];
}

/**
 * Registers an afterEach that stops every Monoceros a test started (SIGKILL if still running) and
 * kills the workers it reported; returns the function that records one as started.
 */
export function cleanUpAfterEach(afterEach: (fn: () => Promise<void>) => void): (running: Running) => Running {
  const started: Running[] = [];
  afterEach(async () => {
    for (const running of started.splice(0)) {
      // Monoceros first: killing its workers first would only make it start new ones.
      await running.stop();
      killAll(workerPids(running));
    }
  });
  return (running) => {
    started.push(running);
    return running;
  };
}

/**
 * Registers an afterEach that SIGKILLs every process group a test recorded (for tests that start
 * processes as group leaders themselves, without Monoceros); returns the function that records one.
 */
export function killGroupsAfterEach(afterEach: (fn: () => void) => void): (pgid: number) => void {
  const groups: number[] = [];
  afterEach(() => {
    for (const pgid of groups.splice(0)) {
      try {
        process.kill(-pgid, "SIGKILL");
      } catch {
        // nothing left in it
      }
    }
  });
  return (pgid) => {
    groups.push(pgid);
  };
}

export interface ProxyPoolOptions {
  proxy?: "envoy" | "haproxy";
  startPort: number;
  listenerPort: number;
  /** Adds `admin: {port: 0, host: 127.0.0.1}`, so the admin endpoint cannot collide between tests. */
  admin?: boolean;
  replicas: number;
  exec?: string;
  signalTimeout: string;
  /** Lines (already indented) inserted in the pool before `server:`. */
  poolExtra?: string;
  /** The workers' args as a YAML flow list (default: [--log-interval, 10s]). */
  args?: string;
  algorithm?: string;
  proxyBinary?: string;
  adminPort?: number;
  serverSignalTimeout?: string;
  /** Prefix of the temporary folder holding proxy_config_path. */
  folderPrefix: string;
}

/** A config with one pool `web` of processbin-like workers behind a proxy, in a fresh folder. */
export function proxyPoolConfig(options: ProxyPoolOptions): { yaml: string; folder: string } {
  const folder = join(mkdtempSync(join(tmpdir(), options.folderPrefix)), options.proxy ?? "envoy");
  const optional = (line: string, value: unknown) => (value === undefined ? [] : [line]);
  const lines = [
    ...(options.admin ? ["admin:", "  port: 0", "  host: 127.0.0.1"] : []),
    "supervisor:",
    "  workers:",
    "    - name: web",
    `      replicas: ${options.replicas}`,
    "      max_restarts: -1",
    `      exec: ${options.exec ?? PROCESSBIN}`,
    `      signal_timeout: ${options.signalTimeout}`,
    `      args: ${options.args ?? "[--log-interval, 10s]"}`,
    ...(options.poolExtra === undefined ? [] : [options.poolExtra.replace(/\n$/, "")]),
    "      server:",
    ...optional(`        proxy: ${options.proxy}`, options.proxy),
    `        port_arg: {name: --port, value_template: '{{.Port}}', start_port: ${options.startPort}}`,
    "        health_check_path: /health",
    ...optional(`        load_balancer_algorithm: ${options.algorithm}`, options.algorithm),
    `        proxy_config_path: ${folder}`,
    ...optional(`        proxy_binary: ${options.proxyBinary}`, options.proxyBinary),
    ...optional(`        admin_port: ${options.adminPort}`, options.adminPort),
    `        listener_port: ${options.listenerPort}`,
    ...optional(`        signal_timeout: ${options.serverSignalTimeout}`, options.serverSignalTimeout),
  ];
  return { yaml: `${lines.join("\n")}\n`, folder };
}
