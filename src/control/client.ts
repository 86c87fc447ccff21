// The `ctl` side of the control socket: find the socket, send one request, read the answer lines.
// Failing to reach Monoceros is told apart from Monoceros answering with an error: the first is
// an outcome here, the second a line handed to onLine.
import { lstat, readdir } from "node:fs/promises";
import { connect } from "node:net";
import { join } from "node:path";
import { parseResponseLine, requestLine, type ControlLine, type ControlRequest } from "./protocol.js";
import { controlSocketDir, pidAlive, socketPid } from "./socket-path.js";
import { probeSocket } from "./socket-probe.js";

/** One answer line; /status of the largest config allowed is well below this. */
const RESPONSE_LINE_CHARS_MAX = 64 * 1024 * 1024;
/** Sockets in the folder that `ctl` probes; one per running Monoceros, so more is a mess to clean up. */
const SOCKETS_SCANNED_MAX = 64;
/** Connecting alone, also when the exchange itself has no time limit (logs -f). */
const CONNECT_TIMEOUT_MS = 5_000;

export const CONTROL_SOCKET_ENV = "MONOCEROS_CONTROL_SOCKET";

export type SendOutcome = { ok: true } | { ok: false; error: string };

function connectError(path: string, error: NodeJS.ErrnoException): string {
  switch (error.code) {
    case "ENOENT":
    case "ECONNREFUSED":
      return `Monoceros is not running (nothing listens on ${path})`;
    case "EACCES":
      return `cannot open ${path}: permission denied (run ctl as the user that runs Monoceros)`;
    default:
      return `cannot connect to ${path}: ${error.message}`;
  }
}

/**
 * Sends `request` and calls onLine with each answer line, until the final `{"ok":…}` line.
 * timeoutMs bounds the whole exchange (null: no bound, for logs -f); `signal` ends it early, which
 * is a normal end (Ctrl-C on logs -f).
 */
export function sendControlRequest(
  path: string,
  request: ControlRequest,
  onLine: (line: ControlLine) => void,
  timeoutMs: number | null,
  signal?: AbortSignal,
): Promise<SendOutcome> {
  return new Promise((resolve) => {
    const socket = connect(path);
    let connected = false;
    let settled = false;
    let pending = "";
    const timers: NodeJS.Timeout[] = [];
    const settle = (outcome: SendOutcome) => {
      if (settled) return;
      settled = true;
      for (const timer of timers) clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      socket.destroy();
      resolve(outcome);
    };
    const onAbort = () => settle({ ok: true });
    if (signal?.aborted) {
      settle({ ok: true });
      return;
    }
    signal?.addEventListener("abort", onAbort, { once: true });
    timers.push(setTimeout(() => {
      if (!connected) settle({ ok: false, error: `cannot connect to ${path}: no answer within ${CONNECT_TIMEOUT_MS / 1000} s` });
    }, CONNECT_TIMEOUT_MS));
    if (timeoutMs !== null) {
      timers.push(setTimeout(() => settle({ ok: false, error: `no answer from Monoceros on ${path} within ${timeoutMs / 1000} s` }), timeoutMs));
    }
    socket.setEncoding("utf8");
    socket.once("connect", () => {
      connected = true;
      socket.write(requestLine(request));
    });
    socket.on("error", (error: NodeJS.ErrnoException) => {
      settle({ ok: false, error: connected ? `control connection to ${path} failed: ${error.message}` : connectError(path, error) });
    });
    socket.on("data", (text: string) => {
      pending += text;
      let newline: number;
      while (!settled && (newline = pending.indexOf("\n")) >= 0) {
        const parsed = parseResponseLine(pending.slice(0, newline));
        pending = pending.slice(newline + 1);
        if (!parsed.ok) {
          settle({ ok: false, error: `unexpected answer on ${path}: ${parsed.error}` });
          return;
        }
        onLine(parsed.value);
        if ("ok" in parsed.value) settle({ ok: true });
      }
      if (pending.length > RESPONSE_LINE_CHARS_MAX) settle({ ok: false, error: `unexpected answer on ${path}: a line longer than ${RESPONSE_LINE_CHARS_MAX} characters` });
    });
    socket.once("close", () => settle({ ok: false, error: `Monoceros closed the control connection on ${path} without an answer` }));
  });
}

export type FindOutcome = { ok: true; path: string } | { ok: false; error: string; ambiguous: boolean };

/**
 * The socket to talk to: `--socket`, else $MONOCEROS_CONTROL_SOCKET, else the only live socket in
 * the default folder (Monoceros names its socket by its pid, so the name is not known in advance).
 */
export async function findControlSocket(env: NodeJS.ProcessEnv, uid: number, socketOption?: string): Promise<FindOutcome> {
  const given = socketOption ?? env[CONTROL_SOCKET_ENV];
  if (given !== undefined && given !== "") return { ok: true, path: given };
  const dir = controlSocketDir(env, uid);
  const notRunning = `Monoceros is not running: no control socket in ${dir} (pass --socket PATH)`;
  // The default folder may be in the shared /tmp: only one of ours that nobody else may write to is
  // trusted (another user could otherwise plant a socket that answers in Monoceros's name).
  try {
    const stats = await lstat(dir);
    if (!stats.isDirectory() || stats.uid !== uid || (stats.mode & 0o022) !== 0) {
      return { ok: false, error: `control socket folder ${dir} cannot be trusted (not a folder of uid ${uid} that only it can write to); pass --socket PATH`, ambiguous: false };
    }
  } catch {
    // missing: reported below as "not running"
  }
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return { ok: false, error: notRunning, ambiguous: false };
    if (code === "EACCES") return { ok: false, error: `cannot open ${dir}: permission denied (run ctl as the user that runs Monoceros)`, ambiguous: false };
    return { ok: false, error: `cannot read ${dir}: ${(error as Error).message}`, ambiguous: false };
  }
  // A Monoceros that was SIGKILLed leaves its socket behind (the next one to start sweeps them):
  // a default name whose pid is gone is not tried.
  const candidates = names
    .filter((name) => name.endsWith(".sock") && (socketPid(name) === null || pidAlive(socketPid(name) as number)))
    .sort()
    .slice(0, SOCKETS_SCANNED_MAX)
    .map((name) => join(dir, name));
  const probes = await Promise.all(candidates.map(async (path) => ({ path, probe: await probeSocket(path) })));
  const live = probes.filter(({ probe }) => probe.state === "live").map(({ path }) => path);
  if (live.length === 1 && live[0] !== undefined) return { ok: true, path: live[0] };
  if (live.length > 1) return { ok: false, error: `several Monoceros are running: ${live.join(", ")} (pass --socket PATH)`, ambiguous: true };
  const denied = probes.find(({ probe }) => probe.state === "error" && probe.code === "EACCES");
  if (denied !== undefined) return { ok: false, error: `cannot open ${denied.path}: permission denied (run ctl as the user that runs Monoceros)`, ambiguous: false };
  return { ok: false, error: notRunning, ambiguous: false };
}
