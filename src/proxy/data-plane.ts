// What proxy mode needs from a proxy, whichever it is: one DataPlane per proxy kind (src/envoy,
// src/haproxy), used by `monoceros -c` and `monoceros proxy-config` alike. The lifecycle itself
// (start first, restart, stop last, which worker is in rotation) is the core's and the same for all.
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { PoolConfig } from "../config/types.js";
import { initialSlots, proxyEndpoints, type ProxyEndpoint } from "../domain/identity.js";
import type { ProxyLaunch } from "../domain/state.js";
import type { Command } from "../domain/types.js";

export type { ProxyEndpoint };

/** What the core asks of a running proxy: a new rotation, or to drain at shutdown. */
export type ProxyCommand = Extract<Command, { type: "proxyRotation" | "drainProxy" }>;

export type ProxyReport = (level: "info" | "warn", msg: string, fields: Record<string, unknown>) => void;

/** One file of a proxy's configuration: its name inside the pool's folder, and its text. */
export interface ProxyFile {
  name: string;
  text: string;
}

/** Everything a proxy kind writes for a pool, and how the proxy is started on it. Plain data. */
export interface ProxyRendering {
  /** In the order they are to be written: a file that names another comes after it. */
  files: readonly ProxyFile[];
  /** The proxy's arguments (its executable is server.proxy_binary). */
  args: readonly string[];
  /** The signal that stops it gracefully. */
  stopSignal: ProxyLaunch["stopSignal"];
  /** Arguments that make the proxy check these files without serving, for proxy-config to suggest. */
  checkArgs: readonly string[];
}

export interface DataPlane {
  /**
   * Pure: the pool's files for these endpoints, every path inside them under `folder` (absolute),
   * and the proxy's launch on them.
   */
  render(pool: PoolConfig, folder: string, endpoints: readonly ProxyEndpoint[]): ProxyRendering;
  /** Carries out a command of the core on the pool's running proxy, whose files are in proxyFolder(pool). */
  apply(pool: PoolConfig, command: ProxyCommand): void;
  /** The pool was removed by a reload and its proxy has stopped: whatever was kept for it goes. */
  forget(pool: PoolConfig): void;
}

/** The pool's proxy_config_path, absolute (relative paths are the working folder's, as in the original). */
export function proxyFolder(pool: PoolConfig): string {
  if (pool.server === null) throw new Error(`pool ${pool.name} is not in proxy mode`);
  return resolve(pool.server.proxyConfigPath);
}

/** Writes the rendered files into folder (created if missing), each atomically, in the rendering's order. */
export function writeProxyFiles(folder: string, files: readonly ProxyFile[]): void {
  mkdirSync(folder, { recursive: true });
  for (const file of files) writeAtomically(join(folder, file.name), file.text);
}

/** Writes next to the target, then renames over it: readers see the old file or the new one, never half. */
export function writeAtomically(path: string, text: string): void {
  const temporary = `${path}.tmp-${process.pid}`;
  writeFileSync(temporary, text);
  renameSync(temporary, path);
}

/** Before a pool's proxy first starts: its files, with no worker in rotation yet, and how to launch it. */
export function prepareProxy(plane: DataPlane, pool: PoolConfig, exec: string): ProxyLaunch {
  const folder = proxyFolder(pool);
  const rendering = plane.render(pool, folder, proxyEndpoints(pool, initialSlots(pool), () => false));
  writeProxyFiles(folder, rendering.files);
  return { exec, args: rendering.args, stopSignal: rendering.stopSignal };
}
