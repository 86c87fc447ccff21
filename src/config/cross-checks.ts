// Rules that relate fields to each other: unique pool names, ports that do not collide,
// proxy folders that do not collide, a HAProxy folder short enough for its socket. They read
// the raw (unvalidated) tree defensively and skip whatever field-level validation already
// rejects, so that one run reports every problem at once.
import { posix, resolve } from "node:path";
import { haproxySocketPathProblem } from "../haproxy/socket-path.js";
import { parseGoDuration } from "./duration.js";
import { DEFAULTS, defaultProxyConfigPath, LIMITS, PROXY_KINDS } from "./types.js";

export interface PathedMessage {
  path: (string | number)[];
  message: string;
}

interface PortRange {
  path: (string | number)[];
  first: number;
  last: number;
  what: string;
}

/** The worker's port in an arg ({{.Port}}, as domain/identity.ts fills it in). */
const ARGS_PORT = /\{\{\s*\.Port\s*\}\}/;

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);
const isPort = (value: unknown): value is number => Number.isInteger(value) && (value as number) >= 1 && (value as number) <= 65535;

/**
 * `cwd` resolves relative proxy_config_path values, as the run does (Monoceros's working folder),
 * so that `envoy` and `/srv/app/envoy` are seen to be one folder when run from /srv/app.
 */
