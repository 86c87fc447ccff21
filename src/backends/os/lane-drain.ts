// Closing a lane's SO_REUSEPORT socket (scaling down) resets every connection queued on it: the
// kernel does not hand them to the other sockets of the port (net.ipv4.tcp_migrate_req is 0 by
// default). So a lane is drained before it is closed: Monoceros accepts what is queued on it (and
// what still arrives) for LANE_DRAIN_MS, closes it (the port's other lanes get every new
// connection from then on), and only then forwards each accepted connection to the port, where
// the kernel gives it to a lane that has a worker. A connection arriving in the instant between
// the last accept and the close is still reset; that window is microseconds, not the tens of
// milliseconds a stopping worker takes to exit.
import { connect, createServer, type Socket } from "node:net";
import type { ListenAddress } from "../../config/types.js";
import { handedOverSocketClosed } from "./listen-sockets.js";

/** How long a lane accepts before it is closed. */
export const LANE_DRAIN_MS = 50;
/** Connections forwarded from drained lanes at once; more are closed (reset) as before. */
const FORWARDED_MAX = 4_096;
/** A forwarded connection idle this long (no byte either way) is closed. */
const FORWARD_IDLE_TIMEOUT_MS = 60_000;

const forwarded = new Set<Socket>();
/**
 * Lanes being drained now, and what they accepted. Forwarding waits until none is draining: a
 * connection forwarded while another lane of the port drains could land in that lane's queue just
 * after its last accept, and be reset when it closes (scaling 8 → 2 drains six at once).
 */
let draining = 0;
const waiting: { socket: Socket; address: ListenAddress }[] = [];

/** Takes over the lane's listening fd (Node closes it), then forwards what it accepted to the port's other lanes. */
export function drainLane(fd: number, address: ListenAddress, onProblem: (message: string) => void): void {
  draining++;
  const server = createServer({ pauseOnConnect: true }, (socket) => {
    if (waiting.length + forwarded.size >= FORWARDED_MAX) socket.destroy();
    else waiting.push({ socket, address });
  });
  let ended = false;
  const end = () => {
    if (ended) return;
    ended = true;
    server.close();
    handedOverSocketClosed(fd);
    draining--;
    if (draining === 0) for (const { socket, address: to } of waiting.splice(0)) forward(socket, to);
  };
  server.on("error", (error) => {
    onProblem(`draining the listen socket ${address.text} before closing it: ${error.message}`);
    end();
  });
  server.listen({ fd }, () => {
    // Closed in the check phase right after a poll phase (setImmediate from a timer): connections
    // that completed since that poll's accepts are the only ones reset, a window of microseconds.
    setTimeout(() => setImmediate(() => {
      // close() closes the listening descriptor at once (its callback would wait for the accepted
      // connections to end): from here on the port's other lanes get every connection.
      end();
    }), LANE_DRAIN_MS).unref();
  });
}

function forward(client: Socket, address: ListenAddress): void {
  const host = address.family === "ipv6" ? (address.host === "::" ? "::1" : address.host) : address.host === "0.0.0.0" ? "127.0.0.1" : address.host;
  const upstream = connect({ host, port: address.port });
  forwarded.add(client);
  // An error or a long silence ends both sides at once; a side that ends (FIN) ends the other once
  // what it sent is written (pipe), so a response followed by "connection: close" arrives whole.
  const abort = () => {
    client.destroy();
    upstream.destroy();
  };
  for (const socket of [client, upstream]) {
    socket.setTimeout(FORWARD_IDLE_TIMEOUT_MS, abort);
    socket.on("error", abort);
  }
  client.on("close", () => {
    forwarded.delete(client);
    upstream.end();
  });
  client.pipe(upstream);
  upstream.pipe(client);
  client.resume();
}

/** At exit: whatever is still being forwarded is closed. */
export function closeForwardedConnections(): void {
  for (const socket of forwarded) socket.destroy();
  forwarded.clear();
  for (const { socket } of waiting.splice(0)) socket.destroy();
}
