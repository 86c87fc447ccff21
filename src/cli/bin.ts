// The executable's entry point: wires the CLI to the real process.
import { runCrashCleanups } from "./crash-guard.js";
import { main } from "./main.js";

const io = {
  stdout: (line: string) => process.stdout.write(`${line}\n`),
  stderr: (line: string) => process.stderr.write(`${line}\n`),
};

// A reader that went away (`monoceros --help | head`) is not an internal error.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code !== "EPIPE") throw error;
  });
}

process.on("uncaughtException", (error) => {
  // Workers first: an unexpected error must not leave them running unsupervised.
  runCrashCleanups();
  // One line, no stack trace: this is a bug in Monoceros, and the message says so.
  io.stderr(`monoceros: internal error: ${error instanceof Error ? error.message : String(error)} (please report this)`);
  process.exit(1);
});

main(process.argv.slice(2), io).then(
  // process.exit: the output channels and timers must not keep a finished Monoceros alive.
  (code) => process.exit(code),
  (error: unknown) => {
    runCrashCleanups();
    io.stderr(`monoceros: internal error: ${error instanceof Error ? error.message : String(error)} (please report this)`);
    // Exit now: the admin server and timers would keep a Monoceros with no workers running.
    process.exit(1);
  },
);
