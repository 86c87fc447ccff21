// processbin's flags: the Go original's (same names, short aliases, meaning and defaults) plus the
// extra ones Monoceros' tests need. Every value has an upper bound so a typo cannot make the
// process sleep for years or allocate the machine's memory.
import { isIP } from "node:net";
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { normalizeGoStyleArgs, type FlagNames } from "./go-args.js";
import { parseByteSize, parseDurationMs, parseIntInRange, parseSignalName, type Parsed } from "./units.js";

export interface ProcessbinOptions {
  /** 0 = never. */
  readonly exitAfterMs: number;
  readonly exitCode: number;
  /** When set, exit-after (and --exit-after-logs) kill the process with this signal instead. */
  readonly exitSignal: NodeJS.Signals | undefined;
  readonly ignoreSignals: boolean;
  readonly signalTimeoutMs: number;
  readonly logFixed: string | undefined;
  readonly logSizeBytes: number;
  /** 0 = as fast as the streams accept lines. */
  readonly logIntervalMs: number;
  /** undefined = unlimited. */
  readonly logCount: number | undefined;
  readonly exitAfterLogs: boolean;
  readonly logError: boolean;
  readonly logStructured: boolean;
  /** 0 = no HTTP server. */
  readonly port: number;
  readonly host: string;
  readonly reusePort: boolean;
  /** An inherited listening socket to serve on instead of a port. */
  readonly listenFd: number | undefined;
  readonly unhealthy: boolean;
  readonly unhealthyAfterMs: number | undefined;
  readonly responseDelayMs: number;
  /** 0 = no growth. */
  readonly growMemoryBytesPerSec: number;
  readonly growMemoryMaxBytes: number;
  readonly children: number;
}

const SECOND_MS = 1000;
const HOUR_MS = 3600 * SECOND_MS;
const GIB = 1024 ** 3;

export const LIMITS = {
  exitAfterMaxMs: 7 * 24 * HOUR_MS,
  signalTimeoutMaxMs: HOUR_MS,
  logIntervalMaxMs: HOUR_MS,
  logSizeMaxBytes: 1024 * 1024,
  logFixedMaxChars: 1024 * 1024,
  logCountMax: 1_000_000_000,
  unhealthyAfterMaxMs: 7 * 24 * HOUR_MS,
  responseDelayMaxMs: 60 * SECOND_MS,
  growMemoryMaxBytesPerSec: GIB,
  growMemoryMaxMaxBytes: 16 * GIB,
  childrenMax: 64,
} as const;

/** The shape commander hands back; each field was produced by the parser named in buildProgram. */
interface RawOptions {
  exitAfter: number;
  exitCode: number;
  exitSignal?: NodeJS.Signals;
  ignoreSignals?: true;
  signalTimeout: number;
  logFixed?: string;
  logSize: number;
  logInterval: number;
  logCount?: number;
  exitAfterLogs?: true;
  logError?: true;
  logStructured?: true;
  port: number;
  portEnv?: string;
  listenFd?: number;
  host: string;
  reusePort?: true;
  unhealthy?: true;
  unhealthyAfter?: number;
  responseDelay: number;
  growMemory: number;
  growMemoryMax: number;
  children: number;
}

/** Adapts a Parsed-returning parser to commander, which reports a thrown InvalidArgumentError. */
function parser<T>(parse: (text: string) => Parsed<T>): (text: string) => T {
  return (text) => {
    const result = parse(text);
    if (!result.ok) throw new InvalidArgumentError(result.error);
    return result.value;
  };
}

const UNITS_HELP = `
Units:
  <duration>  seconds as a bare number (as in the Go original), or a Go duration: 200ms, 1.5s, 2m, 1h30m
  <bytes>     a whole number of bytes, or a size: 64KiB, 10MiB, 1GiB (binary), 500MB (decimal)

Output: a start line "processbin started pid=<pid> worker_id=<id|none>", then log lines; with --port
"processbin listening port=<port>"; with --children "processbin children pids=<pid>,<pid>".
HTTP: GET / (hello, worker id, pid), /health, /slow?ms=N (sleep, <= 60000), /work?ms=N (busy CPU,
<= 10000); every response has an x-worker-id header. Exit codes: 143 after SIGTERM, 130 after
SIGINT, --exit-code after --exit-after, 2 for bad flags, 1 when e.g. the port is taken.`;

