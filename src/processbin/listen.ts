// Listening, optionally with SO_REUSEPORT so that several processbin workers share one port and
// the kernel spreads connections among them (what Monoceros' port-sharing mode relies on).
import { createRequire } from "node:module";
import { isIP, isIPv4, type ListenOptions, type Server } from "node:net";

export interface ListenSettings {
  readonly port: number;
  readonly host: string;
  readonly reusePort: boolean;
  /** A listening socket inherited from the parent (socket activation): served as it is. */
  readonly fd?: number;
}

/**
 * Node added net's `reusePort` listen option in 22.12.0 and 23.1.0; older versions silently
 * ignore it, which would make a second worker fail with EADDRINUSE.
 */
export function nativeReusePortSupported(nodeVersion: string): boolean {
  const [major = 0, minor = 0] = nodeVersion.replace(/^v/, "").split(".").map(Number);
  if (major === 22) return minor >= 12;
  if (major === 23) return minor >= 1;
  return major >= 24;
}

/** The native part of node-unix-socket: socketNewSoReuseportFd(domain, port, host) -> fd. */
interface ReuseportAddon {
  socketNewSoReuseportFd(domain: "ipv4" | "ipv6", port: number, host: string): number;
}

function isReuseportAddon(value: unknown): value is ReuseportAddon {
  return typeof value === "object" && value !== null && typeof Reflect.get(value, "socketNewSoReuseportFd") === "function";
}

/**
 * Loads node-unix-socket's prebuilt addon for this platform only when needed: a plain processbin
 * run must not depend on it. We depend on the platform packages directly (optional dependencies)
 * because the wrapper package lists platform packages that are not published, which breaks
 * `npm ci`. createRequire keeps esbuild from bundling the native file.
 */
function loadReuseportAddon(): ReuseportAddon {
  const requireCommonJs = createRequire(import.meta.url);
  const { platform, arch } = process;
  const musl = platform === "linux" && !(process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header?.glibcVersionRuntime;
  const name = `node-unix-socket-${platform}-${arch}-${platform === "linux" ? (musl ? "musl" : "gnu") : ""}`.replace(/-$/, "");
  let loaded: unknown;
  try {
    loaded = requireCommonJs(name);
  } catch {
    throw new Error(`--reuse-port needs Node >= 22.12, or the optional package ${name} on Node ${process.versions.node} (run npm ci)`);
  }
  if (!isReuseportAddon(loaded)) throw new Error(`${name} does not export socketNewSoReuseportFd`);
  return loaded;
}

function createReuseportFd(port: number, host: string): number {
  if (isIP(host) === 0) throw new Error(`--reuse-port needs an IP address as --host, got "${host}"`);
  return loadReuseportAddon().socketNewSoReuseportFd(isIPv4(host) ? "ipv4" : "ipv6", port, host);
}

/** A socket already bound with SO_REUSEPORT; listen() accepts it as a handle. */
export interface FdHandle {
  readonly fd: number;
}

/** What to pass to listen() for these settings on this Node version; may open the socket itself. */
export function listenTarget(settings: ListenSettings, nodeVersion: string): ListenOptions | FdHandle {
  if (settings.fd !== undefined) return { fd: settings.fd };
  if (!settings.reusePort) return { port: settings.port, host: settings.host };
  if (nativeReusePortSupported(nodeVersion)) {
    // @types/node for Node 20 does not know the option yet.
    const options: ListenOptions & { reusePort: boolean } = { port: settings.port, host: settings.host, reusePort: true };
    return options;
  }
  return { fd: createReuseportFd(settings.port, settings.host) };
}

/** Listens and resolves with the bound port; rejects with the listen error (e.g. EADDRINUSE). */
export function listen(server: Server, settings: ListenSettings, nodeVersion: string = process.versions.node): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error): void => reject(error);
    server.once("error", onError);
    server.listen(listenTarget(settings, nodeVersion), () => {
      server.off("error", onError);
      const address = server.address();
      resolve(typeof address === "object" && address !== null ? address.port : settings.port);
    });
  });
}
