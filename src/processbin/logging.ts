// The log loop: one line right away (as the original), then one per interval, or as fast as the
// streams take them when the interval is 0.
import { randomBytes } from "node:crypto";
import { setImmediate as yieldToEventLoop, setTimeout as sleep } from "node:timers/promises";
import type { Output } from "./output.js";

/** --log-fixed, or --log-size random bytes hex-encoded; made once and repeated, as the original. */
export function makeLogLine(logFixed: string | undefined, logSizeBytes: number): string {
  return logFixed ?? randomBytes(logSizeBytes).toString("hex");
}

export interface LogLoopSettings {
  readonly line: string;
  readonly intervalMs: number;
  /** undefined = unlimited. */
  readonly count: number | undefined;
}

// With interval 0 the loop writes this many lines, then lets timers, signals and HTTP run.
const FAST_BATCH_LINES = 256;

/**
 * Logs until `count` lines were written or `signal` aborts. Resolves with the number of lines
 * written; every line has been accepted by the streams (not necessarily flushed) by then.
 */
export async function runLogLoop(output: Output, settings: LogLoopSettings, signal: AbortSignal): Promise<number> {
  const limit = settings.count ?? Number.POSITIVE_INFINITY;
  let written = 0;
  while (written < limit && !signal.aborted) {
    if (settings.intervalMs === 0) {
      written += await writeBatch(output, settings.line, Math.min(FAST_BATCH_LINES, limit - written), signal);
      // Pipes to stdout are synchronous on Linux, so write() may never report "full": yield anyway.
      await yieldToEventLoop();
      continue;
    }
    if (written > 0 && !(await sleepUnlessAborted(settings.intervalMs, signal))) break;
    await output.logLine(settings.line);
    written += 1;
  }
  return written;
}

async function writeBatch(output: Output, line: string, lines: number, signal: AbortSignal): Promise<number> {
  let written = 0;
  while (written < lines && !signal.aborted) {
    const accepted = output.logLine(line);
    written += 1;
    // Only await when a stream is full: awaiting every resolved promise would cost a microtask
    // turn per line for nothing.
    if (output.full) await accepted;
  }
  return written;
}

/** Sleeps; false when the signal aborted the sleep. */
async function sleepUnlessAborted(ms: number, signal: AbortSignal): Promise<boolean> {
  try {
    await sleep(ms, undefined, { signal });
    return true;
  } catch {
    return false;
  }
}
