// Health probes a worker is judged by: an HTTP GET, or a command whose exit code says. Each probe
// is one bounded wait that always ends in an outcome (never a rejection): a hung worker, a check
// that forks a daemon holding its pipes, or a spawn that fails for want of file descriptors all
// become "fail" or "timeout" for the core to decide on.
//
// The HTTP probe speaks just enough HTTP/1.1 over a raw socket: one connection per probe, closed
// as soon as the status line is read, as Kubernetes does. At 256 probes/s against a local server,
// node:http took 1.3 to 2 times the CPU of this: its parser, agent and streams do work a status
// code does not need.
import { spawn, type ChildProcess } from "node:child_process";
import { connect, type Socket } from "node:net";
import type { Readable } from "node:stream";
import { coverHeldListenSockets } from "./listen-sockets.js";

export type ProbeResult = "ok" | "fail" | "timeout";

export interface ProbeOutcome {
  result: ProbeResult;
  /** One line, at most PROBE_DETAIL_MAX_CHARS: why it failed ("HTTP 503", "connect ECONNREFUSED 127.0.0.1:9100", "exit code 2: <output>", "no answer within 1000 ms"), or e.g. "HTTP 200" when ok. */
  detail: string;
  /** Wall time the probe took, ms. */
  durationMs: number;
  /** The errno when the connection could not be made or the command could not be started (ECONNREFUSED, EMFILE, ENOENT…). */
  errorCode?: string;
}

export const PROBE_DETAIL_MAX_CHARS = 512;

/** Output of an exec probe kept (the first bytes); the rest is read and dropped, so the check never blocks on a full pipe. */
export const EXEC_OUTPUT_MAX_BYTES = 4096;

/** Bytes of a response read for its status line (interim 1xx responses included) before it counts as malformed. */
const HTTP_RESPONSE_HEAD_MAX_BYTES = 16 * 1024;

/** After SIGKILL of a timed-out check's group, how long to wait for the leader to be reaped. */
const EXEC_KILL_WAIT_MS = 1000;

/** After a failed check exits, how long to wait for the rest of its output (its pipes to close). */
const EXEC_OUTPUT_DRAIN_MS = 250;

/** setTimeout fires at once (with a warning) for a delay above this. */
const TIMER_MAX_MS = 2_147_483_647;

/** Reads of every probe socket land here and are copied out at once: one buffer, not one per probe. */
const readBuffer = Buffer.allocUnsafe(HTTP_RESPONSE_HEAD_MAX_BYTES);

/** GET http://host:port/path; ok on 2xx/3xx received within timeoutMs (the status line and headers suffice: the body is not awaited, at most a bounded amount is read/discarded). fail on other statuses or connection errors; timeout when no answer within timeoutMs. Never rejects. */
export function httpProbe(target: { host: string; port: number; path: string }, timeoutMs: number): Promise<ProbeOutcome> {
  const done = outcomeSince(performance.now());
  const host = target.host.startsWith("[") && target.host.endsWith("]") ? target.host.slice(1, -1) : target.host;
  const path = target.path === "" ? "/" : target.path;
  const problem = targetProblem(host, target.port, path);
  if (problem !== null) return Promise.resolve(done("fail", problem));
  const request = `GET ${path} HTTP/1.1\r\nHost: ${host.includes(":") ? `[${host}]` : host}:${target.port}\r\n`
    + "User-Agent: monoceros-probe\r\nAccept: */*\r\nConnection: close\r\n\r\n";
  const waitMs = boundedMs(timeoutMs);
  return new Promise((resolve) => {
    let head = "";
    let connected = false;
    let settled = false;
    let socket: Socket;
    const settle = (result: ProbeResult, detail: string, errorCode?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      // Its listeners stay: an error already queued must find one, or it would crash Monoceros.
      socket.destroy();
      resolve(done(result, detail, errorCode));
    };
    const onRead = (bytesRead: number, buffer: Uint8Array): boolean => {
      if (settled) return false;
      const room = HTTP_RESPONSE_HEAD_MAX_BYTES - head.length;
      head += Buffer.from(buffer.buffer, buffer.byteOffset, Math.min(bytesRead, room)).toString("latin1");
      const status = parseStatus(head);
      if (status === "malformed" || (status === "incomplete" && head.length >= HTTP_RESPONSE_HEAD_MAX_BYTES)) {
        settle("fail", `malformed response: ${JSON.stringify(head.slice(0, 80))}`);
      } else if (status !== "incomplete") {
        settle(status >= 200 && status < 400 ? "ok" : "fail", `HTTP ${status}`);
      }
      return true;
    };
    try {
      socket = connect({ host, port: target.port, onread: { buffer: readBuffer, callback: onRead } });
    } catch (error) {
      resolve(done("fail", errorMessage(error), errorCodeOf(error)));
      return;
    }
    const timer = setTimeout(() => settle("timeout", `no answer within ${waitMs} ms${connected ? "" : " (not connected)"}`), waitMs);
    socket.once("connect", () => (connected = true));
    socket.on("error", (error) => settle("fail", errorMessage(error), errorCodeOf(error)));
    socket.once("end", () => settle("fail", head === "" ? "connection closed without a response" : `malformed response: closed after ${JSON.stringify(head.slice(0, 80))}`));
    socket.once("close", () => settle("fail", "connection closed without a response"));
    socket.write(request);
  });
}

