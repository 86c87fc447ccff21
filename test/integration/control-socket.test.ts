// The control socket end to end: real unix sockets in a temporary folder, a fake handler, and
// `monoceros ctl` as the operator runs it.
import { chmodSync, existsSync, linkSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { connect, createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { runCtl } from "../../src/cli/ctl.js";
import { findControlSocket } from "../../src/control/client.js";
import { resolveTarget, type ControlTarget } from "../../src/control/protocol.js";
import { CONTROL_LIMITS, ControlServer, defaultControlSocketPath, ensureControlDir, type ControlHandler, type ControlResult } from "../../src/control/server.js";
import { RecordRing } from "../../src/logs/record-ring.js";

const servers: ControlServer[] = [];
const folders: string[] = [];
const sockets: Socket[] = [];
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  await Promise.all(servers.splice(0).map((server) => server.close()));
  for (const folder of folders.splice(0)) rmSync(folder, { recursive: true, force: true });
});

function tempFolder(): string {
  const folder = mkdtempSync(join(tmpdir(), "mono-ctl-"));
  folders.push(folder);
  return folder;
}

const POOLS = [
  { name: "web", replicas: 3 },
  { name: "api", replicas: 1 },
];

const STATUS = {
  phase: "running",
  healthy: true,
  pools: POOLS.map((pool) => ({
    name: pool.name,
    replicas: pool.replicas,
    proxy: null,
    workers: Array.from({ length: pool.replicas }, (_, i) => ({
      id: `${pool.name}-${i}`,
      pid: 1000 + i,
      state: "running",
      ready: true,
      uptime_seconds: 30,
      restarts: 0,
      planned_restarts: 0,
      cpu_seconds: 0.5,
      rss_bytes: 10 * 1024 * 1024,
      last_exit: null,
    })),
  })),
};

class FakeHandler implements ControlHandler {
  readonly logs = new RecordRing();
  readonly restarts: ControlTarget[] = [];

  status(): unknown {
    return STATUS;
  }

  async restart(target: ControlTarget): Promise<ControlResult> {
    this.restarts.push(target);
    const resolved = resolveTarget(target, POOLS);
    if (!resolved.ok) return resolved;
    const { pool, worker } = resolved.value;
    return { ok: true, result: { message: `restarting ${worker === null ? `pool ${pool}` : `${pool}-${worker}`}`, plan: [`${pool}-${worker ?? 0}: SIGTERM now`] } };
  }

  async scale(pool: string, replicas: number): Promise<ControlResult> {
    return { ok: true, result: { message: `scaling ${pool} to ${replicas}`, plan: [] } };
  }

  async reload(): Promise<ControlResult> {
    throw new Error("config file vanished");
  }
}

async function start(handler: ControlHandler = new FakeHandler(), path = join(tempFolder(), "m.sock")) {
  const problems: { message: string; fields: Record<string, unknown> }[] = [];
  const server = new ControlServer(handler, (message, fields) => problems.push({ message, fields }));
  servers.push(server);
  await server.listen(path);
  return { server, path, problems };
}

async function ctl(...argv: string[]) {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const code = await runCtl(argv, { stdout: (line) => stdout.push(line), stderr: (line) => stderr.push(line) });
  return { code, stdout, stderr };
}

function open(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    sockets.push(socket);
    socket.once("connect", () => resolve(socket));
    socket.once("error", reject);
  });
}

/** Everything the server sends until it closes, as lines. */
function readAll(socket: Socket): Promise<string[]> {
  return new Promise((resolve) => {
    let text = "";
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => (text += chunk));
    socket.on("error", () => undefined);
    socket.once("close", () => resolve(text.split("\n").filter((line) => line !== "")));
  });
}

async function exchange(path: string, data: string | Buffer): Promise<string[]> {
  const socket = await open(path);
  const lines = readAll(socket);
  socket.write(data);
  return lines;
}

