// The `ctl` side of the streaming commands: `ctl debug` prints a debug command's output as it
// comes and exits as the command did; `ctl profile` writes the profile Monoceros sends into a file
// of the operator's (mode 0600: a heap snapshot holds whatever Monoceros had in memory). Ctrl-C
// closes the connection, which stops the command (or the profile) inside Monoceros.
import { closeSync, openSync, unlinkSync, writeSync } from "node:fs";
import { constants } from "node:os";
import { resolve } from "node:path";
import { sendControlRequest } from "../control/client.js";
import type { ControlLine, ControlRequest } from "../control/protocol.js";
import { streamTimeoutMs, type DebugRequest, type ProfileRequest } from "../control/server.js";
import { DEBUG_LIMITS, PROFILE_EXTENSIONS, type ProfileKind } from "../debug/limits.js";
import { formatProcSnapshot, humanSize } from "../debug/proc-format.js";
import type { ProcSnapshot } from "../debug/proc-snapshot.js";

/** Exit codes of `ctl debug` besides the command's own (README, `monoceros ctl`). */
export const DEBUG_EXIT_CODES = {
  refused: 1,
  unreachable: 3,
  /** The command was stopped at its timeout, as timeout(1) says it. */
  timedOut: 124,
  /** ctl was interrupted (Ctrl-C): 128 + SIGINT. */
  interrupted: 130,
} as const;

/** Beyond the server's own bound, so that its error line arrives first. */
const CLIENT_SLACK_MS = 5_000;

export interface StreamIo {
  stdout: (line: string) => void;
  stderr: (line: string) => void;
  signal?: AbortSignal;
}

type Answer = Extract<ControlLine, { ok: boolean }>;

/** Sends the request and hands every line to onLine; Ctrl-C (or io.signal) stops it and says so. */
async function streamRequest(path: string, request: ControlRequest, io: StreamIo, onLine: (line: ControlLine) => void): Promise<{ answer: Answer | null; error: string | null; interrupted: boolean }> {
  const stop = new AbortController();
  const onStop = () => stop.abort();
  process.on("SIGINT", onStop);
  io.signal?.addEventListener("abort", onStop, { once: true });
  let answer: Answer | null = null;
  try {
    const outcome = await sendControlRequest(
      path,
      request,
      (line) => {
        if ("ok" in line) answer = line;
        else onLine(line);
      },
      streamTimeoutMs(request as DebugRequest | ProfileRequest) + CLIENT_SLACK_MS,
      stop.signal,
    );
    return { answer, error: outcome.ok ? null : outcome.error, interrupted: stop.signal.aborted };
  } finally {
    process.off("SIGINT", onStop);
    io.signal?.removeEventListener("abort", onStop);
  }
}

type Fields = Record<string, unknown>;
const fieldsOf = (value: unknown): Fields => (typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Fields) : {});

/** The command's exit status as a shell gives it: its code, 128 + n for signal n, 124 when stopped at its timeout. */
export function debugExitCode(result: unknown): number {
  const fields = fieldsOf(result);
  if (fields.stopped === "timeout") return DEBUG_EXIT_CODES.timedOut;
  if (typeof fields.exit_code === "number") return fields.exit_code;
  const signal = typeof fields.signal === "string" ? (constants.signals as Record<string, number>)[fields.signal] : undefined;
  return signal === undefined ? DEBUG_EXIT_CODES.refused : 128 + signal;
}

/** What ctl says on stderr after a debug command that did not simply exit 0; nothing when it did. */
export function debugSummary(result: unknown): string[] {
  const fields = fieldsOf(result);
  const name = typeof fields.name === "string" ? fields.name : "the command";
  const seconds = typeof fields.duration_ms === "number" ? ` after ${(fields.duration_ms / 1000).toFixed(1)} s` : "";
  const lines: string[] = [];
  if (fields.stopped === "timeout") lines.push(`${name} was stopped at its timeout of ${Number(fields.timeout_ms) / 1000} s (its process group got SIGTERM, then SIGKILL ${DEBUG_LIMITS.killGraceMs / 1000} s later)`);
  else if (fields.stopped === "output") lines.push(`${name} was stopped${seconds}: its output passed ${DEBUG_LIMITS.outputBytesMax / 1024 / 1024} MiB`);
  if (fields.exited === false) lines.push(`${name} had not exited ${DEBUG_LIMITS.exitWaitMs / 1000} s after SIGKILL (stuck in the kernel?)`);
  else if (typeof fields.signal === "string" && fields.stopped === null) lines.push(`${name} was killed by ${fields.signal}${seconds}`);
  else if (typeof fields.exit_code === "number" && fields.exit_code !== 0) lines.push(`${name} exited with code ${fields.exit_code}${seconds}`);
  if (fields.worker_continued === true) lines.push("the worker was left stopped (state T) by the command; Monoceros sent it SIGCONT");
  return lines.map((line) => `monoceros ctl: ${line}`);
}