function buildProgram(): Command {
  const duration = (maxMs: number): ((text: string) => number) => parser((text) => parseDurationMs(text, maxMs));
  const integer = (min: number, max: number): ((text: string) => number) => parser((text) => parseIntInRange(text, min, max));
  const size = (maxBytes: number): ((text: string) => number) => parser((text) => parseByteSize(text, maxBytes));
  return new Command("processbin")
    .description("A worker-like test process: logs, serves HTTP, handles signals, exits, crashes and grows memory on request.")
    .helpOption("-h, --help", "show this help")
    .addOption(new Option("-t, --exit-after <duration>", "exit after this long; 0 = never").default(0, "0").argParser(duration(LIMITS.exitAfterMaxMs)))
    .addOption(new Option("--exit-code <code>", "exit code used when --exit-after or --exit-after-logs fires (0..255)").default(0).argParser(integer(0, 255)))
    .addOption(new Option("--exit-signal <signal>", "instead of exiting with --exit-code, kill itself with this signal, e.g. SIGKILL, SIGSEGV (default: none)").argParser(parser(parseSignalName)))
    .addOption(new Option("-i, --ignore-signals", "ignore SIGTERM and SIGINT (each is logged, then ignored)"))
    .addOption(new Option("-o, --signal-timeout <duration>", "on SIGTERM/SIGINT wait this long, then exit 143/130").default(0, "0").argParser(duration(LIMITS.signalTimeoutMaxMs)))
    .addOption(new Option("-f, --log-fixed <text>", "log this text on every line (default: --log-size random bytes)").argParser(parser(parseLogFixed)))
    .addOption(new Option("-l, --log-size <n>", "log this many random bytes per line, hex-encoded (2 chars per byte)").default(150).argParser(integer(0, LIMITS.logSizeMaxBytes)))
    .addOption(new Option("-k, --log-interval <duration>", "time between log lines; 0 = as fast as possible, needs --log-count or --exit-after").default(SECOND_MS, "1s").argParser(duration(LIMITS.logIntervalMaxMs)))
    .addOption(new Option("--log-count <lines>", "stop logging after this many lines (keeps running); 0 = log nothing (default: unlimited)").argParser(integer(0, LIMITS.logCountMax)))
    .addOption(new Option("--exit-after-logs", "with --log-count: exit (per --exit-code/--exit-signal) once the last line is flushed"))
    .addOption(new Option("-e, --log-error", "write every log line to stderr as well as stdout"))
    .addOption(new Option("-j, --log-structured", 'write JSON lines: {"key":<line>,"multiprocess_worker_id":<id|null>,"seq":<n>}'))
    .addOption(new Option("-p, --port <port>", "serve HTTP on this TCP port (1..65535); 0 = no HTTP server").default(0).argParser(integer(0, 65535)))
    .addOption(new Option("--listen-fd <fd>", "serve HTTP on this inherited listening socket (e.g. 3, as systemd socket activation and Monoceros hand them over) instead of --port").argParser(integer(3, 1023)))
    .addOption(new Option("--port-env <name>", "serve HTTP on the port this environment variable holds, e.g. MONOCEROS_HEALTH_PORT (overrides --port)"))
    .addOption(new Option("--host <address>", "address the HTTP server binds to").default("127.0.0.1").argParser(parser(parseHost)))
    .addOption(new Option("--reuse-port", "with --port: listen with SO_REUSEPORT so several processes share the port"))
    .addOption(new Option("--unhealthy", "GET /health answers 503 from the start"))
    .addOption(new Option("--unhealthy-after <duration>", "GET /health answers 503 once this long has passed since start (default: never)").argParser(duration(LIMITS.unhealthyAfterMaxMs)))
    .addOption(new Option("--response-delay <duration>", "delay every HTTP response by this long, at most 60s").default(0, "0").argParser(duration(LIMITS.responseDelayMaxMs)))
    .addOption(new Option("--grow-memory <bytes-per-second>", "allocate and touch this much memory per second, at most 1GiB; 0 = none").default(0, "0").argParser(size(LIMITS.growMemoryMaxBytesPerSec)))
    .addOption(new Option("--grow-memory-max <bytes>", "stop growing memory at this total, at most 16GiB").default(GIB, "1GiB").argParser(size(LIMITS.growMemoryMaxMaxBytes)))
    .addOption(new Option("--children <count>", `spawn this many "sleep 3600" children in the same process group (0..${LIMITS.childrenMax})`).default(0).argParser(integer(0, LIMITS.childrenMax)))
    .addHelpText("after", UNITS_HELP)
    .allowExcessArguments(false)
    .exitOverride()
    .configureOutput({
      // One line on stderr, whatever commander wanted to say (it may append a suggestion line).
      outputError: (text, write) => write(`${text.trim().replace(/\s*\n\s*/g, " ")}\n`),
    });
}

