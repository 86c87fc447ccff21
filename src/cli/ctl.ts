// `monoceros ctl …`: an operator's commands to a running Monoceros, over its control socket.
// Exit codes tell a script what happened: Monoceros said no (1), the command line was wrong (2),
// or Monoceros could not be reached (3).
import type { Command } from "commander";
import { closeSync, unlinkSync } from "node:fs";
import { findControlSocket, sendControlRequest } from "../control/client.js";
import { validateRequest, type ControlLine, type ControlRequest } from "../control/protocol.js";
import { CONTROL_LIMITS } from "../control/server.js";
import { parseGoDuration } from "../config/duration.js";
import { DEBUG_LIMITS, PROFILE_KINDS, type ProfileKind } from "../debug/limits.js";
import { command, parseArguments } from "./config-file.js";
import { formatCommandResult, formatStatusTable } from "./ctl-format.js";
import { defaultProfilePath, exchangeDebug, exchangeProfile, openProfileFile } from "./ctl-stream.js";
import { EXIT_CODES } from "./exit-codes.js";

export { formatCommandResult, formatStatusTable } from "./ctl-format.js";

export const CTL_EXIT_CODES = {
  ok: EXIT_CODES.ok,
  /** Monoceros answered with an error (unknown pool, replicas refused, …). */
  refused: 1,
  usage: EXIT_CODES.usage,
  /** No Monoceros on the socket, permission denied, no answer in time. */
  unreachable: 3,
} as const;

/** Longer than the server's own bound, so that its message ("no answer within 30 s to …") arrives first. */
const ANSWER_TIMEOUT_MS = CONTROL_LIMITS.answerTimeoutMs + 5_000;

export interface CtlIo {
  stdout: (line: string) => void;
  stderr: (line: string) => void;
  /** Ends `logs -f` as Ctrl-C does (for tests and embedders). */
  signal?: AbortSignal;
}

interface Chosen {
  /** As typed, checked by the protocol's own validation so the messages are the server's. */
  request: Record<string, unknown>;
  json: boolean;
  /** A problem found on the command line before any request is made (usage). */
  problem?: string;
  /** ctl profile: the file the profile goes to, as given. */
  output?: string;
}

/** `4` as a number, anything else as typed, so a bad value is quoted in the error as the user wrote it. */
const numberArgument = (text: string): number | string => (/^\d+$/.test(text) ? Number(text) : text);

/** A duration option in milliseconds within [minMs, maxMs], or the problem as ctl words it. */
function durationArgument(what: string, text: string, minMs: number, maxMs: number): { ms: number } | { problem: string } {
  const parsed = parseGoDuration(text);
  if (!parsed.ok) return { problem: `${what}: ${parsed.error}` };
  if (parsed.ms < minMs || parsed.ms > maxMs) return { problem: `${what}: must be from ${minMs}ms to ${maxMs / 60_000}m, got ${JSON.stringify(text)}` };
  return { ms: Math.round(parsed.ms) };
}

