// Value parsers for processbin's flags. Pure functions that return a result instead of throwing,
// so options.ts decides how an error is shown (one line, exit code 2).
import { constants as osConstants } from "node:os";
import { parseGoDuration } from "../config/duration.js";

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

const BARE_SECONDS = /^\d+(?:\.\d+)?$/;

/**
 * Parses a duration into milliseconds. A bare number means seconds, because the Go original's
 * flags were integer seconds; a Go duration string ("200ms", "1.5s", "1h30m") is accepted too.
 */
export function parseDurationMs(text: string, maxMs: number): Parsed<number> {
  const trimmed = text.trim();
  const ms = BARE_SECONDS.test(trimmed) ? Number(trimmed) * 1000 : parseGoDurationMs(trimmed);
  if (ms === undefined || !Number.isFinite(ms)) {
    return { ok: false, error: `"${text}" is not a duration (seconds as a number, or Go syntax: 200ms, 1.5s, 2m, 1h30m)` };
  }
  if (ms > maxMs) return { ok: false, error: `"${text}" is too long (at most ${formatSeconds(maxMs)}s)` };
  // Sub-millisecond precision is meaningless for Node timers; round so timers get whole numbers.
  return { ok: true, value: Math.round(ms) };
}

/** Go's time.ParseDuration (the config's parser); negative durations make no sense for any flag here. */
function parseGoDurationMs(text: string): number | undefined {
  const parsed = parseGoDuration(text);
  return parsed.ok && parsed.ms >= 0 ? parsed.ms : undefined;
}

/** Seconds for human-facing messages: "5", "1.5", "0.2" (the original printed whole seconds). */
export function formatSeconds(ms: number): string {
  return String(Number((ms / 1000).toFixed(3)));
}

/** Parses a whole number within [min, max]. Rejects "1e3", "0x10", "1.0" and friends. */
export function parseIntInRange(text: string, min: number, max: number): Parsed<number> {
  const trimmed = text.trim();
  if (!/^[-+]?\d+$/.test(trimmed)) return { ok: false, error: `"${text}" is not a whole number` };
  const value = Number(trimmed);
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    return { ok: false, error: `${trimmed} is out of range (${min}..${max})` };
  }
  return { ok: true, value };
}

const BYTES_PER_UNIT: Readonly<Record<string, number>> = {
  "": 1,
  b: 1,
  k: 1e3, kb: 1e3, ki: 1024, kib: 1024,
  m: 1e6, mb: 1e6, mi: 1024 ** 2, mib: 1024 ** 2,
  g: 1e9, gb: 1e9, gi: 1024 ** 3, gib: 1024 ** 3,
};

/** Parses "1048576", "10MiB", "512Mi", "1.5GB" into bytes, at most maxBytes. */
export function parseByteSize(text: string, maxBytes: number): Parsed<number> {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  const bytesPerUnit = BYTES_PER_UNIT[(match?.[2] ?? "?").toLowerCase()];
  if (match === null || bytesPerUnit === undefined) {
    return { ok: false, error: `"${text}" is not a size (bytes, or with a unit: 64KiB, 10MiB, 1GiB, 500MB)` };
  }
  const bytes = Math.round(Number(match[1]) * bytesPerUnit);
  if (bytes > maxBytes) return { ok: false, error: `"${text}" is too large (at most ${maxBytes} bytes)` };
  return { ok: true, value: bytes };
}

// Signals whose default action does not end the process: killing ourselves with them would
// leave the process stopped or running, which is never what --exit-signal is meant to test.
const NON_FATAL_SIGNALS = new Set(["SIGSTOP", "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGCONT", "SIGCHLD", "SIGURG", "SIGWINCH"]);

/** Parses "SIGKILL", "kill", "9" into a signal name known to this platform. */
export function parseSignalName(text: string): Parsed<NodeJS.Signals> {
  const trimmed = text.trim().toUpperCase();
  const signals: Readonly<Record<string, number>> = osConstants.signals;
  const byNumber = /^\d+$/.test(trimmed)
    ? Object.keys(signals).find((name) => signals[name] === Number(trimmed))
    : undefined;
  const name = byNumber ?? (trimmed.startsWith("SIG") ? trimmed : `SIG${trimmed}`);
  if (!isSignalName(name, signals)) return { ok: false, error: `"${text}" is not a signal name (e.g. SIGKILL, SIGSEGV, SIGABRT)` };
  if (NON_FATAL_SIGNALS.has(name)) return { ok: false, error: `${name} does not end a process; pick one that does (e.g. SIGKILL, SIGSEGV)` };
  // Node answers SIGUSR1 by opening its inspector on port 9229 instead of dying.
  if (name === "SIGUSR1") return { ok: false, error: "SIGUSR1 starts Node's debugger instead of ending the process; pick another (e.g. SIGUSR2)" };
  return { ok: true, value: name };
}

function isSignalName(name: string, signals: Readonly<Record<string, number>>): name is NodeJS.Signals {
  return Object.hasOwn(signals, name);
}

/** The signal's number, for the 128+n exit code a shell would report. */
export function signalNumber(signal: NodeJS.Signals): number {
  const signals: Readonly<Record<string, number>> = osConstants.signals;
  return signals[signal] ?? 0;
}
