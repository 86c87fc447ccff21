// Monoceros's own profiles (the Go original exposes pprof): a CPU profile or a heap snapshot of this
// process, in the formats Chrome DevTools and VS Code open (.cpuprofile, .heapsnapshot), taken
// through an in-process node:inspector Session. A Session talks to V8 inside the process: no port
// is opened (inspector.open() is never called), nothing is reachable from outside.
//
// A heap snapshot stops the event loop while V8 writes it (about a second for Monoceros's few tens
// of MiB): workers' output waits meanwhile, in the pipes. Its pieces arrive synchronously during
// that call, so they go to an unlinked temporary file (no copy in memory, nothing left behind
// whatever happens) and are sent from there at the pace ctl reads.
import { Session } from "node:inspector/promises";
import { closeSync, fstatSync, mkdtempSync, openSync, readSync, rmdirSync, unlinkSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { StringDecoder } from "node:string_decoder";
import { DEBUG_LIMITS } from "./limits.js";

export type Taken<T> = { ok: true; value: T } | { ok: false; error: string };

const message = (error: unknown) => (error instanceof Error ? error.message : String(error));

/** Resolves after ms, or at once when `signal` aborts (then false). */
function wait(ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve(false);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve(true);
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/** Samples this process's CPU for durationMs; the profile as JSON text (a .cpuprofile). Stopped early when `signal` aborts. */
export async function takeCpuProfile(durationMs: number, signal: AbortSignal, bytesMax: number = DEBUG_LIMITS.profileBytesMax): Promise<Taken<string>> {
  const session = new Session();
  session.connect();
  try {
    await session.post("Profiler.enable");
    await session.post("Profiler.start");
    const completed = await wait(durationMs, signal);
    const { profile } = await session.post("Profiler.stop");
    if (!completed) return { ok: false, error: "stopped before the end: ctl went away" };
    const text = JSON.stringify(profile);
    if (Buffer.byteLength(text, "utf8") > bytesMax) return { ok: false, error: `the CPU profile is larger than ${bytesMax} bytes; take a shorter one` };
    return { ok: true, value: text };
  } catch (error) {
    return { ok: false, error: `the profiler failed: ${message(error)}` };
  } finally {
    session.disconnect();
  }
}

/** A file already unlinked: closing it is all the cleaning up there is. */
export interface SpoolFile {
  fd: number;
  bytes: number;
}

/** An unlinked temporary file of mode 0600 in $TMPDIR (a heap snapshot holds whatever Monoceros has in memory). */
function openSpool(): SpoolFile {
  const folder = mkdtempSync(join(tmpdir(), "monoceros-heap-"));
  const path = join(folder, "snapshot.heapsnapshot");
  try {
    const fd = openSync(path, "wx+", 0o600);
    return { fd, bytes: 0 };
  } finally {
    try {
      unlinkSync(path);
    } catch {
      // never created
    }
    rmdirSync(folder);
  }
}

/** Writes a heap snapshot of this process into an unlinked temporary file; close its fd when done. */
export async function takeHeapSnapshot(bytesMax: number = DEBUG_LIMITS.profileBytesMax): Promise<Taken<SpoolFile>> {
  let spool: SpoolFile;
  try {
    spool = openSpool();
  } catch (error) {
    return { ok: false, error: `cannot make a temporary file for the heap snapshot in ${tmpdir()} (set TMPDIR to a writable folder): ${message(error)}` };
  }
  let failure: string | null = null;
  const session = new Session();
  session.connect();
  session.on("HeapProfiler.addHeapSnapshotChunk", ({ params }) => {
    if (failure !== null) return; // V8 goes on to the end; the rest is dropped
    const chunk = Buffer.from(params.chunk, "utf8");
    if (spool.bytes + chunk.length > bytesMax) {
      failure = `the heap snapshot is larger than ${bytesMax} bytes`;
      return;
    }
    try {
      let written = 0;
      while (written < chunk.length) written += writeSync(spool.fd, chunk, written, chunk.length - written, null);
      spool.bytes += chunk.length;
    } catch (error) {
      failure = `cannot write the heap snapshot to a temporary file in ${tmpdir()}: ${message(error)}`;
    }
  });
  try {
    await session.post("HeapProfiler.takeHeapSnapshot", { reportProgress: false });
  } catch (error) {
    failure ??= `the heap profiler failed: ${message(error)}`;
  } finally {
    session.disconnect();
  }
  if (failure !== null) {
    closeSync(spool.fd);
    return { ok: false, error: failure };
  }
  return { ok: true, value: spool };
}

/** Sends `text` in pieces of at most chunkChars, each when the last has been taken; false when stopped (signal, deadline). */
export async function sendText(text: string, send: (piece: string) => Promise<void>, signal: AbortSignal, deadlineMs: number, chunkChars: number = DEBUG_LIMITS.profileChunkChars): Promise<boolean> {
  for (let at = 0; at < text.length; at += chunkChars) {
    if (signal.aborted || performance.now() > deadlineMs) return false;
    await send(text.slice(at, at + chunkChars));
  }
  return !signal.aborted;
}

/** Sends the spool file from its start, decoded as UTF-8 across piece boundaries; false when stopped. */
export async function sendFile(spool: SpoolFile, send: (piece: string) => Promise<void>, signal: AbortSignal, deadlineMs: number, chunkBytes: number = DEBUG_LIMITS.profileChunkChars): Promise<boolean> {
  const decoder = new StringDecoder("utf8");
  const buffer = Buffer.allocUnsafe(chunkBytes);
  const size = fstatSync(spool.fd).size;
  for (let position = 0; position < size; ) {
    if (signal.aborted || performance.now() > deadlineMs) return false;
    const length = readSync(spool.fd, buffer, 0, Math.min(chunkBytes, size - position), position);
    if (length === 0) break;
    position += length;
    const piece = decoder.write(buffer.subarray(0, length));
    if (piece !== "") await send(piece);
  }
  const rest = decoder.end();
  if (rest !== "") await send(rest);
  return !signal.aborted;
}
