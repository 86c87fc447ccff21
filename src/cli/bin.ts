// The executable's entry point: wires the CLI to the real process.
import { EXIT_WRITE_WAIT_MS_MAX } from "../logs/output-channel.js";
import { writeAllSync } from "../logs/write-sync.js";
import { runCrashCleanups } from "./crash-guard.js";
import { main } from "./main.js";

const io = {
  stdout: (line: string) => process.stdout.write(`${line}\n`),
  stderr: (line: string) => process.stderr.write(`${line}\n`),
};

// A reader that went away (`monoceros --help | head`), a full disk: the output is lost, and there
// is nowhere left to report it. Not an internal error.
for (const stream of [process.stdout, process.stderr]) stream.on("error", () => {});

/**
 * Ends Monoceros after an unexpected error: workers killed first, then every log record still
 * buffered written out, then one line (no stack trace: this is a bug in Monoceros, and the line
 * says so), written synchronously so process.exit cannot cut it off.
 */
function exitOnInternalError(error: unknown): never {
  runCrashCleanups();
  const message = error instanceof Error ? error.message : String(error);
  writeAllSync(2, `monoceros: internal error: ${message} (please report this)\n`, EXIT_WRITE_WAIT_MS_MAX);
  // Exit now: the admin server and timers would keep a Monoceros with no workers running.
  process.exit(1);
}

process.on("uncaughtException", exitOnInternalError);

main(process.argv.slice(2), io).then(
  // process.exit: the output channels and timers must not keep a finished Monoceros alive.
  (code) => process.exit(code),
  exitOnInternalError,
);