export function crossCheck(raw: unknown, cwd: string = process.cwd()): PathedMessage[] {
  const problems: PathedMessage[] = [];
  if (!isRecord(raw)) return problems;
  const pools = isRecord(raw.supervisor) && Array.isArray(raw.supervisor.workers) ? raw.supervisor.workers : [];
  const ranges: PortRange[] = [];
  const admin = isRecord(raw.admin) ? raw.admin : {};
  if (isPort(admin.port)) ranges.push({ path: ["admin", "port"], first: admin.port, last: admin.port, what: "the admin port" });

  const firstPoolWithName = new Map<string, number>();
  pools.forEach((pool, index) => {
    if (!isRecord(pool)) return;
    const poolPath = ["supervisor", "workers", index];
    if (typeof pool.name === "string" && pool.name !== "") {
      const first = firstPoolWithName.get(pool.name);
      if (first === undefined) firstPoolWithName.set(pool.name, index);
      else problems.push({ path: [...poolPath, "name"], message: `duplicate pool name "${pool.name}" (also supervisor.workers[${first}].name)` });
    }
    const server = pool.server;
    const replicas = Number.isInteger(pool.replicas) && (pool.replicas as number) >= 1 ? (pool.replicas as number) : undefined;
    // Worker slots: a replacement started before the worker it replaces stops has an id and ports of its own.
    const slots = replicas === undefined ? undefined : { count: replicas + surgeOf(pool.max_surge, replicas), what: slotsText(replicas, surgeOf(pool.max_surge, replicas)) };
    problems.push(...healthCheckProblems(pool.health_check, [...poolPath, "health_check"], isRecord(server), slots, ranges));
    if (!isRecord(server)) problems.push(...portInDebugCommands(pool.debug, [...poolPath, "debug"]));
    const readyTimeoutMs = durationMs(pool.ready_timeout) ?? DEFAULTS.readyTimeoutMs;
    const minUptimeMs = durationMs(isRecord(pool.restart_policy) ? pool.restart_policy.min_uptime : undefined) ?? DEFAULTS.minUptimeMs;
    if (slots !== undefined && slots.count > replicas! && !isRecord(pool.health_check) && !isRecord(server) && readyTimeoutMs <= minUptimeMs) {
      problems.push({
        path: [...poolPath, pool.ready_timeout == null ? "restart_policy" : "ready_timeout"],
        message: `ready_timeout (${readyTimeoutMs} ms) must be longer than restart_policy.min_uptime (${minUptimeMs} ms): without a health check a replacement is ready once it has run min_uptime`,
      });
    }
    if (Array.isArray(pool.listen)) {
      if (isRecord(server)) problems.push({ path: [...poolPath, "listen"], message: "is for supervisor mode: in proxy mode (with server) each worker listens on its own port and the proxy on listener_port" });
      pool.listen.forEach((text, at) => {
        const port = typeof text === "string" ? Number(/:(\d+)$/.exec(text)?.[1]) : NaN;
        if (isPort(port)) ranges.push({ path: [...poolPath, "listen", at], first: port, last: port, what: `the listen address ${text}` });
      });
    }
    // {{.Port}} in args is the worker's own port: only proxy mode gives each worker one.
    const argsWithPort = Array.isArray(pool.args) ? pool.args.flatMap((arg, at) => (typeof arg === "string" && ARGS_PORT.test(arg) ? [at] : [])) : [];
    if (!isRecord(server)) {
      for (const at of argsWithPort) problems.push({ path: [...poolPath, "args", at], message: "uses {{.Port}}, the worker's own port, which only proxy mode (server.port_arg) gives; in supervisor mode workers share their port" });
      return;
    }
    const serverPath = [...poolPath, "server"];
    const portArg = isRecord(server.port_arg) ? server.port_arg : {};
    if (portArg.name === "" && argsWithPort.length === 0) {
      problems.push({ path: [...serverPath, "port_arg", "name"], message: "is empty (no port flag), so args must hold {{.Port}} where the worker takes its port, e.g. args: [-m, http.server, '{{.Port}}']" });
    }
    if (isPort(portArg.start_port) && slots !== undefined) {
      const last = portArg.start_port + slots.count - 1;
      if (last > 65535) {
        problems.push({
          path: [...serverPath, "port_arg", "start_port"],
          message: `start_port ${portArg.start_port} + ${slots.what} needs ports up to ${last}, past 65535`,
        });
      } else {
        ranges.push({ path: [...serverPath, "port_arg", "start_port"], first: portArg.start_port, last, what: "worker ports" });
      }
    }
    const listenerPort = server.listener_port ?? DEFAULTS.listenerPort;
    if (isPort(listenerPort)) {
      const what = server.listener_port === undefined || server.listener_port === null ? "the default proxy listener port" : "the proxy listener port";
      ranges.push({ path: [...serverPath, "listener_port"], first: listenerPort, last: listenerPort, what });
    }
    if (isPort(server.admin_port)) {
      ranges.push({ path: [...serverPath, "admin_port"], first: server.admin_port, last: server.admin_port, what: "the proxy admin port" });
    }
  });
  // Each pool is bounded; so is the whole (64 pools of 4,096 workers is no pod anyone runs).
  const slotsTotal = pools.reduce((sum: number, pool) => {
    if (!isRecord(pool) || !Number.isInteger(pool.replicas) || (pool.replicas as number) < 1) return sum;
    return sum + (pool.replicas as number) + surgeOf(pool.max_surge, pool.replicas as number);
  }, 0);
  if (slotsTotal > LIMITS.workersTotalMax) {
    problems.push({ path: ["supervisor", "workers"], message: `ask for ${slotsTotal} worker slots in all (replicas + max_surge of every pool); at most ${LIMITS.workersTotalMax}` });
  }
  const folderUses = pools.map((pool, index) => proxyFolderUse(pool, index));
  problems.push(...proxyFolderClashes(folderUses, cwd));
  problems.push(...proxySocketPathProblems(folderUses, cwd));

  ranges.forEach((range, index) => {
    const clash = ranges.slice(0, index).find((earlier) => earlier.first <= range.last && range.first <= earlier.last);
    if (clash === undefined) return;
    problems.push({
      path: range.path,
      message: `${describe(range)} overlap${range.first === range.last ? "s" : ""} ${describe(clash)} (${formatPath(clash.path)})`,
    });
  });
  return problems;
}

/**
 * Exactly one way of checking; an HTTP check in supervisor mode needs its own ports (workers share
 * the serving port there); a timeout no longer than the interval (one check in flight per worker);
 * {{.Port}} in a command only where workers have ports of their own.
 */