function parseLogFixed(text: string): Parsed<string> {
  return text.length > LIMITS.logFixedMaxChars
    ? { ok: false, error: `is too long (at most ${LIMITS.logFixedMaxChars} characters)` }
    : { ok: true, value: text };
}

function parseHost(text: string): Parsed<string> {
  return text.trim() === "" ? { ok: false, error: "must not be empty" } : { ok: true, value: text.trim() };
}

/** Flags that only make sense together; returns the first problem, if any. */
export function crossCheck(options: ProcessbinOptions): string | undefined {
  if (options.exitAfterLogs && options.logCount === undefined) return "--exit-after-logs needs --log-count";
  if (options.logIntervalMs === 0 && options.logCount === undefined && options.exitAfterMs === 0) {
    return "--log-interval 0 logs as fast as possible and needs --log-count or --exit-after to stop";
  }
  if (Number.isNaN(options.port)) return "--port-env names a variable that does not hold a port number (1..65535)";
  if (options.listenFd !== undefined && (options.port !== 0 || options.reusePort)) return "--listen-fd serves an inherited socket: it cannot be combined with --port, --port-env or --reuse-port";
  if (options.reusePort && options.port === 0) return "--reuse-port needs --port";
  if (options.reusePort && isIP(options.host) === 0) return `--reuse-port needs --host to be an IP address, got "${options.host}"`;
  return undefined;
}

/** The port in this environment variable, NaN when it is unset or not a port (crossCheck reports it). */
function portFromEnv(name: string): number {
  const text = process.env[name] ?? "";
  const port = /^\d{1,5}$/.test(text) ? Number(text) : NaN;
  return port >= 1 && port <= 65535 ? port : NaN;
}

function toOptions(raw: RawOptions): ProcessbinOptions {
  return {
    exitAfterMs: raw.exitAfter,
    exitCode: raw.exitCode,
    exitSignal: raw.exitSignal,
    ignoreSignals: raw.ignoreSignals === true,
    signalTimeoutMs: raw.signalTimeout,
    // The original treats an empty --log-fixed as unset and falls back to random bytes.
    logFixed: raw.logFixed === "" ? undefined : raw.logFixed,
    logSizeBytes: raw.logSize,
    logIntervalMs: raw.logInterval,
    logCount: raw.logCount,
    exitAfterLogs: raw.exitAfterLogs === true,
    logError: raw.logError === true,
    logStructured: raw.logStructured === true,
    port: raw.portEnv === undefined ? raw.port : portFromEnv(raw.portEnv),
    host: raw.host,
    reusePort: raw.reusePort === true,
    listenFd: raw.listenFd,
    unhealthy: raw.unhealthy === true,
    unhealthyAfterMs: raw.unhealthyAfter,
    responseDelayMs: raw.responseDelay,
    growMemoryBytesPerSec: raw.growMemory,
    growMemoryMaxBytes: raw.growMemoryMax,
    children: raw.children,
  };
}

function flagNames(program: Command): FlagNames {
  const long = new Set<string>();
  const short = new Set<string>();
  const boolean = new Set<string>();
  for (const option of program.options) {
    const names = [option.long?.replace(/^--/, ""), option.short?.replace(/^-/, "")];
    if (names[0] !== undefined) long.add(names[0]);
    if (names[1] !== undefined) short.add(names[1]);
    if (option.isBoolean()) names.forEach((name) => name !== undefined && boolean.add(name));
  }
  return { long, short, boolean };
}

export type ParseOutcome =
  | { kind: "run"; options: ProcessbinOptions }
  | { kind: "exit"; exitCode: number };

/** Exit code for bad flags: 2, the usual "usage error" code (the Go flag package uses it too). */
export const USAGE_EXIT_CODE = 2;

/** Parses user arguments (without node and script). Errors are already printed when kind is "exit". */
export function parseOptions(userArgs: readonly string[]): ParseOutcome {
  const program = buildProgram();
  try {
    program.parse(normalizeGoStyleArgs(userArgs, flagNames(program)), { from: "user" });
  } catch (error) {
    if (!(error instanceof CommanderError)) throw error;
    // --help (and --version) come through here too, with exit code 0.
    return { kind: "exit", exitCode: error.exitCode === 0 ? 0 : USAGE_EXIT_CODE };
  }
  const options = toOptions(program.opts<RawOptions>());
  const problem = crossCheck(options);
  if (problem !== undefined) {
    process.stderr.write(`error: ${problem}\n`);
    return { kind: "exit", exitCode: USAGE_EXIT_CODE };
  }
  return { kind: "run", options };
}
