// The systemd notify protocol (sd_notify(3)) for workers: each worker gets a Unix datagram socket
// of its own (its path in NOTIFY_SOCKET), so a message is told apart by the socket it arrives on,
// with no need for credentials (SCM_CREDENTIALS) or for the sender's pid to be a worker's.
//
// Node has no Unix datagram sockets; the prebuilt addon of node-unix-socket has them. What its
// DgramSocketWrap does, found by reading its source and by experiment on Node 20:
// - it calls the `emit` property of the object given to its constructor (with no `this`) as
//   emit("_data", buffer, senderPath) for each datagram, emit("_error", error) when a read fails,
//   emit("close") from inside close(). Reads drain the socket in one native loop, one emit each;
//   a read error other than EAGAIN is emitted and the loop reads on (a lasting one would spin, but
//   none is expected on a bound Unix datagram socket).
// - a JS exception thrown out of `emit` aborts the whole process (a Rust panic across the FFI), so
//   nothing may escape our handler.
// - close() called from inside `emit` makes that loop read the closed descriptor for ever (EBADF
//   is reported, not ended on): a socket closed while its own handler runs is closed later.
// - the open socket is a libuv poll handle that keeps the event loop alive (there is no unref);
//   close() releases it.
// - datagrams are read into 65,535 bytes (longer ones arrive cut short); descriptors passed with
//   SCM_RIGHTS (systemd-notify sends one with BARRIER=1) are discarded by the kernel.
// Memory stays bounded under a flood: nothing is queued on our side, and the kernel queues at most
// net.unix.max_dgram_qlen datagrams within SO_RCVBUF bytes per socket before a sender waits.
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, readlinkSync, rmSync, statSync, unlinkSync } from "node:fs";
import { createRequire } from "node:module";
import { constants as osConstants, tmpdir } from "node:os";
import { join } from "node:path";

export interface NotifyMessage {
  /** READY=1 */
  ready: boolean;
  /** WATCHDOG=1 (a keepalive; WATCHDOG=trigger is not one and is ignored) */
  watchdog: boolean;
  /** STOPPING=1 */
  stopping: boolean;
  /** STATUS=… (last one in the datagram), at most NOTIFY_STATUS_MAX_CHARS, control characters replaced; null if absent. */
  status: string | null;
}

/**
 * What is read of one datagram; a longer one counts only by its whole lines within this (systemd
 * reads 4096 bytes too, though it ignores a longer datagram altogether).
 */
export const NOTIFY_DATAGRAM_MAX_BYTES = 4096;
export const NOTIFY_STATUS_MAX_CHARS = 200;

/** C0 and C1 control characters, U+0000-U+001F and U+007F-U+009F (a newline never reaches a status: it separates assignments). */
const CONTROL_CHARACTERS = /\p{Cc}/gu;
const REPLACEMENT = "\ufffd";
const NEWLINE = 0x0a;

/** Parses one datagram: newline-separated KEY=VALUE assignments; unknown keys ignored; WATCHDOG=trigger is not a keepalive (ignore it). Pure. */
export function parseNotifyMessage(datagram: Buffer): NotifyMessage {
  const message: NotifyMessage = { ready: false, watchdog: false, stopping: false, status: null };
  let end = datagram.length;
  if (end > NOTIFY_DATAGRAM_MAX_BYTES) {
    // Cut at the last newline within the limit: a line cut short could say something it did not.
    end = datagram.lastIndexOf(NEWLINE, NOTIFY_DATAGRAM_MAX_BYTES);
    if (end < 0) return message;
  }
  for (const line of datagram.toString("utf8", 0, end).split("\n")) {
    if (line === "READY=1") message.ready = true;
    else if (line === "WATCHDOG=1") message.watchdog = true;
    else if (line === "STOPPING=1") message.stopping = true;
    else if (line.startsWith("STATUS=")) message.status = cleanStatus(line.slice("STATUS=".length));
  }
  return message;
}

