// Where the control socket lives. Anyone who can connect to it can restart and scale workers, so
// it lives in a folder of our own (mode 0700) and is itself mode 0600. The folder is in
// XDG_RUNTIME_DIR (per user, cleaned at logout) or else the shared temporary folder, where anyone
// could create `monoceros-<uid>` first: so an existing folder is only used if it is ours and
// nobody else may write to it.
import { lstatSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** sun_path holds 108 bytes including the terminating NUL. */
export const SOCKET_PATH_BYTES_MAX = 107;
const CONTROL_DIR_MODE = 0o700;

/** `$XDG_RUNTIME_DIR/monoceros-<uid>`, or the same under os.tmpdir(). */
export function controlSocketDir(env: NodeJS.ProcessEnv, uid: number): string {
  const runtimeDir = env.XDG_RUNTIME_DIR;
  return join(runtimeDir !== undefined && runtimeDir !== "" ? runtimeDir : tmpdir(), `monoceros-${uid}`);
}

/** One socket per Monoceros process: several can run as one user, and `ctl` finds them by scanning. */
export function defaultControlSocketPath(env: NodeJS.ProcessEnv, uid: number, pid: number): string {
  return join(controlSocketDir(env, uid), `${pid}.sock`);
}

/** Null, or why this path cannot be a unix socket's. */
export function socketPathProblem(path: string): string | null {
  const bytes = Buffer.byteLength(path, "utf8");
  if (bytes <= SOCKET_PATH_BYTES_MAX) return null;
  return `control socket path ${path} is ${bytes} bytes, over the limit of ${SOCKET_PATH_BYTES_MAX} bytes for a unix socket path; use a shorter one`;
}

/** Creates the folder (mode 0700), or checks that an existing one is a folder of `uid`'s that only it can write to; throws a one-line Error if not. */
export function ensureControlDir(dir: string, uid: number = process.getuid?.() ?? 0): void {
  try {
    mkdirSync(dir, { mode: CONTROL_DIR_MODE });
    return;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw new Error(`cannot create the control socket folder ${dir}: ${(error as Error).message}`);
  }
  // lstat: a symlink planted in /tmp must not lead us into someone else's folder.
  const stats = lstatSync(dir);
  const problem = !stats.isDirectory()
    ? "it exists and is not a folder"
    : stats.uid !== uid
      ? `it belongs to uid ${stats.uid}, not to us (uid ${uid})`
      : (stats.mode & 0o022) !== 0
        ? `group or others may write to it (mode ${(stats.mode & 0o777).toString(8).padStart(4, "0")})`
        : null;
  if (problem !== null) {
    throw new Error(`control socket folder ${dir} cannot be trusted: ${problem}; remove it, or pass a socket path in a folder of your own`);
  }
}

/** `<pid>.sock`: the default name, which tells whose socket it is. */
const PID_SOCKET_NAME = /^(\d{1,10})\.sock$/;

/** Whether a process with this pid exists here (EPERM: it does, as another user's). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** The pid in a default socket name, or null for any other name. */
export function socketPid(name: string): number | null {
  const match = PID_SOCKET_NAME.exec(name);
  return match === null ? null : Number(match[1]);
}
