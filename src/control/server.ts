// The operator control channel: `monoceros ctl` talks to this server over a unix socket. Unlike
// the admin port (read-only, any interface), this one changes state, so it is reachable only
// through the file system: a socket of mode 0600 in a folder of mode 0700 (socket-path.ts).
// Every connection, wait and buffer is bounded, and a handler that throws fails one request, never
// Monoceros.
import { createServer, type Server, type Socket } from "node:net";
import { DEBUG_LIMITS } from "../debug/limits.js";
import type { LogSource } from "../logs/record-ring.js";
import { logFilterFor } from "./log-filter.js";
import {
  dataLine,
  errorLine,
  okLine,
  outputLine,
  parseRequest,
  recordLine,
  REQUEST_TOO_LONG,
  REQUEST_BYTES_MAX,
  type ControlRequest,
  type ControlTarget,
  type OutputStream,
} from "./protocol.js";
import { bindPathProblem, bindSocketFile, removeStaleSocket, unlinkSocketFile, type SocketFile } from "./socket-file.js";

export { controlSocketDir, defaultControlSocketPath, ensureControlDir } from "./socket-path.js";

export type ControlResult = { ok: true; result: unknown } | { ok: false; error: string };

export type DebugRequest = Extract<ControlRequest, { command: "debug" }>;
export type ProfileRequest = Extract<ControlRequest, { command: "profile" }>;

/** What a streaming command (debug, profile) sends before its final line. */
export interface ControlStream {
  /** One line of a debug command's output. */
  output(stream: OutputStream, text: string): void;
  /** One piece of a file; resolves when ctl has taken what was waiting (or has gone: see signal). */
  data(text: string): Promise<void>;
  /** Aborted when ctl goes away, the request's time is up, or Monoceros shuts down: stop and clean up. */
  readonly signal: AbortSignal;
}

/** What the control channel asks of the running Monoceros. */
export interface ControlHandler {
  /** The same object as GET /status. */
  status(): unknown;
  restart(target: ControlTarget): Promise<ControlResult>;
  scale(pool: string, replicas: number): Promise<ControlResult>;
  reload(): Promise<ControlResult>;
  logs: LogSource;
  /** `ctl debug`: runs a named debug command (or the proc snapshot) on a worker, streaming its output. Absent: refused. */
  debug?(request: DebugRequest, stream: ControlStream): Promise<ControlResult>;
  /** `ctl profile`: a CPU profile or heap snapshot of Monoceros itself, streamed as data. Absent: refused. */
  profile?(request: ProfileRequest, stream: ControlStream): Promise<ControlResult>;
}

export type ProblemReporter = (message: string, fields: Record<string, unknown>) => void;

export const CONTROL_LIMITS = {
  /** Connections at once; an operator runs a few ctl commands, a script perhaps a few more. */
  connectionsMax: 16,
  /** From accept to the end of the request line: a request is one short line. */
  requestTimeoutMs: 5_000,
  /** From the request to the handler's answer: restart and scale answer with a plan, not when it is done. */
  answerTimeoutMs: 30_000,
  /** `ctl logs -f` clients at once (each may hold followerBacklogBytesMax). */
  followersMax: 8,
  /** Records waiting to be sent to one follower; past this it is not reading, and is dropped. */
  followerBacklogBytesMax: 1024 * 1024,
  /** How long a closed connection may take to take its last line before it is destroyed. */
  closeGraceMs: 2_000,
  /** Beyond a streaming command's own bound (its timeout, or profile duration plus transfer): the server's backstop. */
  streamSlackMs: 10_000,
} as const;

/** The longest a streaming request may take, as the server bounds it (the handler keeps to shorter ones). */
export function streamTimeoutMs(request: DebugRequest | ProfileRequest): number {
  if (request.command === "debug") return request.timeoutMs + DEBUG_LIMITS.killGraceMs + DEBUG_LIMITS.exitWaitMs + DEBUG_LIMITS.outputDrainMs + CONTROL_LIMITS.streamSlackMs;
  return (request.durationMs ?? 0) + 2 * DEBUG_LIMITS.profileTransferMsMax + CONTROL_LIMITS.streamSlackMs;
}