async function until(what: string, condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** A socket file nothing listens on, as a Monoceros killed with SIGKILL leaves it. */
async function staleSocket(path: string): Promise<void> {
  const server = createServer();
  const bound = `${path}.bound`;
  await new Promise<void>((resolve) => server.listen(bound, resolve));
  linkSync(bound, path);
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

describe("control socket", () => {
  it("answers status, as ctl shows it as a table and as JSON", async () => {
    const { path } = await start();
    const table = await ctl("--socket", path, "status");
    expect(table.code).toBe(0);
    expect(table.stdout[0]).toBe("Monoceros running, healthy");
    expect(table.stdout[1]).toMatch(/^POOL\s+WORKER\s+PID\s+STATE\s+READY\s+UPTIME\s+RESTARTS\s+CPU\s+RSS\s+LAST EXIT$/);
    expect(table.stdout.slice(2).map((line) => line.split(/\s{2,}/).slice(0, 2).join(" "))).toEqual(["web web-0", "web web-1", "web web-2", "api api-0"]);
    const json = await ctl("status", "--json", "--socket", path);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout.join("\n"))).toEqual(STATUS);
  });

  it("hands restart targets to the handler as written, and prints the plan", async () => {
    const handler = new FakeHandler();
    const { path } = await start(handler);
    expect(await ctl("--socket", path, "restart", "web/1")).toEqual({ code: 0, stdout: ["restarting web-1", "  web-1: SIGTERM now"], stderr: [] });
    expect((await ctl("--socket", path, "restart", "web-2")).stdout[0]).toBe("restarting web-2");
    expect((await ctl("--socket", path, "restart", "api")).stdout[0]).toBe("restarting pool api");
    expect(handler.restarts).toEqual([
      { pool: "web", worker: 1 },
      { pool: "web", worker: "web-2" },
      { pool: "api", worker: null },
    ]);
    expect(await ctl("--socket", path, "restart", "db")).toEqual({ code: 1, stdout: [], stderr: ["monoceros ctl: no pool named db (pools: web, api)"] });
    expect(await ctl("--socket", path, "scale", "web", "4", "--json")).toEqual({ code: 0, stdout: ['{"message":"scaling web to 4","plan":[]}'], stderr: [] });
  });

  it("answers a handler that throws with an internal error, reports it, and keeps serving", async () => {
    const { path, problems } = await start();
    expect(await ctl("--socket", path, "reload")).toEqual({ code: 1, stdout: [], stderr: ["monoceros ctl: internal error: config file vanished"] });
    expect(problems).toEqual([{ message: "control socket: a command failed inside Monoceros", fields: { command: "reload", error: "config file vanished" } }]);
    expect((await ctl("--socket", path, "status")).code).toBe(0);
  });

  it("creates the socket with mode 0600, and removes it at close", async () => {
    const { server, path } = await start();
    const stats = lstatSync(path);
    expect(stats.isSocket()).toBe(true);
    expect(stats.mode & 0o777).toBe(0o600);
    // The private folder it was bound in is gone.
    expect(readdirSync(dirname(path))).toEqual(["m.sock"]);
    await server.close();
    expect(existsSync(path)).toBe(false);
  });

  it("at close, leaves alone a file that replaced its socket", async () => {
    const { server, path } = await start();
    rmSync(path);
    writeFileSync(path, "not ours");
    await server.close();
    expect(readFileSync(path, "utf8")).toBe("not ours");
  });

  it("replaces a stale socket left by a Monoceros that was killed", async () => {
    const path = join(tempFolder(), "m.sock");
    await staleSocket(path);
    expect(lstatSync(path).isSocket()).toBe(true);
    await start(new FakeHandler(), path);
    expect((await ctl("--socket", path, "status")).code).toBe(0);
  });

  it("refuses a socket another Monoceros listens on", async () => {
    const { path } = await start();
    const second = new ControlServer(new FakeHandler(), () => undefined);
    servers.push(second);
    await expect(second.listen(path)).rejects.toThrow(`another Monoceros is running with the control socket ${path}`);
    expect((await ctl("--socket", path, "status")).code).toBe(0);
  });

  it("refuses a path that is a regular file, and does not delete it", async () => {
    const path = join(tempFolder(), "m.sock");
    writeFileSync(path, "my notes");
    const server = new ControlServer(new FakeHandler(), () => undefined);
    servers.push(server);
    await expect(server.listen(path)).rejects.toThrow(`${path} exists and is not a socket; Monoceros will not replace it`);
    expect(readFileSync(path, "utf8")).toBe("my notes");
  });

  it("refuses a path longer than a unix socket path can be", async () => {
    const path = join(tempFolder(), `${"x".repeat(120)}.sock`);
    const server = new ControlServer(new FakeHandler(), () => undefined);
    servers.push(server);
    await expect(server.listen(path)).rejects.toThrow(/over the limit of 107 bytes for a unix socket path/);
  });

  it("closed while it starts, leaves nothing behind", async () => {
    const path = join(tempFolder(), "m.sock");
    const server = new ControlServer(new FakeHandler(), () => undefined);
    const listening = server.listen(path);
    await server.close();
    await expect(listening).rejects.toThrow("closed while it was starting");
    expect(readdirSync(dirname(path))).toEqual([]);
  });

  it("refuses a request longer than 64 KiB", async () => {
    const { path } = await start();
    const lines = await exchange(path, Buffer.alloc(70 * 1024, "x"));
    expect(lines).toEqual(['{"ok":false,"error":"request too long: more than 65536 bytes on one line"}']);
  });

  it("answers a bad request with one error line naming the field", async () => {
    const { path } = await start();
    expect(await exchange(path, '{"command":"scale","pool":"web","replicas":-1}\n')).toEqual(['{"ok":false,"error":"replicas: must be an integer from 0 to 4096, got -1"}']);
    // A client that shuts down its side after the request still gets the answer.
    const socket = await open(path);
    const lines = readAll(socket);
    socket.end('{"command":"status"}');
    expect(JSON.parse((await lines)[0] ?? "")).toEqual({ ok: true, result: STATUS });
  });

  it(`refuses connection ${CONTROL_LIMITS.connectionsMax + 1} while ${CONTROL_LIMITS.connectionsMax} are open, and serves again once they close`, async () => {
    const { path } = await start();
    const open16 = await Promise.all(Array.from({ length: CONTROL_LIMITS.connectionsMax }, () => open(path)));
    expect(await exchange(path, '{"command":"status"}\n')).toEqual(['{"ok":false,"error":"too many control connections (at most 16 at once)"}']);
    for (const socket of open16) socket.destroy();
    let code = -1;
    const deadline = Date.now() + 5_000;
    while (code !== 0 && Date.now() < deadline) code = (await ctl("--socket", path, "status")).code;
    expect(code).toBe(0);
  });

  it(`closes a connection that sends no request within ${CONTROL_LIMITS.requestTimeoutMs / 1000} s`, async () => {
    const { path } = await start();
    const socket = await open(path);
    const startedAt = Date.now();
    expect(await readAll(socket)).toEqual(['{"ok":false,"error":"no request within 5 s: send one JSON object on one line"}']);
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(CONTROL_LIMITS.requestTimeoutMs - 100);
  });

  it("prints the recent records of a pool, and says how many are no longer kept", async () => {
    const handler = new FakeHandler();
    const { path } = await start(handler);
    handler.logs.push({ msg: "started" });
    handler.logs.push({ msg: "exited", pool: "web", worker_id: "web-1" });
    handler.logs.push({ level: "info", worker_id: "api-0", worker_info_msg: "hello" });
    expect(await ctl("--socket", path, "logs", "web")).toEqual({ code: 0, stdout: ['{"msg":"exited","pool":"web","worker_id":"web-1"}'], stderr: [] });
    expect((await ctl("--socket", path, "logs", "-n", "2")).stdout).toHaveLength(2);
    expect((await ctl("--socket", path, "logs", "api-0", "--json")).stdout).toEqual([
      '{"record":{"level":"info","worker_id":"api-0","worker_info_msg":"hello"}}',
      '{"ok":true,"result":{"dropped":0}}',
    ]);
    expect(await ctl("--socket", path, "logs", "web/7")).toEqual({ code: 1, stdout: [], stderr: ["monoceros ctl: pool web has 3 workers (web/0 to web/2), got web/7"] });
  });

  it("logs -f streams the records pushed after it subscribed, until stopped", async () => {
    const handler = new FakeHandler();
    const { path } = await start(handler);
    handler.logs.push({ msg: "before", pool: "web" });
    const stop = new AbortController();
    const stdout: string[] = [];
    const stderr: string[] = [];
    const running = runCtl(["--socket", path, "logs", "-f", "-n", "1", "web"], { stdout: (line) => stdout.push(line), stderr: (line) => stderr.push(line), signal: stop.signal });
    await until("the follower to subscribe", () => handler.logs.stats().subscribers === 1);
    handler.logs.push({ msg: "after", pool: "web" });
    handler.logs.push({ msg: "elsewhere", pool: "api" });
    handler.logs.push({ msg: "again", worker_id: "web-0" });
    await until("the records to arrive", () => stdout.length === 3);
    stop.abort();
    expect(await running).toBe(0);
    expect(stdout).toEqual(['{"msg":"before","pool":"web"}', '{"msg":"after","pool":"web"}', '{"msg":"again","worker_id":"web-0"}']);
    expect(stderr).toEqual([]);
    await until("the follower to be gone", () => handler.logs.stats().subscribers === 0);
  });

  it("drops a follower that does not read, with a last error line", async () => {
    const handler = new FakeHandler();
    const { path } = await start(handler);
    const socket = await open(path);
    socket.write('{"command":"logs","follow":true,"lines":0}\n');
    socket.pause();
    await until("the follower to subscribe", () => handler.logs.stats().subscribers === 1);
    const text = "x".repeat(1_000);
    for (let i = 0; i < 3_000 && handler.logs.stats().subscribers === 1; i++) handler.logs.push({ i, text });
    expect(handler.logs.stats().subscribers).toBe(0);
    const lines = readAll(socket);
    socket.resume();
    const last = (await lines).at(-1);
    expect(last).toBe('{"ok":false,"error":"log follower dropped: more than 1048576 bytes of records waited to be read"}');
  });

  it(`refuses log follower ${CONTROL_LIMITS.followersMax + 1}`, async () => {
    const handler = new FakeHandler();
    const { path } = await start(handler);
    for (let i = 0; i < CONTROL_LIMITS.followersMax; i++) (await open(path)).write('{"command":"logs","follow":true}\n');
    await until("every follower to subscribe", () => handler.logs.stats().subscribers === CONTROL_LIMITS.followersMax);
    expect(await exchange(path, '{"command":"logs","follow":true}\n')).toEqual(['{"ok":false,"error":"too many log followers (at most 8 at once)"}']);
  });

  it("ends followers with a last line when it closes", async () => {
    const handler = new FakeHandler();
    const { server, path } = await start(handler);
    const socket = await open(path);
    const lines = readAll(socket);
    socket.write('{"command":"logs","follow":true}\n');
    await until("the follower to subscribe", () => handler.logs.stats().subscribers === 1);
    await server.close();
    expect(await lines).toEqual(['{"ok":false,"error":"Monoceros is shutting down"}']);
  });

  it("ctl exits 3 when nothing listens on the socket", async () => {
    const path = join(tempFolder(), "gone.sock");
    expect(await ctl("--socket", path, "status")).toEqual({ code: 3, stdout: [], stderr: [`monoceros ctl: Monoceros is not running (nothing listens on ${path})`] });
    await staleSocket(path);
    expect(await ctl("--socket", path, "status")).toEqual({ code: 3, stdout: [], stderr: [`monoceros ctl: Monoceros is not running (nothing listens on ${path})`] });
  });
});

