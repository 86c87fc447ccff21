// Rules that relate fields to each other: unique pool names, ports that do not collide,
// proxy folders that do not collide. They read the raw (unvalidated) tree defensively and
// skip whatever field-level validation already rejects, so that one run reports every
// problem at once.
import { DEFAULTS } from "./types.js";

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

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);
const isPort = (value: unknown): value is number => Number.isInteger(value) && (value as number) >= 1 && (value as number) <= 65535;

export function crossCheck(raw: unknown): PathedMessage[] {
  const problems: PathedMessage[] = [];
  if (!isRecord(raw)) return problems;
  const pools = isRecord(raw.supervisor) && Array.isArray(raw.supervisor.workers) ? raw.supervisor.workers : [];
  const ranges: PortRange[] = [];
  const admin = isRecord(raw.admin) ? raw.admin : {};
  if (isPort(admin.port)) ranges.push({ path: ["admin", "port"], first: admin.port, last: admin.port, what: "the admin port" });

  const firstPoolWithName = new Map<string, number>();
  const firstPoolWithProxyPath = new Map<string, number>();
  pools.forEach((pool, index) => {
    if (!isRecord(pool)) return;
    const poolPath = ["supervisor", "workers", index];
    if (typeof pool.name === "string" && pool.name !== "") {
      const first = firstPoolWithName.get(pool.name);
      if (first === undefined) firstPoolWithName.set(pool.name, index);
      else problems.push({ path: [...poolPath, "name"], message: `duplicate pool name "${pool.name}" (also supervisor.workers[${first}].name)` });
    }
    const server = pool.server;
    if (!isRecord(server)) return;
    const serverPath = [...poolPath, "server"];
    const portArg = isRecord(server.port_arg) ? server.port_arg : {};
    const replicas = Number.isInteger(pool.replicas) && (pool.replicas as number) >= 1 ? (pool.replicas as number) : undefined;
    if (isPort(portArg.start_port) && replicas !== undefined) {
      const last = portArg.start_port + replicas - 1;
      if (last > 65535) {
        problems.push({
          path: [...serverPath, "port_arg", "start_port"],
          message: `start_port ${portArg.start_port} + ${replicas} replicas needs ports up to ${last}, past 65535`,
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
    const defaultPath = server.proxy === "haproxy" ? "./haproxy" : DEFAULTS.proxyConfigPath;
    const proxyPath = normaliseFolder(typeof server.proxy_config_path === "string" ? server.proxy_config_path : defaultPath);
    const firstWithPath = firstPoolWithProxyPath.get(proxyPath);
    if (firstWithPath === undefined) firstPoolWithProxyPath.set(proxyPath, index);
    else {
      problems.push({
        path: [...serverPath, "proxy_config_path"],
        message: `folder "${proxyPath}" is also used by supervisor.workers[${firstWithPath}]; each proxy pool needs its own proxy_config_path`,
      });
    }
  });

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

function describe(range: PortRange): string {
  return range.first === range.last ? `${range.what} ${range.first}` : `${range.what} ${range.first}-${range.last}`;
}

function normaliseFolder(path: string): string {
  const trimmed = path.replace(/\/+$/, "").replace(/^\.\//, "");
  return trimmed === "" ? "." : trimmed;
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
