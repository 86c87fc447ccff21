// Health probes against real servers and real processes: every odd answer (none, half of one, a
// check that forks a daemon holding its pipes, no file descriptors left) ends in an outcome within
// its bound, and nothing a probe started outlives it.
import { spawn } from "node:child_process";
import { createServer as createHttpServer, type ServerResponse } from "node:http";
import { createServer as createNetServer, type Server, type Socket } from "node:net";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { EXEC_OUTPUT_MAX_BYTES, PROBE_DETAIL_MAX_CHARS, execProbe, httpProbe } from "../../src/backends/os/health-probes.js";
import { ROOT, pollFor } from "../support/monoceros.js";

/** Slack on top of a probe's own bound, for a loaded CI machine. */
const SLACK_MS = 2_000;

const servers: Server[] = [];
const sockets = new Set<Socket>();
const pids: number[] = [];
const folders: string[] = [];

afterEach(async () => {
  for (const socket of sockets) socket.destroy();
  sockets.clear();
  await Promise.all(servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
  for (const pid of pids.splice(0)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // gone, as it should be
    }
  }
  for (const folder of folders.splice(0)) rmSync(folder, { recursive: true, force: true });
});

/** Listens on host (127.0.0.1 unless told), remembered for afterEach; resolves to the port. */
async function listen(server: Server, host = "127.0.0.1"): Promise<number> {
  servers.push(server);
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, host, () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

function httpServer(answer: (response: ServerResponse) => void, host?: string): Promise<number> {
  return listen(createHttpServer((_request, response) => answer(response)), host);
}

/** A TCP server that answers every connection with `chunks`, `pauseMs` apart (then leaves it open). */
function rawServer(chunks: string[], pauseMs = 50): Promise<number> {
  return listen(createNetServer((socket) => {
    socket.on("error", () => {});
    socket.once("data", () => {
      chunks.forEach((chunk, index) => setTimeout(() => socket.writable && socket.write(chunk), index * pauseMs));
    });
  }));
}

async function freePort(): Promise<number> {
  const server = createNetServer();
  const port = await listen(server);
  await new Promise((resolve) => server.close(resolve));
  servers.splice(servers.indexOf(server), 1);
  return port;
}

function tempFolder(): string {
  const folder = mkdtempSync(join(tmpdir(), "monoceros-probes-"));
  folders.push(folder);
  return folder;
}

/** Gone, or a zombie: orphans of a killed group are reparented to a PID 1 that may reap them late, or never. */
function isGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "ESRCH";
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    return /^[ZX]$/.test(stat.charAt(stat.lastIndexOf(")") + 2));
  } catch {
    return true;
  }
}

/** The pid a check wrote to `file`, remembered for afterEach. */
async function pidFrom(file: string): Promise<number> {
  const pid = await pollFor(`a pid in ${file}`, () => {
    try {
      return Number(readFileSync(file, "latin1").trim()) || undefined;
    } catch {
      return undefined;
    }
  }, 10_000);
  pids.push(pid);
  return pid;
}

const target = (port: number, path = "/healthz") => ({ host: "127.0.0.1", port, path });