describe("control socket paths", () => {
  it("puts the socket in a folder per user, named by pid", () => {
    expect(defaultControlSocketPath({ XDG_RUNTIME_DIR: "/run/user/1000" }, 1000, 4242)).toBe("/run/user/1000/monoceros-1000/4242.sock");
    expect(defaultControlSocketPath({}, 1000, 4242)).toBe(join(tmpdir(), "monoceros-1000", "4242.sock"));
  });

  it("creates the folder with mode 0700, and accepts it again", () => {
    const dir = join(tempFolder(), "monoceros-0");
    ensureControlDir(dir);
    expect(lstatSync(dir).mode & 0o777).toBe(0o700);
    expect(() => ensureControlDir(dir)).not.toThrow();
  });

  it("refuses a folder others may write to, someone else's folder, a symlink or a file", () => {
    const base = tempFolder();
    const open777 = join(base, "open");
    mkdirSync(open777);
    chmodSync(open777, 0o777);
    expect(() => ensureControlDir(open777)).toThrow(`control socket folder ${open777} cannot be trusted: group or others may write to it (mode 0777)`);
    const mine = join(base, "mine");
    mkdirSync(mine, { mode: 0o700 });
    const uid = process.getuid?.() ?? 0;
    expect(() => ensureControlDir(mine, uid + 1)).toThrow(`it belongs to uid ${uid}, not to us (uid ${uid + 1})`);
    const link = join(base, "link");
    symlinkSync(mine, link);
    expect(() => ensureControlDir(link)).toThrow("it exists and is not a folder");
  });

  it("ctl finds the only live socket in the folder, and lists them when there are several", async () => {
    const runtime = tempFolder();
    const env = { XDG_RUNTIME_DIR: runtime };
    // Default names are <pid>.sock, and only those of live pids are tried: our own pid and our parent's.
    const uid = process.getuid?.() ?? 0;
    const dir = join(runtime, `monoceros-${uid}`);
    expect(await findControlSocket(env, uid)).toEqual({ ok: false, error: `Monoceros is not running: no control socket in ${dir} (pass --socket PATH)`, ambiguous: false });
    ensureControlDir(dir);
    await staleSocket(join(dir, "1.sock"));
    expect(await findControlSocket(env, uid)).toMatchObject({ ok: false, ambiguous: false });
    const [first, next] = [process.pid, process.ppid].sort();
    const { path } = await start(new FakeHandler(), join(dir, `${first}.sock`));
    expect(await findControlSocket(env, uid)).toEqual({ ok: true, path });
    const second = await start(new FakeHandler(), join(dir, `${next}.sock`));
    expect(await findControlSocket(env, uid)).toEqual({ ok: false, error: `several Monoceros are running: ${path}, ${second.path} (pass --socket PATH)`, ambiguous: true });
    expect(await findControlSocket({ ...env, MONOCEROS_CONTROL_SOCKET: "/x.sock" }, uid)).toEqual({ ok: true, path: "/x.sock" });
    expect(await findControlSocket(env, 7, "/y.sock")).toEqual({ ok: true, path: "/y.sock" });
  });
});
