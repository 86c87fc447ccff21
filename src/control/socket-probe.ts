// Is a Monoceros listening on this socket? Asked by a starting Monoceros (is the socket it finds
// stale?) and by `ctl` (which of the sockets in the folder are alive?). Connecting is the only
// reliable test: a socket file outlives a process killed with SIGKILL.
import { connect } from "node:net";

/** A unix connect either succeeds or fails at once; a wait this long means a server too busy to accept. */
export const PROBE_TIMEOUT_MS = 1_000;

export type ProbeResult =
  /** Something accepted the connection (or is too busy to, which is also alive). */
  | { state: "live" }
  /** Nothing listens: the socket file is left over (ECONNREFUSED). */
  | { state: "stale" }
  | { state: "missing" }
  | { state: "error"; code: string; message: string };

export function probeSocket(path: string, timeoutMs = PROBE_TIMEOUT_MS): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const socket = connect(path);
    const done = (result: ProbeResult) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => done({ state: "live" }), timeoutMs);
    socket.once("connect", () => done({ state: "live" }));
    socket.once("error", (error: NodeJS.ErrnoException) => {
      const code = error.code ?? "";
      if (code === "ECONNREFUSED") done({ state: "stale" });
      else if (code === "ENOENT") done({ state: "missing" });
      // EAGAIN: the listen backlog is full, so a server is there.
      else if (code === "EAGAIN") done({ state: "live" });
      else done({ state: "error", code, message: error.message });
    });
  });
}