interface Connection {
  socket: Socket;
  state: "reading" | "answering" | "following" | "streaming" | "closing";
  timer: NodeJS.Timeout | null;
  unsubscribe: (() => void) | null;
  /** A streaming command's: aborted when the connection ends, so the command stops. */
  abort: AbortController | null;
}

const errorText = (error: unknown) => (error instanceof Error ? error.message : String(error));

export class ControlServer {
  private readonly server: Server;
  private readonly connections = new Set<Connection>();
  private followers = 0;
  /** The socket we linked into place: only this one is removed at close. */
  private bound: SocketFile | null = null;
  private state: "new" | "listening" | "closed" = "new";
  private starting: Promise<void> | null = null;

  constructor(
    private readonly handler: ControlHandler,
    private readonly onProblem: ProblemReporter,
  ) {
    // allowHalfOpen: a client may shut down its side after the request (`… | nc -U`) and still read the answer.
    this.server = createServer({ allowHalfOpen: true }, (socket) => this.accept(socket));
    // After listen, errors are failed accepts (EMFILE): the server keeps listening.
    this.server.on("error", (error: NodeJS.ErrnoException) => {
      if (this.state === "listening") this.onProblem("control socket: cannot accept a connection", { code: error.code ?? "", error: error.message });
    });
  }

  /**
   * Listens on `path`, which must not be another Monoceros's socket nor any other file; the
   * socket is mode 0600 before anyone can connect (socket-file.ts says how).
   */
  listen(path: string): Promise<void> {
    if (this.state !== "new" || this.starting !== null) return Promise.reject(new Error("control server: listen() may be called once"));
    this.starting = this.start(path);
    return this.starting;
  }

  private async start(path: string): Promise<void> {
    const problem = bindPathProblem(path);
    if (problem !== null) throw new Error(problem);
    await removeStaleSocket(path);
    try {
      this.bound = await bindSocketFile(this.server, path);
      if (this.state === "closed") throw new Error("control server: closed while it was starting");
      this.state = "listening";
    } catch (error) {
      this.server.close();
      throw error;
    }
  }

