// Synchronous writes to a file descriptor that may be non-blocking (a pipe shared with a libuv
// stream is): EAGAIN means "wait a little", bounded, never a busy loop and never for ever.
import { writeSync } from "node:fs";

/** How long one wait for a full pipe lasts before the next attempt. */
const EAGAIN_PAUSE_MS = 1;

const sleeper = new Int32Array(new SharedArrayBuffer(4));

export interface WriteOutcome {
  writtenBytes: number;
  /** null when everything was written; else the error code that stopped it (e.g. EPIPE, ENOSPC, EAGAIN at the deadline). */
  errorCode: string | null;
}

/** Writes all of `data`, waiting for a full pipe at most maxWaitMs in total. */
export function writeAllSync(fd: number, data: string | Buffer, maxWaitMs: number): WriteOutcome {
  const buffer = typeof data === "string" ? Buffer.from(data, "utf8") : data;
  const deadlineMs = performance.now() + maxWaitMs;
  let offset = 0;
  while (offset < buffer.length) {
    try {
      offset += writeSync(fd, buffer, offset, buffer.length - offset);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? "EIO";
      if (code === "EINTR") continue;
      if (code !== "EAGAIN" || performance.now() >= deadlineMs) return { writtenBytes: offset, errorCode: code };
      // The pipe is full: let its reader catch up (a synchronous sleep: the caller cannot await).
      Atomics.wait(sleeper, 0, 0, EAGAIN_PAUSE_MS);
    }
  }
  return { writtenBytes: offset, errorCode: null };
}