function healthCheckProblems(check: unknown, path: (string | number)[], proxyMode: boolean, slots: { count: number; what: string } | undefined, ranges: PortRange[]): PathedMessage[] {
  if (!isRecord(check)) return [];
  const problems: PathedMessage[] = [];
  const kinds = (["http", "exec", "notify"] as const).filter((kind) => (kind === "notify" ? check.notify === true : check[kind] !== undefined && check[kind] !== null));
  if (kinds.length === 0) problems.push({ path, message: "needs one of http, exec or notify: true" });
  if (kinds.length > 1) problems.push({ path: [...path, kinds[1] as string], message: `only one of http, exec or notify may be set, found ${kinds.join(" and ")}` });
  const http = check.http;
  if (isRecord(http)) {
    if (http.start_port === undefined || http.start_port === null) {
      if (!proxyMode) problems.push({ path: [...path, "http"], message: "needs start_port in supervisor mode (workers share the serving port there: worker i is checked on start_port + i)" });
    } else if (isPort(http.start_port) && slots !== undefined) {
      const last = http.start_port + slots.count - 1;
      if (last > 65535) problems.push({ path: [...path, "http", "start_port"], message: `start_port ${http.start_port} + ${slots.what} needs ports up to ${last}, past 65535` });
      else ranges.push({ path: [...path, "http", "start_port"], first: http.start_port, last, what: "health check ports" });
    }
  }
  if (Array.isArray(check.exec) && !proxyMode) {
    const index = check.exec.findIndex((arg) => typeof arg === "string" && /\{\{\s*\.Port\s*\}\}/.test(arg));
    if (index >= 0) problems.push({ path: [...path, "exec", index], message: "uses {{.Port}}, but workers have no port of their own in supervisor mode (only in proxy mode, with server)" });
  }
  const intervalMs = durationMs(check.interval) ?? DEFAULTS.healthCheckIntervalMs;
  const timeoutMs = durationMs(check.timeout) ?? DEFAULTS.healthCheckTimeoutMs;
  if (intervalMs === 0) {
    // interval: 0s is reported by the field's own check; a timeout compared with it would only confuse.
  } else if (intervalMs < LIMITS.healthCheckIntervalMinMs) {
    problems.push({ path: [...path, "interval"], message: `must be at least ${LIMITS.healthCheckIntervalMinMs}ms, got ${JSON.stringify(check.interval)}` });
  } else if (timeoutMs > intervalMs) {
    const which = check.timeout === undefined || check.timeout === null ? `the default timeout (${timeoutMs} ms)` : `timeout (${timeoutMs} ms)`;
    problems.push({ path: [...path, check.timeout === undefined || check.timeout === null ? "interval" : "timeout"], message: `${which} is longer than the interval (${intervalMs} ms): a check must end before the next one starts` });
  }
  return problems;
}

/** {{.Port}} in a debug command is a mistake in supervisor mode (workers share the serving port): said at validation, not when an operator runs it. */
function portInDebugCommands(debug: unknown, path: (string | number)[]): PathedMessage[] {
  if (!isRecord(debug)) return [];
  const problems: PathedMessage[] = [];
  for (const [name, argv] of Object.entries(debug)) {
    if (!Array.isArray(argv)) continue;
    const index = argv.findIndex((arg) => typeof arg === "string" && /\{\{\s*\.Port\s*\}\}/.test(arg));
    if (index >= 0) problems.push({ path: [...path, name, index], message: "uses {{.Port}}, but workers have no port of their own in supervisor mode (only in proxy mode, with server)" });
  }
  return problems;
}

/** max_surge as the loader reads it (a count, or a share of replicas rounded up); 0 when invalid (field validation reports that). */
function surgeOf(value: unknown, replicas: number): number {
  if (value === undefined || value === null) return DEFAULTS.maxSurge;
  const text = String(value).trim();
  const percent = /^(\d{1,3})%$/.exec(text);
  if (percent !== null) return Math.ceil((Number(percent[1]) * replicas) / 100);
  return /^\d+$/.test(text) ? Number(text) : 0;
}

function slotsText(replicas: number, surge: number): string {
  return surge === 0 ? `${replicas} replicas` : `${replicas + surge} worker slots (replicas ${replicas} + max_surge ${surge})`;
}

/** A duration field's milliseconds, or null when unset or invalid (field validation reports that). */
function durationMs(value: unknown): number | null {
  if (typeof value !== "string" && typeof value !== "number") return null;
  const parsed = parseGoDuration(String(value));
  return parsed.ok ? parsed.ms : null;
}

function describe(range: PortRange): string {
  return range.first === range.last ? `${range.what} ${range.first}` : `${range.what} ${range.first}-${range.last}`;
}

/** Where a proxy pool's files go, as written (or defaulted) in the config. */
interface ProxyFolderUse {
  index: number;
  pool: string;
  /** Normalised, as the user would recognise it: `./envoy/` is `envoy`. */
  folder: string;
  /** The default for the pool's proxy kind, because proxy_config_path is unset. */
  defaulted: boolean;
  kind: string;
  defaultFolder: string;
}