  /** Stops listening, ends every connection (followers with a last line), removes the socket if it is still ours. */
  async close(): Promise<void> {
    if (this.state === "closed") return;
    if (this.state === "new" && this.starting !== null) {
      // Let listen() finish (or fail) first, so that nothing it creates outlives close().
      this.state = "closed";
      await this.starting.catch(() => undefined);
      if (this.bound !== null) await this.unlinkIfOurs(this.bound);
      return;
    }
    const wasListening = this.state === "listening";
    this.state = "closed";
    if (this.bound !== null) await this.unlinkIfOurs(this.bound);
    if (!wasListening) return;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const connection of this.connections) this.finish(connection, errorLine("Monoceros is shutting down"));
    const grace = setTimeout(() => {
      for (const connection of this.connections) connection.socket.destroy();
    }, CONTROL_LIMITS.closeGraceMs);
    await closed;
    clearTimeout(grace);
  }

  /** Where it listens, or null. */
  path(): string | null {
    return this.bound?.path ?? null;
  }

  private async unlinkIfOurs(file: SocketFile): Promise<void> {
    try {
      await unlinkSocketFile(file);
    } catch (error) {
      this.onProblem("control socket: cannot remove it", { path: file.path, error: errorText(error) });
    }
  }

  private accept(socket: Socket): void {
    // Client errors (EPIPE, ECONNRESET) end that connection; 'close' cleans up.
    socket.on("error", () => undefined);
    if (this.state !== "listening" || this.connections.size >= CONTROL_LIMITS.connectionsMax) {
      const reason =
        this.state === "listening"
          ? `too many control connections (at most ${CONTROL_LIMITS.connectionsMax} at once)`
          : this.state === "new"
            ? "Monoceros is starting"
            : "Monoceros is shutting down";
      const timer = setTimeout(() => socket.destroy(), CONTROL_LIMITS.closeGraceMs);
      socket.once("close", () => clearTimeout(timer));
      socket.end(errorLine(reason), () => socket.destroy());
      return;
    }
    const connection: Connection = { socket, state: "reading", timer: null, unsubscribe: null, abort: null };
    this.connections.add(connection);
    connection.timer = setTimeout(
      () => this.finish(connection, errorLine(`no request within ${CONTROL_LIMITS.requestTimeoutMs / 1000} s: send one JSON object on one line`)),
      CONTROL_LIMITS.requestTimeoutMs,
    );
    socket.once("close", () => {
      connection.abort?.abort();
      this.stopFollowing(connection);
      if (connection.timer !== null) clearTimeout(connection.timer);
      this.connections.delete(connection);
    });
    this.readRequest(connection);
  }

  private readRequest(connection: Connection): void {
    const { socket } = connection;
    const chunks: Buffer[] = [];
    let bytes = 0;
    socket.on("data", (chunk: Buffer) => {
      // After the request, anything more is read and ignored (one request per connection).
      if (connection.state !== "reading") return;
      const newline = chunk.indexOf(0x0a);
      const lineBytes = bytes + (newline < 0 ? chunk.length : newline);
      if (lineBytes > REQUEST_BYTES_MAX) {
        this.finish(connection, errorLine(REQUEST_TOO_LONG));
        return;
      }
      chunks.push(newline < 0 ? chunk : chunk.subarray(0, newline));
      bytes = lineBytes;
      if (newline >= 0) this.handle(connection, Buffer.concat(chunks).toString("utf8"));
    });
    socket.on("end", () => {
      // A request without its newline counts; an empty connection (a liveness probe) just ends.
      if (connection.state === "reading") {
        if (bytes > 0) this.handle(connection, Buffer.concat(chunks).toString("utf8"));
        else connection.socket.destroy();
      } else if (connection.state === "following" || connection.state === "streaming") {
        // ctl keeps its side open while it waits: an end means it has gone (Ctrl-C), so a debug command is stopped.
        this.finish(connection, null);
      }
    });
  }

  /** The one place that decides what a request does. */
  private handle(connection: Connection, line: string): void {
    if (connection.timer !== null) clearTimeout(connection.timer);
    connection.timer = null;
    connection.state = "answering";
    const parsed = parseRequest(line);
    if (!parsed.ok) {
      this.finish(connection, errorLine(parsed.error));
      return;
    }
    const request = parsed.value;
    try {
      switch (request.command) {
        case "status":
          this.finish(connection, okLine(this.handler.status()));
          return;
        case "restart":
          this.answer(connection, request, () => this.handler.restart(request.target));
          return;
        case "scale":
          this.answer(connection, request, () => this.handler.scale(request.pool, request.replicas));
          return;
        case "reload":
          this.answer(connection, request, () => this.handler.reload());
          return;
        case "logs":
          this.sendLogs(connection, request);
          return;
        case "debug":
        case "profile":
          this.stream(connection, request);
          return;
      }
    } catch (error) {
      this.internalError(connection, request, error);
    }
  }

  private answer(connection: Connection, request: ControlRequest, call: () => Promise<ControlResult>): void {
    connection.timer = setTimeout(() => {
      this.onProblem("control socket: no answer in time", { command: request.command, timeout_ms: CONTROL_LIMITS.answerTimeoutMs });
      this.finish(connection, errorLine(`no answer within ${CONTROL_LIMITS.answerTimeoutMs / 1000} s to ${request.command} (it may still take effect; see ctl status)`));
    }, CONTROL_LIMITS.answerTimeoutMs);
    Promise.resolve()
      .then(call)
      .then(
        (result) => {
          if (typeof result !== "object" || result === null || typeof result.ok !== "boolean") throw new Error(`the ${request.command} handler answered ${String(result)}, not a ControlResult`);
          this.finish(connection, result.ok ? okLine(result.result) : errorLine(result.error));
        },
      )
      .catch((error: unknown) => this.internalError(connection, request, error));
  }

  private sendLogs(connection: Connection, request: Extract<ControlRequest, { command: "logs" }>): void {
    const filter = logFilterFor(request.target, () => this.handler.status());
    if (!filter.ok) {
      this.finish(connection, errorLine(filter.error));
      return;
    }
    if (request.follow && this.followers >= CONTROL_LIMITS.followersMax) {
      this.finish(connection, errorLine(`too many log followers (at most ${CONTROL_LIMITS.followersMax} at once)`));
      return;
    }
    const { records, dropped } = this.handler.logs.recent(filter.value, request.lines);
    const { socket } = connection;
    for (const record of records) socket.write(recordLine(record));
    if (!request.follow) {
      this.finish(connection, okLine({ dropped }));
      return;
    }
    // The history just written may be up to a ring's worth; the backlog bound applies on top of
    // it until it has drained.
    let backlogBytesMax = CONTROL_LIMITS.followerBacklogBytesMax + socket.writableLength;
    socket.once("drain", () => (backlogBytesMax = CONTROL_LIMITS.followerBacklogBytesMax));
    connection.unsubscribe = this.handler.logs.subscribe(filter.value, (record) => {
      if (connection.state !== "following") return;
      let line: string;
      try {
        line = recordLine(record);
      } catch {
        return;
      }
      socket.write(line);
      if (socket.writableLength > backlogBytesMax) {
        this.finish(connection, errorLine(`log follower dropped: more than ${CONTROL_LIMITS.followerBacklogBytesMax} bytes of records waited to be read`));
      }
    });
    connection.state = "following";
    this.followers++;
  }

  /** debug and profile: lines as the handler produces them, then its result; stopped when the connection ends. */
  private stream(connection: Connection, request: DebugRequest | ProfileRequest): void {
    const { socket } = connection;
    const abort = new AbortController();
    connection.abort = abort;
    connection.state = "streaming";
    const timeoutMs = streamTimeoutMs(request);
    connection.timer = setTimeout(() => {
      this.onProblem("control socket: no answer in time", { command: request.command, timeout_ms: timeoutMs });
      this.finish(connection, errorLine(`no answer within ${timeoutMs / 1000} s to ${request.command}`));
    }, timeoutMs);
    const sending = () => connection.state === "streaming" && !socket.destroyed;
    const stream: ControlStream = {
      output: (which, text) => {
        if (sending()) socket.write(outputLine(which, text));
      },
      data: (text) => {
        if (!sending()) return Promise.resolve();
        socket.write(dataLine(text));
        if (socket.writableLength <= DEBUG_LIMITS.streamBacklogBytesMax) return Promise.resolve();
        return new Promise<void>((resolve) => {
          const done = () => {
            socket.off("drain", done);
            abort.signal.removeEventListener("abort", done);
            resolve();
          };
          socket.on("drain", done);
          abort.signal.addEventListener("abort", done, { once: true });
        });
      },
      signal: abort.signal,
    };
    const handler = request.command === "debug" ? this.handler.debug?.bind(this.handler, request, stream) : this.handler.profile?.bind(this.handler, request, stream);
    if (handler === undefined) {
      this.finish(connection, errorLine(`${request.command} is not available in this Monoceros`));
      return;
    }
    Promise.resolve()
      .then(handler)
      .then((result) => {
        if (typeof result !== "object" || result === null || typeof result.ok !== "boolean") throw new Error(`the ${request.command} handler answered ${String(result)}, not a ControlResult`);
        this.finish(connection, result.ok ? okLine(result.result) : errorLine(result.error));
      })
      .catch((error: unknown) => this.internalError(connection, request, error));
  }

  private internalError(connection: Connection, request: ControlRequest, error: unknown): void {
    this.onProblem("control socket: a command failed inside Monoceros", { command: request.command, error: errorText(error) });
    this.finish(connection, errorLine(`internal error: ${errorText(error)}`));
  }

  private stopFollowing(connection: Connection): void {
    if (connection.unsubscribe === null) return;
    connection.unsubscribe();
    connection.unsubscribe = null;
    this.followers--;
  }

  /** Sends a last line (if any) and closes; a client that does not take it within the grace is cut off. */
  private finish(connection: Connection, line: string | null): void {
    if (connection.state === "closing") return;
    connection.state = "closing";
    connection.abort?.abort();
    this.stopFollowing(connection);
    if (connection.timer !== null) clearTimeout(connection.timer);
    const { socket } = connection;
    connection.timer = setTimeout(() => socket.destroy(), CONTROL_LIMITS.closeGraceMs);
    if (line === null) socket.end(() => socket.destroy());
    else socket.end(line, () => socket.destroy());
  }
}
