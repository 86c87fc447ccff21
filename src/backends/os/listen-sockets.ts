// Listening sockets that Monoceros holds for its workers, handed to each worker with systemd's
// socket activation protocol (sd_listen_fds(3)). A socket lives as long as any process holds it:
// held here, it outlives every worker, so a connection that arrives while no worker accepts (all
// of them restarting, one just crashed) waits in the socket's backlog for the next worker instead
// of being refused, and one queued behind a worker killed with SIGKILL is not reset.
//
// Monoceros itself must never accept from these sockets: a connection it accepted would be lost.
// Node only calls listen() through net.Server, whose handle accepts as soon as the event loop
// polls. So listen() is done by a short-lived child on inherited copies of the descriptors, and
// the child exits from its listening callback, which runs on process.nextTick, before its event
// loop ever polls. Being listening is a state of the socket, not of a descriptor: it stays.
//
// The sockets come from node-unix-socket's addon (socketNewSoReuseportFd), which creates them
// without SOCK_CLOEXEC: every child Monoceros spawns inherits a copy under the same number (Node
// has no fcntl to change that). A copy in an unrelated long-lived process would keep a socket,
// and its port, open after Monoceros closed it; coverHeldListenSockets() is the remedy for spawns.
import { spawnSync } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { createRequire } from "node:module";
import { isIPv4, isIPv6 } from "node:net";

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
  readonly family: "ipv4" | "ipv6";
}

export interface ListenSocketOptions {
  /** true: one socket of several on this port (SO_REUSEPORT); false: the one socket on it. */
  readonly reusePort: boolean;
  /** listen(2)'s backlog: connections queued while no worker accepts (the kernel caps it at net.core.somaxconn). */
  readonly backlog: number;
}

export interface ListenSocketRequest extends ListenSocketOptions {
  readonly address: ListenAddress;
}

/** What to spawn for a socket-activated worker; spawn it with detached: true. */
export interface SocketActivationSpawn {
  file: string;
  args: string[];
  stdio: ("ignore" | "pipe" | number)[];
  /** Only the activation variables: merge them over the worker's environment. */
  env: Record<string, string>;
}

/** A helper (see the top of this file) that takes longer is killed: it only starts Node and calls listen(). */
export const LISTEN_HELPER_TIMEOUT_MS = 10_000;
/** What is kept of a helper's stderr; one line is expected. */
const HELPER_STDERR_MAX_BYTES = 64 * 1024;
/** listen(2) takes an int; Linux caps it at net.core.somaxconn (4096 by default) without a word. */
export const BACKLOG_MAX = 65_535;
/** Descriptors handed to one worker. */
export const SOCKET_ACTIVATION_FDS_MAX = 64;
/** systemd's FDNAME_MAX for FileDescriptorName=. */
const FD_NAME_MAX_CHARS = 255;
/** SD_LISTEN_FDS_START: the first handed-over descriptor is 3, the next 4, and so on. */
const FIRST_LISTEN_FD = 3;
/** Printable ASCII except ':' (the separator in LISTEN_FDNAMES), as systemd's fdname_is_valid(). */
const FD_NAME = /^[\x20-\x39\x3b-\x7e]+$/;

/** Descriptors opened here and not closed yet; every one is inherited by every child (see the top). */
const heldFds = new Set<number>();
/** Handed over to a draining server (lane-drain.ts), not closed yet: still covered in every spawn. */
const drainingFds = new Set<number>();

/**
 * The child's script. "probe" ADDRESSES_JSON: a plain listen (never SO_REUSEPORT) on each address,
 * exit 0 when all succeed; "listen" BACKLOG COUNT: listen() on fds 3, 4, …. Either exits from its
 * listening callbacks (the lookup of an IP literal is a nextTick too), before the event loop polls,
 * so nothing is ever accepted. A failure is one JSON line on stderr and exit 1.
 * - The backlog goes as listen()'s second argument: Node 20 ignores options.backlog next to an fd.
 * - Node makes a socket non-blocking when it opens it, and that flag belongs to the socket shared
 *   with every worker; it is cleared again (through the handle's setBlocking, not a public API:
 *   where it is missing the socket stays non-blocking) because systemd hands over blocking
 *   sockets, and a worker calling accept() without polling first counts on it.
 */
