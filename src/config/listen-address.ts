// The address of a listening socket Monoceros holds for its workers: "IP:port", "[IPv6]:port" or
// ":port" (every IPv4 interface). Only IP addresses: the socket is bound once, at start-up, and a
// hostname could resolve to several addresses or to different ones later, which a single bound
// socket cannot follow.
import { isIPv4, isIPv6 } from "node:net";

export type ListenAddressResult =
  | { ok: true; host: string; port: number; family: "ipv4" | "ipv6" }
  | { ok: false; error: string };

const PORT_MIN = 1;
const PORT_MAX = 65_535;
/** Longer than any IP address with a port (an IPv6 address with a zone id fits easily). */
const LISTEN_ADDRESS_MAX_CHARS = 128;
/** ":port" listens on every IPv4 interface, as Go's net.Listen(":8080") does for IPv4. */
const ALL_IPV4_INTERFACES = "0.0.0.0";

const BRACKETED = /^\[([^\]]*)\]:(.*)$/;
const PLAIN = /^([^:]*):(.*)$/;
const EXAMPLES = 'e.g. "0.0.0.0:8080", "127.0.0.1:8080", "[::]:8080" or ":8080"';

/** Parses "host:port" where host is an IP address (IPv6 in brackets) or empty for every IPv4 interface. Pure. */
export function parseListenAddress(text: string): ListenAddressResult {
  // Quoted with JSON.stringify so that a control character or a stray quote stays on one line.
  const quoted = JSON.stringify(text.length > LISTEN_ADDRESS_MAX_CHARS ? `${text.slice(0, LISTEN_ADDRESS_MAX_CHARS)}…` : text);
  if (text.length > LISTEN_ADDRESS_MAX_CHARS) return { ok: false, error: `${quoted} is too long for a listen address (${EXAMPLES})` };
  const bracketed = BRACKETED.exec(text);
  const plain = bracketed === null ? PLAIN.exec(text) : null;
  if (bracketed === null && plain === null) {
    return { ok: false, error: `${quoted} is not a listen address: it needs a port after a colon (${EXAMPLES})` };
  }
  if (plain !== null && plain[2]?.includes(":")) {
    return { ok: false, error: `${quoted} is not a listen address: put an IPv6 address in brackets, e.g. "[::1]:8080"` };
  }
  const host = (bracketed ?? plain)?.[1] ?? "";
  const portText = (bracketed ?? plain)?.[2] ?? "";
  const port = /^\d{1,5}$/.test(portText) ? Number(portText) : NaN;
  if (!(port >= PORT_MIN && port <= PORT_MAX)) {
    return { ok: false, error: `${quoted} has no valid port: it must be a number from ${PORT_MIN} to ${PORT_MAX}, got ${JSON.stringify(portText)}` };
  }
  if (bracketed !== null) {
    if (isIPv6(host)) return { ok: true, host, port, family: "ipv6" };
    return { ok: false, error: `${quoted} has ${JSON.stringify(host)} in brackets, which is not an IPv6 address (${EXAMPLES})` };
  }
  if (host === "") return { ok: true, host: ALL_IPV4_INTERFACES, port, family: "ipv4" };
  if (isIPv4(host)) return { ok: true, host, port, family: "ipv4" };
  return { ok: false, error: `${quoted}: the host ${JSON.stringify(host)} is not an IP address, and a listen address needs one (hostnames are not resolved; ${EXAMPLES})` };
}
