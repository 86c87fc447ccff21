// A debug command an operator runs on a worker (`monoceros ctl debug web/0 stack`): eu-stack, gdb,
// py-spy. Like an exec check it runs without a shell, detached (its own session and process group,
// so a tool that forks is stopped whole) and with the held listen sockets covered; unlike one, its
// output is handed on line by line as it comes. Every way it can end is an outcome, never a
// rejection: it exits; its time is up, its output passed the limit or its client left (then its group
// gets SIGTERM, SIGKILL after a grace); it never exits even after SIGKILL (reported without an exit).
import { spawn, type ChildProcess } from "node:child_process";
import type { Readable } from "node:stream";
import { DEBUG_LIMITS } from "../../debug/limits.js";
import { LineSplitter } from "../../logs/line-splitter.js";
import { findExecutable } from "./executable.js";
import { coverHeldListenSockets } from "./listen-sockets.js";

export type DebugStream = "stdout" | "stderr";

/** Why Monoceros stopped the command (it did not end on its own). */
export type StopReason = "timeout" | "output" | "client";

export interface DebugCommandOptions {
  argv: readonly string[];
  /** Its whole environment. */
  env: Readonly<Record<string, string | undefined>>;
  timeoutMs: number;
  /** Aborted when the operator's ctl went away: the command is stopped. */
  signal: AbortSignal;
  onLine: (stream: DebugStream, text: string) => void;
  /** Overrides for tests; DEBUG_LIMITS otherwise. */
  limits?: Partial<Record<"outputBytesMax" | "lineBytesMax" | "killGraceMs" | "exitWaitMs" | "outputDrainMs", number>>;
}

export type DebugCommandOutcome =
  | { started: false; error: string; durationMs: number }
  | {
      started: true;
      pid: number;
      /** null with a signal, or when it did not exit even after SIGKILL (exited false). */
      exitCode: number | null;
      signal: string | null;
      exited: boolean;
      stopped: StopReason | null;
      durationMs: number;
      /** Output bytes handed on (at most outputBytesMax). */
      outputBytes: number;
      truncated: boolean;
    };

export const OUTPUT_CUT_NOTE = "[output cut: more than the limit; the command was stopped]";

export function runDebugCommand(options: DebugCommandOptions): Promise<DebugCommandOutcome> {
  const limits: Record<"outputBytesMax" | "lineBytesMax" | "killGraceMs" | "exitWaitMs" | "outputDrainMs", number> = { ...DEBUG_LIMITS, ...options.limits };
  const startedMs = performance.now();
  const elapsedMs = () => Math.round(performance.now() - startedMs);
  const command = options.argv[0] ?? "";
  // Found first, so that "not installed" reads as such (spawn only says ENOENT).
  const found = findExecutable(command, options.env.PATH ?? "");
  if (!found.ok) return Promise.resolve({ started: false, error: `cannot run ${JSON.stringify(command)}: ${found.reason}`, durationMs: elapsedMs() });
  return new Promise((resolve) => {
    let child: ChildProcess;
    try {
      child = spawn(command, options.argv.slice(1), {
        env: options.env,
        detached: true, // setsid(): its own process group, stopped as a whole
        stdio: coverHeldListenSockets(["ignore", "pipe", "pipe"]),
      });
    } catch (error) {
      resolve({ started: false, error: `cannot run ${JSON.stringify(command)}: ${error instanceof Error ? error.message : String(error)}`, durationMs: elapsedMs() });
      return;
    }
    let spawned = false;
    let settled = false;
    let stopped: StopReason | null = null;
    let exit: { code: number | null; signal: string | null } | null = null;
    let outputBytes = 0;
    let truncated = false;
    const timers = new Set<NodeJS.Timeout>();
    const later = (ms: number, action: () => void) => {
      const timer = setTimeout(() => {
        timers.delete(timer);
        action();
      }, ms);
      timers.add(timer);
    };
    const pipes = [
      ["stdout", child.stdout],
      ["stderr", child.stderr],
    ].filter((entry): entry is [DebugStream, Readable] => entry[1] !== null && entry[1] !== undefined);
    const splitters = new Map(pipes.map(([stream]) => [stream, new LineSplitter((text) => options.onLine(stream, text), limits.lineBytesMax)]));
    let openPipes = pipes.length;

    const settle = () => {
      if (settled) return;
      settled = true;
      for (const timer of timers) clearTimeout(timer);
      options.signal.removeEventListener("abort", onAbort);
      for (const [, pipe] of pipes) pipe.destroy(); // a process outside its group may hold them open
      if (!spawned || child.pid === undefined) {
        resolve({ started: false, error: `cannot run ${JSON.stringify(command)}`, durationMs: elapsedMs() });
        return;
      }
      for (const splitter of splitters.values()) splitter.end();
      resolve({
        started: true,
        pid: child.pid,
        exitCode: exit?.code ?? null,
        signal: exit?.signal ?? null,
        exited: exit !== null,
        stopped,
        durationMs: elapsedMs(),
        outputBytes,
        truncated,
      });
    };
    const stop = (reason: StopReason) => {
      if (stopped !== null || exit !== null || settled) return;
      stopped = reason;
      signalGroup(child.pid, "SIGTERM");
      later(limits.killGraceMs, () => {
        signalGroup(child.pid, "SIGKILL");
        later(limits.exitWaitMs, settle);
      });
    };
    const onAbort = () => stop("client");

    for (const [stream, pipe] of pipes) {
      const splitter = splitters.get(stream) as LineSplitter;
      pipe.on("data", (chunk: Buffer) => {
        if (truncated) return; // read and dropped, so the command never blocks on a full pipe before it is stopped
        const room = limits.outputBytesMax - outputBytes;
        if (chunk.length <= room) {
          outputBytes += chunk.length;
          splitter.push(chunk);
          return;
        }
        outputBytes += room;
        splitter.push(chunk.subarray(0, room));
        truncated = true;
        for (const each of splitters.values()) each.end();
        options.onLine("stderr", OUTPUT_CUT_NOTE.replace("the limit", `${limits.outputBytesMax} bytes`));
        stop("output");
      });
      pipe.on("error", () => {}); // a broken pipe ends the output; the exit still says how it went
      pipe.once("close", () => {
        openPipes--;
        if (openPipes === 0 && exit !== null) settle();
      });
    }
    child.once("spawn", () => {
      spawned = true;
      later(options.timeoutMs, () => stop("timeout"));
    });
    child.on("error", (error: NodeJS.ErrnoException) => {
      // After "spawn", an error is a failed kill(): how it ended is told by "exit".
      if (spawned) return;
      settled = true;
      for (const timer of timers) clearTimeout(timer);
      options.signal.removeEventListener("abort", onAbort);
      resolve({ started: false, error: `cannot run ${JSON.stringify(command)}: ${error.message}`, durationMs: elapsedMs() });
    });
    child.once("exit", (code, signal) => {
      exit = { code, signal };
      signalGroup(child.pid, "SIGKILL"); // what it left behind in its group
      if (openPipes === 0) settle();
      else later(limits.outputDrainMs, settle);
    });
    if (options.signal.aborted) stop("client");
    else options.signal.addEventListener("abort", onAbort, { once: true });
  });
}

/** The whole group (the command's pid is its group id); nothing left, or not ours, is no error. */
function signalGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // gone already
  }
}