const HELPER_SCRIPT = `
const net = require("node:net");
const [mode, arg, countText] = process.argv.slice(1);
const fail = (index, error) => {
  process.stderr.write(JSON.stringify({ index, code: error.code ?? "", message: error.message }) + "\\n");
  process.exit(1);
};
const targets = mode === "probe" ? JSON.parse(arg).map((a) => ({ host: a.host, port: a.port, exclusive: true })) : Array.from({ length: Number(countText) }, (_, i) => ({ fd: ${FIRST_LISTEN_FD} + i }));
let pending = targets.length;
targets.forEach((target, index) => {
  const server = net.createServer();
  server.on("error", (error) => fail(index, error));
  const done = () => {
    if (mode === "listen") server._handle?.setBlocking?.(true);
    if (--pending === 0) process.exit(0);
  };
  if (mode === "probe") server.listen(target, done);
  else server.listen(target, Number(arg), done);
});
`;

interface HelperFailure {
  index: number;
  code: string;
  message: string;
}

/** Runs the helper; null when it succeeded, else what failed (index -1: the helper itself). */
function runHelper(args: readonly string[], fds: readonly number[]): HelperFailure | null {
  const result = spawnSync(process.execPath, ["-e", HELPER_SCRIPT, ...args], {
    stdio: ["ignore", "ignore", "pipe", ...fds],
    // Nothing of ours (NODE_OPTIONS could load a module whose timers would let the loop poll).
    env: {},
    timeout: LISTEN_HELPER_TIMEOUT_MS,
    killSignal: "SIGKILL",
    maxBuffer: HELPER_STDERR_MAX_BYTES,
    encoding: "utf8",
  });
  if (result.error !== undefined) {
    const code = (result.error as NodeJS.ErrnoException).code ?? "";
    const why = code === "ETIMEDOUT" ? `did not finish within ${LISTEN_HELPER_TIMEOUT_MS / 1000} s` : oneLine(result.error);
    return { index: -1, code, message: `the helper process (${process.execPath}) ${why}` };
  }
  if (result.status === 0) return null;
  const firstLine = (result.stderr ?? "").split("\n").find((line) => line.trim() !== "") ?? "";
  try {
    const reported = JSON.parse(firstLine) as HelperFailure;
    if (typeof reported.index === "number" && typeof reported.message === "string") return reported;
  } catch {
    // not ours: Node itself failed (a crash prints a stack trace)
  }
  const ending = result.signal !== null ? `was killed by ${result.signal}` : `exited with ${result.status}`;
  return { index: -1, code: "", message: `the helper process (${process.execPath}) ${ending}${firstLine === "" ? "" : `: ${oneLine(firstLine)}`}` };
}

/**
 * Makes bound sockets listen with this backlog, in one helper run for all of them (start-up pays it
 * once); nothing is accepted from them, not even a connection already queued on one that listens.
 * Throws a one-line Error naming the descriptor when listen() fails.
 */
export function makeListening(fds: readonly number[], backlog: number): void {
  if (!Number.isInteger(backlog) || backlog < 1 || backlog > BACKLOG_MAX) throw new Error(`a listen backlog must be an integer from 1 to ${BACKLOG_MAX}, got ${backlog}`);
  if (fds.length === 0) return;
  const failure = runHelper(["listen", String(backlog), String(fds.length)], fds);
  if (failure === null) return;
  const which = failure.index >= 0 ? `socket fd ${fds[failure.index]}` : `sockets (fds ${fds.join(", ")})`;
  throw new Error(`cannot make the ${which} listen: ${failure.message}`);
}

/**
 * Opens a bound and listening socket that nobody in Monoceros accepts from; see openListenSockets.
 */
export function openListenSocket(address: ListenAddress, options: ListenSocketOptions): number {
  const [fd] = openListenSockets([{ address, ...options }]);
  if (fd === undefined) throw new Error(`no socket was opened for ${describeAddress(address)}`);
  return fd;
}

/**
 * Opens one socket per request, in order, each bound and listening, with few helper runs for the
 * batch (one to check the shared addresses are free, one per distinct backlog to listen), each
 * blocking the event loop while it runs (about 40 ms, at most LISTEN_HELPER_TIMEOUT_MS). Throws a
 * one-line Error naming the address when one cannot be opened; then none stays open.
 */
