// processbin as a real process: flags, output, exit codes, signals, HTTP, SO_REUSEPORT and
// process groups. Every process started here is killed in afterEach (by pid or process group).
import { existsSync, readFileSync } from "node:fs";
import { request } from "node:http";
import { connect, createServer as createNetServer } from "node:net";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { execa, type Options } from "execa";
import { afterEach, describe, expect, it } from "vitest";
import { normalizeGoStyleArgs } from "../../src/processbin/go-args.js";
import { nativeReusePortSupported } from "../../src/processbin/listen.js";
import { parseByteSize, parseDurationMs } from "../../src/processbin/units.js";

const REPO_ROOT = resolve(fileURLToPath(new URL("../..", import.meta.url)));
const DIST_BIN = join(REPO_ROOT, "dist", "processbin");
const TEST_TIMEOUT_MS = 30_000;
const WAIT_TIMEOUT_MS = 15_000;

/** The built bundle when there is one, else the source through tsx (cwd is the repo root). */
function processbinCommand(): { file: string; args: string[] } {
  if (existsSync(DIST_BIN)) return { file: process.execPath, args: [DIST_BIN] };
  return { file: process.execPath, args: ["--import", "tsx", join(REPO_ROOT, "src", "processbin", "main.ts")] };
}

interface Exit {
  exitCode: number | undefined;
  signal: string | undefined;
  /** performance.now() when the exit was seen. */
  atMs: number;
}

interface Running {
  pid: number;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<Exit>;
  /** Undefined while the process runs. */
  exit: () => Exit | undefined;
}

interface Tracked {
  pid: number;
  group: boolean;
}
const tracked: Tracked[] = [];
const strayPids: number[] = [];