/** The readiness of a proxy-mode worker without a check: its port accepts a TCP connection (closed again at once, nothing sent). */
export function tcpProbe(target: { host: string; port: number }, timeoutMs: number): Promise<ProbeOutcome> {
  const done = outcomeSince(performance.now());
  const waitMs = boundedMs(timeoutMs);
  return new Promise((resolve) => {
    let settled = false;
    let socket: Socket;
    const settle = (result: ProbeResult, detail: string, errorCode?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(done(result, detail, errorCode));
    };
    try {
      socket = connect({ host: target.host, port: target.port });
    } catch (error) {
      resolve(done("fail", errorMessage(error), errorCodeOf(error)));
      return;
    }
    const timer = setTimeout(() => settle("timeout", `not connected within ${waitMs} ms`), waitMs);
    socket.once("connect", () => settle("ok", "port accepts connections"));
    socket.on("error", (error) => settle("fail", errorMessage(error), errorCodeOf(error)));
  });
}

/**
 * Runs argv[0] with argv.slice(1) without a shell, in its own process group (detached), stdin ignored; ok on exit code 0; fail on any other exit or a spawn error (ENOENT etc, named in detail); timeout when it has not exited within timeoutMs: then its whole process group gets SIGKILL (and the promise resolves only once the leader is gone, but never waits more than timeoutMs + 1000 ms in all). stdout+stderr are captured together, at most EXEC_OUTPUT_MAX_BYTES (keep the first bytes; note truncation), and on failure/timeout the output (whitespace collapsed to one line) goes into detail. Never rejects.
 *
 * `env` is the check's whole environment (default: Monoceros's own): give it the workers' (with the
 * watchdog's instance mark), so a check left running by a Monoceros that was SIGKILLed is swept too. Whatever the
 * check leaves in its group when it exits is SIGKILLed: a probe per second must not pile up daemons.
 */