/**
 * Every proxy writes fixed file names straight into its folder (envoy_starting_config.yaml,
 * haproxy.cfg, …), so two proxy pools sharing one would overwrite each other's files or watch each
 * other's changes: an error, whichever kinds they are and however the folder is spelt or defaulted.
 */
function proxyFolderClashes(uses: readonly (ProxyFolderUse | null)[], cwd: string): PathedMessage[] {
  const problems: PathedMessage[] = [];
  const firstInFolder = new Map<string, ProxyFolderUse>();
  uses.forEach((use, index) => {
    if (use === null) return;
    const key = resolve(cwd, use.folder);
    const first = firstInFolder.get(key);
    if (first === undefined) {
      firstInFolder.set(key, use);
      return;
    }
    const spelt = first.folder === use.folder ? "" : `, as "${first.folder}"`;
    problems.push({
      path: ["supervisor", "workers", index, "server", "proxy_config_path"],
      message:
        `folder "${use.folder}" is also used by supervisor.workers[${first.index}] (pool "${first.pool}"${spelt}): ` +
        `pools "${first.pool}" and "${use.pool}" would overwrite each other's proxy files; give each its own proxy_config_path` +
        defaultsNote(first, use),
    });
  });
  return problems;
}

/** HAProxy's runtime API socket goes into its folder, and a unix socket path is short (see src/haproxy/socket-path.ts). */
function proxySocketPathProblems(uses: readonly (ProxyFolderUse | null)[], cwd: string): PathedMessage[] {
  const problems: PathedMessage[] = [];
  uses.forEach((use, index) => {
    if (use === null || use.kind !== "haproxy") return;
    const problem = haproxySocketPathProblem(use.folder, cwd);
    if (problem === null) return;
    const unset = use.defaulted ? ` (proxy_config_path is unset, so it is the haproxy default ${use.defaultFolder})` : "";
    problems.push({ path: ["supervisor", "workers", index, "server", "proxy_config_path"], message: problem + unset });
  });
  return problems;
}

/** Null when field-level validation rejects what decides the folder (it reports that itself). */
function proxyFolderUse(pool: unknown, index: number): ProxyFolderUse | null {
  if (!isRecord(pool) || !isRecord(pool.server)) return null;
  const server = pool.server;
  const known = server.proxy === undefined || server.proxy === null || (PROXY_KINDS as readonly unknown[]).includes(server.proxy);
  if (!known) return null;
  const name = typeof pool.name === "string" ? pool.name : `#${index}`;
  const kind = typeof server.proxy === "string" ? server.proxy : DEFAULTS.proxy;
  const defaultFolder = defaultProxyConfigPath(kind);
  const given = server.proxy_config_path;
  if (given === undefined || given === null) return { index, pool: name, folder: normaliseFolder(defaultFolder), defaulted: true, kind, defaultFolder };
  if (typeof given !== "string" || given.trim() === "") return null;
  return { index, pool: name, folder: normaliseFolder(given), defaulted: false, kind, defaultFolder };
}

/** Two clashing pools that both leave the folder unset are of one kind: the defaults differ by kind. */
function defaultsNote(first: ProxyFolderUse, second: ProxyFolderUse): string {
  const unset = [first, second].filter((use) => use.defaulted);
  const example = unset[0];
  if (example === undefined) return "";
  const which = unset.length === 2 ? "both" : `pool "${example.pool}"`;
  return ` (proxy_config_path is unset in ${which}, so it is the ${example.kind} default ${example.defaultFolder})`;
}

/** `./envoy/`, `envoy//` and `a/../envoy` are `envoy`. */
function normaliseFolder(path: string): string {
  const normal = posix.normalize(path);
  return normal.length > 1 ? normal.replace(/\/+$/, "") : normal;
}

/** `supervisor.workers[1].replicas` */
export function formatPath(path: readonly PropertyKey[]): string {
  let text = "";
  for (const segment of path) {
    if (typeof segment === "number") text += `[${segment}]`;
    else text += text === "" ? String(segment) : `.${String(segment)}`;
  }
  return text === "" ? "(top level)" : text;
}
