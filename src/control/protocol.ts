// The wire format of `monoceros ctl`, pure: one request per connection, one JSON object on one line;
// the answer is one line `{"ok":true,"result":…}` or `{"ok":false,"error":"…"}`, then the server
// closes. `logs` first sends `{"record":…}` lines; unless following, a final ok line ends it.
// `debug` first sends its command's output as `{"output":{"stream":"stdout","text":"…"}}` lines,
// `profile` the profile file as `{"data":"…"}` pieces; a final ok (or error) line ends both.
// Strict on purpose: an unknown field is an error, so a typo in a script fails loudly instead of
// being ignored (the operator is changing a running system).
import { LIMITS } from "../config/types.js";
import { DEBUG_LIMITS, DEBUG_NAME, DEBUG_NAME_LENGTH_MAX, PROFILE_KINDS, type ProfileKind } from "../debug/limits.js";

/** A request line longer than this is refused: requests are a few dozen bytes. */
export const REQUEST_BYTES_MAX = 64 * 1024;
export const REQUEST_TOO_LONG = `request too long: more than ${REQUEST_BYTES_MAX} bytes on one line`;
export const LOG_LINES_DEFAULT = 100;
/** As many as a RecordRing keeps by default, rounded up: more would only repeat the ring. */
export const LOG_LINES_MAX = 10_000;
/** Pool names are at most LIMITS.nameLengthMax; a worker suffix adds a few characters. */
const TARGET_LENGTH_MAX = LIMITS.nameLengthMax + 8;
/** How much of a bad value an error line quotes. */
const QUOTED_CHARS_MAX = 40;

export const COMMANDS = ["status", "restart", "scale", "reload", "logs", "debug", "profile"] as const;
export type CommandName = (typeof COMMANDS)[number];

/**
 * What a target names: a pool (`web`), a worker by index (`web/2`, worker 2) or a worker by its
 * worker_id (`web-2`, worker: "web-2"). The last is ambiguous without the config (a pool may be
 * named `web-2`): resolveTarget decides it against the pools that exist.
 */
export interface ControlTarget {
  pool: string;
  worker: number | string | null;
}

export type ControlRequest =
  | { command: "status" }
  | { command: "restart"; target: ControlTarget }
  | { command: "scale"; pool: string; replicas: number }
  | { command: "reload" }
  | { command: "logs"; target: ControlTarget | null; follow: boolean; lines: number }
  /** clientPid: the pid ctl says it has, for the log record (Node cannot read the peer's credentials). */
  | { command: "debug"; target: ControlTarget; name: string; timeoutMs: number; clientPid: number | null }
  /** durationMs: how long a CPU profile samples; null for a heap snapshot. */
  | { command: "profile"; kind: ProfileKind; durationMs: number | null; clientPid: number | null };

export type OutputStream = "stdout" | "stderr";

/** One line of an answer, as the client reads it. */
export type ControlLine =
  | { ok: true; result: unknown }
  | { ok: false; error: string }
  | { record: Record<string, unknown> }
  | { output: { stream: OutputStream; text: string } }
  | { data: string };

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

const POOL_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const WORKER_ID = /^(.+)-(\d+)$/;
const FIELDS: Record<CommandName, readonly string[]> = {
  status: ["command"],
  restart: ["command", "target"],
  scale: ["command", "pool", "replicas"],
  reload: ["command"],
  logs: ["command", "target", "follow", "lines"],
  debug: ["command", "target", "name", "timeout_ms", "client_pid"],
  profile: ["command", "kind", "duration_ms", "client_pid"],
};
/** Pids are at most 2^22 on Linux (pid_max). */
const PID_MAX = 4_194_304;

/** `value` as an error line quotes it: JSON, cut short. */
export function quote(value: unknown): string {
  const text = value === undefined ? "nothing" : JSON.stringify(value) ?? String(value);
  return text.length <= QUOTED_CHARS_MAX ? text : `${text.slice(0, QUOTED_CHARS_MAX)}…`;
}