/** `ctl debug`: output lines to ctl's stdout and stderr as the command wrote them; exits as it did. */
export async function exchangeDebug(path: string, request: DebugRequest, json: boolean, io: StreamIo): Promise<number> {
  const { answer, error, interrupted } = await streamRequest(path, request, io, (line) => {
    if (json) io.stdout(JSON.stringify(line));
    else if ("output" in line) (line.output.stream === "stdout" ? io.stdout : io.stderr)(line.output.text);
  });
  if (interrupted) {
    io.stderr("monoceros ctl: interrupted; the debug command was stopped");
    return DEBUG_EXIT_CODES.interrupted;
  }
  if (error !== null || answer === null) {
    io.stderr(`monoceros ctl: ${error ?? "no answer"}`);
    return DEBUG_EXIT_CODES.unreachable;
  }
  const final: Answer = answer;
  if (json) io.stdout(JSON.stringify(final));
  if (!final.ok) {
    io.stderr(`monoceros ctl: ${final.error}`);
    return DEBUG_EXIT_CODES.refused;
  }
  const result = fieldsOf(final.result);
  if (result.snapshot !== undefined) {
    if (!json) for (const line of formatProcSnapshot(result.snapshot as ProcSnapshot)) io.stdout(line);
    return 0;
  }
  for (const line of debugSummary(result)) io.stderr(line);
  return debugExitCode(result);
}

/** `monoceros-cpu-20250101-120000.cpuprofile` in the working folder. */
export function defaultProfilePath(kind: ProfileKind, now: Date): string {
  const stamp = now.toISOString().replace(/\.\d+Z$/, "").replace(/[-:]/g, "").replace("T", "-");
  return resolve(`monoceros-${kind}-${stamp}${PROFILE_EXTENSIONS[kind]}`);
}

/** Opens the file the profile goes to: new (never overwriting), mode 0600; or why not. */
export function openProfileFile(path: string): { ok: true; fd: number } | { ok: false; error: string } {
  try {
    return { ok: true, fd: openSync(path, "wx", 0o600) };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === "EEXIST" ? "it exists already (ctl never overwrites a file; give another --output)" : code === "ENOENT" ? "its folder does not exist" : code === "EACCES" ? "permission denied" : (error as Error).message;
    return { ok: false, error: `--output: cannot create ${path}: ${why}` };
  }
}

/** `ctl profile`: the profile's data lines into the file; the file is removed again unless all of it arrived. */
export async function exchangeProfile(path: string, request: ProfileRequest, outputPath: string, fd: number, io: StreamIo): Promise<number> {
  let bytes = 0;
  let writeError: string | null = null;
  const stopWriting = new AbortController();
  const { answer, error, interrupted } = await streamRequest(path, request, { ...io, signal: anySignal(io.signal, stopWriting.signal) }, (line) => {
    if (!("data" in line) || writeError !== null) return;
    const chunk = Buffer.from(line.data, "utf8");
    bytes += chunk.length;
    if (bytes > DEBUG_LIMITS.profileBytesMax) writeError = `the profile is larger than ${DEBUG_LIMITS.profileBytesMax} bytes`;
    try {
      for (let written = 0; writeError === null && written < chunk.length; ) written += writeSync(fd, chunk, written, chunk.length - written);
    } catch (failure) {
      writeError = `cannot write ${outputPath}: ${(failure as Error).message}`;
    }
    if (writeError !== null) stopWriting.abort();
  });
  closeSync(fd);
  const final: Answer | null = answer;
  const problem = writeError ?? (interrupted ? "interrupted; the profile was stopped" : error ?? (final === null ? "no answer" : final.ok ? null : final.error));
  if (problem !== null) {
    try {
      unlinkSync(outputPath);
    } catch {
      // gone already
    }
    io.stderr(`monoceros ctl: ${problem}`);
    return writeError !== null || final?.ok === false ? DEBUG_EXIT_CODES.refused : interrupted ? DEBUG_EXIT_CODES.interrupted : DEBUG_EXIT_CODES.unreachable;
  }
  const result = fieldsOf(final?.ok ? final.result : null);
  const what = request.kind === "cpu" ? `CPU profile of ${(Number(request.durationMs) / 1000).toFixed(1)} s` : "heap snapshot";
  io.stdout(`wrote ${outputPath} (${humanSize(bytes)}): ${what} of Monoceros (pid ${String(result.pid ?? "?")}); open it in Chrome DevTools or VS Code`);
  return 0;
}

function anySignal(...signals: (AbortSignal | undefined)[]): AbortSignal {
  return AbortSignal.any(signals.filter((signal): signal is AbortSignal => signal !== undefined));
}