function buildProgram(io: CtlIo, choose: (chosen: Chosen) => void): Command {
  const program = command("monoceros ctl", io)
    .description("Control a running Monoceros through its control socket.")
    .option("--socket <path>", "the control socket (default: $MONOCEROS_CONTROL_SOCKET, else the only live one in $XDG_RUNTIME_DIR/monoceros-<uid>/ or the temporary folder)")
    .helpOption("-h, --help", "show this help")
    .addHelpText("after", "\nTargets: a pool (web), a worker by index (web/2) or by worker id (web-2).\nExit codes: 0 done, 1 Monoceros answered with an error, 2 usage error, 3 cannot reach Monoceros.");
  const json = ["--json", "print the answer as JSON, for scripts"] as const;
  program
    .command("status")
    .description("every pool, worker and proxy as a table")
    .option(...json)
    .action((options: { json?: boolean }) => choose({ request: { command: "status" }, json: options.json === true }));
  program
    .command("restart")
    .description("restart a pool's workers (as many at once as max_unavailable allows) or one worker")
    .argument("<target>", "web, web/2 or web-2")
    .option(...json)
    .action((target: string, options: { json?: boolean }) => choose({ request: { command: "restart", target }, json: options.json === true }));
  program
    .command("scale")
    .description("set a pool's number of workers")
    .argument("<pool>", "the pool's name")
    .argument("<replicas>", "how many workers it should run")
    .option(...json)
    .action((pool: string, replicas: string, options: { json?: boolean }) =>
      choose({ request: { command: "scale", pool, replicas: numberArgument(replicas) }, json: options.json === true }),
    );
  program
    .command("reload")
    .description("read the config file again and apply what changed")
    .option(...json)
    .action((options: { json?: boolean }) => choose({ request: { command: "reload" }, json: options.json === true }));
  program
    .command("logs")
    .description("the recent log records Monoceros keeps, one JSON object per line")
    .argument("[target]", "only this pool's or worker's records")
    .option("-f, --follow", "then print new records as they come, until Ctrl-C")
    .option("-n, --lines <n>", "how many recent records (default 100, at most 10000)")
    .option(...json)
    .action((target: string | undefined, options: { follow?: boolean; lines?: string; json?: boolean }) =>
      choose({
        request: { command: "logs", target: target ?? null, follow: options.follow === true, ...(options.lines === undefined ? {} : { lines: numberArgument(options.lines) }) },
        json: options.json === true,
      }),
    );
  program
    .command("debug")
    .description("run one of a pool's debug commands on a worker (or proc: a /proc snapshot of its process group), printing its output as it comes")
    .argument("<worker>", "web/2 or web-2")
    .argument("<name>", "a name from the pool's debug: section, or proc")
    .option("--timeout <duration>", `stop the command (its process group) after this long (default ${DEBUG_LIMITS.timeoutMsDefault / 1000}s, at most ${DEBUG_LIMITS.timeoutMsMax / 60_000}m)`)
    .option(...json)
    .addHelpText("after", "\nExit code: the command's own (128 + n when killed by signal n, 124 when stopped at its timeout); 1 when Monoceros refused, 3 when it cannot be reached.")
    .action((target: string, name: string, options: { timeout?: string; json?: boolean }) => {
      const timeout = options.timeout === undefined ? { ms: DEBUG_LIMITS.timeoutMsDefault } : durationArgument("--timeout", options.timeout, DEBUG_LIMITS.timeoutMsMin, DEBUG_LIMITS.timeoutMsMax);
      choose({
        request: { command: "debug", target, name, timeout_ms: "ms" in timeout ? timeout.ms : undefined, client_pid: process.pid },
        json: options.json === true,
        ...("problem" in timeout ? { problem: timeout.problem } : {}),
      });
    });
  program
    .command("profile")
    .description("write a CPU profile (.cpuprofile) or heap snapshot (.heapsnapshot) of Monoceros itself, for Chrome DevTools or VS Code")
    .argument("<kind>", "cpu or heap")
    .argument("[duration]", `how long a CPU profile samples, e.g. 10s (at most ${DEBUG_LIMITS.profileDurationMsMax / 60_000}m)`)
    .option("-o, --output <file>", "the file to write (never overwritten; default monoceros-<kind>-<time>.cpuprofile or .heapsnapshot here)")
    .action((kind: string, duration: string | undefined, options: { output?: string }) => {
      const chosenKind = (PROFILE_KINDS as readonly string[]).includes(kind) ? (kind as ProfileKind) : null;
      let problem: string | undefined;
      let durationMs: number | undefined;
      if (chosenKind === null) problem = `kind: must be cpu or heap, got ${JSON.stringify(kind)}`;
      else if (chosenKind === "cpu" && duration === undefined) problem = "profile cpu needs a duration, e.g. monoceros ctl profile cpu 10s";
      else if (chosenKind === "heap" && duration !== undefined) problem = "profile heap takes no duration (a heap snapshot is taken at once)";
      else if (duration !== undefined) {
        const parsed = durationArgument("duration", duration, DEBUG_LIMITS.profileDurationMsMin, DEBUG_LIMITS.profileDurationMsMax);
        if ("problem" in parsed) problem = parsed.problem;
        else durationMs = parsed.ms;
      }
      choose({
        request: { command: "profile", kind, ...(durationMs === undefined ? {} : { duration_ms: durationMs }), client_pid: process.pid },
        json: false,
        output: options.output ?? defaultProfilePath(chosenKind ?? "cpu", new Date()),
        ...(problem === undefined ? {} : { problem }),
      });
    });
  return program;
}

