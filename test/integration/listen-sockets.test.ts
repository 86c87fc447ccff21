// Listening sockets held by the test, in the role Monoceros plays, and handed to real workers with
// socket activation: test/fixtures/socket-activated.py (one request at a time, so that the next one
// waits in the backlog) and processbin --listen-fd 3. Whether a connection waits in a socket's
// backlog is read from /proc/net/tcp (rx_queue of a listening socket: connections not accepted yet).
// Every worker is killed in afterEach by its process group, every socket and client closed.
import { execFileSync, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { closeListenSocket, makeListening, openListenSocket, socketActivationSpawn, type ListenAddress } from "../../src/backends/os/listen-sockets.js";
import { pollFor, PROCESSBIN, ROOT } from "../support/monoceros.js";

const FIXTURE = join(ROOT, "test", "fixtures", "socket-activated.py");
const BACKLOG = 64;
/** Bound on every wait for an answer: a queued connection that is never served must fail the test, not hang it. */
const REPLY_TIMEOUT_MS = 20_000;
const SPREAD_REQUESTS = 200;

/** The real interpreter, not a pyenv-style shim script (one more exec between sh and Python). */
let python = "python3";
beforeAll(() => {
  python = execFileSync("python3", ["-c", "import sys; print(sys.executable)"], { encoding: "utf8" }).trim();
});

const workers: ChildProcess[] = [];
const heldFds: number[] = [];
const clients: Socket[] = [];
const servers: Server[] = [];
const otherFds: number[] = [];

afterEach(() => {
  for (const child of workers.splice(0)) {
    // Not reaped yet, so the group is still this worker's.
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) process.kill(-child.pid, "SIGKILL");
  }
  for (const client of clients.splice(0)) client.destroy();
  for (const server of servers.splice(0)) server.close();
  for (const fd of heldFds.splice(0)) closeListenSocket(fd);
  for (const fd of otherFds.splice(0)) closeSync(fd);
});

const local = (port: number): ListenAddress => ({ host: "127.0.0.1", port, family: "ipv4" });

function hold(port: number, reusePort = false): number {
  const fd = openListenSocket(local(port), { reusePort, backlog: BACKLOG });
  heldFds.push(fd);
  return fd;
}

/** A port nobody listens on (a listener on port 0 is asked which one it got, then closed). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Connections waiting in the backlog of the listening sockets on this 127.0.0.1 port. */
function queuedConnections(port: number): number {
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  let queued = 0;
  for (const line of readFileSync("/proc/net/tcp", "utf8").split("\n").slice(1)) {
    const [, localAddress, , state, queues] = line.trim().split(/\s+/);
    if (state === "0A" && localAddress === `0100007F:${hexPort}`) queued += parseInt(queues?.split(":")[1] ?? "0", 16);
  }
  return queued;
}

interface Worker {
  readonly pid: number;
  readonly stdout: () => string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
}

function startWorker(exec: string, args: string[], fds: number[], names: string[], env: Record<string, string> = {}): Worker {
  const how = socketActivationSpawn(exec, args, fds, names);
  const child = spawn(how.file, how.args, { cwd: ROOT, stdio: how.stdio, env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env, ...how.env }, detached: true });
  workers.push(child);
  if (child.pid === undefined) throw new Error(`${exec} did not start`);
  let stdout = "";
  let stderr = "";
  child.stdout?.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) => child.once("close", (code, signal) => resolve({ code, signal, stderr })));
  return { pid: child.pid, stdout: () => stdout, exited };
}

const startPython = (fds: number[], names = fds.map((_, index) => `socket${index}`)): Worker => startWorker(python, [FIXTURE], fds, names);

