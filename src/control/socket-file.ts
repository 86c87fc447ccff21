// The control socket's file: what may be replaced at start, how it is created so that nobody can
// connect before its mode is 0600, and how it is removed at exit without removing anyone else's.
import { chmod, link, lstat, mkdtemp, readdir, rm, unlink } from "node:fs/promises";
import type { Server } from "node:net";
import { dirname, join } from "node:path";
import { pidAlive, SOCKET_PATH_BYTES_MAX, socketPathProblem, socketPid } from "./socket-path.js";
import { probeSocket } from "./socket-probe.js";

const SOCKET_MODE = 0o600;
/** mkdtemp adds six characters to the prefix. */
const STAGING_FOLDER_PREFIX = ".ctl-";
const STAGING_SOCKET_NAME = "s";

/** A socket file as we created or found it: the same path with another inode is someone else's. */
export interface SocketFile {
  path: string;
  dev: number;
  ino: number;
}

const errorText = (error: unknown) => (error instanceof Error ? error.message : String(error));

/** Null, or why `path` (or the staging path bindSocketFile uses next to it) cannot be bound. */
export function bindPathProblem(path: string): string | null {
  const problem = socketPathProblem(path);
  if (problem !== null) return problem;
  const staging = join(dirname(path), `${STAGING_FOLDER_PREFIX}XXXXXX`, STAGING_SOCKET_NAME);
  if (socketPathProblem(staging) === null) return null;
  return `control socket path ${path}: its folder path is too long; Monoceros first binds the socket as ${staging} (${Buffer.byteLength(staging)} bytes, over the limit of ${SOCKET_PATH_BYTES_MAX} bytes), so use a shorter folder`;
}

/**
 * Makes way for a new socket at `path`: nothing there, or a socket nobody listens on (left by a
 * Monoceros killed with SIGKILL), which is removed. Throws if a Monoceros listens there, or if it
 * is any other kind of file: that is the user's, and never deleted.
 */
export async function removeStaleSocket(path: string): Promise<void> {
  let stats;
  try {
    stats = await lstat(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
    throw new Error(`cannot check the control socket path ${path}: ${errorText(error)}`);
  }
  if (!stats.isSocket()) throw new Error(`${path} exists and is not a socket; Monoceros will not replace it: remove it or choose another control socket path`);
  const probe = await probeSocket(path);
  if (probe.state === "live") throw new Error(`another Monoceros is running with the control socket ${path} (see: monoceros ctl --socket ${path} status)`);
  if (probe.state === "error") throw new Error(`cannot check whether ${path} is in use: ${probe.message}`);
  if (probe.state === "stale") {
    try {
      await unlinkSocketFile({ path, dev: stats.dev, ino: stats.ino });
    } catch (error) {
      throw new Error(`cannot remove the stale control socket ${path}: ${errorText(error)}`);
    }
  }
}

/**
 * Binds `server` and makes its socket appear at `path` with mode 0600. The socket is bound inside
 * a fresh folder of mode 0700 (mkdtemp), set to 0600, and only then hard-linked to `path`:
 * nobody can connect before the mode is right, and link(2) fails instead of replacing a file that
 * appeared meanwhile. Not process.umask(0o177) around listen(): the umask is process-wide, and
 * libuv's thread pool may be creating other files at that moment. Binding elsewhere also keeps
 * libuv, which unlinks the path it bound when the server closes, away from `path`: that is left
 * to unlinkSocketFile, which checks that the file is still ours.
 */
export async function bindSocketFile(server: Server, path: string): Promise<SocketFile> {
  let folder: string;
  try {
    folder = await mkdtemp(join(dirname(path), STAGING_FOLDER_PREFIX));
  } catch (error) {
    throw new Error(`cannot create the control socket ${path}: ${errorText(error)}`);
  }
  const staging = join(folder, STAGING_SOCKET_NAME);
  try {
    await listen(server, staging);
    await chmod(staging, SOCKET_MODE);
    try {
      await link(staging, path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "EEXIST") throw new Error(`cannot create the control socket ${path}: it appeared while Monoceros was starting (another Monoceros starting with the same socket?)`);
      throw new Error(`cannot create the control socket ${path}: ${errorText(error)}`);
    }
    const stats = await lstat(path);
    return { path, dev: stats.dev, ino: stats.ino };
  } finally {
    await rm(folder, { recursive: true, force: true });
  }
}

/** Removes the file only if it is still that socket (not one another Monoceros put there since). */
export async function unlinkSocketFile(file: SocketFile): Promise<void> {
  try {
    const stats = await lstat(file.path);
    if (stats.dev === file.dev && stats.ino === file.ino) await unlink(file.path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
}

function listen(server: Server, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error) => reject(new Error(`cannot listen on ${path}: ${error.message}`));
    server.once("error", onError);
    server.listen(path, () => {
      server.off("error", onError);
      resolve();
    });
  });
}

/** Default sockets looked at per start-up sweep (a folder full of them is swept over several starts). */
const SWEEP_MAX = 256;

/**
 * Removes the sockets SIGKILLed instances left in the default folder: a `<pid>.sock` whose pid is
 * gone here and that refuses connections (a live Monoceros in another pid namespace sharing the
 * folder still accepts them, so it is never removed). Errors are skipped: the sweep is a courtesy.
 */
export async function sweepStaleSockets(dir: string): Promise<number> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return 0;
  }
  let removed = 0;
  for (const name of names.slice(0, SWEEP_MAX)) {
    const pid = socketPid(name);
    if (pid === null || pidAlive(pid)) continue;
    try {
      const path = join(dir, name);
      const stats = await lstat(path);
      if (!stats.isSocket() || (await probeSocket(path)).state !== "stale") continue;
      await unlinkSocketFile({ path, dev: stats.dev, ino: stats.ino });
      removed++;
    } catch {
      // gone meanwhile, or not ours to remove
    }
  }
  return removed;
}