describe("httpProbe", () => {
  it("is ok on 200, and says so", async () => {
    const port = await httpServer((response) => response.end("fine"));
    const outcome = await httpProbe(target(port), 5_000);
    expect(outcome).toMatchObject({ result: "ok", detail: "HTTP 200" });
    expect(outcome.durationMs).toBeGreaterThanOrEqual(0);
    expect(outcome.durationMs).toBeLessThan(5_000);
  });

  it("is ok on a redirect (302), without following it", async () => {
    const port = await httpServer((response) => response.writeHead(302, { Location: "http://192.0.2.1/" }).end());
    expect(await httpProbe(target(port), 5_000)).toMatchObject({ result: "ok", detail: "HTTP 302" });
  });

  it("fails on 503, naming the status", async () => {
    const port = await httpServer((response) => response.writeHead(503).end("overloaded"));
    expect(await httpProbe(target(port), 5_000)).toMatchObject({ result: "fail", detail: "HTTP 503" });
  });

  it("sends the path, a Host header and Connection: close", async () => {
    let seen: { url?: string; host?: string; connection?: string } = {};
    const server = createHttpServer((request, response) => {
      seen = { url: request.url, host: request.headers.host, connection: request.headers.connection };
      response.end();
    });
    const port = await listen(server);
    expect((await httpProbe(target(port, "/ready?deep=1"), 5_000)).result).toBe("ok");
    expect(seen).toEqual({ url: "/ready?deep=1", host: `127.0.0.1:${port}`, connection: "close" });
  });

  it("fails on a refused connection, saying so", async () => {
    const port = await freePort();
    const outcome = await httpProbe(target(port), 5_000);
    expect(outcome.result).toBe("fail");
    expect(outcome.detail).toContain(`ECONNREFUSED 127.0.0.1:${port}`);
  });

  it("times out on a server that accepts but never answers, within its bound", async () => {
    const port = await listen(createNetServer(() => {}));
    const startedMs = performance.now();
    const outcome = await httpProbe(target(port), 300);
    expect(outcome).toMatchObject({ result: "timeout", detail: "no answer within 300 ms" });
    expect(outcome.durationMs).toBeGreaterThanOrEqual(290);
    expect(performance.now() - startedMs).toBeLessThan(300 + SLACK_MS);
  });

  it("is ok once the headers are in, though the body never ends", async () => {
    const port = await httpServer((response) => {
      response.writeHead(200, { "Content-Type": "text/plain" }); // chunked, never ended
      response.write("partial body");
    });
    const outcome = await httpProbe(target(port), 3_000);
    expect(outcome).toMatchObject({ result: "ok", detail: "HTTP 200" });
    expect(outcome.durationMs).toBeLessThan(3_000);
  });

  it("reads a status line split across packets", async () => {
    const port = await rawServer(["HT", "TP/1.1 2", "04 No Content\r", "\n\r\n"]);
    expect(await httpProbe(target(port), 5_000)).toMatchObject({ result: "ok", detail: "HTTP 204" });
  });

  it("skips interim 1xx responses to the final status", async () => {
    const port = await rawServer(["HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n", "\r\nHTTP/1.1 500 Oops\r\n\r\n"]);
    expect(await httpProbe(target(port), 5_000)).toMatchObject({ result: "fail", detail: "HTTP 500" });
  });

  it("fails on an answer that is not HTTP", async () => {
    const port = await rawServer(["SSH-2.0-OpenSSH_9.6\r\n"]);
    const outcome = await httpProbe(target(port), 5_000);
    expect(outcome.result).toBe("fail");
    expect(outcome.detail).toMatch(/^malformed response: "SSH-2\.0/);
  });

  it("gives up as malformed after 16 KiB without a status line, not at the timeout", async () => {
    const port = await rawServer(["HTTP/1.1 200 " + "x".repeat(20_000)]);
    const outcome = await httpProbe(target(port), 10_000);
    expect(outcome.result).toBe("fail");
    expect(outcome.detail).toMatch(/^malformed response/);
    expect(outcome.detail.length).toBeLessThanOrEqual(PROBE_DETAIL_MAX_CHARS);
    expect(outcome.durationMs).toBeLessThan(10_000);
  });

  it("fails when the server closes without answering", async () => {
    const port = await listen(createNetServer((socket) => socket.once("data", () => socket.end())));
    expect(await httpProbe(target(port), 5_000)).toMatchObject({ result: "fail", detail: "connection closed without a response" });
  });

  it("refuses a path that would write its own request, without connecting", async () => {
    let connections = 0;
    const port = await listen(createNetServer(() => connections++));
    const outcome = await httpProbe(target(port, "/x HTTP/1.1\r\nHost: evil"), 5_000);
    expect(outcome.result).toBe("fail");
    expect(outcome.detail).toMatch(/^invalid path/);
    expect(outcome.detail).not.toMatch(/[\r\n]/);
    expect(connections).toBe(0);
  });

  it("probes an IPv6 literal", async (context) => {
    let port: number;
    try {
      port = await httpServer((response) => response.end(), "::1");
    } catch {
      context.skip(); // no IPv6 loopback here
      return;
    }
    expect(await httpProbe({ host: "::1", port, path: "/" }, 5_000)).toMatchObject({ result: "ok", detail: "HTTP 200" });
  });

  it("probes a host name (localhost)", async () => {
    const port = await httpServer((response) => response.end());
    expect(await httpProbe({ host: "localhost", port, path: "/" }, 5_000)).toMatchObject({ result: "ok", detail: "HTTP 200" });
  });

  it("leaves no timer or socket behind, whichever way it ended", async () => {
    const counts = () => {
      const resources = process.getActiveResourcesInfo();
      return { timers: resources.filter((r) => r === "Timeout").length, sockets: resources.filter((r) => r === "TCPSocketWrap").length };
    };
    const before = counts();
    const okPort = await httpServer((response) => response.end());
    const silentPort = await listen(createNetServer(() => {}));
    const refusedPort = await freePort();
    const outcomes = await Promise.all([
      httpProbe(target(okPort), 5_000),
      httpProbe(target(silentPort), 200),
      httpProbe(target(refusedPort), 5_000),
    ]);
    expect(outcomes.map((o) => o.result)).toEqual(["ok", "timeout", "fail"]);
    for (const socket of sockets) socket.destroy(); // the servers' ends
    await pollFor("the probes' timers and sockets to be gone", () => {
      const now = counts();
      return now.timers <= before.timers && now.sockets <= before.sockets;
    }, 5_000);
    expect((await httpProbe(target(okPort), 5_000)).result).toBe("ok");
  });
});

describe("execProbe", () => {
  it("is ok when the check exits 0", async () => {
    expect(await execProbe(["true"], 5_000)).toMatchObject({ result: "ok", detail: "exit code 0" });
  });

  it("fails with the exit code", async () => {
    expect(await execProbe(["false"], 5_000)).toMatchObject({ result: "fail", detail: "exit code 1" });
  });

  it("fails on a missing binary, naming ENOENT", async () => {
    const outcome = await execProbe(["/nonexistent/monoceros-check"], 5_000);
    expect(outcome.result).toBe("fail");
    expect(outcome.detail).toContain("ENOENT");
    expect(outcome.detail).toContain("/nonexistent/monoceros-check");
  });

  it("fails on an empty argv", async () => {
    expect(await execProbe([], 5_000)).toMatchObject({ result: "fail", detail: "no command to run" });
  });

  it("puts the output of a failed check in the detail, on one line", async () => {
    expect(await execProbe(["sh", "-c", "echo bad; exit 3"], 5_000)).toMatchObject({ result: "fail", detail: "exit code 3: bad" });
    const outcome = await execProbe(["sh", "-c", "printf 'a\\n\\n  b\\tc\\n'; echo err >&2; exit 1"], 5_000);
    expect(outcome.detail).toBe("exit code 1: a b c err");
  });

  it("names the signal that killed a check", async () => {
    expect(await execProbe(["sh", "-c", "kill -TERM $$"], 5_000)).toMatchObject({ result: "fail", detail: "killed by SIGTERM" });
  });

  it("runs with the environment given, without a shell", async () => {
    const outcome = await execProbe(["sh", "-c", "echo \"$PROBE_WORD $HOME\" '$PROBE_WORD'; exit 1", "ignored"], 5_000, { ...(process.env as Record<string, string>), PROBE_WORD: "hello" });
    expect(outcome.detail).toBe(`exit code 1: hello ${process.env.HOME} $PROBE_WORD`);
  });

  it("keeps only the first EXEC_OUTPUT_MAX_BYTES of output, and says it cut them", async () => {
    const outcome = await execProbe(["sh", "-c", "head -c 100000 /dev/zero | tr '\\0' x; exit 1"], 5_000);
    expect(outcome.result).toBe("fail");
    expect(outcome.detail.length).toBeLessThanOrEqual(PROBE_DETAIL_MAX_CHARS);
    expect(outcome.detail).toMatch(/^exit code 1: xxxx/);
    expect(outcome.detail).toContain(`[output truncated: 100000 bytes, first ${EXEC_OUTPUT_MAX_BYTES} kept]`);
    // Under the limit, the detail is only clipped to its own length.
    const short = await execProbe(["sh", "-c", "head -c 3000 /dev/zero | tr '\\0' y; exit 1"], 5_000);
    expect(short.detail).toHaveLength(PROBE_DETAIL_MAX_CHARS);
    expect(short.detail).toMatch(/^exit code 1: y+…$/);
  });

  it("times out a check that does not exit, and kills it", async () => {
    const pidFile = join(tempFolder(), "pid");
    const probe = execProbe(["sh", "-c", `echo $$ > '${pidFile}'; exec sleep 30`], 500);
    const pid = await pidFrom(pidFile);
    const outcome = await probe;
    expect(outcome).toMatchObject({ result: "timeout", detail: "did not exit within 500 ms" });
    expect(outcome.durationMs).toBeGreaterThanOrEqual(490);
    expect(outcome.durationMs).toBeLessThan(500 + 1_000 + SLACK_MS);
    expect(isGone(pid)).toBe(true); // the leader is reaped before the probe resolves
  });

  it("kills the whole group of a timed-out check, and does not wait for pipes a child holds open", async () => {
    const folder = tempFolder();
    const probe = execProbe(["sh", "-c", `echo $$ > '${folder}/pid'; sleep 30 & echo $! > '${folder}/bg'; echo started; wait`], 500);
    const [pid, background] = [await pidFrom(join(folder, "pid")), await pidFrom(join(folder, "bg"))];
    const outcome = await probe;
    expect(outcome).toMatchObject({ result: "timeout", detail: "did not exit within 500 ms: started" });
    expect(outcome.durationMs).toBeLessThan(500 + 1_000 + SLACK_MS);
    expect(isGone(pid)).toBe(true);
    await pollFor("the background sleep to be gone", () => isGone(background), 5_000);
  });

  it("does not wait for a daemon the check left holding its stdout, and kills it", async () => {
    const folder = tempFolder();
    const ok = await execProbe(["sh", "-c", `sleep 30 & echo $! > '${folder}/bg'; exit 0`], 10_000);
    expect(ok).toMatchObject({ result: "ok", detail: "exit code 0" });
    expect(ok.durationMs).toBeLessThan(10_000);
    await pollFor("the check's leftover to be gone", () => isGone(Number(readFileSync(join(folder, "bg"), "latin1"))), 5_000);

    const failed = await execProbe(["sh", "-c", `sleep 30 & echo $! > '${folder}/bg2'; echo broken; exit 2`], 10_000);
    expect(failed).toMatchObject({ result: "fail", detail: "exit code 2: broken" });
    expect(failed.durationMs).toBeLessThan(10_000);
    await pollFor("the failed check's leftover to be gone", () => isGone(Number(readFileSync(join(folder, "bg2"), "latin1"))), 5_000);
  });

  it("fails, naming EMFILE, when no file descriptor is left to spawn with", async () => {
    // In a child Node with a low descriptor limit, so this test's own process keeps its descriptors.
    const folder = tempFolder();
    const script = join(folder, "emfile.mts");
    writeFileSync(script, `
      import { openSync, closeSync } from "node:fs";
      import { execProbe } from ${JSON.stringify(join(ROOT, "src/backends/os/health-probes.ts"))};
      const fds = [];
      try {
        for (let i = 0; i < 10_000; i++) fds.push(openSync("/dev/null", "r"));
      } catch (error) {
        if (error.code !== "EMFILE") throw error;
      }
      const outcome = await execProbe(["true"], 5_000);
      for (const fd of fds) closeSync(fd);
      console.log(JSON.stringify(outcome));
    `);
    const child = spawn("sh", ["-c", "ulimit -n 256 && exec \"$0\" --import tsx \"$1\"", process.execPath, script], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    if (child.pid !== undefined) pids.push(child.pid);
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise((resolve) => child.once("close", resolve));
    expect(code, stderr).toBe(0);
    const outcome = JSON.parse(stdout.trim()) as { result: string; detail: string };
    expect(outcome.result).toBe("fail");
    expect(outcome.detail).toMatch(/EMFILE|ENFILE/);
  });
});