function start(flags: string[], options: { workerId?: string; detached?: boolean; fd3?: number } = {}): Running {
  const command = processbinCommand();
  const env: Record<string, string | undefined> = { MULTIPROCESS_WORKER_ID: options.workerId };
  const child = execa(command.file, [...command.args, ...flags], {
    cwd: REPO_ROOT,
    env,
    extendEnv: true,
    // fd 3: a listening socket handed over, as socket activation does.
    stdio: (options.fd3 === undefined ? ["ignore", "pipe", "pipe"] : ["ignore", "pipe", "pipe", options.fd3]) as Options["stdio"],
    reject: false,
    detached: options.detached ?? false,
    // Output is collected below; execa's own buffer is not needed.
    buffer: false,
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error("processbin did not start");
  tracked.push({ pid, group: options.detached ?? false });
  let stdout = "";
  let stderr = "";
  child.stdout?.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  let exit: Exit | undefined;
  const exited = child.then((result) => {
    exit = { exitCode: result.exitCode, signal: result.signal, atMs: performance.now() };
    return exit;
  });
  return { pid, stdout: () => stdout, stderr: () => stderr, exited, exit: () => exit };
}

/** Runs processbin to completion (it must end by itself within the test timeout). */
async function run(flags: string[], options: { workerId?: string } = {}): Promise<Exit & { stdout: string; stderr: string; durationMs: number }> {
  const startedMs = performance.now();
  const running = start(flags, options);
  const exit = await running.exited;
  // 'data' events may trail the exit by a tick.
  await new Promise((resolveLater) => setTimeout(resolveLater, 20));
  return { ...exit, stdout: running.stdout(), stderr: running.stderr(), durationMs: exit.atMs - startedMs };
}

function killQuietly(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

afterEach(() => {
  for (const { pid, group } of tracked.splice(0)) killQuietly(group ? -pid : pid, "SIGKILL");
  for (const pid of strayPids.splice(0)) killQuietly(pid, "SIGKILL");
});

/** Polls `probe` until it returns a value (not undefined) or the timeout passes. */
async function waitFor<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = WAIT_TIMEOUT_MS): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}`);
    await new Promise((resolveLater) => setTimeout(resolveLater, 25));
  }
}

function waitForLine(running: Running, pattern: RegExp): Promise<RegExpMatchArray> {
  return waitFor(`stdout to match ${pattern} (stdout so far: ${JSON.stringify(running.stdout().slice(-500))})`, () => {
    if (running.exit() !== undefined) throw new Error(`processbin exited early: ${JSON.stringify(running.exit())} ${running.stderr()}`);
    return running.stdout().match(pattern) ?? undefined;
  });
}

interface HttpReply {
  status: number;
  body: string;
  workerId: string | undefined;
}

/** A GET on a fresh connection (no keep-alive pool), so SO_REUSEPORT spreading is visible. */
function httpGet(port: number, path: string, timeoutMs = 10_000): Promise<HttpReply> {
  return new Promise((resolveReply, reject) => {
    const req = request({ host: "127.0.0.1", port, path, agent: false, timeout: timeoutMs }, (res) => {
      let body = "";
      res.setEncoding("utf8").on("data", (chunk: string) => (body += chunk));
      res.on("end", () => {
        const header = res.headers["x-worker-id"];
        resolveReply({ status: res.statusCode ?? 0, body, workerId: typeof header === "string" ? header : undefined });
      });
    });
    req.on("timeout", () => req.destroy(new Error(`GET ${path} timed out`)));
    req.on("error", reject);
    req.end();
  });
}

function randomPort(): number {
  return 20_000 + Math.floor(Math.random() * 10_000); // below the ephemeral range (32768+)
}

/** Starts an HTTP processbin on a random high port, trying another port if that one is taken. */
async function startHttp(flags: string[], options: { workerId?: string } = {}): Promise<{ running: Running; port: number }> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = randomPort();
    const running = start(["--log-count", "0", "--port", String(port), ...flags], options);
    const outcome = await Promise.race([waitForLine(running, /processbin listening port=(\d+)/).then(() => "listening" as const), running.exited.then(() => "exited" as const)]);
    if (outcome === "listening") return { running, port };
    if (!running.stderr().includes("EADDRINUSE")) throw new Error(`processbin failed to listen: ${running.stderr()}`);
  }
  throw new Error("no free port found in 5 attempts");
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie still answers kill(0); it is dead for this purpose.
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

describe("processbin flag values", () => {
  it("parses durations: bare numbers are seconds, Go syntax otherwise", () => {
    expect(parseDurationMs("5", 1e9)).toEqual({ ok: true, value: 5000 });
    expect(parseDurationMs("1.5", 1e9)).toEqual({ ok: true, value: 1500 });
    expect(parseDurationMs("200ms", 1e9)).toEqual({ ok: true, value: 200 });
    expect(parseDurationMs("1m30s", 1e9)).toEqual({ ok: true, value: 90_000 });
    expect(parseDurationMs("0", 1e9)).toEqual({ ok: true, value: 0 });
    expect(parseDurationMs("-1s", 1e9).ok).toBe(false);
    expect(parseDurationMs("5x", 1e9).ok).toBe(false);
    expect(parseDurationMs("2h", 3_600_000).ok).toBe(false);
  });

  it("parses sizes", () => {
    expect(parseByteSize("10MiB", 1e12)).toEqual({ ok: true, value: 10 * 1024 * 1024 });
    expect(parseByteSize("1000", 1e12)).toEqual({ ok: true, value: 1000 });
    expect(parseByteSize("1GB", 1e12)).toEqual({ ok: true, value: 1e9 });
    expect(parseByteSize("lots", 1e12).ok).toBe(false);
  });

  it("knows which Node versions have net's reusePort", () => {
    expect(nativeReusePortSupported("20.20.2")).toBe(false);
    expect(nativeReusePortSupported("22.11.0")).toBe(false);
    expect(nativeReusePortSupported("22.12.0")).toBe(true);
    expect(nativeReusePortSupported("23.0.0")).toBe(false);
    expect(nativeReusePortSupported("23.1.0")).toBe(true);
    expect(nativeReusePortSupported("24.0.0")).toBe(true);
  });

  it("rewrites the Go original's flag spellings", () => {
    const names = { long: new Set(["exit-after", "ignore-signals"]), short: new Set(["t", "i"]), boolean: new Set(["ignore-signals", "i"]) };
    expect(normalizeGoStyleArgs(["-exit-after", "5", "-t=3", "--ignore-signals=true", "-i=false", "-x", "--", "-t=1"], names)).toEqual([
      "--exit-after", "5", "-t", "3", "--ignore-signals", "-x", "--", "-t=1",
    ]);
  });
});

describe("processbin", { timeout: TEST_TIMEOUT_MS }, () => {
  it("prints a start line and exits after --exit-after with --exit-code", async () => {
    const result = await run(["-t", "500ms", "--exit-code", "7", "-f", "tick", "-k", "100ms"]);
    expect(result.exitCode).toBe(7);
    expect(result.durationMs).toBeGreaterThanOrEqual(500);
    const lines = result.stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^processbin started pid=\d+ worker_id=none$/);
    expect(lines.slice(1).length).toBeGreaterThanOrEqual(2);
    expect(new Set(lines.slice(1))).toEqual(new Set(["tick"]));
  });

  it("takes the original's integer seconds and Go-style flag spellings", async () => {
    const result = await run(["-exit-after=1", "-exit-code=3", "-log-fixed=go", "-log-interval", "0.2"]);
    expect(result.exitCode).toBe(3);
    expect(result.durationMs).toBeGreaterThanOrEqual(1000);
    expect(result.stdout).toContain("\ngo\n");
  });

  it("kills itself with --exit-signal", async () => {
    const result = await run(["-t", "200ms", "--exit-signal", "SIGKILL", "--log-count", "0"]);
    expect(result.signal).toBe("SIGKILL");
  });

  it("writes --log-count structured lines with seq and worker id, to stderr too, then exits", async () => {
    const result = await run(["-j", "-e", "-f", "line", "--log-count", "5", "--exit-after-logs", "-k", "10ms"], { workerId: "4" });
    expect(result.exitCode).toBe(0);
    const stdoutLines = result.stdout.trimEnd().split("\n").map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(stdoutLines[0]).toEqual({ msg: "processbin started", pid: expect.any(Number), multiprocess_worker_id: "4" });
    const expected = [1, 2, 3, 4, 5].map((seq) => ({ key: "line", multiprocess_worker_id: "4", seq }));
    expect(stdoutLines.slice(1)).toEqual(expected);
    expect(result.stderr.trimEnd().split("\n").map((line) => JSON.parse(line) as unknown)).toEqual(expected);
  });

  it("logs --log-size random bytes as hex, null worker id without the env variable", async () => {
    const result = await run(["-j", "-l", "8", "--log-count", "3", "--exit-after-logs", "-k", "0"]);
    expect(result.exitCode).toBe(0);
    const logLines = result.stdout.trimEnd().split("\n").slice(1).map((line) => JSON.parse(line) as { key: string; multiprocess_worker_id: unknown });
    expect(logLines).toHaveLength(3);
    expect(logLines[0]?.key).toMatch(/^[0-9a-f]{16}$/);
    expect(logLines.every((line) => line.key === logLines[0]?.key && line.multiprocess_worker_id === null)).toBe(true);
  });

  it("logs as fast as possible with -k 0 and flushes every line before --exit-after-logs", async () => {
    const result = await run(["-k", "0", "-l", "100", "--log-count", "20000", "--exit-after-logs"]);
    expect(result.exitCode).toBe(0);
    expect(result.stdout.trimEnd().split("\n")).toHaveLength(20_001);
  });

  it("exits 143 no sooner than --signal-timeout after SIGTERM", async () => {
    const running = start(["-o", "1500ms", "-f", "tick", "-k", "100ms"]);
    await waitForLine(running, /processbin started/);
    const signalledMs = performance.now();
    process.kill(running.pid, "SIGTERM");
    const exit = await running.exited;
    expect(exit.exitCode).toBe(143);
    expect(exit.atMs - signalledMs).toBeGreaterThanOrEqual(1500);
    expect(exit.atMs - signalledMs).toBeLessThan(1500 + 10_000);
    expect(running.stdout()).toContain("Caught SIGTERM, waiting for 1.5 seconds before exiting\n");
  });

  it("exits 130 after SIGINT", async () => {
    const running = start(["-o", "1", "--log-count", "0"]);
    await waitForLine(running, /processbin started/);
    process.kill(running.pid, "SIGINT");
    const exit = await running.exited;
    expect(exit.exitCode).toBe(130);
    expect(running.stdout()).toContain("Caught SIGINT, waiting for 1 seconds before exiting\n");
  });

  it("survives SIGTERM with --ignore-signals", async () => {
    const running = start(["-i", "-f", "tick", "-k", "50ms"]);
    await waitForLine(running, /processbin started/);
    process.kill(running.pid, "SIGTERM");
    await waitForLine(running, /Caught SIGTERM, ignoring it[^\n]*\n(tick\n){3}/);
    expect(running.exit()).toBeUndefined();
    process.kill(running.pid, "SIGKILL");
    expect((await running.exited).signal).toBe("SIGKILL");
  });

  it("serves /, /health, /slow, /work and 404, each with x-worker-id", async () => {
    const { running, port } = await startHttp([], { workerId: "7" });
    const hello = await httpGet(port, "/");
    expect(hello).toEqual({ status: 200, body: `hello from processbin worker=7 pid=${running.pid}\n`, workerId: "7" });
    expect(await httpGet(port, "/health")).toEqual({ status: 200, body: "ok\n", workerId: "7" });
    const slowStartMs = performance.now();
    const slow = await httpGet(port, "/slow?ms=300");
    expect(performance.now() - slowStartMs).toBeGreaterThanOrEqual(300);
    expect(slow).toMatchObject({ status: 200, workerId: "7" });
    expect((await httpGet(port, "/work?ms=50")).status).toBe(200);
    expect(await httpGet(port, "/nope")).toEqual({ status: 404, body: "not found\n", workerId: "7" });
    expect((await httpGet(port, "/slow?ms=70000")).status).toBe(400);
  });

  it("reports unhealthy with --unhealthy and after --unhealthy-after", async () => {
    const sick = await startHttp(["--unhealthy"]);
    expect(await httpGet(sick.port, "/health")).toEqual({ status: 503, body: "unhealthy\n", workerId: "none" });
    const { port } = await startHttp(["--unhealthy-after", "4s"]);
    expect((await httpGet(port, "/health")).status).toBe(200);
    await waitFor("/health to answer 503", async () => ((await httpGet(port, "/health")).status === 503 ? true : undefined));
  });

  it("finishes in-flight requests on SIGTERM, refuses new ones, then exits 143", async () => {
    const { running, port } = await startHttp([]);
    const slow = httpGet(port, "/slow?ms=2000");
    // Setup, not an assertion: the request must be in the server's hands before the signal (a
    // connection still in the kernel's accept queue is reset by close); /slow then holds it 2s.
    await new Promise((resolveLater) => setTimeout(resolveLater, 500));
    process.kill(running.pid, "SIGTERM");
    await waitForLine(running, /Caught SIGTERM/);
    await expect(httpGet(port, "/")).rejects.toThrow(/ECONNREFUSED/);
    expect(await slow).toMatchObject({ status: 200 });
    expect((await running.exited).exitCode).toBe(143);
  });

  it("on SIGTERM answers a request that comes on an idle keep-alive connection (with connection: close) instead of resetting it", async () => {
    const { running, port } = await startHttp([]);
    const socket = connect(port, "127.0.0.1");
    let received = "";
    socket.setEncoding("utf8").on("data", (chunk: string) => (received += chunk));
    const closed = new Promise<void>((resolveClosed) => socket.once("close", () => resolveClosed()));
    socket.on("error", () => undefined);
    socket.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    await waitFor("the first response", () => (/hello from processbin/.test(received) ? true : undefined));
    // The connection is idle now; shutdown begins, and the client's next request is already on its way.
    process.kill(running.pid, "SIGTERM");
    await waitForLine(running, /Caught SIGTERM/);
    socket.write("GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
    await closed;
    const responses = received.split("HTTP/1.1 ").slice(1);
    expect(responses).toHaveLength(2);
    expect(responses[1]).toMatch(/^200 OK/);
    expect(responses[1]).toMatch(/\r\nconnection: close\r\n/i);
    expect((await running.exited).exitCode).toBe(143);
  });

  it("serves an inherited listening socket with --listen-fd (socket activation)", async () => {
    const listener = createNetServer();
    await new Promise<void>((resolveListening) => listener.listen(0, "127.0.0.1", () => resolveListening()));
    const port = (listener.address() as { port: number }).port;
    const fd = (listener as unknown as { _handle: { fd: number } })._handle.fd;
    try {
      const running = start(["--log-count", "0", "--listen-fd", "3"], { workerId: "fd", fd3: fd });
      await waitForLine(running, /processbin listening port=(\d+)/);
      // The parent's copy stops accepting, so every connection reaches processbin.
      listener.close();
      expect(await httpGet(port, "/")).toMatchObject({ status: 200, workerId: "fd" });
      expect((await run(["--listen-fd", "3", "--port", "8080"])).stderr).toMatch(/--listen-fd serves an inherited socket: it cannot be combined with --port/);
    } finally {
      listener.close();
    }
  });

  it("shares a port between two processes with --reuse-port, and both answer", async () => {
    const first = await startHttp(["--reuse-port"], { workerId: "1" });
    const second = start(["--log-count", "0", "--port", String(first.port), "--reuse-port"], { workerId: "2" });
    await waitForLine(second, /processbin listening port=(\d+)/);
    const seen = new Set<string>();
    for (let attempt = 0; attempt < 300 && seen.size < 2; attempt++) {
      const reply = await httpGet(first.port, "/");
      expect(reply.status).toBe(200);
      if (reply.workerId !== undefined) seen.add(reply.workerId);
    }
    expect([...seen].sort()).toEqual(["1", "2"]);
  });

  it("refuses a taken port without --reuse-port: one-line error, exit 1", async () => {
    const first = await startHttp([]);
    const result = await run(["--log-count", "0", "--port", String(first.port)]);
    expect(result.exitCode).toBe(1);
    expect(result.stderr.trimEnd().split("\n")).toHaveLength(1);
    expect(result.stderr).toContain("EADDRINUSE");
  });

  it("spawns --children in its process group, which die when the group is killed", async () => {
    const running = start(["--children", "2", "--log-count", "0"], { detached: true });
    const match = await waitForLine(running, /processbin children pids=(\d+),(\d+)\n/);
    const pids = [Number(match[1]), Number(match[2])];
    strayPids.push(...pids);
    expect(pids.every(isAlive)).toBe(true);
    process.kill(-running.pid, "SIGKILL");
    expect((await running.exited).signal).toBe("SIGKILL");
    await waitFor("the children to die with their group", () => (pids.some(isAlive) ? undefined : true));
  });

  it("grows its resident memory with --grow-memory", async () => {
    const running = start(["--log-count", "0", "--grow-memory", "200MiB", "--grow-memory-max", "64MiB"]);
    await waitForLine(running, /processbin memory grown bytes=67108864/);
    const status = readFileSync(`/proc/${running.pid}/status`, "utf8");
    const rssKib = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1]);
    expect(rssKib * 1024).toBeGreaterThan(64 * 1024 * 1024);
  });

  it.each([
    [["--log-size", "abc"], /log-size/],
    [["--port", "70000"], /port/],
    [["--exit-after", "soon"], /exit-after/],
    [["--exit-after-logs"], /--log-count/],
    [["--no-such-flag"], /unknown option/],
  ])("rejects bad flags %j with exit code 2 and one line on stderr", async (flags, message) => {
    const result = await run(flags);
    expect(result.exitCode).toBe(2);
    const stderrLines = result.stderr.trimEnd().split("\n");
    expect(stderrLines).toHaveLength(1);
    expect(stderrLines[0]).toMatch(message);
    expect(result.stderr).not.toMatch(/\n\s+at /);
    expect(result.stdout).toBe("");
  });

  it("lists every flag with its default in --help", async () => {
    const result = await run(["--help"]);
    expect(result.exitCode).toBe(0);
    const flags = [
      "-t, --exit-after", "-i, --ignore-signals", "-o, --signal-timeout", "-f, --log-fixed", "-l, --log-size", "-k, --log-interval",
      "-e, --log-error", "-j, --log-structured", "-p, --port", "--host", "--log-count", "--exit-after-logs", "--exit-code",
      "--exit-signal", "--reuse-port", "--unhealthy", "--unhealthy-after", "--response-delay", "--grow-memory", "--grow-memory-max", "--children",
    ];
    // Help is wrapped to the terminal width; compare with whitespace collapsed.
    const help = result.stdout.replace(/\s+/g, " ");
    for (const flag of flags) expect(help).toContain(flag);
    expect(help).toContain("(default: 150)");
    expect(help).toContain("(default: 1s)");
  });
});