/** Control characters replaced (it ends up in logs and JSON), cut to NOTIFY_STATUS_MAX_CHARS code points. */
function cleanStatus(raw: string): string {
  const status = raw.replace(CONTROL_CHARACTERS, REPLACEMENT);
  if (status.length <= NOTIFY_STATUS_MAX_CHARS) return status;
  return Array.from(status).slice(0, NOTIFY_STATUS_MAX_CHARS).join("");
}

/** The addon's datagram socket, as far as we use it. */
interface DgramSocketWrap {
  init(self: object): void;
  startRecv(): void;
  bind(path: string): void;
  close(): void;
}

type AddonEmit = (event: string, ...args: unknown[]) => void;

interface DgramAddon {
  DgramSocketWrap: new (emitter: { emit: AddonEmit }) => DgramSocketWrap;
}

function isDgramAddon(value: unknown): value is DgramAddon {
  return typeof value === "object" && value !== null && typeof Reflect.get(value, "DgramSocketWrap") === "function";
}

/** The addon or why it is missing, looked for once (see src/processbin/listen.ts for the platform packages). */
let addon: { ok: true; addon: DgramAddon } | { ok: false; reason: string } | null = null;

function loadAddon(): { ok: true; addon: DgramAddon } | { ok: false; reason: string } {
  if (addon !== null) return addon;
  const { platform, arch } = process;
  if (platform !== "linux") return (addon = { ok: false, reason: `notify sockets need Linux, not ${platform}` });
  const requireCommonJs = createRequire(import.meta.url);
  const musl = !(process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header?.glibcVersionRuntime;
  const name = `node-unix-socket-${platform}-${arch}-${musl ? "musl" : "gnu"}`;
  let loaded: unknown;
  try {
    loaded = requireCommonJs(name);
  } catch {
    return (addon = { ok: false, reason: `notify sockets need the optional package ${name} (run npm ci)` });
  }
  addon = isDgramAddon(loaded) ? { ok: true, addon: loaded } : { ok: false, reason: `${name} does not export DgramSocketWrap` };
  return addon;
}

/** Whether notify sockets can be created on this machine (the addon loads); reason when not. */
export function notifySupport(): { ok: true } | { ok: false; reason: string } {
  const loaded = loadAddon();
  return loaded.ok ? { ok: true } : loaded;
}

/** A socket's path must fit sockaddr_un.sun_path (108 bytes with its terminating NUL). */
const SOCKET_PATH_MAX_BYTES = 107;
const KEY_MAX_CHARS = 32;
const KEY_PATTERN = /^[A-Za-z0-9_-]+$/;

/**
 * How many of the addon's emit calls are running: while one is, a native close is put off (see
 * the top of this file). Shared by every NotifySockets, as is the event loop.
 */
let emitDepth = 0;

interface OpenSocket {
  readonly key: string;
  readonly path: string;
  readonly wrap: DgramSocketWrap;
  errorReported: boolean;
}

/** `<tmpdir>/monoceros-notify-<pid of the Monoceros that made it>-XXXXXX/`. */
const FOLDER_PREFIX = "monoceros-notify-";
/** …-<pid namespace>-<pid>-XXXXXX: a pid means a process only in its own pid namespace (containers sharing /tmp). */
const FOLDER_PATTERN = /^monoceros-notify-(\d+)-(\d+)-[A-Za-z0-9]{6}$/;

let ownPidNamespace: string | null = null;

/** This process's pid namespace (the inode in /proc/self/ns/pid), or 0 where there is none to read; read once. */
function pidNamespace(): string {
  if (ownPidNamespace !== null) return ownPidNamespace;
  try {
    ownPidNamespace = /\[(\d+)\]/.exec(readlinkSync("/proc/self/ns/pid"))?.[1] ?? "0";
  } catch {
    ownPidNamespace = "0";
  }
  return ownPidNamespace;
}

/**
 * A Monoceros killed with SIGKILL cannot remove its folder: the next one removes those of ours
 * whose Monoceros is gone (a pid reused since only keeps a folder of dead sockets a while longer).
 */
function removeFoldersOfDeadInstances(parent: string): void {
  let names: string[];
  try {
    names = readdirSync(parent);
  } catch {
    return;
  }
  const uid = process.getuid?.();
  for (const name of names) {
    const [, namespace, pid] = FOLDER_PATTERN.exec(name) ?? [];
    if (pid === undefined || namespace !== pidNamespace() || isRunning(Number(pid))) continue;
    const path = join(parent, name);
    try {
      if (uid !== undefined && statSync(path).uid !== uid) continue;
      rmSync(path, { recursive: true, force: true });
    } catch {
      // someone else's, or gone already
    }
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

export class NotifySockets {
  private readonly directory: string;
  private readonly sockets = new Map<string, OpenSocket>();
  private readonly addon: DgramAddon;
  private closedAll = false;

  /** Creates a private directory (mkdtemp under os.tmpdir(), mode 0700) for the sockets. Throws a one-line Error if that fails or the addon is missing. */
  constructor(
    private readonly onMessage: (key: string, message: NotifyMessage) => void,
    private readonly onProblem: (message: string) => void,
  ) {
    const loaded = loadAddon();
    if (!loaded.ok) throw new Error(loaded.reason);
    this.addon = loaded.addon;
    const parent = tmpdir();
    // mkdtemp adds 6 characters; then "/" and the longest key.
    const prefix = `${FOLDER_PREFIX}${pidNamespace()}-${process.pid}-`;
    const longestPathBytes = Buffer.byteLength(join(parent, `${prefix}XXXXXX`)) + 1 + KEY_MAX_CHARS;
    if (longestPathBytes > SOCKET_PATH_MAX_BYTES) {
      throw new Error(`cannot create notify sockets under ${parent}: its path is too long for a socket address (set TMPDIR to a shorter one)`);
    }
    try {
      removeFoldersOfDeadInstances(parent);
      this.directory = mkdtempSync(join(parent, prefix)); // mode 0700
    } catch (error) {
      throw new Error(`cannot create a folder for notify sockets under ${parent}: ${oneLine(error)}`);
    }
  }

  /** The folder was opened to other users (0711) for a worker run as one; once is enough. */
  private traversable = false;

  /**
   * Binds a socket for this key (e.g. "0-12"; only [A-Za-z0-9_-] allowed) and returns its path
   * (always < 108 bytes). Opening an open key returns the same path. Throws a one-line Error when
   * the key is malformed, after closeAll(), or when the socket cannot be made (e.g. EMFILE).
   * owner: a worker run as another user (pool user/group) gets the socket file as its own, and
   * the folder becomes traversable (0711, still not listable), so it may send to it and nobody else.
   */
  open(key: string, owner: { uid?: number; gid?: number } = {}): string {
    if (!KEY_PATTERN.test(key) || key.length > KEY_MAX_CHARS) throw new Error(`notify socket key must be 1 to ${KEY_MAX_CHARS} of [A-Za-z0-9_-], got "${key.slice(0, KEY_MAX_CHARS)}"`);
    if (this.closedAll) throw new Error(`cannot open a notify socket for ${key}: the notify sockets are closed`);
    const existing = this.sockets.get(key);
    // A socket file removed under it (a /tmp cleaner, an operator) is bound again.
    if (existing !== undefined && existsSync(existing.path)) return existing.path;
    if (existing !== undefined) this.close(key);
    const path = join(this.directory, key);
    let wrap: DgramSocketWrap;
    try {
      wrap = new this.addon.DgramSocketWrap({ emit: (event, ...args) => this.onEmit(socket, event, args) });
    } catch (error) {
      throw withErrno(`cannot create the notify socket for ${key}: ${oneLine(error)}`, error);
    }
    const socket: OpenSocket = { key, path, wrap, errorReported: false };
    try {
      // The addon's own order: poll, then bind.
      wrap.init(wrap);
      wrap.startRecv();
    } catch (error) {
      // Left unclosed: the addon's close() on a socket whose poll never started touches an
      // uninitialised libuv handle. Only a failing libuv gets here.
      throw withErrno(`cannot watch the notify socket for ${key}: ${oneLine(error)}`, error);
    }
    try {
      wrap.bind(path);
    } catch (error) {
      closeNative(wrap);
      throw withErrno(`cannot bind the notify socket ${path}: ${oneLine(error)}`, error);
    }
    this.sockets.set(key, socket);
    if (owner.uid !== undefined || owner.gid !== undefined) {
      try {
        if (!this.traversable) chmodSync(this.directory, 0o711);
        this.traversable = true;
        chownSync(path, owner.uid ?? -1, owner.gid ?? -1);
      } catch (error) {
        this.close(key);
        throw withErrno(`cannot give the notify socket ${path} to the worker's user: ${oneLine(error)}`, error);
      }
    }
    return path;
  }

  /** Closes the socket of this key and removes its file; whatever it still receives is dropped. Closing a key that is not open does nothing. */
  close(key: string): void {
    const socket = this.sockets.get(key);
    if (socket === undefined) return;
    this.sockets.delete(key);
    closeNative(socket.wrap);
    try {
      unlinkSync(socket.path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") this.onProblem(`cannot remove the notify socket ${socket.path}: ${oneLine(error)}`);
    }
  }

  /** Closes every socket and removes the directory, so that nothing of them keeps the event loop alive. Idempotent. */
  closeAll(): void {
    if (this.closedAll) return;
    this.closedAll = true;
    for (const socket of this.sockets.values()) closeNative(socket.wrap);
    this.sockets.clear();
    try {
      rmSync(this.directory, { recursive: true, force: true });
    } catch (error) {
      this.onProblem(`cannot remove the notify socket folder ${this.directory}: ${oneLine(error)}`);
    }
  }

  /** Called by the addon, inside its read loop: must not throw (see the top of this file). */
  private onEmit(socket: OpenSocket, event: string, args: unknown[]): void {
    emitDepth++;
    try {
      if (this.sockets.get(socket.key) !== socket) return; // closed (or closed and opened again)
      const [payload] = args;
      if (event === "_data" && Buffer.isBuffer(payload)) {
        this.onMessage(socket.key, parseNotifyMessage(payload));
      } else if (event === "_error" && !socket.errorReported) {
        socket.errorReported = true;
        this.onProblem(`notify socket ${socket.path} of ${socket.key}: ${oneLine(payload)}`);
      }
    } catch (error) {
      // A bug in a callback: thrown again outside the addon, where it is an ordinary uncaught exception.
      setImmediate(() => {
        throw error;
      });
    } finally {
      emitDepth--;
    }
  }
}

/** Closes now, or, inside an emit, as soon as the addon's read loop has returned. */
function closeNative(wrap: DgramSocketWrap): void {
  const close = (): void => {
    try {
      wrap.close();
    } catch {
      // the descriptor could not be closed: nothing more can be done with it
    }
  };
  if (emitDepth > 0) setImmediate(close);
  else close();
}

const ERRNO_NAMES = new Map(Object.entries(osConstants.errno).map(([name, number]) => [number, name]));

/** An Error whose code is the errno in the addon's message ("… (os error 24)" is EMFILE), so callers can tell a lack of resources. */
function withErrno(message: string, cause: unknown): Error {
  const error: NodeJS.ErrnoException = new Error(message);
  const number = /os error (\d+)/.exec(oneLine(cause))?.[1];
  const name = number === undefined ? (cause as NodeJS.ErrnoException | undefined)?.code : ERRNO_NAMES.get(Number(number));
  if (name !== undefined) error.code = name;
  return error;
}

function oneLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.replace(/\s+/g, " ").trim();
}
