import type { Writable } from "node:stream";

const POLL_MS = 5;

/**
 * Resolves once the stream has handed every byte to the OS, or after maxWaitMs. Polls: an empty
 * write's callback is no signal to wait for, since Node may never call it for a zero-length chunk.
 */
export function waitUntilWritten(stream: Writable, maxWaitMs: number): Promise<void> {
  const deadline = performance.now() + maxWaitMs;
  return new Promise((resolve) => {
    const check = () => {
      if (stream.writableLength === 0 || stream.destroyed || stream.errored !== null || performance.now() >= deadline) resolve();
      else setTimeout(check, POLL_MS);
    };
    check();
  });
}