const typeName = (value: unknown) => (value === null ? "null" : Array.isArray(value) ? "an array" : typeof value);

/** `web`, `web/2` or `web-2`, as operators write them. */
export function parseTarget(text: string): Parsed<ControlTarget> {
  if (text.length === 0) return { ok: false, error: "target: must name a pool (web), a worker by index (web/2) or a worker id (web-2), got nothing" };
  if (text.length > TARGET_LENGTH_MAX) return { ok: false, error: `target: must be at most ${TARGET_LENGTH_MAX} characters, got ${quote(text)}` };
  const slash = text.indexOf("/");
  const pool = slash < 0 ? text : text.slice(0, slash);
  if (!POOL_NAME.test(pool)) {
    return { ok: false, error: `target: ${quote(text)} is not a pool (web), a worker by index (web/2) or a worker id (web-2); pool names use letters, digits, '_', '.' and '-'` };
  }
  if (slash < 0) {
    const workerId = WORKER_ID.exec(text);
    return { ok: true, value: { pool: workerId?.[1] ?? text, worker: workerId === null ? null : text } };
  }
  const index = text.slice(slash + 1);
  if (!/^\d+$/.test(index) || Number(index) >= LIMITS.replicasMax) {
    return { ok: false, error: `target: the worker index after '/' must be an integer from 0 to ${LIMITS.replicasMax - 1}, got ${quote(text)}` };
  }
  return { ok: true, value: { pool, worker: Number(index) } };
}

/** The inverse of parseTarget. */
export function formatTarget(target: ControlTarget): string {
  if (target.worker === null) return target.pool;
  return typeof target.worker === "string" ? target.worker : `${target.pool}/${target.worker}`;
}

export interface PoolSize {
  name: string;
  replicas: number;
}

/**
 * A target against the pools that exist: a pool named exactly like a worker id wins (`web-2` is the
 * pool web-2 if there is one), as a name that exists beats a guess at one.
 */
export function resolveTarget(target: ControlTarget, pools: readonly PoolSize[]): Parsed<{ pool: string; worker: number | null }> {
  const names = pools.map((pool) => pool.name).join(", ") || "none";
  if (typeof target.worker === "string" && pools.some((pool) => pool.name === target.worker)) return { ok: true, value: { pool: target.worker, worker: null } };
  const pool = pools.find((candidate) => candidate.name === target.pool);
  if (pool === undefined) {
    const what = typeof target.worker === "string" ? `no pool or worker named ${target.worker}` : `no pool named ${target.pool}`;
    return { ok: false, error: `${what} (pools: ${names})` };
  }
  if (target.worker === null) return { ok: true, value: { pool: pool.name, worker: null } };
  const index = typeof target.worker === "number" ? target.worker : Number(WORKER_ID.exec(target.worker)?.[2] ?? NaN);
  if (!(index < pool.replicas)) {
    const range = pool.replicas === 0 ? "none" : `${pool.name}/0 to ${pool.name}/${pool.replicas - 1}`;
    return { ok: false, error: `pool ${pool.name} has ${pool.replicas} worker${pool.replicas === 1 ? "" : "s"} (${range}), got ${formatTarget(target)}` };
  }
  return { ok: true, value: { pool: pool.name, worker: index } };
}

function integerIn(field: string, value: unknown, min: number, max: number): Parsed<number> {
  if (typeof value === "number" && Number.isInteger(value) && value >= min && value <= max) return { ok: true, value };
  return { ok: false, error: `${field}: must be an integer from ${min} to ${max}, got ${quote(value)}` };
}

function targetField(value: unknown): Parsed<ControlTarget> {
  if (typeof value !== "string") return { ok: false, error: `target: must be a string such as "web", "web/2" or "web-2", got ${value === undefined ? "nothing" : typeName(value)}` };
  return parseTarget(value);
}

