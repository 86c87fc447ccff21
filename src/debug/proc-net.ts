// The kernel's socket tables (/proc/<pid>/net/tcp, tcp6, udp, udp6, unix), as pure functions over
// their text: a socket descriptor in /proc/<pid>/fd says only `socket:[inode]`; these tell what the
// inode is (addresses, state, queues). Only the inodes asked about are kept, so a busy machine's
// tables cost a pass over the text and no more memory than the worker's own sockets.

export type InetProtocol = "tcp" | "tcp6" | "udp" | "udp6";

export interface SocketInfo {
  protocol: InetProtocol | "unix";
  /** 127.0.0.1:8080, [::1]:8080, or a unix socket's path (`@name` abstract; "" unnamed). */
  local: string;
  /** The other end (inet only; /proc does not tell a unix socket's peer); null when not connected. */
  peer: string | null;
  /** LISTEN, ESTABLISHED, … for inet; LISTEN, CONNECTED, UNCONNECTED, … for unix. */
  state: string;
  /** unix only: STREAM, DGRAM or SEQPACKET. */
  type?: string;
  /** Bytes queued (inet). For a listening TCP socket rxQueue is its accept queue: connections not yet accepted. */
  rxQueue?: number;
  txQueue?: number;
}

/** include/net/tcp_states.h. UDP uses ESTABLISHED for a connected socket and CLOSE for the rest. */
const TCP_STATES: Record<number, string> = {
  1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2", 6: "TIME_WAIT",
  7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN", 11: "CLOSING", 12: "NEW_SYN_RECV",
};
const UNIX_TYPES: Record<number, string> = { 1: "STREAM", 2: "DGRAM", 5: "SEQPACKET" };
const UNIX_STATES: Record<number, string> = { 1: "UNCONNECTED", 2: "CONNECTING", 3: "CONNECTED", 4: "DISCONNECTING" };
/** __SO_ACCEPTCON in the unix table's Flags: a listening socket. */
const UNIX_ACCEPTING = 0x10000;

/**
 * The kernel prints an IPv4 address (and each 32-bit word of an IPv6 one) as the hex of the number
 * in the machine's byte order: on little-endian machines the bytes come reversed.
 */
function wordBytes(hex: string, littleEndian: boolean): number[] {
  const bytes = [0, 2, 4, 6].map((at) => Number.parseInt(hex.slice(at, at + 2), 16));
  return littleEndian ? bytes.reverse() : bytes;
}

/** `0100007F:1F90` -> 127.0.0.1:8080; `…:0000` with an all-zero address -> null for a peer. */
export function parseInetAddress(text: string, littleEndian: boolean): { host: string; port: number } | null {
  const [hex, portHex] = text.split(":");
  if (hex === undefined || portHex === undefined || !/^[0-9A-Fa-f]+$/.test(hex) || !/^[0-9A-Fa-f]{4}$/.test(portHex)) return null;
  const port = Number.parseInt(portHex, 16);
  if (hex.length === 8) return { host: wordBytes(hex, littleEndian).join("."), port };
  if (hex.length !== 32) return null;
  const bytes = [0, 8, 16, 24].flatMap((at) => wordBytes(hex.slice(at, at + 8), littleEndian));
  return { host: formatIpv6(bytes), port };
}

/** RFC 5952: lower case, the longest run of two or more zero groups as `::`, IPv4-mapped as ::ffff:1.2.3.4. */
export function formatIpv6(bytes: readonly number[]): string {
  const groups = Array.from({ length: 8 }, (_, i) => ((bytes[2 * i] ?? 0) << 8) | (bytes[2 * i + 1] ?? 0));
  if (groups.slice(0, 5).every((group) => group === 0) && groups[5] === 0xffff) return `::ffff:${bytes.slice(12, 16).join(".")}`;
  let bestStart = -1;
  let bestLength = 0;
  for (let start = 0; start < 8; ) {
    if (groups[start] !== 0) {
      start++;
      continue;
    }
    let end = start;
    while (end < 8 && groups[end] === 0) end++;
    if (end - start > bestLength && end - start >= 2) {
      bestStart = start;
      bestLength = end - start;
    }
    start = end;
  }
  const hex = groups.map((group) => group.toString(16));
  if (bestStart < 0) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLength).join(":")}`;
}

const joinHostPort = (address: { host: string; port: number }) => (address.host.includes(":") ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`);
const isUnspecified = (address: { host: string; port: number }) => address.port === 0 && (address.host === "0.0.0.0" || address.host === "::");

/** The sockets of one tcp/tcp6/udp/udp6 table whose inode is in `inodes`. */
export function parseInetTable(text: string, protocol: InetProtocol, inodes: ReadonlySet<number>, littleEndian: boolean): Map<number, SocketInfo> {
  const found = new Map<number, SocketInfo>();
  for (const line of text.split("\n").slice(1)) {
    const fields = line.trim().split(/\s+/);
    const inode = Number(fields[9]);
    if (fields.length < 10 || !inodes.has(inode)) continue;
    const local = parseInetAddress(fields[1] ?? "", littleEndian);
    const peer = parseInetAddress(fields[2] ?? "", littleEndian);
    const stateCode = Number.parseInt(fields[3] ?? "", 16);
    const [tx, rx] = (fields[4] ?? "").split(":").map((hex) => Number.parseInt(hex, 16));
    if (local === null) continue;
    const udp = protocol.startsWith("udp");
    const state = udp ? (stateCode === 1 ? "ESTABLISHED" : "UNCONNECTED") : (TCP_STATES[stateCode] ?? `state ${fields[3]}`);
    found.set(inode, {
      protocol,
      local: joinHostPort(local),
      peer: peer === null || isUnspecified(peer) ? null : joinHostPort(peer),
      state,
      ...(Number.isFinite(rx) ? { rxQueue: rx } : {}),
      ...(Number.isFinite(tx) ? { txQueue: tx } : {}),
    });
  }
  return found;
}

/** The sockets of /proc/<pid>/net/unix whose inode is in `inodes`. */
export function parseUnixTable(text: string, inodes: ReadonlySet<number>): Map<number, SocketInfo> {
  const found = new Map<number, SocketInfo>();
  for (const line of text.split("\n").slice(1)) {
    // Num RefCount Protocol Flags Type St Inode [Path]; the path may contain spaces.
    const match = /^\s*[0-9A-Fa-f]+:\s+[0-9A-Fa-f]+\s+[0-9A-Fa-f]+\s+([0-9A-Fa-f]+)\s+([0-9A-Fa-f]+)\s+([0-9A-Fa-f]+)\s+(\d+)(?: (.*))?$/.exec(line);
    if (match === null) continue;
    const inode = Number(match[4]);
    if (!inodes.has(inode)) continue;
    const flags = Number.parseInt(match[1] ?? "0", 16);
    const type = Number.parseInt(match[2] ?? "0", 16);
    const state = Number.parseInt(match[3] ?? "0", 16);
    found.set(inode, {
      protocol: "unix",
      local: match[5] ?? "",
      peer: null,
      state: (flags & UNIX_ACCEPTING) !== 0 ? "LISTEN" : (UNIX_STATES[state] ?? `state ${state}`),
      type: UNIX_TYPES[type] ?? `type ${type}`,
    });
  }
  return found;
}

/** `socket:[12345]` -> 12345; anything else -> null. */
export function socketInode(link: string): number | null {
  const match = /^socket:\[(\d+)\]$/.exec(link);
  return match === null ? null : Number(match[1]);
}