export function execProbe(argv: readonly string[], timeoutMs: number, env?: Readonly<Record<string, string>>): Promise<ProbeOutcome> {
  const startedMs = performance.now();
  const done = (result: ProbeResult, detail: string, output?: Output, errorCode?: string): ProbeOutcome => ({
    result,
    detail: output === undefined ? oneLine(detail) : withOutput(detail, output),
    durationMs: performance.now() - startedMs,
    ...(errorCode === undefined ? {} : { errorCode }),
  });
  const command = argv[0];
  if (command === undefined || command === "") return Promise.resolve(done("fail", "no command to run"));
  const waitMs = boundedMs(timeoutMs);
  return new Promise((resolve) => {
    let child: ChildProcess;
    try {
      child = spawn(command, argv.slice(1), {
        env: env ?? process.env,
        detached: true, // setsid(): its own session and process group, so the group can be killed
        stdio: coverHeldListenSockets(["ignore", "pipe", "pipe"]),
      });
    } catch (error) {
      resolve(done("fail", spawnError(command, error), undefined, errorCodeOf(error)));
      return;
    }
    const output = new Output();
    // Missing when spawn failed before its pipes were made (EMFILE).
    const pipes = [child.stdout, child.stderr].filter((pipe): pipe is Readable => pipe !== null && pipe !== undefined);
    let openPipes = pipes.length;
    let spawned = false;
    let exitDetail: string | null = null;
    let settled = false;
    let killWait: NodeJS.Timeout | undefined;
    let drain: NodeJS.Timeout | undefined;
    const settle = (result: ProbeResult, detail: string, errorCode?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      clearTimeout(killWait);
      clearTimeout(drain);
      for (const pipe of pipes) pipe.destroy(); // a grandchild may hold them open for ever
      resolve(done(result, detail, output, errorCode));
    };
    for (const pipe of pipes) {
      pipe.on("data", (chunk: Buffer) => output.add(chunk));
      pipe.on("error", () => {}); // a broken pipe ends the output; the exit still says how it went
      pipe.once("close", () => {
        openPipes--;
        if (openPipes === 0 && exitDetail !== null) settle("fail", exitDetail);
      });
    }
    const deadline = setTimeout(() => {
      if (child.pid !== undefined) killGroup(child.pid);
      killWait = setTimeout(() => settle("timeout", `did not exit within ${waitMs} ms, nor ${EXEC_KILL_WAIT_MS} ms after SIGKILL`), EXEC_KILL_WAIT_MS);
    }, waitMs);
    child.once("spawn", () => (spawned = true));
    // After "spawn", an error is a failed kill(): how the check ended is told by "exit".
    child.on("error", (error) => {
      if (!spawned) settle("fail", spawnError(command, error), errorCodeOf(error));
    });
    child.once("exit", (code, signal) => {
      if (child.pid !== undefined) killGroup(child.pid); // what it left behind
      if (killWait !== undefined) settle("timeout", `did not exit within ${waitMs} ms`);
      else if (code === 0) settle("ok", "exit code 0");
      else {
        exitDetail = code !== null ? `exit code ${code}` : `killed by ${signal}`;
        if (openPipes === 0) settle("fail", exitDetail);
        else drain = setTimeout(() => settle("fail", exitDetail as string), EXEC_OUTPUT_DRAIN_MS);
      }
    });
  });
}

/** The status of the final response, once its status line is in `head`; 1xx interim responses (103 Early Hints) are skipped. */
function parseStatus(head: string): number | "incomplete" | "malformed" {
  let start = 0;
  for (;;) {
    const end = head.indexOf("\n", start);
    if (end === -1) return "HTTP/".startsWith(head.slice(start, start + 5)) ? "incomplete" : "malformed";
    const match = /^HTTP\/\d\.\d (\d{3})(?: |\r?$)/.exec(head.slice(start, end));
    if (match === null) return "malformed";
    const status = Number(match[1]);
    if (status < 100) return "malformed";
    if (status >= 200 || status === 101) return status;
    // Each pass moves `start` forward, and `head` is bounded: the loop ends.
    const blank = /\n\r?\n/g;
    blank.lastIndex = end;
    if (blank.exec(head) === null) return "incomplete";
    start = blank.lastIndex;
  }
}

/** Why this target cannot be asked at all, or null. A space or line break would let the config write its own request. */
function targetProblem(host: string, port: number, path: string): string | null {
  if (!/^[A-Za-z0-9._:%-]+$/.test(host)) return `invalid host ${JSON.stringify(host)}`;
  if (!Number.isInteger(port) || port < 1 || port > 65535) return `invalid port ${port}`;
  if (!/^\/[\x21-\x7e]*$/.test(path)) return `invalid path ${JSON.stringify(path)}: it must start with "/" and hold no spaces or control characters`;
  return null;
}

