// Waiting for a worker's port to accept connections before HAProxy is told to send it requests:
// a server leaving maintenance is UP at once in HAProxy, so a worker that runs but does not listen
// yet would get requests and refuse them.
import { createConnection, type Socket } from "node:net";

export type ListenOutcome = "listening" | "gaveUp" | "cancelled";

export interface ListenWaitBounds {
  /** Longest wait, including a connection attempt that hangs (a full accept queue drops SYNs). */
  waitMsMax: number;
  /** Pause between connection attempts after a refusal. */
  pollMs: number;
}

/**
 * Resolves "listening" once something accepts a connection on 127.0.0.1:port, "gaveUp" at
 * waitMsMax, or "cancelled" as soon as `signal` aborts (the worker left the rotation meanwhile).
 */
export function untilListening(port: number, bounds: ListenWaitBounds, signal: AbortSignal): Promise<ListenOutcome> {
  return new Promise((resolvePromise) => {
    let socket: Socket | null = null;
    let poll: NodeJS.Timeout | undefined;
    let settled = false;
    const settle = (outcome: ListenOutcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      clearTimeout(poll);
      socket?.destroy();
      signal.removeEventListener("abort", onAbort);
      resolvePromise(outcome);
    };
    const onAbort = () => settle("cancelled");
    const deadline = setTimeout(() => settle("gaveUp"), bounds.waitMsMax);
    const attempt = () => {
      const current = createConnection({ host: "127.0.0.1", port });
      socket = current;
      current.once("connect", () => settle("listening"));
      current.once("error", () => {
        current.destroy();
        if (!settled) poll = setTimeout(attempt, bounds.pollMs);
      });
    };
    if (signal.aborted) {
      settle("cancelled");
      return;
    }
    signal.addEventListener("abort", onAbort);
    attempt();
  });
}
