// processbin: a worker-like process for Monoceros' tests and demos, a superset of the Go
// original's cmd/processbin (same flags, defaults, output and exit codes).
import { spawnChildren } from "./children.js";
import { createProcessbinServer, workerLabel, type HttpState } from "./http.js";
import { Lifecycle } from "./lifecycle.js";
import { listen } from "./listen.js";
import { makeLogLine, runLogLoop } from "./logging.js";
import { startMemoryGrowth } from "./memory.js";
import { parseOptions, type ProcessbinOptions } from "./options.js";
import { identityFromEnv, LineSink, Output } from "./output.js";

/** Exit code when processbin cannot do what its flags ask (e.g. the port is taken). */
const RUNTIME_ERROR_EXIT_CODE = 1;
// Timers are the only thing keeping a quiet processbin (no logging, no port) alive.
const KEEP_ALIVE_MS = 3_600_000;

function errorText(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).replace(/\s*\n\s*/g, " ");
}

function fail(message: string): never {
  process.stderr.write(`processbin: ${message}\n`);
  process.exit(RUNTIME_ERROR_EXIT_CODE);
}

async function startHttp(options: ProcessbinOptions, output: Output, lifecycle: Lifecycle, startedAtMs: number): Promise<void> {
  const state: HttpState = { closing: false };
  const server = createProcessbinServer(
    {
      identity: output.identity,
      unhealthy: options.unhealthy,
      unhealthyAfterMs: options.unhealthyAfterMs,
      responseDelayMs: options.responseDelayMs,
      startedAtMs,
    },
    state,
  );
  lifecycle.attachServer(server, state);
  const settings = { port: options.port, host: options.host, reusePort: options.reusePort, fd: options.listenFd };
  try {
    const port = await listen(server, settings);
    await output.event("processbin listening", { port });
  } catch (error) {
    const where = options.listenFd === undefined ? `${options.host}:${options.port}${options.reusePort ? " with SO_REUSEPORT" : ""}` : `inherited fd ${options.listenFd}`;
    fail(`cannot listen on ${where}: ${errorText(error)}`);
  }
}

async function run(options: ProcessbinOptions): Promise<void> {
  const startedAtMs = performance.now();
  const identity = identityFromEnv(process.env, process.pid);
  const output = new Output(
    new LineSink(process.stdout),
    options.logError ? new LineSink(process.stderr) : undefined,
    options.logStructured,
    identity,
  );
  const stopWork = new AbortController();
  const lifecycle = new Lifecycle(options, output, stopWork);
  lifecycle.handleSignals();
  setInterval(() => undefined, KEEP_ALIVE_MS);

  await output.event("processbin started", { pid: identity.pid, worker_id: workerLabel(identity) });
  if (options.children > 0) {
    const pids = spawnChildren(options.children, (error) => process.stderr.write(`processbin: cannot spawn child: ${errorText(error)}\n`));
    await output.event("processbin children", { pids });
  }
  if (options.growMemoryBytesPerSec > 0) {
    startMemoryGrowth(options.growMemoryBytesPerSec, options.growMemoryMaxBytes, (bytes) => void output.event("processbin memory grown", { bytes }));
  }
  if (options.exitAfterMs > 0) setTimeout(() => void lifecycle.finish(), options.exitAfterMs);

  const line = makeLogLine(options.logFixed, options.logSizeBytes);
  const logging = runLogLoop(output, { line, intervalMs: options.logIntervalMs, count: options.logCount }, stopWork.signal);
  if (options.port > 0 || options.listenFd !== undefined) await startHttp(options, output, lifecycle, startedAtMs);
  await logging;
  if (options.exitAfterLogs && !stopWork.signal.aborted) await lifecycle.finish();
}

const outcome = parseOptions(process.argv.slice(2));
if (outcome.kind === "exit") {
  // `processbin --help | head` closes the pipe early: not worth a stack trace.
  process.stdout.on("error", () => process.exit(outcome.exitCode));
  process.exitCode = outcome.exitCode;
} else {
  run(outcome.options).catch((error: unknown) => fail(errorText(error)));
}