export function openListenSockets(requests: readonly ListenSocketRequest[]): number[] {
  for (const { address, backlog } of requests) checkRequest(address, backlog);
  // The addon always sets SO_REUSEPORT (and SO_REUSEADDR): alone, it would quietly share a port
  // with any other SO_REUSEPORT listener of our user (a stray worker, a second Monoceros). A
  // shared socket must be the only one, so an exclusive listen (no SO_REUSEPORT) is tried on its
  // address first: it fails with EADDRINUSE when anything at all listens there. Node's listen() is
  // asynchronous, so it runs in the helper too. A listener appearing between that check and our
  // bind goes unnoticed.
  const shared = requests.filter((request) => !request.reusePort).map((request) => request.address);
  const counts = new Map<string, number>();
  for (const { address } of requests) counts.set(describeAddress(address), (counts.get(describeAddress(address)) ?? 0) + 1);
  const repeated = shared.find((address) => (counts.get(describeAddress(address)) ?? 0) > 1);
  if (repeated !== undefined) throw new Error(`cannot listen on ${describeAddress(repeated)} twice without reuse_port`);
  if (shared.length > 0) {
    const failure = runHelper(["probe", JSON.stringify(shared)], []);
    if (failure !== null) throw new Error(`cannot listen on ${failure.index >= 0 ? describeAddress(shared[failure.index] as ListenAddress) : "the listen addresses"}: ${explain(failure)}`);
  }
  const fds: number[] = [];
  try {
    for (const { address } of requests) fds.push(bindReusePort(address));
    for (const backlog of new Set(requests.map((request) => request.backlog))) {
      makeListening(fds.filter((_, index) => requests[index]?.backlog === backlog), backlog);
    }
  } catch (error) {
    for (const fd of fds) closeQuietly(fd);
    throw error;
  }
  for (const fd of fds) heldFds.add(fd);
  return fds;
}

function checkRequest(address: ListenAddress, backlog: number): void {
  const matches = address.family === "ipv4" ? isIPv4(address.host) : isIPv6(address.host);
  if (!matches) throw new Error(`cannot listen on ${describeAddress(address)}: "${address.host}" is not an ${address.family === "ipv4" ? "IPv4" : "IPv6"} address`);
  if (!Number.isInteger(address.port) || address.port < 1 || address.port > 65_535) throw new Error(`cannot listen on ${describeAddress(address)}: the port must be from 1 to 65535`);
  if (!Number.isInteger(backlog) || backlog < 1 || backlog > BACKLOG_MAX) throw new Error(`cannot listen on ${describeAddress(address)}: the backlog must be an integer from 1 to ${BACKLOG_MAX}, got ${backlog}`);
}

function bindReusePort(address: ListenAddress): number {
  try {
    return loadAddon().socketNewSoReuseportFd(address.family, address.port, address.host);
  } catch (error) {
    throw new Error(`cannot bind a socket to ${describeAddress(address)}: ${oneLine(error)}`);
  }
}

function explain(failure: HelperFailure): string {
  if (failure.code === "EADDRINUSE") return "the address is already in use (another program, or a worker left from an earlier run, listens there)";
  if (failure.code === "EADDRNOTAVAIL") return "the address is not one of this machine's";
  if (failure.code === "EACCES") return "permission denied (ports below 1024 need privileges)";
  return failure.message;
}

/**
 * Closes Monoceros' descriptor of a socket opened here. The socket itself closes, resetting the
 * connections still queued on it, once no worker holds a copy either. Throws on a descriptor that
 * was not opened here (closing another would pull a descriptor out from under libuv).
 */
export function closeListenSocket(fd: number): void {
  if (!heldFds.delete(fd)) throw new Error(`fd ${fd} is not a listening socket opened by Monoceros`);
  try {
    closeSync(fd);
  } catch (error) {
    throw new Error(`cannot close the listening socket fd ${fd}: ${oneLine(error)}`);
  }
}

/**
 * Hands a socket opened here over to Node (a net.Server that will own and close it): Monoceros no
 * longer counts it as held, so later spawns no longer cover its number (Node's fds are O_CLOEXEC,
 * this one is not: the server that takes it must close it soon, see lane-drain.ts).
 */
export function handOverListenSocket(fd: number): number {
  if (!heldFds.delete(fd)) throw new Error(`fd ${fd} is not a listening socket opened by Monoceros`);
  // Still open, and not close-on-exec, until the server that took it has closed it: covered meanwhile.
  drainingFds.add(fd);
  return fd;
}

