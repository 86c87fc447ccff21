// Line output to stdout/stderr with backpressure: a write that the stream cannot take right now
// waits for 'drain', so a fast logger never buffers without bound inside this process.
import type { Writable } from "node:stream";
import { waitUntilWritten } from "../logs/wait-until-written.js";

export interface Identity {
  readonly pid: number;
  /** MULTIPROCESS_WORKER_ID as set by the supervisor; undefined when unset or empty. */
  readonly workerId: string | undefined;
}

export function identityFromEnv(env: NodeJS.ProcessEnv, pid: number): Identity {
  const workerId = env["MULTIPROCESS_WORKER_ID"];
  return { pid, workerId: workerId === undefined || workerId === "" ? undefined : workerId };
}

/** A log line as the original wrote it ({"key": line}), plus worker id and per-stream counter. */
export function formatLogLine(line: string, structured: boolean, identity: Identity, seq: number): string {
  if (!structured) return `${line}\n`;
  return `${JSON.stringify({ key: line, multiprocess_worker_id: identity.workerId ?? null, seq })}\n`;
}

export type EventFields = Readonly<Record<string, string | number | readonly number[]>>;

/**
 * processbin's own lines ("processbin started pid=1 worker_id=none"): key=value text, or with
 * --log-structured a JSON object so that every stdout line parses.
 */
export function formatEvent(message: string, fields: EventFields, structured: boolean, identity: Identity): string {
  if (structured) {
    // JSON lines always carry pid and the worker id (as multiprocess_worker_id, null when unset),
    // so the text form's pid=/worker_id= fields are not repeated.
    const jsonFields = Object.fromEntries(Object.entries(fields).filter(([key]) => key !== "pid" && key !== "worker_id"));
    return `${JSON.stringify({ msg: message, ...jsonFields, pid: identity.pid, multiprocess_worker_id: identity.workerId ?? null })}\n`;
  }
  const pairs = Object.entries(fields).map(([key, value]) => ` ${key}=${Array.isArray(value) ? value.join(",") : String(value)}`);
  return `${message}${pairs.join("")}\n`;
}

/** One output stream; remembers how many log lines went to it and stops writing once broken. */
export class LineSink {
  private broken = false;
  private logLines = 0;

  constructor(private readonly stream: Writable) {
    // A reader that went away (EPIPE) must not crash the process with an unhandled 'error':
    // processbin stops writing there and goes on with whatever else it was asked to do.
    stream.on("error", () => {
      this.broken = true;
    });
  }

  /** The next 1-based log line number for this stream. */
  nextSeq(): number {
    this.logLines += 1;
    return this.logLines;
  }

  /** Writes text; resolves at once, or when the stream has drained if it is full. */
  write(text: string): Promise<void> {
    if (this.broken || this.stream.destroyed) return Promise.resolve();
    if (this.stream.write(text)) return Promise.resolve();
    return this.waitForDrain();
  }

  /** Whether write() would have to wait; lets a fast loop write a batch without awaiting each line. */
  get full(): boolean {
    return this.stream.writableNeedDrain;
  }

  private waitForDrain(): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        this.stream.off("drain", done);
        this.stream.off("close", done);
        this.stream.off("error", done);
        resolve();
      };
      this.stream.on("drain", done);
      this.stream.on("close", done);
      this.stream.on("error", done);
    });
  }

  /** Resolves when everything written so far has been handed to the OS, or after maxWaitMs. */
  flush(maxWaitMs: number): Promise<void> {
    if (this.broken || this.stream.destroyed) return Promise.resolve();
    return waitUntilWritten(this.stream, maxWaitMs);
  }
}

/** stdout (and stderr with --log-error) plus the formatting flags. */
export class Output {
  constructor(
    private readonly stdout: LineSink,
    private readonly stderr: LineSink | undefined,
    private readonly structured: boolean,
    readonly identity: Identity,
  ) {}

  /** Writes one log line to stdout and, with --log-error, to stderr; waits while either is full. */
  async logLine(line: string): Promise<void> {
    const writes = [this.stdout.write(formatLogLine(line, this.structured, this.identity, this.stdout.nextSeq()))];
    if (this.stderr !== undefined) {
      writes.push(this.stderr.write(formatLogLine(line, this.structured, this.identity, this.stderr.nextSeq())));
    }
    await Promise.all(writes);
  }

  get full(): boolean {
    return this.stdout.full || (this.stderr?.full ?? false);
  }

  /** processbin's own lines go to stdout only, as the original's "Caught SIGINT" line did. */
  event(message: string, fields: EventFields = {}): Promise<void> {
    return this.stdout.write(formatEvent(message, fields, this.structured, this.identity));
  }

  async flush(maxWaitMs: number): Promise<void> {
    await Promise.all([this.stdout.flush(maxWaitMs), this.stderr?.flush(maxWaitMs)]);
  }
}
