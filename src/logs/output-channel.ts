// Monoceros's own stdout or stderr as an asynchronous stream with a bound on what it buffers.
// Node writes to pipes and files synchronously, so a slow log reader (or a stalled disk) would
// stall the whole supervisor (signals and timers included). Here a slow reader instead pauses the
// worker pipes that feed it (backpressure), and nothing is dropped. On a fatal exit,
// flushSyncForExit() writes what is still buffered before the process ends.
import { createWriteStream, fstatSync } from "node:fs";
import { Socket } from "node:net";
import type { Readable, Writable } from "node:stream";
import { waitUntilWritten } from "./wait-until-written.js";
import { writeAllSync } from "./write-sync.js";

/** Bytes buffered before sources are paused. */
export const OUTPUT_HIGH_WATER_BYTES = 1024 * 1024;

/** How long the writes at a fatal exit may wait for a slow reader, in total. */
export const EXIT_WRITE_WAIT_MS_MAX = 2_000;

/** What a libuv stream handle still holds: bytes handed to it and not yet written. */
interface StreamHandle {
  writeQueueSize?: number;
}

export class OutputChannel {
  private readonly stream: Writable;
  /** Texts handed to the stream whose write has not completed, oldest first. */
  private readonly unconfirmed: string[] = [];
  private readonly paused = new Set<Readable>();
  private broken = false;
  /** After flushSyncForExit(): every write is synchronous. */
  private exiting = false;

  constructor(
    private readonly fd: number,
    private readonly highWaterBytes = OUTPUT_HIGH_WATER_BYTES,
  ) {
    const stat = fstatSync(fd);
    this.stream =
      stat.isFIFO() || stat.isSocket()
        ? new Socket({ fd, readable: false, writable: true })
        : createWriteStream("", { fd, autoClose: false, highWaterMark: highWaterBytes });
    this.stream.on("drain", () => this.resumeSources());
    // A reader that went away: keep running (workers must not die because nobody reads the logs).
    this.stream.on("error", () => {
      this.broken = true;
      this.resumeSources();
    });
  }

  /** Writes text (whole lines); pauses `source` until the stream drains when too much is buffered. */
  write(text: string, source?: Readable): void {
    if (this.broken || text.length === 0) return;
    if (this.exiting) {
      this.writeNow(text, EXIT_WRITE_WAIT_MS_MAX);
      return;
    }
    this.unconfirmed.push(text);
    this.stream.write(text, this.confirm);
    if (source !== undefined && this.stream.writableLength > this.highWaterBytes && !this.paused.has(source)) {
      this.paused.add(source);
      source.pause();
    }
  }

  /** Resolves when everything written so far has been handed to the OS, or after timeoutMs. */
  flush(timeoutMs: number): Promise<void> {
    return this.broken ? Promise.resolve() : waitUntilWritten(this.stream, timeoutMs);
  }

  /**
   * For a fatal exit, just before process.exit: writes synchronously what the stream still holds,
   * in order, waiting at most maxWaitMs in all for a slow reader; later writes are synchronous too.
   * The event loop must not run again afterwards: the stream would write the same bytes again.
   * To a pipe or socket every byte is written exactly once (libuv writes on this thread and says
   * how much of the write in flight is left). To a file or terminal the write in flight belongs
   * to a thread-pool thread and is taken as done: it is lost only if that thread had not started
   * it yet (microseconds after it was handed over, unless the pool is stuck).
   */
  flushSyncForExit(maxWaitMs = EXIT_WRITE_WAIT_MS_MAX): void {
    if (this.exiting) return;
    this.exiting = true;
    if (this.broken) return;
    // Writes complete in order, so what is not yet written is the tail of the unconfirmed texts:
    // what libuv still queues of the write in flight, and what the stream has not handed over yet.
    const queuedBytes = (this.stream as unknown as { _handle?: StreamHandle | null })._handle?.writeQueueSize ?? 0;
    let bufferedBytes = 0;
    // writableBuffer: the chunks the stream holds back while a write is in flight (not in @types/node).
    const held = (this.stream as unknown as { writableBuffer: { chunk: string | Buffer; encoding: BufferEncoding }[] }).writableBuffer;
    for (const entry of held) {
      bufferedBytes += typeof entry.chunk === "string" ? Buffer.byteLength(entry.chunk, entry.encoding) : entry.chunk.length;
    }
    const unconfirmed = Buffer.from(this.unconfirmed.join(""), "utf8");
    const pendingBytes = Math.min(unconfirmed.length, queuedBytes + bufferedBytes);
    if (pendingBytes > 0) this.writeNow(unconfirmed.subarray(unconfirmed.length - pendingBytes), maxWaitMs);
  }

  private readonly confirm = (): void => {
    this.unconfirmed.shift();
  };

  private writeNow(data: string | Buffer, maxWaitMs: number): void {
    const { errorCode } = writeAllSync(this.fd, data, maxWaitMs);
    // Nobody can read this any more. Anything else (a full disk) may pass: the text is lost, later ones are tried.
    if (errorCode === "EPIPE" || errorCode === "EBADF") this.broken = true;
  }

  private resumeSources(): void {
    for (const source of this.paused) source.resume();
    this.paused.clear();
  }
}
