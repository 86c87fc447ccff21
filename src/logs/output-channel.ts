// Monoceros's own stdout or stderr as an asynchronous stream with a bound on what it buffers.
// Node writes to pipes and files synchronously, so a slow log reader would stall the whole
// supervisor (signals and timers included). Here a slow reader instead pauses the worker pipes
// that feed it (backpressure), and nothing is dropped.
import { createWriteStream, fstatSync } from "node:fs";
import { Socket } from "node:net";
import type { Readable, Writable } from "node:stream";
import { waitUntilWritten } from "./wait-until-written.js";

/** Bytes buffered before sources are paused. */
export const OUTPUT_HIGH_WATER_BYTES = 1024 * 1024;

export class OutputChannel {
  private readonly stream: Writable;
  private readonly paused = new Set<Readable>();
  private broken = false;

  constructor(
    fd: number,
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
    this.stream.write(text);
    if (source !== undefined && this.stream.writableLength > this.highWaterBytes && !this.paused.has(source)) {
      this.paused.add(source);
      source.pause();
    }
  }

  /** Resolves when everything written so far has been handed to the OS, or after timeoutMs. */
  flush(timeoutMs: number): Promise<void> {
    return this.broken ? Promise.resolve() : waitUntilWritten(this.stream, timeoutMs);
  }

  private resumeSources(): void {
    for (const source of this.paused) source.resume();
    this.paused.clear();
  }
}