/** The server that took a handed-over socket has closed it: its number may be reused by anything now. */
export function handedOverSocketClosed(fd: number): void {
  drainingFds.delete(fd);
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // the descriptor is gone either way
  }
}

/** The highest descriptor number covered: the stdio array grows to it. */
const COVERED_FD_MAX = 4095;
/** Opened on first use and kept: the stand-in put over inherited copies of held sockets. */
let devNullFd: number | null = null;

/**
 * The stdio array for spawn() with the copies of every held listening socket that the child would
 * inherit under their own numbers (see the top of this file) replaced by /dev/null, except where
 * the array already puts something. Any spawn in Monoceros may use it; socketActivationSpawn does.
 */
export function coverHeldListenSockets(stdio: readonly ("ignore" | "pipe" | number)[]): ("ignore" | "pipe" | number)[] {
  const covered = [...stdio];
  for (const fd of [...heldFds, ...drainingFds].sort((a, b) => a - b)) {
    // Beyond the limit the copy stays: held sockets are opened at start-up and get low numbers.
    if (fd < covered.length || fd > COVERED_FD_MAX) continue;
    devNullFd ??= openSync("/dev/null", "r"); // O_CLOEXEC, as every descriptor Node opens
    while (covered.length < fd) covered.push("ignore");
    covered.push(devNullFd);
  }
  return covered;
}

/**
 * How to spawn `exec args…` as a socket-activated worker: the descriptors become its 3, 4, …,
 * LISTEN_FDS their count, LISTEN_FDNAMES the names joined by ':'. sd_listen_fds() ignores all of
 * it unless LISTEN_PID is the worker's own pid, which the spawner cannot know before spawn() has
 * returned: so the worker is started through /bin/sh, which sets LISTEN_PID to its own pid ($$)
 * and then exec()s the worker, which keeps that pid (and the process group of detached: true).
 */
export function socketActivationSpawn(exec: string, args: readonly string[], fds: readonly number[], names: readonly string[]): SocketActivationSpawn {
  if (fds.length !== names.length) throw new Error(`socket activation needs one name per socket, got ${fds.length} sockets and ${names.length} names`);
  if (fds.length < 1 || fds.length > SOCKET_ACTIVATION_FDS_MAX) throw new Error(`socket activation hands over 1 to ${SOCKET_ACTIVATION_FDS_MAX} sockets, got ${fds.length}`);
  const badName = names.find((name) => !FD_NAME.test(name) || name.length > FD_NAME_MAX_CHARS);
  if (badName !== undefined) throw new Error(`a socket name must be 1 to ${FD_NAME_MAX_CHARS} printable ASCII characters other than ':', got ${JSON.stringify(badName.slice(0, FD_NAME_MAX_CHARS))}`);
  return {
    file: "/bin/sh",
    args: ["-c", 'LISTEN_PID=$$; export LISTEN_PID; exec "$0" "$@"', exec, ...args],
    stdio: coverHeldListenSockets(["ignore", "pipe", "pipe", ...fds]),
    env: { LISTEN_FDS: String(fds.length), LISTEN_FDNAMES: names.join(":") },
  };
}

export function describeAddress(address: ListenAddress): string {
  return address.family === "ipv6" ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

/** The native part of node-unix-socket, as far as it is used here. */
interface ReuseportAddon {
  socketNewSoReuseportFd(domain: "ipv4" | "ipv6", port: number, host: string): number;
}

let addon: ReuseportAddon | null = null;

/** Loaded on first use (see src/processbin/listen.ts for why the platform package directly). */
function loadAddon(): ReuseportAddon {
  if (addon !== null) return addon;
  const { platform, arch } = process;
  if (platform !== "linux") throw new Error(`listening sockets held by Monoceros need Linux, not ${platform}`);
  const musl = !(process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header?.glibcVersionRuntime;
  const name = `node-unix-socket-${platform}-${arch}-${musl ? "musl" : "gnu"}`;
  let loaded: unknown;
  try {
    loaded = createRequire(import.meta.url)(name);
  } catch {
    throw new Error(`listening sockets held by Monoceros need the optional package ${name} (run npm ci)`);
  }
  if (typeof loaded !== "object" || loaded === null || typeof Reflect.get(loaded, "socketNewSoReuseportFd") !== "function") {
    throw new Error(`${name} does not export socketNewSoReuseportFd`);
  }
  addon = loaded as ReuseportAddon;
  return addon;
}

function oneLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.replace(/\s+/g, " ").trim();
}
