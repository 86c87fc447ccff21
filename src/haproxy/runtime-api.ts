// One exchange with HAProxy's runtime API (the `stats socket` unix socket in proxy_config_path):
// connect, write one line, read the answer until HAProxy closes. Bounded as a whole: a socket
// that accepts and never answers fails after timeoutMs like one that does not exist.
import { createConnection } from "node:net";

/**
 * Connects, then asks `decide` for the line to send, so that what is sent is decided from the
 * state at the moment of sending, never from the state when the connection was begun. Resolves
 * with the line sent and HAProxy's answer (trimmed; empty for a successful `set server`), or null
 * when `decide` had nothing to send. Rejects on any error, and when the whole exchange took
 * longer than timeoutMs.
 */
export function runtimeExchange(
  socketPath: string,
  timeoutMs: number,
  decide: () => string | null,
): Promise<{ command: string; answer: string } | null> {
  return new Promise((resolvePromise, reject) => {
    const socket = createConnection(socketPath);
    let command: string | null = null;
    let answer = "";
    let settled = false;
    const settle = (outcome: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      outcome();
    };
    const timer = setTimeout(() => {
      const stage = command === null ? "connecting to it" : "waiting for its answer";
      settle(() => reject(new Error(`no answer within ${timeoutMs} ms (${stage})`)));
    }, timeoutMs);
    socket.on("connect", () => {
      command = decide();
      if (command === null) settle(() => resolvePromise(null));
      else socket.write(`${command}\n`);
    });
    socket.on("data", (chunk) => (answer += chunk.toString("utf8")));
    socket.on("end", () => settle(() => resolvePromise(command === null ? null : { command, answer: answer.trim() })));
    socket.on("error", (error) => settle(() => reject(error)));
  });
}