/** The first EXEC_OUTPUT_MAX_BYTES bytes of stdout and stderr, in the order they arrived. */
class Output {
  private readonly kept = Buffer.alloc(EXEC_OUTPUT_MAX_BYTES);
  private keptBytes = 0;
  totalBytes = 0;

  add(chunk: Buffer): void {
    this.totalBytes += chunk.length;
    if (this.keptBytes < EXEC_OUTPUT_MAX_BYTES) this.keptBytes += chunk.copy(this.kept, this.keptBytes);
  }

  text(): string {
    return this.kept.toString("utf8", 0, this.keptBytes);
  }
}

/** `detail: output` on one line; when the output was cut at EXEC_OUTPUT_MAX_BYTES, the end says so even if the line is clipped. */
function withOutput(detail: string, output: Output): string {
  const text = collapse(output.text());
  if (text === "") return oneLine(detail);
  if (output.totalBytes <= EXEC_OUTPUT_MAX_BYTES) return oneLine(`${detail}: ${text}`);
  const note = ` … [output truncated: ${output.totalBytes} bytes, first ${EXEC_OUTPUT_MAX_BYTES} kept]`;
  return oneLine(`${detail}: ${text}`, PROBE_DETAIL_MAX_CHARS - note.length) + note;
}

/** Whitespace and control characters collapsed to single spaces, clipped to maxChars (ending in "…" when clipped). */
/** The outcome of a probe started at startedMs (its detail one bounded line). */
function outcomeSince(startedMs: number): (result: ProbeResult, detail: string, errorCode?: string) => ProbeOutcome {
  return (result, detail, errorCode) => ({
    result, detail: oneLine(detail), durationMs: performance.now() - startedMs, ...(errorCode === undefined ? {} : { errorCode }),
  });
}

function oneLine(text: string, maxChars = PROBE_DETAIL_MAX_CHARS): string {
  const line = collapse(text);
  if (line.length <= maxChars) return line;
  let cut = maxChars - 1;
  if (/[\uDC00-\uDFFF]/.test(line.charAt(cut))) cut--; // do not split a surrogate pair
  return `${line.slice(0, cut)}…`;
}

function collapse(text: string): string {
  return text.replace(/[\s\p{Cc}]+/gu, " ").trim();
}

/** SIGKILL to the group; to the process alone if the group cannot be signalled (e.g. EPERM). */
function killGroup(pid: number): void {
  try {
    process.kill(-pid, "SIGKILL");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ESRCH") return; // nothing left
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // gone, or not ours to signal: the kill wait still bounds the probe
    }
  }
}

/** Node's message ("spawn nosuch ENOENT") with the error code in it, whatever the message says. */
function spawnError(command: string, error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  const message = errorMessage(error);
  if (code === undefined || message.includes(code)) return `cannot run ${JSON.stringify(command)}: ${message}`;
  return `cannot run ${JSON.stringify(command)}: ${code}: ${message}`;
}

/** An AggregateError (every address of "localhost" refused) has an empty message: its parts say why. */
/** The errno of a failed connect or spawn; that of the first address tried when every address failed. */
function errorCodeOf(error: unknown): string | undefined {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code !== undefined) return code;
  return error instanceof AggregateError ? errorCodeOf(error.errors[0]) : undefined;
}

function errorMessage(error: unknown): string {
  if (error instanceof AggregateError && error.message === "") {
    return error.errors.map((part: unknown) => errorMessage(part)).join("; ") || String((error as NodeJS.ErrnoException).code);
  }
  // Node appends " - Local (undefined:undefined)" to a connect error raised before a socket existed (EMFILE).
  return error instanceof Error ? error.message.replace(/ - Local \(undefined:undefined\)$/, "") : String(error);
}

/** A wait between 1 ms and what setTimeout can do (NaN is 1 ms): never "for ever", never "at once". */
function boundedMs(timeoutMs: number): number {
  return Number.isNaN(timeoutMs) ? 1 : Math.min(TIMER_MAX_MS, Math.max(1, Math.round(timeoutMs)));
}
