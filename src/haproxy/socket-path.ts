// HAProxy creates its runtime API socket in proxy_config_path. A unix socket path has room for 108
// bytes (sun_path), and HAProxy 2.6 keeps some for a temporary name it binds first: it refuses a
// `stats socket` path over 97 bytes ("socket path '…' too long (max 97)") and exits, and the core
// would restart it with backoff for ever. So a folder too long for it is a config error, found
// before anything starts.
import { resolve } from "node:path";
import { join } from "node:path/posix";
import type { PoolConfig } from "../config/types.js";
import { HAPROXY_FILES } from "./render.js";

export const HAPROXY_SOCKET_PATH_BYTES_MAX = 97;

/** Where HAProxy's runtime API socket is for a proxy_config_path as written (relative to cwd, as the run resolves it). */
export function haproxySocketPath(proxyConfigPath: string, cwd: string): string {
  return join(resolve(cwd, proxyConfigPath), HAPROXY_FILES.socket);
}

/** Null, or what is wrong with this folder for HAProxy's socket: one line, without the config path in front. */
export function haproxySocketPathProblem(proxyConfigPath: string, cwd: string): string | null {
  const socket = haproxySocketPath(proxyConfigPath, cwd);
  const bytes = Buffer.byteLength(socket, "utf8");
  if (bytes <= HAPROXY_SOCKET_PATH_BYTES_MAX) return null;
  const folderBytesMax = HAPROXY_SOCKET_PATH_BYTES_MAX - Buffer.byteLength(`/${HAPROXY_FILES.socket}`, "utf8");
  return (
    `HAProxy's runtime API socket would be ${socket} (${bytes} bytes), over HAProxy's limit of ${HAPROXY_SOCKET_PATH_BYTES_MAX} bytes for a unix socket path, ` +
    `so HAProxy could not start; use a folder whose absolute path is at most ${folderBytesMax} bytes`
  );
}

/** For a loaded config's pool i: `supervisor.workers[i].server.proxy_config_path: …` lines (none outside HAProxy pools). */
export function haproxyConfigProblems(pool: PoolConfig, index: number, cwd: string = process.cwd()): string[] {
  if (pool.server === null || pool.server.proxy !== "haproxy") return [];
  const problem = haproxySocketPathProblem(pool.server.proxyConfigPath, cwd);
  return problem === null ? [] : [`supervisor.workers[${index}].server.proxy_config_path: ${problem}`];
}