/** Runs `monoceros ctl` with the arguments after `ctl`; resolves to the exit code. */
export async function runCtl(argv: readonly string[], io: CtlIo): Promise<number> {
  let chosen: Chosen | null = null;
  const program = buildProgram(io, (choice) => (chosen = choice));
  if (argv.length === 0) {
    program.outputHelp({ error: true });
    return CTL_EXIT_CODES.usage;
  }
  const parsed = parseArguments(program, argv);
  if (parsed !== null) return parsed;
  // Set by the action of the subcommand commander ran (`ctl help` runs none).
  const choice = chosen as Chosen | null;
  if (choice === null) return CTL_EXIT_CODES.ok;
  const request = choice.problem === undefined ? validateRequest(choice.request) : { ok: false as const, error: choice.problem };
  if (!request.ok) {
    io.stderr(`monoceros ctl: ${request.error}`);
    return CTL_EXIT_CODES.usage;
  }
  // Created before Monoceros is asked, so that a bad path costs no profile.
  const file = request.value.command === "profile" ? openProfileFile(choice.output ?? "") : null;
  if (file !== null && !file.ok) {
    io.stderr(`monoceros ctl: ${file.error}`);
    return CTL_EXIT_CODES.usage;
  }

  const found = await findControlSocket(process.env, process.getuid?.() ?? 0, program.opts<{ socket?: string }>().socket);
  if (!found.ok) {
    if (file?.ok) discardProfileFile(file.fd, choice.output ?? "");
    io.stderr(`monoceros ctl: ${found.error}`);
    return found.ambiguous ? CTL_EXIT_CODES.usage : CTL_EXIT_CODES.unreachable;
  }
  if (request.value.command === "debug") return exchangeDebug(found.path, request.value, choice.json, io);
  if (request.value.command === "profile" && file?.ok) return exchangeProfile(found.path, request.value, choice.output ?? "", file.fd, io);
  return exchange(found.path, request.value, choice.json, io);
}

async function exchange(path: string, request: ControlRequest, json: boolean, io: CtlIo): Promise<number> {
  const follow = request.command === "logs" && request.follow;
  const stop = new AbortController();
  const onStop = () => stop.abort();
  if (follow) process.on("SIGINT", onStop);
  io.signal?.addEventListener("abort", onStop, { once: true });
  const answers: ControlLine[] = [];
  let outcome;
  try {
    outcome = await sendControlRequest(
      path,
      request,
      (line) => {
        if (!("record" in line)) answers.push(line);
        else io.stdout(JSON.stringify(json ? line : line.record));
      },
      follow ? null : ANSWER_TIMEOUT_MS,
      stop.signal,
    );
  } finally {
    process.off("SIGINT", onStop);
    io.signal?.removeEventListener("abort", onStop);
  }
  if (!outcome.ok) {
    io.stderr(`monoceros ctl: ${outcome.error}`);
    return CTL_EXIT_CODES.unreachable;
  }
  const answer = answers[0];
  // Following ended by Ctrl-C: no final line, and nothing wrong.
  if (answer === undefined || !("ok" in answer)) return CTL_EXIT_CODES.ok;
  if (!answer.ok) {
    if (json) io.stdout(JSON.stringify(answer));
    io.stderr(`monoceros ctl: ${answer.error}`);
    return CTL_EXIT_CODES.refused;
  }
  for (const line of present(request, answer.result, json)) io.stdout(line);
  if (request.command === "logs" && !json) {
    const dropped = (answer.result as { dropped?: unknown } | null)?.dropped;
    if (typeof dropped === "number" && dropped > 0) io.stderr(`monoceros ctl: ${dropped} older matching record${dropped === 1 ? " is" : "s are"} no longer kept in memory`);
  }
  return CTL_EXIT_CODES.ok;
}

function discardProfileFile(fd: number, path: string): void {
  closeSync(fd);
  try {
    unlinkSync(path);
  } catch {
    // gone already
  }
}

/** The answer's result as lines for stdout. */
function present(request: ControlRequest, result: unknown, json: boolean): string[] {
  switch (request.command) {
    case "status":
      // As GET /status prints it.
      return json ? JSON.stringify(result, null, 2).split("\n") : formatStatusTable(result, Date.now());
    case "logs":
      return json ? [JSON.stringify({ ok: true, result })] : [];
    default:
      return json ? [JSON.stringify(result)] : formatCommandResult(result);
  }
}