/** A request object (already JSON-decoded, e.g. built by the command line) checked field by field. */
export function validateRequest(value: unknown): Parsed<ControlRequest> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return { ok: false, error: `request: must be a JSON object, got ${typeName(value)}` };
  const fields = value as Record<string, unknown>;
  const command = fields.command;
  const known = COMMANDS.join(", ");
  if (command === undefined) return { ok: false, error: `command: missing; known commands: ${known}` };
  if (typeof command !== "string" || !(COMMANDS as readonly string[]).includes(command)) {
    return { ok: false, error: `command: unknown command ${quote(command)}; known commands: ${known}` };
  }
  const name = command as CommandName;
  const unknown = Object.keys(fields).find((key) => !FIELDS[name].includes(key));
  if (unknown !== undefined) return { ok: false, error: `${name}: unknown field ${quote(unknown)} (${name} takes ${FIELDS[name].join(", ")})` };
  switch (name) {
    case "status":
    case "reload":
      return { ok: true, value: { command: name } };
    case "restart": {
      const target = targetField(fields.target);
      return target.ok ? { ok: true, value: { command: name, target: target.value } } : target;
    }
    case "scale": {
      if (typeof fields.pool !== "string" || !POOL_NAME.test(fields.pool) || fields.pool.length > LIMITS.nameLengthMax) {
        return { ok: false, error: `pool: must be a pool name (letters, digits, '_', '.' and '-'), got ${quote(fields.pool)}` };
      }
      const replicas = integerIn("replicas", fields.replicas, 0, LIMITS.replicasMax);
      return replicas.ok ? { ok: true, value: { command: name, pool: fields.pool, replicas: replicas.value } } : replicas;
    }
    case "logs": {
      const target = fields.target === undefined || fields.target === null ? null : targetField(fields.target);
      if (target !== null && !target.ok) return target;
      if (fields.follow !== undefined && typeof fields.follow !== "boolean") return { ok: false, error: `follow: must be true or false, got ${quote(fields.follow)}` };
      const lines = fields.lines === undefined ? { ok: true as const, value: LOG_LINES_DEFAULT } : integerIn("lines", fields.lines, 0, LOG_LINES_MAX);
      if (!lines.ok) return lines;
      return { ok: true, value: { command: name, target: target === null ? null : target.value, follow: fields.follow ?? false, lines: lines.value } };
    }
    case "debug": {
      const target = targetField(fields.target);
      if (!target.ok) return target;
      if (target.value.worker === null) return { ok: false, error: `target: debug needs a worker (${target.value.pool}/0 or ${target.value.pool}-0), got the pool ${quote(target.value.pool)}` };
      const debugName = fields.name;
      if (typeof debugName !== "string" || !DEBUG_NAME.test(debugName) || debugName.length > DEBUG_NAME_LENGTH_MAX) {
        return { ok: false, error: `name: must be the name of one of the pool's debug commands, or proc (letters, digits, '_', '.' and '-', at most ${DEBUG_NAME_LENGTH_MAX} characters), got ${quote(debugName)}` };
      }
      const timeout = fields.timeout_ms === undefined ? { ok: true as const, value: DEBUG_LIMITS.timeoutMsDefault } : integerIn("timeout_ms", fields.timeout_ms, DEBUG_LIMITS.timeoutMsMin, DEBUG_LIMITS.timeoutMsMax);
      if (!timeout.ok) return timeout;
      const clientPid = clientPidField(fields.client_pid);
      if (!clientPid.ok) return clientPid;
      return { ok: true, value: { command: name, target: target.value, name: debugName, timeoutMs: timeout.value, clientPid: clientPid.value } };
    }
    case "profile": {
      const kind = fields.kind;
      if (typeof kind !== "string" || !(PROFILE_KINDS as readonly string[]).includes(kind)) return { ok: false, error: `kind: must be one of ${PROFILE_KINDS.join(", ")}, got ${quote(kind)}` };
      let durationMs: number | null = null;
      if (kind === "cpu") {
        if (fields.duration_ms === undefined) return { ok: false, error: "duration_ms: a CPU profile needs its duration, e.g. 10000" };
        const duration = integerIn("duration_ms", fields.duration_ms, DEBUG_LIMITS.profileDurationMsMin, DEBUG_LIMITS.profileDurationMsMax);
        if (!duration.ok) return duration;
        durationMs = duration.value;
      } else if (fields.duration_ms !== undefined) {
        return { ok: false, error: `duration_ms: a heap snapshot is taken at once and has no duration, got ${quote(fields.duration_ms)}` };
      }
      const clientPid = clientPidField(fields.client_pid);
      if (!clientPid.ok) return clientPid;
      return { ok: true, value: { command: name, kind: kind as ProfileKind, durationMs, clientPid: clientPid.value } };
    }
  }
}