/** The built bundle when there is one, else the source through tsx (cwd is the repo root). */
function startProcessbin(fd: number, workerId: string): Worker {
  const flags = ["--log-count", "0", "--listen-fd", "3"];
  const [exec, args] = existsSync(PROCESSBIN) ? [process.execPath, [PROCESSBIN, ...flags]] : [process.execPath, ["--import", "tsx", join(ROOT, "src", "processbin", "main.ts"), ...flags]];
  return startWorker(exec, args, [fd], ["http"], { MULTIPROCESS_WORKER_ID: workerId });
}

type Reply = { ok: true; status: number; body: string } | { ok: false; error: string };

interface Exchange {
  /** Resolves once the TCP handshake is done: with a listening socket, whether or not anyone accepts. */
  readonly connected: Promise<void>;
  readonly reply: Promise<Reply>;
  readonly settled: () => boolean;
}

/** One HTTP/1.0 GET on a fresh connection (the server closes it after answering). */
function request(port: number, path: string): Exchange {
  const socket = connect({ port, host: "127.0.0.1" });
  clients.push(socket);
  let received = "";
  let failure: string | undefined;
  let settled = false;
  const connected = new Promise<void>((resolve, reject) => {
    socket.once("connect", () => {
      socket.write(`GET ${path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n`);
      resolve();
    });
    socket.once("error", reject);
  });
  connected.catch(() => undefined);
  const reply = new Promise<Reply>((resolve) => {
    const timer = setTimeout(() => {
      failure = `no answer within ${REPLY_TIMEOUT_MS} ms`;
      socket.destroy();
    }, REPLY_TIMEOUT_MS);
    socket.setEncoding("utf8").on("data", (chunk: string) => (received += chunk));
    socket.on("error", (error: NodeJS.ErrnoException) => (failure ??= error.code ?? error.message));
    socket.once("close", () => {
      clearTimeout(timer);
      settled = true;
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(received);
      resolve(status === null ? { ok: false, error: failure ?? `closed after ${JSON.stringify(received)}` } : { ok: true, status: Number(status[1]), body: received.slice(received.indexOf("\r\n\r\n") + 4) });
    });
  });
  return { connected, reply, settled: () => settled };
}

interface FixtureBody {
  pid: number;
  listen_pid: string;
  listen_fds: string;
  listen_fdnames: string | null;
  nonblocking_at_start: boolean;
}

async function fixtureReply(exchange: Exchange): Promise<FixtureBody> {
  const reply = await exchange.reply;
  if (!reply.ok) throw new Error(`no answer: ${reply.error}`);
  expect(reply.status).toBe(200);
  return JSON.parse(reply.body) as FixtureBody;
}

/** The socket inode a descriptor refers to ("socket:[123]"), in this or another process. */
const socketOf = (pid: number | "self", fd: number | string): string => readlinkSync(`/proc/${pid}/fd/${fd}`);