function clientPidField(value: unknown): Parsed<number | null> {
  if (value === undefined || value === null) return { ok: true, value: null };
  return integerIn("client_pid", value, 1, PID_MAX);
}

/** One request line as received, without its newline. */
export function parseRequest(line: string): Parsed<ControlRequest> {
  if (Buffer.byteLength(line, "utf8") > REQUEST_BYTES_MAX) return { ok: false, error: REQUEST_TOO_LONG };
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (error) {
    return { ok: false, error: `request: not valid JSON (${oneLine(error instanceof Error ? error.message : String(error))})` };
  }
  return validateRequest(value);
}

/** Error texts travel as one line, whatever a handler threw. */
export function oneLine(text: string): string {
  return text.replace(/\s*[\r\n]+\s*/g, " ").trim();
}

export function requestLine(request: ControlRequest): string {
  switch (request.command) {
    case "restart":
      return `${JSON.stringify({ command: request.command, target: formatTarget(request.target) })}\n`;
    case "logs":
      return `${JSON.stringify({ ...request, target: request.target === null ? null : formatTarget(request.target) })}\n`;
    case "debug":
      return `${JSON.stringify({ command: request.command, target: formatTarget(request.target), name: request.name, timeout_ms: request.timeoutMs, ...(request.clientPid === null ? {} : { client_pid: request.clientPid }) })}\n`;
    case "profile":
      return `${JSON.stringify({ command: request.command, kind: request.kind, ...(request.durationMs === null ? {} : { duration_ms: request.durationMs }), ...(request.clientPid === null ? {} : { client_pid: request.clientPid }) })}\n`;
    default:
      return `${JSON.stringify(request)}\n`;
  }
}

export const okLine = (result: unknown): string => `${JSON.stringify({ ok: true, result: result ?? null })}\n`;
export const errorLine = (error: string): string => `${JSON.stringify({ ok: false, error: oneLine(error) })}\n`;
export const recordLine = (record: Record<string, unknown>): string => `${JSON.stringify({ record })}\n`;
export const outputLine = (stream: OutputStream, text: string): string => `${JSON.stringify({ output: { stream, text } })}\n`;
export const dataLine = (data: string): string => `${JSON.stringify({ data })}\n`;

/** One answer line as the client reads it. */
export function parseResponseLine(line: string): Parsed<ControlLine> {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return { ok: false, error: `not a JSON line: ${quote(line)}` };
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return { ok: false, error: `not a JSON object: ${quote(value)}` };
  const fields = value as Record<string, unknown>;
  if (fields.ok === true) return { ok: true, value: { ok: true, result: fields.result ?? null } };
  if (fields.ok === false && typeof fields.error === "string") return { ok: true, value: { ok: false, error: fields.error } };
  const record = fields.record;
  if (typeof record === "object" && record !== null && !Array.isArray(record)) return { ok: true, value: { record: record as Record<string, unknown> } };
  const output = fields.output as Record<string, unknown> | null | undefined;
  if (typeof output === "object" && output !== null && (output.stream === "stdout" || output.stream === "stderr") && typeof output.text === "string") {
    return { ok: true, value: { output: { stream: output.stream, text: output.text } } };
  }
  if (typeof fields.data === "string") return { ok: true, value: { data: fields.data } };
  return { ok: false, error: `neither an answer, a record, output nor data: ${quote(value)}` };
}