describe("listening sockets handed to socket-activated workers", () => {
  it("hands a socket to a Python worker as fd 3, with LISTEN_PID its own pid, LISTEN_FDS=1 and LISTEN_FDNAMES", async () => {
    const port = await freePort();
    const fd = hold(port);
    const worker = startPython([fd], ["web"]);
    const body = await fixtureReply(request(port, "/"));
    // Blocking, as systemd hands sockets over, although Node made it non-blocking to listen().
    expect(body).toEqual({ pid: worker.pid, listen_pid: String(worker.pid), listen_fds: "1", listen_fdnames: "web", nonblocking_at_start: false });
  });

  it("hands several sockets over as 3, 4, … under their names, and no other socket the supervisor holds", async () => {
    const [webPort, adminPort, otherPort] = [await freePort(), await freePort(), await freePort()];
    const web = hold(webPort);
    const admin = hold(adminPort);
    const other = hold(otherPort);
    const worker = startPython([web, admin], ["web", "admin"]);
    const body = await fixtureReply(request(webPort, "/"));
    expect(body).toMatchObject({ listen_fds: "2", listen_fdnames: "web:admin" });
    const inherited = readdirSync(`/proc/${worker.pid}/fd`).map((fd) => ({ fd: Number(fd), target: socketOf(worker.pid, fd) }));
    expect(inherited.filter(({ target }) => target === socketOf("self", web)).map(({ fd }) => fd)).toEqual([3]);
    expect(inherited.filter(({ target }) => target === socketOf("self", admin)).map(({ fd }) => fd)).toEqual([4]);
    // The addon's descriptors are not close-on-exec: without covering, each would be here under its own number too.
    expect(inherited.filter(({ target }) => target === socketOf("self", other))).toEqual([]);
  });

  it("serves processbin --listen-fd 3 the same way", async () => {
    const port = await freePort();
    const fd = hold(port);
    const worker = startProcessbin(fd, "a");
    const reply = await request(port, "/").reply;
    expect(reply).toMatchObject({ ok: true, status: 200 });
    expect(reply.ok && reply.body).toContain(`worker=a pid=${worker.pid}`);
  });

  it("keeps a connection made while no worker runs waiting in the backlog, and the worker started later answers it", async () => {
    const port = await freePort();
    const fd = hold(port);
    const early = request(port, "/");
    await early.connected;
    await pollFor("the connection to wait in the backlog", () => queuedConnections(port) === 1);
    expect(early.settled()).toBe(false);
    const worker = startProcessbin(fd, "late");
    const reply = await early.reply;
    expect(reply).toMatchObject({ ok: true, status: 200 });
    expect(reply.ok && reply.body).toContain(`pid=${worker.pid}`);
  });

  it("answers a request queued behind a worker killed with SIGKILL from the next worker instead of resetting it", async () => {
    const port = await freePort();
    const fd = hold(port);
    const first = startPython([fd]);
    const inHand = request(port, "/slow?s=30");
    await pollFor("the first worker to take the slow request", () => first.stdout().includes("path=/slow"));
    const queued = request(port, "/");
    await queued.connected;
    await pollFor("the second request to wait in the backlog", () => queuedConnections(port) === 1);
    process.kill(-first.pid, "SIGKILL");
    expect((await first.exited).signal).toBe("SIGKILL");
    // The request in hand goes with its worker; the queued one stays in the socket Monoceros holds.
    expect((await inHand.reply).ok).toBe(false);
    expect(queuedConnections(port)).toBe(1);
    expect(queued.settled()).toBe(false);
    const second = startPython([fd]);
    expect((await fixtureReply(queued)).pid).toBe(second.pid);
  });

  it("lets a worker stopped with SIGTERM finish its request while the next one waits for its replacement", async () => {
    const port = await freePort();
    const fd = hold(port);
    const first = startPython([fd]);
    const inHand = request(port, "/slow?s=1");
    await pollFor("the first worker to take the slow request", () => first.stdout().includes("path=/slow"));
    const queued = request(port, "/");
    await queued.connected;
    await pollFor("the second request to wait in the backlog", () => queuedConnections(port) === 1);
    process.kill(first.pid, "SIGTERM");
    expect((await fixtureReply(inHand)).pid).toBe(first.pid);
    expect(await first.exited).toMatchObject({ code: 0, signal: null });
    expect(queuedConnections(port)).toBe(1);
    const second = startPython([fd]);
    expect((await fixtureReply(queued)).pid).toBe(second.pid);
  });

  it("spreads connections over two SO_REUSEPORT sockets on one port, one worker each", async () => {
    const port = await freePort();
    const workerA = startPython([hold(port, true)]);
    const workerB = startPython([hold(port, true)]);
    const answersByPid = new Map<number, number>();
    for (let index = 0; index < SPREAD_REQUESTS; index++) {
      const { pid } = await fixtureReply(request(port, "/"));
      answersByPid.set(pid, (answersByPid.get(pid) ?? 0) + 1);
    }
    expect([...answersByPid.keys()].sort()).toEqual([workerA.pid, workerB.pid].sort());
    expect(answersByPid.get(workerA.pid)).toBeGreaterThan(0);
    expect(answersByPid.get(workerB.pid)).toBeGreaterThan(0);
    console.info(`SO_REUSEPORT spread over ${SPREAD_REQUESTS} connections: ${answersByPid.get(workerA.pid)} / ${answersByPid.get(workerB.pid)}`);
  });

  it("refuses a shared socket on an address something already listens on, naming the address", async () => {
    const port = await freePort();
    const plain = createServer();
    servers.push(plain);
    await new Promise<void>((resolve) => plain.listen(port, "127.0.0.1", resolve));
    expect(() => hold(port)).toThrow(new RegExp(`^cannot listen on 127\\.0\\.0\\.1:${port}: the address is already in use`));
    expect(() => hold(port, true)).toThrow(new RegExp(`^cannot bind a socket to 127\\.0\\.0\\.1:${port}: .*in use`, "i"));
  });

  it("refuses a shared socket on a port an SO_REUSEPORT socket holds, which the addon alone would quietly join", async () => {
    const port = await freePort();
    hold(port, true);
    expect(() => hold(port)).toThrow(new RegExp(`^cannot listen on 127\\.0\\.0\\.1:${port}: the address is already in use`));
    expect(() => hold(port, true)).not.toThrow();
  });

  it("makes a socket listen without accepting the connection already waiting on it", async () => {
    const port = await freePort();
    const fd = hold(port);
    const waiting = request(port, "/");
    await waiting.connected;
    await pollFor("the connection to wait in the backlog", () => queuedConnections(port) === 1);
    makeListening([fd], BACKLOG);
    expect(queuedConnections(port)).toBe(1);
    expect(waiting.settled()).toBe(false);
    const worker = startPython([fd]);
    expect((await fixtureReply(waiting)).pid).toBe(worker.pid);
  });

  it("would see it if a listening process let its event loop run: that one takes the waiting connection", async () => {
    const port = await freePort();
    const fd = hold(port);
    const waiting = request(port, "/");
    await waiting.connected;
    await pollFor("the connection to wait in the backlog", () => queuedConnections(port) === 1);
    // What the helper would be if it waited for anything: net.Server accepts as soon as the loop polls.
    const script = 'require("node:net").createServer(() => process.exit(0)).listen({ fd: 3 });';
    const polling = spawnSync(process.execPath, ["-e", script], { stdio: ["ignore", "ignore", "pipe", fd], env: {}, timeout: 10_000, killSignal: "SIGKILL" });
    expect(polling.status).toBe(0);
    expect(queuedConnections(port)).toBe(0);
    expect((await waiting.reply).ok).toBe(false);
  });

  it("reports a descriptor that cannot listen, naming it", () => {
    const notASocket = openSync("/dev/null", "r");
    otherFds.push(notASocket);
    expect(() => makeListening([notASocket], BACKLOG)).toThrow(new RegExp(`^cannot make the socket fd ${notASocket} listen: `));
  });
});

describe("the spawn of a socket-activated worker", () => {
  it("runs the worker through /bin/sh, which sets LISTEN_PID to its own pid and execs it", () => {
    expect(socketActivationSpawn("/srv/app", ["--port", "3"], [7, 9], ["web", "admin"])).toEqual({
      file: "/bin/sh",
      args: ["-c", 'LISTEN_PID=$$; export LISTEN_PID; exec "$0" "$@"', "/srv/app", "--port", "3"],
      stdio: ["ignore", "pipe", "pipe", 7, 9],
      env: { LISTEN_FDS: "2", LISTEN_FDNAMES: "web:admin" },
    });
  });

  it.each([
    [[7], [], /one name per socket/],
    [[], [], /1 to 64 sockets/],
    [[7], ["a:b"], /other than ':'/],
    [[7], [""], /1 to 255 printable ASCII/],
    [[7], ["caf\u00e9"], /printable ASCII/],
  ])("refuses fds %j named %j", (fds, names, problem) => {
    expect(() => socketActivationSpawn("/srv/app", [], fds, names)).toThrow(problem);
  });
});
